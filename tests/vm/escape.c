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
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

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
    if (argc >= 3 && strcmp(argv[1], "listen") == 0) {
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((unsigned short)atoi(argv[2]));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(s, (struct sockaddr*)&a, sizeof a) < 0 || listen(s, 8) < 0) return report(-1);
        printf("listening\n");
        fflush(stdout);
        for (;;) {
            int c = accept(s, NULL, NULL);
            if (c >= 0) close(c);
        }
    }
    fprintf(stderr, "usage: escape write-fd N | kill-pidfd N | mount DIR | bpf | pidfd PID FD CMD... |\n"
                    "       connect ADDR PORT | udp ADDR PORT | listen PORT\n");
    return 2;
}
