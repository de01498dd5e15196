/* escape: the attempts the guard must stop, one per call, for the VM tests.
 * Prints "ok" (exit 0) or the error (exit 1):
 *   escape write-fd N        write to descriptor N (one opened before the sandbox)
 *   escape kill-pidfd N      SIGKILL the process behind pidfd N
 *   escape mount DIR         mount a tmpfs over DIR
 *   escape bpf               bpf(BPF_MAP_CREATE)
 *   escape pidfd PID FD CMD...  run CMD with a pidfd of PID as descriptor FD
 *   escape connect ADDR PORT TCP connect to an IPv4 address
 *   escape udp ADDR PORT     send one UDP datagram (sendto) to an IPv4 address
 *   escape listen PORT       accept one TCP connection on 127.0.0.1:PORT (prints "listening")
 *   escape write-at FD NAME  create NAME in the directory behind descriptor FD and write to it
 *   escape af-key            open a PF_KEY socket (the kernel autoloads af_key.ko for it)
 *   escape init-module FILE  load a kernel module
 *   escape add-key           add a key to the process keyring
 *   escape mknod-blk PATH    make a block device node (8:0)
 *   escape await-intruder    wait (20 s at most) for a process named "intruder" to appear
 *                            in this PID namespace, then ptrace-attach it and SIGKILL it:
 *                            prints "ptrace=RESULT kill=RESULT"
 *   escape as UID GID CMD... run CMD as that user (no supplementary groups)
 *   escape request SOCKET PID|- [big|policy]  send mbx-guardd an enroll request for
 *                            PID (with its pidfd; "-": garbage, no pidfd; big: 70000
 *                            bytes; policy: a request to set its net policy to host)
 *                            and print the reply
 *   escape intrude           find the process running "escape await-intruder", join its
 *                            PID and user namespaces as their root (the sandbox's user
 *                            outside) and leave a child there named "intruder" (not in
 *                            its sandbox); prints the child's pid
 * Linked statically: it runs in the bare guest. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <grp.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int report(int r);
static const char* result(int r) { return r < 0 ? strerror(errno) : "ok"; }

/* The first process (other than this one) whose comm is name, or whose
 * argv[1] is name when by_arg; 0 if none. */
static int find_process(const char* name, int by_arg) {
    DIR* d = opendir("/proc");
    struct dirent* e;
    int found = 0;
    while (d && (e = readdir(d)) && !found) {
        int pid = atoi(e->d_name);
        if (pid <= 0 || pid == getpid()) continue;
        char path[64], buf[256] = "";
        snprintf(path, sizeof path, "/proc/%d/%s", pid, by_arg ? "cmdline" : "comm");
        FILE* f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        const char* field = buf;
        if (by_arg) field = buf + strlen(buf) + 1 < buf + n ? buf + strlen(buf) + 1 : "";
        else buf[strcspn(buf, "\n")] = 0;
        if (strcmp(field, name) == 0) found = pid;
    }
    if (d) closedir(d);
    return found;
}

static int await_intruder(void) {
    int pid = 0;
    for (int i = 0; i < 200 && !(pid = find_process("intruder", 0)); i++) usleep(100000);
    if (!pid) {
        printf("no intruder\n");
        return 1;
    }
    int t = (int)ptrace(PTRACE_ATTACH, pid, 0, 0);
    const char* traced = result(t);
    if (t == 0) {
        waitpid(pid, NULL, __WALL);
        ptrace(PTRACE_DETACH, pid, 0, 0);
    }
    printf("ptrace=%s ", traced);
    printf("kill=%s\n", result(kill(pid, SIGKILL)));
    return 0;
}

/* A raw mbx-guardd client (the request format of src/guard_protocol.h). */
static int request(const char* path, const char* pid, int kind /* 1: big, 2: policy */) {
    int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    if (s < 0 || connect(s, (struct sockaddr*)&a, sizeof a) < 0) return report(-1);
    static char msg[70001];
    size_t len;
    if (kind == 1) {
        memset(msg, 'x', 70000);
        len = 70000;
    } else if (strcmp(pid, "-") == 0) {
        len = (size_t)snprintf(msg, sizeof msg, "GET / HTTP/1.0\r\n\r\n");
    } else if (kind == 2) {
        len = (size_t)snprintf(msg, sizeof msg, "mbx-guard 1\npolicy\nnet host\n");
    } else {
        len = (size_t)snprintf(msg, sizeof msg, "mbx-guard 1\nenroll\ndev 1\nnet host\n");
    }
    struct iovec iov = {msg, len};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    char ctrl[CMSG_SPACE(sizeof(int))];
    if (strcmp(pid, "-") != 0) {
        int fd = (int)syscall(SYS_pidfd_open, atoi(pid), 0);
        if (fd < 0) return report(-1);
        memset(ctrl, 0, sizeof ctrl);
        mh.msg_control = ctrl;
        mh.msg_controllen = sizeof ctrl;
        struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    if (sendmsg(s, &mh, 0) < 0) return report(-1);
    char reply[512];
    ssize_t n = recv(s, reply, sizeof reply - 1, 0);
    if (n < 0) return report(-1);
    reply[n] = 0;
    printf("%s\n", n ? reply : "(closed)");
    return 0;
}

static int intrude(void) {
    int target = 0;
    for (int i = 0; i < 200 && !(target = find_process("await-intruder", 1)); i++) usleep(100000);
    if (!target) return report(-1);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/pid", target);
    int pidns = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "/proc/%d/ns/user", target);
    int userns = open(path, O_RDONLY | O_CLOEXEC);
    /* The PID namespace first: its owner is an ancestor of the user namespace. */
    if (pidns < 0 || userns < 0 || setns(pidns, CLONE_NEWPID) < 0 || setns(userns, CLONE_NEWUSER) < 0)
        return report(-1);
    /* Root of that namespace: the sandbox's own user outside, as a process
     * its user joins in would be (nsenter). */
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) return report(-1);
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_DUMPABLE, 1); /* the uid change made it undumpable */
        prctl(PR_SET_NAME, "intruder");
        for (;;) pause();
    }
    printf("%d\n", child);
    return 0;
}

static int report(int r) {
    if (r < 0) {
        printf("%s\n", strerror(errno));
        return 1;
    }
    printf("ok\n");
    return 0;
}

int main(int argc, char** argv) {
    if (argc >= 3 && strcmp(argv[1], "write-fd") == 0)
        return report(write(atoi(argv[2]), "escaped\n", 8) == 8 ? 0 : -1);
    if (argc >= 3 && strcmp(argv[1], "kill-pidfd") == 0)
        return report((int)syscall(SYS_pidfd_send_signal, atoi(argv[2]), SIGKILL, NULL, 0));
    if (argc >= 3 && strcmp(argv[1], "mount") == 0) return report(mount("none", argv[2], "tmpfs", 0, NULL));
    if (argc >= 2 && strcmp(argv[1], "bpf") == 0) {
        union bpf_attr a;
        memset(&a, 0, sizeof a);
        a.map_type = BPF_MAP_TYPE_ARRAY;
        a.key_size = 4;
        a.value_size = 4;
        a.max_entries = 1;
        return report((int)syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a));
    }
    if (argc >= 5 && strcmp(argv[1], "pidfd") == 0) {
        int fd = (int)syscall(SYS_pidfd_open, atoi(argv[2]), 0);
        if (fd < 0 || dup2(fd, atoi(argv[3])) < 0) return report(-1);
        execvp(argv[4], argv + 4);
        return report(-1);
    }
    if (argc >= 4 && (strcmp(argv[1], "connect") == 0 || strcmp(argv[1], "udp") == 0)) {
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((unsigned short)atoi(argv[3]));
        inet_pton(AF_INET, argv[2], &a.sin_addr);
        int tcp = strcmp(argv[1], "connect") == 0;
        int s = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
        if (s < 0) return report(-1);
        if (tcp) return report(connect(s, (struct sockaddr*)&a, sizeof a));
        return report(sendto(s, "x", 1, 0, (struct sockaddr*)&a, sizeof a) == 1 ? 0 : -1);
    }
    if (argc >= 3 && (strcmp(argv[1], "listen") == 0 || strcmp(argv[1], "bind") == 0)) {
        /* A TCP socket bound to 127.0.0.1:PORT: "bind" reports and exits,
         * "listen" says "listening" and accepts until killed. */
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((unsigned short)atoi(argv[2]));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (strcmp(argv[1], "bind") == 0) return report(s < 0 ? -1 : bind(s, (struct sockaddr*)&a, sizeof a));
        if (bind(s, (struct sockaddr*)&a, sizeof a) < 0 || listen(s, 8) < 0) return report(-1);
        printf("listening\n");
        fflush(stdout);
        for (;;) {
            int c = accept(s, NULL, NULL);
            if (c >= 0) close(c);
        }
    }
    if (argc >= 4 && strcmp(argv[1], "write-at") == 0) {
        int fd = openat(atoi(argv[2]), argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        return report(fd < 0 ? -1 : write(fd, "escaped\n", 8) == 8 ? 0 : -1);
    }
    if (argc >= 2 && strcmp(argv[1], "add-key") == 0)
        return report((int)syscall(SYS_add_key, "user", "mbx", "x", 1, -2 /* KEY_SPEC_PROCESS_KEYRING */));
    if (argc >= 2 && strcmp(argv[1], "af-key") == 0) return report(socket(15 /* AF_KEY */, SOCK_RAW, 2));
    if (argc >= 3 && strcmp(argv[1], "init-module") == 0) {
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        return report(fd < 0 ? -1 : (int)syscall(SYS_finit_module, fd, "", 0));
    }
    if (argc >= 3 && strcmp(argv[1], "mknod-blk") == 0) return report(mknod(argv[2], S_IFBLK | 0600, makedev(8, 0)));
    if (argc >= 2 && strcmp(argv[1], "await-intruder") == 0) return await_intruder();
    if (argc >= 5 && strcmp(argv[1], "as") == 0) {
        if (setgroups(0, NULL) < 0 || setgid(atoi(argv[3])) < 0 || setuid(atoi(argv[2])) < 0) return report(-1);
        execvp(argv[4], argv + 4);
        return report(-1);
    }
    if (argc >= 4 && strcmp(argv[1], "request") == 0)
        return request(argv[2], argv[3], argc >= 5 ? (strcmp(argv[4], "policy") == 0 ? 2 : 1) : 0);
    if (argc >= 2 && strcmp(argv[1], "intrude") == 0) return intrude();
    if (argc >= 3 && strcmp(argv[1], "socket-exec") == 0) {
        /* Runs argv[2..] with a socket as its stdin and stdout, as nc -e
         * does, and prints what came through the socket (or why the exec
         * failed, which the child reports there). */
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return report(-1);
        fflush(stdout);
        pid_t p = fork();
        if (p == 0) {
            dup2(sv[1], 0);
            dup2(sv[1], 1);
            execvp(argv[2], argv + 2);
            report(-1);
            fflush(stdout);
            _exit(126);
        }
        close(sv[1]);
        char buf[256];
        ssize_t n = read(sv[0], buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        waitpid(p, NULL, 0);
        printf("%s", n > 0 ? buf : "nothing\n");
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "forks") == 0) {
        /* Forks N children that wait; prints how many forks succeeded. */
        int n = atoi(argv[2]), ok = 0;
        pid_t kids[256];
        for (int i = 0; i < n && i < 256; i++) {
            pid_t p = fork();
            if (p == 0) {
                pause();
                _exit(0);
            }
            if (p > 0) kids[ok++] = p;
        }
        for (int i = 0; i < ok; i++) kill(kids[i], SIGKILL);
        for (int i = 0; i < ok; i++) waitpid(kids[i], NULL, 0);
        printf("forked=%d\n", ok);
        return 0;
    }
    fprintf(stderr, "usage: escape write-fd N | kill-pidfd N | mount DIR | bpf | pidfd PID FD CMD... |\n"
                    "       connect ADDR PORT | udp ADDR PORT | listen PORT | write-at FD NAME | af-key |\n"
                    "       init-module FILE | add-key | mknod-blk PATH | await-intruder | intrude |\n"
                    "       as UID GID CMD... | request SOCKET PID|- [big]\n");
    return 2;
}
