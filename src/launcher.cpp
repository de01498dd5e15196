#include "src/launcher.h"

#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <future>
#include <mutex>
#include <thread>

#include "commit/change_scan.h"
#include "overlay/overlay.h"
#include "overlay/sys/sys.h"
#include "src/cgroup_limits.h"
#include "src/error.h"
#include "src/fd_passing.h"
#include "src/guard.h"
#include "src/guard_client.h"
#include "src/guard_event.h"
#include "src/guard_protocol.h"
#include "src/id_map.h"
#include "src/landlock.h"
#include "src/monitor_log.h"
#include "src/net_refresh.h"
#include "src/pidfd.h"
#include "src/policy_command.h"
#include "src/run_policy.h"
#include "src/sandbox.h"
#include "src/summary.h"

namespace mbx {

namespace {

volatile sig_atomic_t g_child = 0;

void forward_signal(int sig) {
    if (g_child > 0) ::kill(g_child, sig);
}

void check_fuse_access() {
    int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        ::close(fd);
        return;
    }
    if (errno == ENOENT || errno == ENODEV)
        throw UserError("/dev/fuse is missing: load the FUSE module (modprobe fuse) and install fuse3");
    throw UserError(std::string("cannot open /dev/fuse: ") + std::strerror(errno) +
                    "; make it usable by you as stock Debian does (chmod 0666 /dev/fuse)");
}

// The layer keeps whiteouts, owners and origins in user.* extended attributes.
void check_layer_xattrs(int layer, const std::string& path) {
    auto r = sys::set_xattr(layer, "user.mbx.probe", "1");
    if (r) {
        (void)sys::remove_xattr(layer, "user.mbx.probe");
        return;
    }
    if (r.error() == ENOTSUP)
        throw UserError(path + " is on a filesystem without user extended attributes, which the layer needs; "
                        "set MBX_HOME to a directory on ext4, xfs, btrfs or tmpfs");
    throw UserError(sys_error("setxattr", path, r.error()));
}

std::string user_name(uid_t uid) {
    if (struct passwd* pw = ::getpwuid(uid)) return pw->pw_name;
    return std::to_string(uid);
}

UniqueFd open_dir(int at, const std::string& path) {
    int fd = ::openat(at, path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw UserError(sys_error("open", path));
    return UniqueFd(fd);
}

overlay::Config::Hidden identity(const std::string& path, const char* what) {
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) throw UserError(std::string(what) + " " + sys_error("stat", path));
    std::string name = path;
    while (name.size() > 1 && name.back() == '/') name.pop_back();
    return {st.st_dev, st.st_ino, name.substr(name.rfind('/') + 1)};
}


// The terminal goes back to mbx's process group once the command is gone
// (an interactive shell inside may have taken it).
void reclaim_terminal() {
    if (!::isatty(STDIN_FILENO)) return;
    if (::tcgetpgrp(STDIN_FILENO) == ::getpgrp()) return;
    struct sigaction ign {}, old {};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGTTOU, &ign, &old);
    ::tcsetpgrp(STDIN_FILENO, ::getpgrp());
    ::sigaction(SIGTTOU, &old, nullptr);
}

// Confines the sandbox's init (it waits for this before running the command)
// with policy and the writable file systems it reports; kills it if that
// fails. Returns false if the sandbox could not be confined (it is killed then).
// policy: completed with the sandbox's file systems and stdio, as enrolled.
bool enroll_sandbox(GuardLink& guard, int sock, pid_t child, GuardPolicy& policy) {
    std::string msg;
    // The init reports once its mounts are made; a stuck one must not hang mbx.
    struct timeval tv{60, 0};
    ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    errno = 0;
    if (!recv_msg(sock, msg)) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) return true;  // the sandbox died: it said why
        std::fprintf(stderr, "mbx: the sandbox did not get ready for the guard within 60 s; the command was not run\n");
        ::kill(child, SIGKILL);
        return false;
    }
    if (!msg.starts_with("R")) return true;
    std::istringstream in(msg.substr(1));
    for (std::string tok; in >> tok;) {
        unsigned long long dev = 0, ino = 0;
        if (std::sscanf(tok.c_str(), "d:%llu", &dev) == 1) policy.writable_devs.push_back(dev);
        else if (std::sscanf(tok.c_str(), "b:%llu:%llu", &dev, &ino) == 2) policy.bind_roots.push_back({dev, ino});
    }
    try {
        UniqueFd pf = open_pidfd(child);
        if (!pf) throw UserError(sys_error("pidfd_open", std::to_string(child)));
        // Its standard input, output and error stay writable (mbx run > log).
        for (int fd = 0; fd <= 2; ++fd)
            if (auto st = sys::stat_fd(fd)) policy.writable_files.push_back({st->st_dev, st->st_ino});
        guard.enroll(pf.get(), policy);
        send_msg(sock, "E");
        return true;
    } catch (const UserError& e) {
        std::fprintf(stderr, "mbx: %s; the command was not run\n", e.what());
        ::kill(child, SIGKILL);
        return false;
    }
}

// The TCP ports --net allow= names, for the Landlock fallback, which checks
// ports but not addresses: every rule must allow any address (0.0.0.0/0:PORT
// or [::]/0:PORT), and the kernel must have Landlock ABI 4.
void need_landlock_tcp(const char* what, int abi) {
    if (abi < 4)
        throw UserError(std::string(what) + " needs BPF LSM or Landlock ABI 4 (TCP rules); this kernel has ABI " +
                        std::to_string(abi) + " (see mbx doctor)");
}

std::vector<uint16_t> landlock_tcp_ports(const NetPolicy& net, int abi) {
    need_landlock_tcp("--net allow=", abi);
    std::vector<uint16_t> ports;
    for (auto& r : net.rules) {
        if (r.family == MBX_NET_LISTEN_FAMILY) continue;  // see landlock_bind_ports
        if (r.prefix != 0)
            throw UserError("--net allow=: the Landlock fallback checks TCP ports, not addresses: give rules "
                            "for any address (0.0.0.0/0:PORT), or use BPF LSM (see mbx doctor)");
        if (unsigned(r.port_hi) - r.port_lo >= 4096)
            throw UserError("--net allow=: the Landlock fallback takes port ranges of at most 4096 ports");
        for (unsigned p = r.port_lo; p <= r.port_hi; ++p) ports.push_back(uint16_t(p));
    }
    return ports;
}

// The ports of net.listen rules, for the fallback's TCP bind rules.
std::vector<uint16_t> landlock_bind_ports(const NetPolicy& net, int abi) {
    need_landlock_tcp("net.listen", abi);
    std::vector<uint16_t> ports;
    for (auto& r : net.rules) {
        if (r.family != MBX_NET_LISTEN_FAMILY) continue;
        if (ports.size() + (unsigned(r.port_hi) - r.port_lo) >= 4096)
            throw UserError("net.listen: the Landlock fallback takes at most 4096 ports");
        for (unsigned p = r.port_lo; p <= r.port_hi; ++p) ports.push_back(uint16_t(p));
    }
    return ports;
}

// Which guard confines a sandbox: BPF LSM (loaded here as root, or through
// mbx-guardd), or Landlock and seccomp where BPF LSM cannot be used (see
// mbx-run(1), THE GUARD); and whether it can enforce the options given.
struct GuardChoice {
    std::unique_ptr<GuardLink> guard;  // as root under the fallback: the exec audit only
    bool fallback = false;
    std::string detail;                               // why this one, for the log
    std::optional<std::vector<uint16_t>> tcp_ports;  // the fallback's --net allow=
    std::optional<std::vector<uint16_t>> bind_ports;  // the fallback's net.listen
    int landlock_abi = 0;
    std::string mechanism;  // for the log: "bpf lsm", "landlock+seccomp", "bpf tracing", "none"
    bool complain = false;  // the BPF LSM guard logs what it would deny, denying nothing
    // --monitor without BPF LSM, as root: guard's cgroup programs record the
    // network (the sandbox then needs a cgroup of its own).
    Guard* network_recorder = nullptr;
};

GuardChoice choose_guard(const RunOptions& opt, const NetPolicy& net, ExecPolicy& exec) {
    GuardChoice g;
    g.landlock_abi = landlock_abi();
    bool root = ::geteuid() == 0;
    auto through_daemon = [] { return GuardClient::connect(guard_socket_path()); };
    // The BPF LSM guard, if it can be had here (why: why not).
    auto try_bpf = [&](std::string& why) {
        try {
            if (!root) g.guard = through_daemon();
            else if (!bpf_lsm_listed()) why = "\"bpf\" is not in the kernel's LSM list";
            else g.guard = Guard::load();
        } catch (const UserError& e) {
            why = root ? std::string(e.what()) : std::string("BPF LSM needs root, and ") + e.what();
        }
        return g.guard != nullptr;
    };
    // --monitor enforces nothing beyond the layer: the BPF LSM guard where it
    // can be had, logging what it would deny; else none (as root, BPF tracing
    // still records the execs). No rule needs a guard then.
    if (opt.monitor && opt.guard == "auto") {
        std::string why;
        if (try_bpf(why)) {
            g.complain = true;
            g.mechanism = "bpf lsm";
            g.detail = std::string("--monitor: complain mode") + (root ? "" : ", through mbx-guardd");
            return g;
        }
        g.mechanism = "none";
        g.detail = "--monitor: nothing enforced beyond the layer; not BPF LSM: " + why;
        if (root) {
            // The network by cgroup sock_addr programs, where they load.
            for (bool network : {true, false}) {
                try {
                    auto audit = Guard::load_audit(network);
                    if (network) g.network_recorder = audit.get();
                    g.guard = std::move(audit);
                    g.mechanism = "bpf tracing";
                    g.detail += "; execs recorded by BPF tracing";  // the network: see run_sandboxed
                    break;
                } catch (const UserError& e) {
                    spdlog::debug("{}", e.what());
                }
            }
        }
        return g;
    }
    // complain: the BPF LSM guard, logging what it would deny, denying nothing.
    bool bpf_only = opt.guard == "bpf" || opt.guard == "complain";
    if (bpf_only && !root) {
        try {
            g.guard = through_daemon();
        } catch (const UserError& e) {
            throw UserError("--guard " + opt.guard + ": " + e.what() +
                            " (start it as root: systemctl start mbx-guardd.socket)");
        }
        g.detail = "--guard " + opt.guard + ", through mbx-guardd";
    } else if (bpf_only) {
        g.guard = Guard::load();
        g.detail = "--guard " + opt.guard;
    } else if (opt.guard == "landlock") {
        if (g.landlock_abi < 1) throw UserError("--guard landlock: this kernel has no Landlock (see mbx doctor)");
        g.fallback = true;
        g.detail = "--guard landlock";
    } else if (opt.guard == "auto") {
        std::string why;
        if (try_bpf(why)) {
            g.detail = root ? "BPF LSM loads here" : "through mbx-guardd";
        } else if (g.landlock_abi >= 1) {
            g.fallback = true;
            g.detail = "Landlock ABI " + std::to_string(g.landlock_abi) + "; not BPF LSM: " + why;
        } else {
            spdlog::debug("no guard: {}; no Landlock either", why);
        }
    }
    g.complain = opt.guard == "complain";
    g.mechanism = g.fallback ? "landlock+seccomp" : g.guard ? "bpf lsm" : "none";
    // As root, the fallback's execs are still audited by BPF tracing
    // programs (which load where BPF LSM ones do not).
    if (g.fallback && root) {
        try {
            g.guard = Guard::load_audit();
            g.detail += "; execs audited by BPF tracing";
        } catch (const UserError& e) {
            spdlog::debug("no exec audit: {}", e.what());
        }
    }
    // May what needs BPF LSM be enforced? If not: an error, or with
    // weakenable and --allow-weaker, a warning and false (run without it).
    auto needs_bpf = [&](const std::string& what, bool weakenable = false) {
        if (!g.fallback && g.guard) return true;
        std::string why = g.fallback ? "the Landlock fallback cannot enforce it"
                          : !root    ? "it needs root, or mbx-guardd (not reachable)"
                                     : probe_guard().failure;
        if (weakenable && opt.allow_weaker) {
            std::fprintf(stderr, "mbx: warning: %s is not enforced (%s); running without it (--allow-weaker)\n",
                         what.c_str(), why.c_str());
            return false;
        }
        throw UserError(what + " is enforced by the BPF LSM guard, which is not in use here: " + why +
                        (weakenable ? "; --allow-weaker runs without it" : "") + " (see mbx doctor)");
    };
    if (net.mode == MBX_NET_LOOPBACK) needs_bpf("--net " + opt.net);
    if (net.mode == MBX_NET_ALLOW && (g.fallback || !g.guard)) {
        if (!g.fallback) needs_bpf("--net " + opt.net);
        g.tcp_ports = landlock_tcp_ports(net, g.landlock_abi);  // throws if it cannot say it
    }
    if (net.has_listen()) {
        if (g.fallback) g.bind_ports = landlock_bind_ports(net, g.landlock_abi);  // TCP only: said in mbx-profile(5)
        else needs_bpf("net.listen");
    }
    if (!exec.deny.empty()) needs_bpf("--exec-deny");
    if (!exec.interpreters.empty() && !needs_bpf("exec.deny_interpreters_on_sockets", true)) exec.interpreters.clear();
    if (!exec.allow.empty() && !g.guard && !g.fallback)
        throw UserError("--exec-allow is enforced by the guard, and none can be used here (see mbx doctor)");
    return g;
}

// "D HOOK PID COMM\nPATH" from the sandbox's init: a call it refused.
void log_refusals(int sock, const GuardEventSink& sink) {
    struct timeval none{0, 0};
    ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    for (std::string msg; recv_msg(sock, msg);) {
        auto nl = msg.find('\n');
        unsigned hook = 0;
        int pid = 0;
        char comm[17] = "";
        if (!msg.starts_with("D ") || nl == std::string::npos ||
            std::sscanf(msg.c_str(), "D %u %d %16[^\n]", &hook, &pid, comm) < 2)
            continue;
        sink(denial_json(hook, pid, comm, msg.substr(nl + 1)), true, 0);
    }
}

// The server's knobs from the environment (mbx-run(1), ENVIRONMENT): for the
// tests (MBX_FD_BUDGET squeezes the handle cache) and for measuring.
void tune_from_environment(overlay::Config& cfg) {
    if (const char* b = std::getenv("MBX_FD_BUDGET"))
        cfg.fd_budget = std::clamp<size_t>(std::strtoul(b, nullptr, 10), 16, cfg.fd_budget);
    if (const char* t = std::getenv("MBX_FUSE_THREADS"))
        cfg.max_threads = std::clamp<unsigned>(std::strtoul(t, nullptr, 10), 1, 64);
    if (const char* t = std::getenv("MBX_CACHE_TIMEOUT"))
        cfg.entry_timeout = std::clamp(std::strtod(t, nullptr), 0.0, 3600.0);
    if (const char* w = std::getenv("MBX_WRITEBACK")) cfg.writeback = std::strcmp(w, "1") == 0;
    if (const char* o = std::getenv("MBX_OPEN_HANDLES")) cfg.open_handles = std::strcmp(o, "1") == 0;
}

// The record that opens a monitored run's log: what it records, what not.
std::string monitor_record(const GuardChoice& g) {
    std::vector<std::string> recorded = {"view"};
    std::vector<std::string> missing = {"opens outside the view (/tmp, /dev, /proc, --bind and direct paths)"};
    if (g.guard) recorded.push_back("exec");
    else missing.push_back("execs but as the view's exec opens (no arguments; BPF needs root or mbx-guardd)");
    if ((g.guard && g.guard->enforcing()) || g.network_recorder) recorded.push_back("network");
    else missing.push_back("network addresses (they need the BPF LSM guard, or root for cgroup BPF programs)");
    std::string m;
    for (auto& x : missing) m += (m.empty() ? "" : "; ") + x;
    return monitor_json(recorded, m, current_dir());
}

}  // namespace

std::string current_dir() {
    char buf[4096];
    if (::getcwd(buf, sizeof buf)) return buf;
    return "/";
}

int run_sandboxed(const RunOptions& opt, SessionStore& store, std::string* used) {
    if (opt.argv.empty()) throw UserError("no command given: mbx run [OPTIONS] -- CMD [ARGS...]");
    for (int fd : opt.pass_fds)
        if (fd < 3 || ::fcntl(fd, F_GETFD) < 0)
            throw UserError("--pass-fd " + std::to_string(fd) + ": not an open descriptor above 2");
    NetPolicy net = parse_net(opt.net);
    add_listen_rules(net, opt.listen);
    if (net.needs_guard() && opt.guard == "off")
        throw UserError((net.has_listen() ? std::string("net.listen") : "--net " + opt.net) +
                        " is enforced by the guard: drop --guard off");
    ExecPolicy exec = parse_exec_policy(opt.exec_allow, opt.exec_deny);
    if (opt.deny_interpreters_on_sockets) exec.interpreters = installed_interpreters();
    if (!exec.empty() && opt.guard == "off")
        throw UserError(std::string(exec.interpreters.empty() ? "--exec-allow and --exec-deny are"
                                                              : "exec.deny_interpreters_on_sockets is") +
                        " enforced by the guard: drop --guard off");
    // The paths of opt were checked when the policy was made (run_policy.h).
    check_fuse_access();

    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    std::optional<SubRange> subuid, subgid;
    if (uid != 0) {
        std::string name = user_name(uid);
        subuid = find_subrange("/etc/subuid", name, uid);
        subgid = find_subrange("/etc/subgid", name, gid);
    }
    IdMaps maps = plan_id_maps(uid, gid, opt.keep_user, subuid, subgid);

    overlay::Config cfg;
    for (auto& h : opt.hide) cfg.hidden.push_back(identity(h, "--hide"));
    Session session = store.open(opt.session, true);
    if (used) *used = session.name();
    if (struct stat jst; ::fstatat(session.dir_fd(), "journal", &jst, AT_SYMLINK_NOFOLLOW) == 0)
        throw UserError("session " + session.name() + " has an interrupted commit: finish it first with 'mbx commit --resume " +
                        session.name() + "'");
    // A session this run created is not kept when the sandbox cannot start.
    auto drop_if_unused = [&]() {
        if (session.created()) {
            try {
                store.remove(std::move(session));
            } catch (const UserError&) {
            }
        }
    };
    cfg.hidden.push_back(identity(store.home(), "$MBX_HOME"));
    cfg.lower_root = open_dir(AT_FDCWD, "/");
    cfg.upper_root = open_dir(session.dir_fd(), "layer");
    try {
        check_layer_xattrs(cfg.upper_root.get(), session.path() + "/layer");
    } catch (const UserError&) {
        drop_if_unused();
        throw;
    }
    cfg.work_dir = open_dir(session.dir_fd(), "work");
    cfg.ids.all_as_root = maps.single && !opt.keep_user && uid != 0;
    cfg.ids.layer_uid = maps.inside_uid;
    cfg.ids.layer_gid = maps.inside_gid;

    GuardChoice g;
    try {
        g = choose_guard(opt, net, exec);
    } catch (const UserError&) {
        drop_if_unused();
        throw;
    }
    std::unique_ptr<SandboxCgroup> cgroup;  // before the clone: mbx may move itself
    try {
        cgroup = SandboxCgroup::create(opt.limits);
    } catch (const UserError&) {
        drop_if_unused();
        throw;
    }
    if (g.network_recorder) {
        try {
            if (!cgroup) cgroup = SandboxCgroup::create(opt.limits, true);
            g.detail += "; network recorded by cgroup BPF programs";
        } catch (const UserError& e) {
            g.detail += std::string("; network not recorded: ") + e.what();
            g.network_recorder = nullptr;  // said in the monitor record too
        }
    }
    std::unique_ptr<GuardLink>& guard = g.guard;
    const bool fallback = g.fallback;

    // The guard's record goes to the session's log, from before the first exec.
    UniqueFd log;
    std::atomic<int> denials{0};
    if (guard || fallback || opt.monitor) {
        int fd = ::openat(session.dir_fd(), "log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0) {
            drop_if_unused();
            throw UserError(sys_error("open", session.path() + "/log"));
        }
        log.reset(fd);
        std::string first = guard_json(g.mechanism, g.detail) + "\n";
        if (opt.monitor) first += monitor_record(g) + "\n";
        (void)!::write(fd, first.data(), first.size());
    }
    // Every record goes through here: from the guard's events thread, the
    // init's reports and (--monitor) the FUSE threads.
    std::mutex log_lock;
    const bool complain = g.complain;
    GuardEventSink to_log = [fd = log.get(), &denials, &log_lock, complain](const std::string& line, bool denied,
                                                                            uint32_t) {
        std::string l = line + "\n";
        if (denied && complain) {  // logged as what it is: not enforced
            nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
            if (!j.is_discarded()) {
                j["complain"] = true;
                l = j.dump() + "\n";
            }
        }
        std::lock_guard lock(log_lock);
        (void)!::write(fd, l.data(), l.size());
        if (denied) ++denials;
    };
    std::optional<ViewRecorder> view_records;
    if (opt.monitor) cfg.access_log = view_records.emplace(to_log).access_log();

    SandboxPlan plan;
    plan.argv = opt.argv;
    plan.bpf_guard = guard != nullptr;
    plan.fallback_guard = fallback;
    plan.landlock.exec_allow = exec.allow;
    plan.landlock.scope_abstract_unix = net.mode != MBX_NET_HOST;
    if (g.tcp_ports) {
        plan.landlock.restrict_tcp = true;
        plan.landlock.tcp_ports = *g.tcp_ports;
    } else if (fallback && net.mode == MBX_NET_NONE && g.landlock_abi >= 4) {
        plan.landlock.restrict_tcp = true;  // no port: no TCP, not even on its own loopback
    }
    plan.landlock.bind_ports = g.bind_ports;
    plan.cwd = current_dir();
    plan.binds = opt.bind;
    plan.writable = opt.writable;
    plan.readonly = opt.readonly;
    plan.keep_tmp = opt.keep_tmp;
    plan.net_none = net.mode == MBX_NET_NONE;
    plan.emulate_mknod = !opt.keep_user || uid == 0;
    plan.inside_uid = maps.inside_uid;
    plan.inside_gid = maps.inside_gid;
    plan.may_setgroups = !maps.single;
    for (auto& r : maps.uids) plan.uid_ranges.emplace_back(r.inside, r.count);
    for (auto& r : maps.gids) plan.gid_ranges.emplace_back(r.inside, r.count);

    int sp[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) throw UserError(sys_error("socketpair", ""));
    UniqueFd ours(sp[0]), theirs(sp[1]);

    RunRecord record;
    record.argv = opt.argv;
    record.started = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();

    unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | SIGCHLD;
    if (plan.net_none) flags |= CLONE_NEWNET;
    std::fflush(nullptr);
    // A raw clone gives fork() semantics with the new namespaces at once; mbx
    // is still single-threaded here (the FUSE threads start later).
    pid_t child = static_cast<pid_t>(::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, 0));
    if (child < 0) {
        int e = errno;
        drop_if_unused();
        if (e == EPERM || e == ENOSPC || e == EUSERS || e == EINVAL)
            throw UserError(std::string("cannot create a user namespace: ") + std::strerror(e) +
                            "; enable them (sysctl user.max_user_namespaces=15000, "
                            "kernel.unprivileged_userns_clone=1)");
        throw UserError(sys_error("clone", "", e));
    }
    if (child == 0) {
        // Die with mbx, whatever kills it: the sandbox must not outlive its server.
        // (If mbx died before this, the socket below reads end-of-stream.)
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        int sock = ::dup(theirs.get());
        // Nothing of the host may stay open in the sandbox but stdio, the
        // socket and what --pass-fd names.
        std::vector<int> keep = opt.pass_fds;
        keep.push_back(sock);
        std::sort(keep.begin(), keep.end());
        unsigned from = 3;
        for (int k : keep) {
            if (k < 3) continue;
            if (unsigned(k) > from) ::close_range(from, unsigned(k) - 1, 0);
            from = unsigned(k) + 1;
        }
        ::close_range(from, ~0U, 0);
        for (int fd : opt.pass_fds) ::fcntl(fd, F_SETFD, 0);  // through the command's exec
        sandbox_main(plan, sock);
    }
    theirs.reset();
    g_child = child;

    auto reap = [&]() {
        int status = 0;
        while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    };
    try {
        apply_id_maps(child, maps);
        if (cgroup) cgroup->add(child);
        if (g.network_recorder) g.network_recorder->record_network(child, cgroup->dir_fd());
    } catch (...) {
        ::kill(child, SIGKILL);
        reap();
        drop_if_unused();
        throw;
    }
    send_msg(ours.get(), "go");
    std::string msg;
    UniqueFd fuse_fd;
    if (!recv_msg(ours.get(), msg, &fuse_fd) || msg != "F" || !fuse_fd) {
        // The sandbox said why on stderr.
        int code = reap();
        drop_if_unused();
        return code;
    }

    struct sigaction ign {}, fwd {};
    ign.sa_handler = SIG_IGN;
    fwd.sa_handler = forward_signal;
    ::sigaction(SIGINT, &ign, nullptr);
    ::sigaction(SIGQUIT, &ign, nullptr);
    ::sigaction(SIGTERM, &fwd, nullptr);
    ::sigaction(SIGHUP, &fwd, nullptr);

    // Every inode the kernel knows holds descriptors in the server: take the
    // whole hard limit (the sandbox, cloned already, keeps the usual one).
    struct rlimit nofile;
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    // Half for cached inode handles, the rest for open files and in-flight
    // operations (MBX_FD_BUDGET lowers it).
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0)
        cfg.fd_budget = std::max<size_t>(64, nofile.rlim_cur / 2);
    tune_from_environment(cfg);
    overlay::Server server(std::move(cfg));
    std::promise<int> served;
    auto served_f = served.get_future();
    std::thread loop([&server, &served, fd = std::move(fuse_fd)]() mutable {
        served.set_value(server.serve(std::move(fd)));
    });
    // The events thread starts only now: mbx must be single-threaded when it
    // clones the sandbox (a lock held by another thread would stay held in
    // the child). Nothing is marked before enroll_sandbox, so nothing is missed.
    if (guard) guard->start_events(to_log);
    GuardPolicy policy;
    policy.net = net;
    policy.exec = exec;
    policy.complain = complain;
    policy.monitor = opt.monitor;
    bool confined = !guard || enroll_sandbox(*guard, ours.get(), child, policy);
    // Host names of net.allow follow their addresses while it runs.
    std::optional<NetRefresh> refresh;
    UniqueFd child_pidfd;
    if (guard && guard->enforcing() && confined && opt.net_names && (child_pidfd = open_pidfd(child))) {
        refresh.emplace([names = *opt.net_names] { return net_spec(names); }, opt.net,
                        [&](const std::string& spec) {
                            GuardPolicy now = policy;
                            now.net = parse_net(spec);
                            add_listen_rules(now.net, opt.listen);
                            guard->update_net(child_pidfd.get(), policy, now);
                            policy = std::move(now);
                        },
                        NetRefresh::interval());
    }
    // Where mbx policy finds the running sandbox.
    bool named = false;
    if (guard && confined) {
        int fd = ::openat(session.dir_fd(), kSandboxFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            UniqueFd f(fd);
            std::string line = std::to_string(child) + (::geteuid() != 0 ? " daemon\n" : " local\n");
            named = ::write(fd, line.data(), line.size()) == ssize_t(line.size());
        }
    }
    // The init's reports of what it refused in user space, until it ends.
    std::thread reports;
    if ((guard && confined) || fallback) reports = std::thread([sock = ours.get(), &to_log] { log_refusals(sock, to_log); });

    int code = reap();
    refresh.reset();
    cgroup.reset();
    if (named) ::unlinkat(session.dir_fd(), kSandboxFile, 0);
    if (reports.joinable()) reports.join();
    if (!confined) code = 125;  // mbx's failure, not the command's
    reclaim_terminal();
    // With the sandbox gone its mount namespace is gone and the connection ends.
    bool ended = served_f.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
    if (ended) {
        loop.join();
    } else {
        spdlog::warn("the FUSE connection outlived the sandbox (a descriptor of it escaped?)");
        loop.detach();
    }

    if (guard) guard->stop_events();
    if (guard || fallback) {
        if (int n = denials.load())
            std::fprintf(stderr, "mbx: the guard %s %d operation%s%s: see 'mbx log %s'\n",
                         complain ? "would have denied" : "denied", n, n == 1 ? "" : "s",
                         complain ? " (--guard complain: none was)" : "", session.name().c_str());
    }
    if (opt.monitor) {
        std::fprintf(stderr, "mbx: monitored: see 'mbx log --summary %s'; 'mbx profile generate %s' makes a profile of it\n",
                     session.name().c_str(), session.name().c_str());
        if (size_t n = view_records->dropped())
            std::fprintf(stderr, "mbx: warning: %zu records of the view were not kept (more distinct ones than the "
                                 "monitor keeps); the profile made of this run may lack them\n", n);
    }
    record.ended = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
    record.exit_status = code;
    if (struct rusage ru; ::getrusage(RUSAGE_SELF, &ru) == 0) record.server_peak_rss_kb = ru.ru_maxrss;
    session.meta().runs.push_back(record);
    session.meta().inside_uid = maps.inside_uid;
    session.meta().inside_gid = maps.inside_gid;
    session.meta().last_used = record.ended;
    // The command's status and the summary matter more than the run record
    // (which a full disk may refuse).
    try {
        session.save_meta();
    } catch (const UserError& e) {
        std::fprintf(stderr, "mbx: warning: the run was not recorded in the session: %s\n", e.what());
    }
    try {
        print_summary(session);
    } catch (const UserError& e) {
        std::fprintf(stderr, "mbx: warning: cannot count the session's changes: %s\n", e.what());
    }
    if (!ended) {
        std::fflush(nullptr);
        std::_Exit(code);  // a serving thread still holds the session: do not unwind under it
    }
    return code;
}

}  // namespace mbx
