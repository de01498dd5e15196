#include "src/id_map.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <fstream>

#include "overlay/sys/unique_fd.h"
#include "src/error.h"

extern char** environ;

namespace mbx {

std::optional<SubRange> find_subrange(const std::string& path, const std::string& user, uint32_t id) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        auto a = line.find(':');
        auto b = line.find(':', a == std::string::npos ? a : a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        std::string who = line.substr(0, a);
        if (who != user && who != std::to_string(id)) continue;
        SubRange r{};
        auto s1 = line.substr(a + 1, b - a - 1), s2 = line.substr(b + 1);
        if (std::from_chars(s1.data(), s1.data() + s1.size(), r.start).ec != std::errc() ||
            std::from_chars(s2.data(), s2.data() + s2.size(), r.count).ec != std::errc() || r.count == 0)
            continue;
        return r;
    }
    return std::nullopt;
}

namespace {

// Maps 0..65535 inside: `own` is the caller's id, placed at `own_inside`;
// every other inside id comes from the subordinate range.
std::vector<IdRange> with_range(uint32_t own, uint32_t own_inside, SubRange sub) {
    std::vector<IdRange> m;
    uint32_t total = std::min<uint32_t>(sub.count, 65535);  // inside ids other than own_inside
    uint32_t next = sub.start;
    uint32_t before = std::min(own_inside, total);
    if (before) m.push_back({0, next, before});
    next += before;
    m.push_back({own_inside, own, 1});
    uint32_t after = total - before;
    if (after) m.push_back({own_inside + 1, next, after});
    return m;
}

}  // namespace

IdMaps plan_id_maps(uid_t uid, gid_t gid, bool keep_user, std::optional<SubRange> subuid,
                    std::optional<SubRange> subgid) {
    IdMaps m;
    if (uid == 0) {
        m.uids = {{0, 0, 4294967295u}};
        m.gids = {{0, 0, 4294967295u}};
        m.inside_uid = 0;
        m.inside_gid = keep_user ? gid : 0;
        return m;
    }
    m.inside_uid = keep_user ? uid : 0;
    m.inside_gid = keep_user ? gid : 0;
    if (subuid && subgid) {
        m.uids = with_range(uid, m.inside_uid, *subuid);
        m.gids = with_range(gid, m.inside_gid, *subgid);
        m.via_helpers = true;
    } else {
        m.uids = {{m.inside_uid, uid, 1}};
        m.gids = {{m.inside_gid, gid, 1}};
        m.single = true;
    }
    return m;
}

std::string format_map(const std::vector<IdRange>& m) {
    std::string s;
    for (auto& r : m)
        s += std::to_string(r.inside) + " " + std::to_string(r.outside) + " " + std::to_string(r.count) + "\n";
    return s;
}

namespace {

void write_proc(pid_t pid, const char* file, const std::string& text) {
    std::string path = "/proc/" + std::to_string(pid) + "/" + file;
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw UserError(sys_error("open", path));
    UniqueFd f(fd);
    if (::write(f.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        throw UserError(sys_error("write", path));
}

void run_helper(const char* helper, pid_t pid, const std::vector<IdRange>& m) {
    std::vector<std::string> args = {helper, std::to_string(pid)};
    for (auto& r : m) {
        args.push_back(std::to_string(r.inside));
        args.push_back(std::to_string(r.outside));
        args.push_back(std::to_string(r.count));
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t child;
    if (int e = ::posix_spawnp(&child, helper, nullptr, nullptr, argv.data(), environ); e != 0)
        throw UserError(std::string("cannot run ") + helper + ": " + std::strerror(e) +
                        "; install package uidmap (scripts/install-deps)");
    int status;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw UserError(std::string(helper) + " failed to map your subordinate ids (see its message above); "
                        "check /etc/subuid and /etc/subgid");
}

}  // namespace

void apply_id_maps(pid_t pid, const IdMaps& maps) {
    if (maps.via_helpers) {
        run_helper("newuidmap", pid, maps.uids);
        run_helper("newgidmap", pid, maps.gids);
        return;
    }
    write_proc(pid, "uid_map", format_map(maps.uids));
    // An unprivileged single mapping may only be written once setgroups is denied.
    if (maps.single) write_proc(pid, "setgroups", "deny");
    write_proc(pid, "gid_map", format_map(maps.gids));
}

}  // namespace mbx
