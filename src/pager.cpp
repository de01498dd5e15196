#include "src/pager.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace mbx {

Pager::Pager(bool enabled) {
    if (!enabled || !::isatty(STDOUT_FILENO)) return;
    const char* env = std::getenv("MBX_PAGER");
    if (!env) env = std::getenv("PAGER");
    std::string cmd = env ? env : "less";
    if (cmd.empty() || cmd == "cat") return;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) return;
    std::fflush(stdout);
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(p[0]);
        ::close(p[1]);
        return;
    }
    if (pid == 0) {
        ::dup2(p[0], STDIN_FILENO);
        ::setenv("LESS", std::getenv("LESS") ? std::getenv("LESS") : "FRX", 1);
        ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::dup2(p[1], STDOUT_FILENO);
    ::close(p[0]);
    ::close(p[1]);
    ::signal(SIGPIPE, SIG_IGN);  // the user may quit the pager early
    pid_ = pid;
}

Pager::~Pager() {
    if (pid_ < 0) return;
    std::fflush(stdout);
    ::close(STDOUT_FILENO);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
}

}  // namespace mbx
