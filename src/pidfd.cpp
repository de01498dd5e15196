#include "src/pidfd.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace mbx {

namespace {

// A "Key:\tvalue" line of a /proc status-like file.
std::optional<long long> field(const std::string& path, const std::string& key) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(key)) try {
                return std::stoll(line.substr(key.size()));
            } catch (...) {
                return std::nullopt;
            }
    return std::nullopt;
}

bool alive(int pidfd) { return ::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0; }

}  // namespace

UniqueFd open_pidfd(pid_t pid) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))); }

std::optional<pid_t> pidfd_pid(int pidfd) {
    auto pid = field("/proc/self/fdinfo/" + std::to_string(pidfd), "Pid:");
    if (!pid || *pid <= 0) return std::nullopt;  // not a pidfd, or its process is gone (-1)
    return static_cast<pid_t>(*pid);
}

std::optional<uid_t> pidfd_uid(int pidfd) {
    auto pid = pidfd_pid(pidfd);
    if (!pid) return std::nullopt;
    auto uid = field("/proc/" + std::to_string(*pid) + "/status", "Uid:");
    if (!uid || !alive(pidfd)) return std::nullopt;
    return static_cast<uid_t>(*uid);
}

}  // namespace mbx
