// Small, fixed workloads for scripts/bench, so that what is timed is the file
// system and not an interpreter's startup. Built by scripts/bench (static, so it
// also runs in the VM guest).
//
//   bench-tools create N SIZE DIR [PER]  N files of SIZE bytes under DIR, PER (1000) per subdirectory
//   bench-tools time CMD...          runs CMD, prints "MBXBENCH <nanoseconds>" on stderr
//   bench-tools openloop N PATH      N times: openat, fstat, close, then stat of PATH
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int die(const char* what, const char* path) {
    fprintf(stderr, "bench-tools: %s %s: %s\n", what, path, strerror(errno));
    return 1;
}

static int create(long n, long size, const char* dir, long per) {
    char* data = calloc(1, (size_t)size + 1);
    memset(data, 'x', (size_t)size);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) return die("mkdir", dir);
    char path[4096];
    for (long i = 0; i < n; ++i) {
        if (i % per == 0) {
            snprintf(path, sizeof path, "%s/d%ld", dir, i / per);
            if (mkdir(path, 0755) < 0) return die("mkdir", path);
        }
        snprintf(path, sizeof path, "%s/d%ld/f%ld", dir, i / per, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) return die("create", path);
        if (write(fd, data, (size_t)size) != size) return die("write", path);
        if (close(fd) < 0) return die("close", path);
    }
    free(data);
    return 0;
}

// What the guard sees most of: every openat passes its file_open hook.
static int openloop(long n, const char* path) {
    struct stat st;
    for (long i = 0; i < n; ++i) {
        int fd = openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return die("open", path);
        if (fstat(fd, &st) < 0) return die("fstat", path);
        close(fd);
        if (stat(path, &st) < 0) return die("stat", path);
    }
    return 0;
}

static int timed(char** argv) {
    long long start = now_ns();
    pid_t pid = fork();
    if (pid < 0) return die("fork", argv[0]);
    if (pid == 0) {
        execvp(argv[0], argv);
        die("exec", argv[0]);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return die("wait", argv[0]);
    long long took = now_ns() - start;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench-tools: %s failed (status %d)\n", argv[0], status);
        return 1;
    }
    fprintf(stderr, "MBXBENCH %lld\n", took);
    return 0;
}

int main(int argc, char** argv) {
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "create") == 0) {
        long per = argc == 6 ? atol(argv[5]) : 1000;
        if (per <= 0) per = 1000;
        return create(atol(argv[2]), atol(argv[3]), argv[4], per);
    }
    if (argc >= 3 && strcmp(argv[1], "time") == 0) return timed(argv + 2);
    if (argc == 4 && strcmp(argv[1], "openloop") == 0) return openloop(atol(argv[2]), argv[3]);
    fprintf(stderr, "usage: bench-tools create N SIZE DIR [PER] | time CMD... | openloop N PATH\n");
    return 2;
}
