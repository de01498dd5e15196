#include "src/doctor.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <pwd.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "src/error.h"
#include "src/guard.h"
#include "src/guard_client.h"
#include "src/guard_protocol.h"
#include "src/id_map.h"
#include "src/json_text.h"

namespace mbx {

namespace {

struct Check {
    std::string name;
    bool ok;
    std::string state;  // what was found
    std::string fix;    // how to fix it, when not ok
};

std::string read_line(const char* path) {
    std::ifstream in(path);
    std::string s;
    std::getline(in, s);
    return s;
}

Check kernel() {
    struct utsname u;
    ::uname(&u);
    return {"kernel", true, std::string(u.sysname) + " " + u.release, ""};
}

Check user_namespaces() {
    std::string max = read_line("/proc/sys/user/max_user_namespaces");
    pid_t pid = ::fork();
    if (pid == 0) _exit(::unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
    int status = 1;
    if (pid > 0) ::waitpid(pid, &status, 0);
    if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return {"user namespaces", true, "available (max_user_namespaces " + max + ")", ""};
    return {"user namespaces", false, "unshare(CLONE_NEWUSER) fails (max_user_namespaces " + max + ")",
            "sysctl -w user.max_user_namespaces=15000 (and kernel.unprivileged_userns_clone=1 where it exists)"};
}

Check fuse() {
    if (::access("/dev/fuse", R_OK | W_OK) == 0) return {"fuse", true, "/dev/fuse is readable and writable", ""};
    if (::access("/dev/fuse", F_OK) != 0)
        return {"fuse", false, "no /dev/fuse", "modprobe fuse (package fuse3)"};
    return {"fuse", false, "/dev/fuse is not accessible to you", "chmod 0666 /dev/fuse (Debian's default)"};
}

Check subuid() {
    struct passwd* pw = ::getpwuid(::getuid());
    std::string user = pw ? pw->pw_name : std::to_string(::getuid());
    if (::getuid() == 0) return {"subordinate ids", true, "not needed as root", ""};
    auto r = find_subrange("/etc/subuid", user, ::getuid());
    auto g = find_subrange("/etc/subgid", user, ::getgid());
    if (r && g)
        return {"subordinate ids", true,
                "uids " + std::to_string(r->start) + "+" + std::to_string(r->count) + " in /etc/subuid", ""};
    return {"subordinate ids", false, "no range for " + user + " in /etc/subuid and /etc/subgid (host owners show as 0 inside)",
            "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 " + user};
}

Check landlock() {
    long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi > 0) return {"landlock", true, "ABI " + std::to_string(abi), ""};
    return {"landlock", false, "not available", "boot with lsm=...,landlock (CONFIG_SECURITY_LANDLOCK=y)"};
}

Check bpf_lsm() {
    GuardProbe p = probe_guard();
    std::string listed = p.lsm_listed ? "\"bpf\" is in the LSM list" : "\"bpf\" is not in the LSM list";
    if (p.usable) return {"bpf lsm", true, "the guard loads and attaches (" + listed + ")", ""};
    if (::geteuid() != 0 && p.built && p.lsm_listed)
        return {"bpf lsm", false, listed + "; loading the guard needs root", "run mbx as root to use it"};
    return {"bpf lsm", false, listed + "; the guard does not load (" + p.failure + ")", p.fix};
}

Check cgroups() {
    if (::access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0)
        return {"cgroup v2", true, "controllers: " + read_line("/sys/fs/cgroup/cgroup.controllers"), ""};
    return {"cgroup v2", false, "not mounted at /sys/fs/cgroup", "mount -t cgroup2 none /sys/fs/cgroup"};
}

Check guardd() {
    std::string path = guard_socket_path();
    if (::geteuid() == 0) return {"mbx-guardd", true, "not needed as root", ""};
    try {
        GuardClient::connect(path);
        return {"mbx-guardd", true, "reachable at " + path, ""};
    } catch (const UserError& e) {
        return {"mbx-guardd", false, e.what(), "as root: systemctl enable --now mbx-guardd.socket"};
    }
}

// What `mbx run --guard auto` confines this caller's sandboxes with.
Check active_guard(const Check& bpf, const Check& ll, const Check& daemon) {
    if (bpf.ok) return {"guard", true, "mbx run uses the BPF LSM guard", ""};
    if (::geteuid() != 0 && daemon.ok) return {"guard", true, "mbx run uses the BPF LSM guard through mbx-guardd", ""};
    if (ll.ok)
        return {"guard", true,
                "mbx run uses the fallback, Landlock and seccomp (weaker: --net loopback, addresses in "
                "--net allow= and --exec-deny need BPF LSM; Landlock's denials are not logged)",
                ""};
    return {"guard", false, "mbx run has no guard here", "boot with lsm=...,landlock,bpf"};
}

}  // namespace

int cmd_doctor(const DoctorArgs& a) {
    std::vector<Check> checks = {kernel(), user_namespaces(), fuse(), subuid(), bpf_lsm(), landlock(), cgroups()};
    checks.push_back(guardd());
    checks.push_back(active_guard(checks[4], checks[5], checks.back()));
    bool runs = checks[1].ok && checks[2].ok;
    if (a.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (auto& c : checks) {
            nlohmann::json j = {{"name", c.name}, {"ok", c.ok}, {"state", c.state}};
            if (!c.fix.empty()) j["fix"] = c.fix;
            arr.push_back(j);
        }
        std::printf("%s\n", json_text({{"checks", arr}, {"run_works", runs}}).c_str());
    } else {
        for (auto& c : checks) {
            std::printf("%-16s %-3s %s\n", c.name.c_str(), c.ok ? "ok" : "no", c.state.c_str());
            if (!c.ok && !c.fix.empty()) std::printf("%-16s     fix: %s\n", "", c.fix.c_str());
        }
    }
    return runs ? 0 : 1;
}

}  // namespace mbx
