#include "src/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "overlay/layer_format.h"
#include "overlay/sys/sys.h"
#include "overlay/sys/unique_fd.h"
#include "bpf/guard.h"
#include "src/fd_passing.h"
#include "src/landlock.h"
#include "src/write_rules.h"

namespace mbx {

namespace {

constexpr const char* kBase = "/tmp";          // scaffolding tmpfs, in our mount namespace only
constexpr const char* kRoot = "/tmp/root";     // the FUSE view, before pivot_root
constexpr long kFuseSuperMagic = 0x65735546;

[[noreturn]] void die(const std::string& what, int err = errno) {
    std::string msg = "mbx: sandbox setup: " + what + (err ? std::string(": ") + std::strerror(err) : "") + "\n";
    (void)!::write(2, msg.data(), msg.size());
    ::_exit(125);
}

void mount_or_die(const char* src, const std::string& target, const char* type, unsigned long flags,
                  const char* data = nullptr) {
    if (::mount(src, target.c_str(), type, flags, data) < 0)
        die(std::string("mount ") + (type ? type : src) + " on \"" + target + "\"");
}

void touch_or_die(const std::string& path) {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0) die("create \"" + path + "\"");
    ::close(fd);
}

void setup_dev(const std::string& dev) {
    mount_or_die("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755");
    for (const char* n : {"null", "zero", "full", "random", "urandom", "tty"}) {
        std::string target = dev + "/" + n;
        touch_or_die(target);
        mount_or_die((std::string("/dev/") + n).c_str(), target, nullptr, MS_BIND);
    }
    if (::mkdir((dev + "/pts").c_str(), 0755) < 0) die("mkdir \"" + dev + "/pts\"");
    mount_or_die("devpts", dev + "/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620");
    if (::symlink("pts/ptmx", (dev + "/ptmx").c_str()) < 0) die("symlink \"" + dev + "/ptmx\"");
    if (::mkdir((dev + "/shm").c_str(), 01777) < 0) die("mkdir \"" + dev + "/shm\"");
    mount_or_die("tmpfs", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    const char* links[][2] = {{"/proc/self/fd", "fd"},
                              {"/proc/self/fd/0", "stdin"},
                              {"/proc/self/fd/1", "stdout"},
                              {"/proc/self/fd/2", "stderr"}};
    for (auto& l : links)
        if (::symlink(l[0], (dev + "/" + l[1]).c_str()) < 0) die(std::string("symlink \"") + dev + "/" + l[1] + "\"");
    // The terminal the command talks to is its console, as in bubblewrap.
    if (::isatty(0)) {
        char tty[256];
        if (::ttyname_r(0, tty, sizeof tty) == 0) {
            touch_or_die(dev + "/console");
            mount_or_die(tty, dev + "/console", nullptr, MS_BIND);
        }
    }
}

void setup_sys(const std::string& sys) {
    mount_or_die("/sys", sys, nullptr, MS_BIND | MS_REC);
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    if (::mount_setattr(AT_FDCWD, sys.c_str(), AT_RECURSIVE, &attr, sizeof attr) < 0)
        die("make \"" + sys + "\" read-only");
}

// /proc reaches global kernel state: as container runtimes do, its knobs are
// read-only and its dumps of kernel memory and keys are masked.
void harden_proc(const std::string& proc) {
    for (const char* p : {"sys", "sysrq-trigger", "irq", "bus", "fs"}) {
        std::string t = proc + "/" + p;
        if (::access(t.c_str(), F_OK) != 0) continue;
        mount_or_die(t.c_str(), t, nullptr, MS_BIND | MS_REC);
        struct mount_attr attr {};
        attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        if (::mount_setattr(AT_FDCWD, t.c_str(), AT_RECURSIVE, &attr, sizeof attr) < 0)
            die("make \"" + t + "\" read-only");
    }
    for (const char* p : {"kcore", "keys", "timer_list", "sched_debug"}) {
        std::string t = proc + "/" + p;
        if (::access(t.c_str(), F_OK) == 0) mount_or_die("/dev/null", t, nullptr, MS_BIND);
    }
}

void write_file(const std::string& path, const std::string& text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        std::string msg = "mbx: sandbox setup: write \"" + path + "\": " + std::strerror(errno) + "\n";
        (void)!::write(2, msg.data(), msg.size());
        ::_exit(125);
    }
    ::close(fd);
}

// Mounts made in the sandbox's own user namespace could be undone from inside
// (unmounting the read-only /sys, say). Moving into a nested user and mount
// namespace makes every one of them locked: the kernel refuses to unmount
// them or lift their read-only flag from there. A helper left outside writes
// the nested namespace's id maps, onto the same ids.
void lock_mounts(const SandboxPlan& plan) {
    int go[2];
    if (::pipe2(go, O_CLOEXEC) < 0) die("pipe");
    pid_t self = ::getpid();
    pid_t helper = ::fork();
    if (helper < 0) die("fork");
    if (helper == 0) {
        ::close(go[1]);
        char c;
        if (::read(go[0], &c, 1) != 1) ::_exit(1);
        auto map = [](const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
            std::string m;
            for (auto& [first, count] : ranges)
                m += std::to_string(first) + " " + std::to_string(first) + " " + std::to_string(count) + "\n";
            return m;
        };
        std::string proc = "/proc/" + std::to_string(self) + "/";
        write_file(proc + "uid_map", map(plan.uid_ranges));
        if (!plan.may_setgroups) write_file(proc + "setgroups", "deny");
        write_file(proc + "gid_map", map(plan.gid_ranges));
        ::_exit(0);
    }
    ::close(go[0]);
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) die("unshare the nested user namespace");
    if (::write(go[1], "x", 1) != 1) die("wake the id-map helper");
    ::close(go[1]);
    int status;
    while (::waitpid(helper, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("map ids in the nested user namespace", 0);
}

void loopback_up() {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) die("socket");
    UniqueFd sock(s);
    struct ifreq ifr {};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die("get flags of lo");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("bring up lo");
}

// ---- mknod emulation (seccomp user notification)

// The syscalls the fallback guard refuses (when BPF LSM is not used), with
// the guard hook their denial is logged as.
struct DeniedSyscall {
    int nr;
    unsigned hook;
};
constexpr DeniedSyscall kDeniedSyscalls[] = {
    {__NR_mount, MBX_HOOK_MOUNT},          {__NR_umount2, MBX_HOOK_UMOUNT},
    {__NR_pivot_root, MBX_HOOK_PIVOT_ROOT}, {__NR_move_mount, MBX_HOOK_MOVE_MOUNT},
    {__NR_open_tree, MBX_HOOK_MOUNT},      {__NR_fsopen, MBX_HOOK_MOUNT},
    {__NR_fsconfig, MBX_HOOK_MOUNT},       {__NR_fsmount, MBX_HOOK_MOUNT},
    {__NR_fspick, MBX_HOOK_MOUNT},         {__NR_mount_setattr, MBX_HOOK_MOUNT},
    {__NR_bpf, MBX_HOOK_BPF},              {__NR_perf_event_open, MBX_HOOK_PERF},
    {__NR_kexec_load, MBX_HOOK_KEXEC},     {__NR_kexec_file_load, MBX_HOOK_KEXEC},
    {__NR_init_module, MBX_HOOK_MODULE},   {__NR_finit_module, MBX_HOOK_MODULE},
    {__NR_delete_module, MBX_HOOK_MODULE}, {__NR_keyctl, MBX_HOOK_KEYCTL},
    {__NR_add_key, MBX_HOOK_KEYCTL},       {__NR_request_key, MBX_HOOK_KEYCTL},
};

// One seccomp filter (a process may have one listener) whose notifications
// the init answers: mknod/mknodat of character and block devices (emulated
// in the layer) and, for the fallback guard, the syscalls above (refused and
// reported). With the latter, other architectures' and x32 calls fail with
// ENOSYS, so that no other number reaches the same syscalls. tcp_only: IP
// sockets other than TCP, and io_uring (which makes sockets past seccomp),
// are refused too, for a network policy that Landlock enforces by TCP port.
UniqueFd install_notify_filter(bool mknod, bool deny, bool tcp_only) {
    auto stmt = [](uint16_t code, uint32_t k) { return sock_filter BPF_STMT(code, k); };
    auto jump = [](uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) { return sock_filter BPF_JUMP(code, k, jt, jf); };
    const uint32_t enosys = SECCOMP_RET_ERRNO | ENOSYS;
    std::vector<sock_filter> f;
    f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
    f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
    f.push_back(stmt(BPF_RET | BPF_K, deny ? enosys : SECCOMP_RET_ALLOW));
    f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
    if (deny) {
        f.push_back(jump(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1));
        f.push_back(stmt(BPF_RET | BPF_K, enosys));
        for (auto& d : kDeniedSyscalls) {
            f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, uint32_t(d.nr), 0, 1));
            f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF));
        }
    }
    if (tcp_only) {
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1));
        f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF));
        // socket(AF_INET or AF_INET6, not SOCK_STREAM, or with a protocol but TCP)
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 11));
        f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, AF_INET, 1, 0));
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 0, 8));
        f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])));
        f.push_back(stmt(BPF_ALU | BPF_AND | BPF_K, 0xf));  // the type without SOCK_NONBLOCK/CLOEXEC
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, SOCK_STREAM, 1, 0));
        f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF));
        f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])));
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 0));
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 1, 0));
        f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF));
        f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
    }
    if (mknod) {
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_mknod, 0, 2));
        f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])));
        f.push_back(jump(BPF_JMP | BPF_JA, 2, 0, 0));
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_mknodat, 0, 4));
        f.push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])));
        f.push_back(stmt(BPF_ALU | BPF_AND | BPF_K, S_IFMT));
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, S_IFCHR, 2, 0));
        f.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, S_IFBLK, 1, 0));
    }
    f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    f.push_back(stmt(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF));
    struct sock_fprog prog = {static_cast<unsigned short>(f.size()), f.data()};
    // Without CAP_SYS_ADMIN in its namespace (--user), a filter needs no_new_privs.
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    int fd = static_cast<int>(::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog));
    if (fd < 0) die("install the seccomp filter");
    return UniqueFd(fd);
}

// A field of /proc/PID/status ("Uid:", "Umask:").
std::string status_field(pid_t pid, const char* key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with(key)) return line.substr(std::strlen(key));
    return {};
}

// With a guard, a refusal is reported to mbx for the session's log
// ("D HOOK PID COMM\nPATH"): a device node outside the layer, a mount, is an
// escape attempt.
void report_refusal(int report, unsigned hook, pid_t pid, const std::string& path) {
    if (report < 0) return;
    std::string comm = status_field(pid, "Name:");
    comm.erase(0, comm.find_first_not_of(" \t"));
    send_msg(report, "D " + std::to_string(hook) + " " + std::to_string(pid) + " " + comm + "\n" + path);
}

int emulate_mknod(int listener, const struct seccomp_notif& n, int report) {
    pid_t pid = static_cast<pid_t>(n.pid);
    bool at = n.data.nr == __NR_mknodat;
    int dirfd = at ? static_cast<int>(n.data.args[0]) : AT_FDCWD;
    uint64_t addr = n.data.args[at ? 1 : 0];
    mode_t mode = static_cast<mode_t>(n.data.args[at ? 2 : 1]);
    dev_t dev = static_cast<dev_t>(n.data.args[at ? 3 : 2]);

    char buf[4097];
    std::string mem = "/proc/" + std::to_string(pid) + "/mem";
    int mfd = ::open(mem.c_str(), O_RDONLY | O_CLOEXEC);
    if (mfd < 0) return EFAULT;
    ssize_t len = ::pread(mfd, buf, sizeof buf - 1, static_cast<off_t>(addr));
    ::close(mfd);
    if (len <= 0) return EFAULT;
    buf[len] = 0;
    if (std::strlen(buf) == static_cast<size_t>(len)) return ENAMETOOLONG;
    // The process may have been replaced since it asked: only answer for it.
    if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &n.id) < 0) return ESRCH;

    std::string uidline = status_field(pid, "Uid:");
    unsigned ruid = 1, euid = 1;
    if (std::sscanf(uidline.c_str(), "%u %u", &ruid, &euid) != 2 || euid != 0) {
        report_refusal(report, MBX_HOOK_INODE_MKNOD, pid, buf);
        return EPERM;
    }
    unsigned umask_v = 022;
    std::sscanf(status_field(pid, "Umask:").c_str(), "%o", &umask_v);

    std::string path = buf;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    if (path.empty()) return ENOENT;
    std::string base;
    if (path[0] == '/') base = "/proc/" + std::to_string(pid) + "/root";
    else if (dirfd == AT_FDCWD) base = "/proc/" + std::to_string(pid) + "/cwd";
    else base = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(dirfd);
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    if (name == "." || name == ".." || name == "/") return EEXIST;
    if (dir[0] == '/') dir = "." + dir;
    int basefd = ::open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (basefd < 0) return errno;
    UniqueFd b(basefd);
    int pfd = ::openat(b.get(), dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) return errno;
    UniqueFd parent(pfd);
    struct statfs sf;
    if (::fstatfs(parent.get(), &sf) < 0) return errno;
    if (sf.f_type != kFuseSuperMagic) {  // only the layer can hold device records
        report_refusal(report, MBX_HOOK_INODE_MKNOD, pid, buf);
        return EPERM;
    }
    char value[4200];
    int vlen = std::snprintf(value, sizeof value, "%o %lu %s",
                             (mode & S_IFMT) | (mode & 07777 & ~umask_v), static_cast<unsigned long>(dev), name.c_str());
    if (::setxattr(sys::fd_path(parent.get()).c_str(), layer::kMknodXattr, value, vlen, 0) < 0) return errno;
    return 0;
}

void serve_notification(int listener, int report) {
    struct seccomp_notif_sizes sizes {};
    if (::syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) return;
    std::string rq(std::max<size_t>(sizes.seccomp_notif, sizeof(seccomp_notif)), '\0');
    std::string rs(std::max<size_t>(sizes.seccomp_notif_resp, sizeof(seccomp_notif_resp)), '\0');
    auto* n = reinterpret_cast<struct seccomp_notif*>(rq.data());
    auto* r = reinterpret_cast<struct seccomp_notif_resp*>(rs.data());
    if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, n) < 0) return;
    r->id = n->id;
    r->val = 0;
    r->flags = 0;
    int nr = n->data.nr;
    if (nr == __NR_mknod || nr == __NR_mknodat) {
        r->error = -emulate_mknod(listener, *n, report);
    } else {
        r->error = -EPERM;
        unsigned hook = MBX_HOOK_SOCKET;  // socket, io_uring_setup
        for (auto& d : kDeniedSyscalls)
            if (d.nr == nr) hook = d.hook;
        report_refusal(report, hook, static_cast<pid_t>(n->pid), "");
    }
    ::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, r);  // ENOENT if the caller died meanwhile
}

[[noreturn]] void exec_command(const SandboxPlan& plan, const sigset_t& oldmask) {
    for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &oldmask, nullptr);
    if (plan.fallback_guard)
        if (std::string e = restrict_with_landlock(plan.landlock); !e.empty()) die("Landlock: " + e, 0);
    std::vector<char*> argv;
    for (auto& a : plan.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    int err = errno;
    std::string msg = "mbx: " + plan.argv[0] + ": " + std::strerror(err) + "\n";
    (void)!::write(2, msg.data(), msg.size());
    ::_exit(err == ENOENT ? 127 : 126);
}

// pid 1 of the sandbox: waits for the command, reaps everything, relays
// SIGTERM/SIGHUP to the whole sandbox, answers mknod notifications (and
// reports refusals on `report`, the socket to mbx, when the guard is on).
[[noreturn]] void init_loop(pid_t cmd, int listener, int sfd, int report) {
    int code = 0;
    for (;;) {
        struct pollfd p[2] = {{sfd, POLLIN, 0}, {listener, POLLIN, 0}};
        int n = ::poll(p, listener >= 0 ? 2 : 1, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            ::_exit(125);
        }
        if (listener >= 0 && (p[1].revents & POLLIN)) serve_notification(listener, report);
        if (!(p[0].revents & POLLIN)) continue;
        struct signalfd_siginfo si;
        if (::read(sfd, &si, sizeof si) != sizeof si) continue;
        if (si.ssi_signo == SIGCHLD) {
            int status;
            pid_t w;
            while ((w = ::waitpid(-1, &status, WNOHANG)) > 0) {
                if (w != cmd) continue;
                code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                // The command is done: whatever it left running ends with us.
                ::_exit(code);
            }
        } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP) {
            ::kill(-1, static_cast<int>(si.ssi_signo));
        }
        // SIGINT/SIGQUIT from the terminal already reached the command's process group.
    }
}

}  // namespace

// Reports what the sandbox may write (its view and tmpfs mounts, whole; the
// --bind paths, beneath) and waits until the launcher has confined this
// process with the guard: no command runs unconfined.
void await_guard(const SandboxPlan& plan, int sock) {
    std::vector<std::string> own = {"/", "/dev", "/dev/shm"};
    if (!plan.keep_tmp) own.insert(own.end(), {"/tmp", "/var/tmp"});
    std::string msg = "R";
    auto stat_or_die = [](const std::string& p) {
        struct stat st;
        if (::stat(p.c_str(), &st) < 0) die("stat \"" + p + "\"");
        return st;
    };
    for (auto& p : own) msg += " d:" + std::to_string(stat_or_die(p).st_dev);
    // A --bind path shares its file system with the rest of the host: only
    // what lies beneath it is writable.
    for (auto& p : plan.binds) {
        struct stat st = stat_or_die(p);
        msg += " b:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    }
    std::string reply;
    if (!send_msg(sock, msg) || !recv_msg(sock, reply) || reply != "E") ::_exit(125);  // mbx said why
}

void sandbox_main(const SandboxPlan& plan, int sock) {
    std::string msg;
    if (!recv_msg(sock, msg) || msg != "go") ::_exit(125);  // the launcher went away

    if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) < 0) die("make / a slave mount");
    std::vector<UniqueFd> bind_src;
    for (auto& b : plan.binds) {
        int fd = ::open(b.c_str(), O_PATH | O_CLOEXEC);
        if (fd < 0) die("open --bind \"" + b + "\"");
        bind_src.emplace_back(fd);
    }
    int fuse = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fuse < 0) die("open /dev/fuse");
    UniqueFd fuse_fd(fuse);

    mount_or_die("tmpfs", kBase, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700");
    if (::mkdir(kRoot, 0755) < 0) die(std::string("mkdir \"") + kRoot + "\"");
    char opts[256];
    std::snprintf(opts, sizeof opts,
                  "fd=%d,rootmode=40000,user_id=%u,group_id=%u,allow_other,default_permissions", fuse_fd.get(),
                  static_cast<unsigned>(::geteuid()), static_cast<unsigned>(::getegid()));
    mount_or_die("mbx", kRoot, "fuse.mbx", MS_NOSUID | MS_NODEV, opts);
    if (!send_msg(sock, "F", fuse_fd.get())) die("hand the FUSE device to mbx");
    fuse_fd.reset();
    bool report = plan.bpf_guard || plan.fallback_guard;
    if (!report) ::close(sock);

    std::string root = kRoot;
    mount_or_die("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
    harden_proc(root + "/proc");
    setup_dev(root + "/dev");
    setup_sys(root + "/sys");
    if (!plan.keep_tmp) {
        mount_or_die("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
        mount_or_die("tmpfs", root + "/var/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    }
    for (size_t i = 0; i < plan.binds.size(); ++i)
        mount_or_die(sys::fd_path(bind_src[i].get()).c_str(), root + plan.binds[i], nullptr, MS_BIND | MS_REC);
    bind_src.clear();

    if (::chdir(kRoot) < 0) die(std::string("chdir \"") + kRoot + "\"");
    if (::syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root");
    if (::umount2(".", MNT_DETACH) < 0) die("detach the host's mounts");
    if (::chdir("/") < 0) die("chdir /");
    if (plan.net_none) loopback_up();
    if (std::string e = restrict_writes(plan.writable, plan.readonly); !e.empty()) die(e, 0);
    lock_mounts(plan);
    if (plan.bpf_guard) await_guard(plan, sock);
    if (report) ::fcntl(sock, F_SETFD, FD_CLOEXEC);  // kept by the init only, for its reports

    if (plan.may_setgroups) ::setgroups(0, nullptr);
    if (::setresgid(plan.inside_gid, plan.inside_gid, plan.inside_gid) < 0) die("setresgid");
    if (::setresuid(plan.inside_uid, plan.inside_uid, plan.inside_uid) < 0) die("setresuid");
    if (::chdir(plan.cwd.c_str()) < 0) {
        bool in_tmp = !plan.keep_tmp && (plan.cwd.starts_with("/tmp/") || plan.cwd.starts_with("/var/tmp/"));
        std::string w = "mbx: warning: cannot enter \"" + plan.cwd + "\" inside the sandbox" +
                        (in_tmp ? " (/tmp and /var/tmp are private there; --keep-tmp shows them)" : "") +
                        "; starting in /\n";
        (void)!::write(2, w.data(), w.size());
    }

    UniqueFd listener;
    if (plan.emulate_mknod || plan.fallback_guard)
        listener = install_notify_filter(plan.emulate_mknod, plan.fallback_guard,
                                         plan.fallback_guard && plan.landlock.restrict_tcp);

    sigset_t mask, oldmask;
    sigemptyset(&mask);
    for (int s : {SIGCHLD, SIGTERM, SIGHUP, SIGINT, SIGQUIT}) sigaddset(&mask, s);
    ::sigprocmask(SIG_BLOCK, &mask, &oldmask);
    int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) die("signalfd");

    pid_t cmd = ::fork();
    if (cmd < 0) die("fork");
    if (cmd == 0) {
        ::close(sfd);
        listener.reset();
        exec_command(plan, oldmask);
    }
    init_loop(cmd, listener ? listener.get() : -1, sfd, report ? sock : -1);
}

}  // namespace mbx
