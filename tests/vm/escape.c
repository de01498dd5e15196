/* escape: the attempts the guard must stop, one per call, for the VM tests.
 * Prints "ok" (exit 0) or the error (exit 1):
 *   escape write-fd N        write to descriptor N (one opened before the sandbox)
 *   escape kill-pidfd N      SIGKILL the process behind pidfd N
 *   escape mount DIR         mount a tmpfs over DIR
 *   escape bpf               bpf(BPF_MAP_CREATE)
 *   escape pidfd PID FD CMD...  run CMD with a pidfd of PID as descriptor FD
 * Linked statically: it runs in the bare guest. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
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
    fprintf(stderr, "usage: escape write-fd N | kill-pidfd N | mount DIR | bpf\n");
    return 2;
}
