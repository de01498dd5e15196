#include "src/write_rules.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "overlay/sys/sys.h"

namespace mbx {

namespace {

// The per-mount flags of the mount fd is on, to keep across a remount.
unsigned long kept_flags(int fd) {
    struct statvfs sv;
    unsigned long f = MS_NOSUID | MS_NODEV;
    if (::fstatvfs(fd, &sv) == 0) {
        if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
    }
    return f;
}

std::string fail(const std::string& key, const std::string& path, const std::string& what, int err) {
    return key + " " + path + ": " + what + (err ? std::string(": ") + std::strerror(err) : "");
}

// Makes the directories of path that are missing, from "/" down.
std::string make_dirs(int root, const std::string& path) {
    std::string sofar;
    size_t pos = 1;
    while (pos <= path.size()) {
        size_t next = path.find('/', pos);
        if (next == std::string::npos) next = path.size();
        std::string part = path.substr(pos, next - pos);
        pos = next + 1;
        if (part.empty()) continue;
        std::string parent = sofar.empty() ? "." : sofar;
        sofar += (sofar.empty() ? "" : "/") + part;
        auto at = sys::open_beneath(root, sofar, O_PATH);
        if (at) continue;
        if (at.error() != ENOENT) return fail("fs.writable", path, at.error() == ELOOP ? "a symbolic link is in the way" : "open", at.error() == ELOOP ? 0 : at.error());
        auto dir = sys::open_beneath(root, parent, O_PATH | O_DIRECTORY);
        if (!dir) return fail("fs.writable", path, "open", dir.error());
        if (::mkdirat(dir->get(), part.c_str(), 0755) < 0 && errno != EEXIST)
            return fail("fs.writable", path, "create", errno);
    }
    return "";
}

}  // namespace

std::string restrict_writes(const std::vector<std::string>& writable, const std::vector<std::string>& readonly) {
    if (writable.empty() && readonly.empty()) return "";
    int root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return fail("fs", "/", "open", errno);
    UniqueFd root_fd(root);
    struct Rule {
        std::string path;
        bool writable;
    };
    std::vector<Rule> rules;
    for (auto& w : writable) {
        if (std::string e = make_dirs(root, w); !e.empty()) return e;
        rules.push_back({w, true});
    }
    for (auto& r : readonly) rules.push_back({r, false});
    // Shallow paths first: a deeper rule's mount lands on top and wins; at the
    // same path readonly comes last.
    std::stable_sort(rules.begin(), rules.end(), [](const Rule& a, const Rule& b) {
        auto depth = [](const std::string& p) { return p == "/" ? 0 : std::count(p.begin(), p.end(), '/'); };
        if (depth(a.path) != depth(b.path)) return depth(a.path) < depth(b.path);
        return a.writable && !b.writable;
    });
    if (!writable.empty() && ::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags(root), nullptr) < 0)
        return fail("fs.writable", "/", "remount the view read-only", errno);
    for (auto& r : rules) {
        const char* key = r.writable ? "fs.writable" : "fs.readonly";
        std::string rel = r.path == "/" ? "." : r.path.substr(1);
        auto at = sys::open_beneath(root, rel, O_PATH);
        if (!at) return fail(key, r.path, at.error() == ELOOP ? "a symbolic link is in the way" : "open", at.error() == ELOOP ? 0 : at.error());
        std::string p = sys::fd_path(at->get());
        if (::mount(p.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0)
            return fail(key, r.path, "bind", errno);
        auto top = sys::open_beneath(root, rel, O_PATH);  // the new mount, now on top
        if (!top) return fail(key, r.path, "open", top.error());
        std::string tp = sys::fd_path(top->get());
        unsigned long flags = MS_REMOUNT | MS_BIND | kept_flags(top->get()) | (r.writable ? 0 : MS_RDONLY);
        if (::mount(nullptr, tp.c_str(), nullptr, flags, nullptr) < 0) return fail(key, r.path, "remount", errno);
    }
    return "";
}

}  // namespace mbx
