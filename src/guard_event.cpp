#include "src/guard_event.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "src/error.h"

namespace mbx {

const char* hook_name(unsigned hook) {
    switch (hook) {
        case MBX_HOOK_EXEC: return "exec";
        case MBX_HOOK_FILE_OPEN: return "file_open";
        case MBX_HOOK_FILE_WRITE: return "file_write";
        case MBX_HOOK_INODE_CREATE: return "create";
        case MBX_HOOK_INODE_LINK: return "link";
        case MBX_HOOK_INODE_UNLINK: return "unlink";
        case MBX_HOOK_INODE_SYMLINK: return "symlink";
        case MBX_HOOK_INODE_MKDIR: return "mkdir";
        case MBX_HOOK_INODE_RMDIR: return "rmdir";
        case MBX_HOOK_INODE_MKNOD: return "mknod";
        case MBX_HOOK_INODE_RENAME: return "rename";
        case MBX_HOOK_INODE_SETATTR: return "setattr";
        case MBX_HOOK_INODE_SETXATTR: return "setxattr";
        case MBX_HOOK_MOUNT: return "mount";
        case MBX_HOOK_UMOUNT: return "umount";
        case MBX_HOOK_MOVE_MOUNT: return "move_mount";
        case MBX_HOOK_PIVOT_ROOT: return "pivot_root";
        case MBX_HOOK_PTRACE: return "ptrace";
        case MBX_HOOK_KILL: return "kill";
        case MBX_HOOK_MODULE: return "module";
        case MBX_HOOK_KEXEC: return "kexec";
        case MBX_HOOK_BPF: return "bpf";
        case MBX_HOOK_PERF: return "perf_event_open";
        case MBX_HOOK_INODE_REMOVEXATTR: return "removexattr";
        case MBX_HOOK_MMAP: return "mmap";
        case MBX_HOOK_CONNECT: return "connect";
        case MBX_HOOK_BIND: return "bind";
        case MBX_HOOK_SENDMSG: return "sendmsg";
        case MBX_HOOK_EXEC_DENIED: return "exec";
        case MBX_HOOK_KEYCTL: return "keyctl";
        case MBX_HOOK_SOCKET: return "socket";
        case MBX_HOOK_EXEC_ON_SOCKET: return "exec-on-socket";
    }
    return "unknown";
}

int64_t boot_to_unix_ns() {
    struct timespec r, b;
    ::clock_gettime(CLOCK_REALTIME, &r);
    ::clock_gettime(CLOCK_BOOTTIME, &b);
    return (int64_t(r.tv_sec) - b.tv_sec) * 1000000000 + (r.tv_nsec - b.tv_nsec);
}

namespace {

std::string bounded(const char* s, size_t n) { return std::string(s, strnlen(s, n)); }

}  // namespace

std::string event_json(const mbx_guard_event& e, int64_t boot_to_unix) {
    nlohmann::json j = {{"time_ms", (int64_t(e.time_ns) + boot_to_unix) / 1000000},
                        {"hook", hook_name(e.hook)},
                        {"denied", e.error != 0},
                        {"pid", e.pid},
                        {"uid", e.uid},
                        {"comm", bounded(e.comm, sizeof e.comm)}};
    if (e.ppid) j["ppid"] = e.ppid;  // not known to the cgroup programs
    if (e.path[0]) j["path"] = bounded(e.path, sizeof e.path);
    if (e.error) j["error"] = std::strerror(-e.error);
    if (e.target_pid) j["target_pid"] = e.target_pid;
    if (e.dev || e.ino) {
        // The kernel's encoding: major in the top 12 bits.
        j["dev"] = std::to_string(e.dev >> 20) + ":" + std::to_string(e.dev & 0xfffff);
        j["ino"] = e.ino;
    }
    if (e.family == AF_INET || e.family == AF_INET6) {
        char a[INET6_ADDRSTRLEN] = "";
        ::inet_ntop(e.family, e.addr, a, sizeof a);
        j["address"] = e.family == AF_INET6 ? "[" + std::string(a) + "]:" + std::to_string(e.port)
                                            : std::string(a) + ":" + std::to_string(e.port);
    } else if (e.family) {
        j["address"] = "family " + std::to_string(e.family);
    }
    if (e.hook == MBX_HOOK_EXEC) {
        nlohmann::json argv = nlohmann::json::array();
        size_t n = std::min<size_t>(e.args_len, sizeof e.args);
        for (size_t i = 0; i < n;) {
            size_t len = strnlen(e.args + i, n - i);
            argv.push_back(std::string(e.args + i, len));
            i += len + 1;
        }
        j["argv"] = argv;
    }
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // one line
}

std::string denial_json(unsigned hook, int pid, const std::string& comm, const std::string& path) {
    mbx_guard_event e{};
    struct timespec b;
    ::clock_gettime(CLOCK_BOOTTIME, &b);
    e.time_ns = uint64_t(b.tv_sec) * 1000000000 + uint64_t(b.tv_nsec);
    e.hook = hook;
    e.pid = pid;
    e.error = -EPERM;
    std::memcpy(e.comm, comm.data(), std::min(comm.size(), sizeof e.comm - 1));
    std::memcpy(e.path, path.data(), std::min(path.size(), sizeof e.path - 1));
    return event_json(e, boot_to_unix_ns());
}

std::string guard_json(const std::string& mechanism, const std::string& detail) {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    nlohmann::json j = {{"time_ms", int64_t(now.count())}, {"hook", "guard"}, {"denied", false},
                        {"mechanism", mechanism}, {"detail", detail}};
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string event_text(const std::string& line) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return quote_path(line);
    time_t t = time_t(j.value("time_ms", int64_t(0)) / 1000);
    struct tm tm;
    ::localtime_r(&t, &tm);
    char when[16];
    std::strftime(when, sizeof when, "%H:%M:%S", &tm);
    if (j.value("hook", "") == "guard")
        return std::string(when) + " guard: " + j.value("mechanism", "?") + " (" + j.value("detail", "") + ")";
    if (j.value("hook", "") == "monitor") {
        std::string rec;
        if (j.contains("recorded") && j["recorded"].is_array())
            for (auto& r : j["recorded"]) rec += (rec.empty() ? "" : ", ") + (r.is_string() ? r.get<std::string>() : "?");
        return std::string(when) + " monitor: recording " + rec + "; not recorded: " + j.value("not_recorded", "-");
    }
    const char* verdict = !j.value("denied", false) ? "" : j.value("complain", false) ? "would deny " : "denied ";
    std::string out = std::string(when) + " " + verdict + j.value("hook", "?");
    if (j.contains("access")) out += " " + j.value("access", "");
    if (j.contains("argv") && j["argv"].is_array()) {
        for (auto& a : j["argv"]) out += " " + quote_path(a.is_string() ? a.get<std::string>() : "?");
    } else if (j.contains("path")) {
        out += " " + quote_path(j.value("path", ""));
    } else if (j.contains("address")) {
        out += " " + j.value("address", "");
    }
    if (j.contains("target_pid")) out += " pid " + std::to_string(j.value("target_pid", 0));
    if (j.value("result", "ok") != "ok") out += ": " + j.value("result", "");
    std::string comm = j.value("comm", "");
    out += " (pid " + std::to_string(j.value("pid", 0)) + (comm.empty() ? "" : " " + quote_path(comm)) + ")";
    return out;
}

}  // namespace mbx
