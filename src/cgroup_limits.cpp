#include "src/cgroup_limits.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "src/error.h"

namespace mbx {

namespace {

// The mount point of the cgroup v2 hierarchy ("" if none).
std::string cgroup2_mount() {
    std::ifstream in("/proc/self/mountinfo");
    for (std::string line; std::getline(in, line);) {
        std::istringstream ls(line);
        std::vector<std::string> f;
        for (std::string w; ls >> w;) f.push_back(w);
        for (size_t i = 6; i + 1 < f.size(); ++i)
            if (f[i] == "-") {
                if (f[i + 1] == "cgroup2") return f[4];
                break;
            }
    }
    return "";
}

// mbx's cgroup in the v2 hierarchy ("0::/PATH" of /proc/self/cgroup).
std::string own_cgroup() {
    std::ifstream in("/proc/self/cgroup");
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("0::")) return line.substr(3);
    return "";
}

std::string read_at(int dir, const char* name) {
    int fd = ::openat(dir, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    UniqueFd f(fd);
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    std::string s(buf, n > 0 ? size_t(n) : 0);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

// Writes text to dir/name; returns 0 or the errno.
int write_at(int dir, const std::string& name, const std::string& text) {
    int fd = ::openat(dir, name.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    UniqueFd f(fd);
    return ::write(fd, text.data(), text.size()) == ssize_t(text.size()) ? 0 : errno;
}

}  // namespace

std::unique_ptr<SandboxCgroup> SandboxCgroup::create(const Profile::Limits& l, bool always) {
    bool limited = l.memory || l.pids || l.cpus;
    if (!limited && !always) return nullptr;
    const std::string what = limited ? "[limits]" : "the network record";
    std::vector<std::string> need;
    if (l.memory) need.push_back("memory");
    if (l.pids) need.push_back("pids");
    if (l.cpus) need.push_back("cpu");
    std::string mount = cgroup2_mount(), own = own_cgroup();
    if (mount.empty() || own.empty())
        throw UserError(what + " needs cgroup v2, which is not mounted here" +
                        (limited ? ": drop [limits], or mount cgroup2" : ""));
    auto s = std::unique_ptr<SandboxCgroup>(new SandboxCgroup);
    s->base_path_ = mount + (own == "/" ? "" : own);
    int fd = ::open(s->base_path_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw UserError(what + ": " + sys_error("open", s->base_path_));
    s->base_.reset(fd);
    std::string offered = read_at(fd, "cgroup.controllers");
    std::set<std::string> have;
    std::istringstream os(offered);
    for (std::string c; os >> c;) have.insert(c);
    for (auto& c : need)
        if (!have.count(c))
            throw UserError("[limits] need the " + c + " controller of cgroup v2, which is not delegated to " +
                            s->base_path_ + " (it offers: " + (offered.empty() ? "none" : offered) +
                            "): drop [limits], or run mbx in a cgroup that has it (systemd-run --user --scope -p "
                            "Delegate=yes mbx run ...)");
    std::string enabled = read_at(fd, "cgroup.subtree_control");
    for (auto& c : need)
        if (enabled.find(c) == std::string::npos) s->enabled_ += (s->enabled_.empty() ? "+" : " +") + c;
    pid_t self = ::getpid();
    if (!s->enabled_.empty()) {
        int e = write_at(fd, "cgroup.subtree_control", s->enabled_);
        if (e == EBUSY) {
            // A cgroup with processes (mbx) cannot hand controllers to children:
            // mbx moves into a child of its own first.
            s->launcher_ = "mbx-" + std::to_string(self) + ".launcher";
            if (::mkdirat(fd, s->launcher_.c_str(), 0755) < 0 ||
                write_at(fd, s->launcher_ + "/cgroup.procs", "0") != 0) {
                int err = errno;
                ::unlinkat(fd, s->launcher_.c_str(), AT_REMOVEDIR);
                s->launcher_.clear();
                throw UserError(what + ": cannot make a cgroup beneath " + s->base_path_ + ": " + std::strerror(err));
            }
            e = write_at(fd, "cgroup.subtree_control", s->enabled_);
        }
        if (e != 0) {
            std::string why = std::strerror(e);
            s->enabled_.clear();
            throw UserError(what + ": cannot enable " + std::string(e == EBUSY ? "controllers" : "them") + " in " +
                            s->base_path_ + ": " + why +
                            (e == EBUSY ? " (other processes are in that cgroup: run mbx in a cgroup of its own)" : ""));
        }
    }
    s->name_ = "mbx-" + std::to_string(self) + ".sandbox";
    s->path_ = s->base_path_ + "/" + s->name_;
    if (::mkdirat(fd, s->name_.c_str(), 0755) < 0) {
        s->name_.clear();
        throw UserError(what + ": " + sys_error("mkdir", s->path_));
    }
    int dir = ::openat(fd, s->name_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0) throw UserError(what + ": " + sys_error("open", s->path_));
    s->dir_.reset(dir);
    auto set = [&](const std::string& file, const std::string& value) {
        if (int e = write_at(fd, s->name_ + "/" + file, value); e != 0)
            throw UserError("[limits]: cannot write " + value + " to " + s->path_ + "/" + file + ": " + std::strerror(e));
    };
    if (l.memory) {
        set("memory.max", std::to_string(*l.memory));
        write_at(fd, s->name_ + "/memory.swap.max", "0");  // not moved to swap either (where swap is accounted)
    }
    if (l.pids) set("pids.max", std::to_string(*l.pids));
    if (l.cpus) set("cpu.max", std::to_string(std::llround(*l.cpus * 100000)) + " 100000");
    return s;
}

void SandboxCgroup::add(pid_t pid) {
    if (int e = write_at(base_.get(), name_ + "/cgroup.procs", std::to_string(pid)); e != 0)
        throw UserError("cannot move the sandbox into its cgroup " + path_ + ": " + std::strerror(e));
}

SandboxCgroup::~SandboxCgroup() {
    int fd = base_.get();
    if (!name_.empty()) {
        // The sandbox's processes are gone (its init died), but the kernel
        // may take a moment to release the cgroup.
        for (int i = 0; i < 100 && ::unlinkat(fd, name_.c_str(), AT_REMOVEDIR) < 0 && errno == EBUSY; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // Back as it was: controllers off again, mbx back in its cgroup.
    std::string off = enabled_;
    for (auto& c : off)
        if (c == '+') c = '-';
    if (!off.empty()) write_at(fd, "cgroup.subtree_control", off);
    if (!launcher_.empty()) {
        write_at(fd, "cgroup.procs", "0");
        ::unlinkat(fd, launcher_.c_str(), AT_REMOVEDIR);
    }
}

}  // namespace mbx
