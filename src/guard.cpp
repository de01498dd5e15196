#include "src/guard.h"

#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "overlay/sys/unique_fd.h"
#include "src/error.h"
#include "src/pidfd.h"

#ifdef MBX_HAVE_GUARD
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <dirent.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <set>
#include <thread>

#include "bpf/guard.h"
#include "guard.skel.h"
#include "src/guard_event.h"
#endif

namespace mbx {

bool bpf_lsm_listed() {
    std::ifstream in("/sys/kernel/security/lsm");
    std::string list;
    std::getline(in, list);
    std::stringstream ss(list);
    for (std::string name; std::getline(ss, name, ',');)
        if (name == "bpf") return true;
    return false;
}

#ifdef MBX_HAVE_GUARD

struct Guard::Skeleton : ::guard {};

namespace {

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list ap) {
    if (level == LIBBPF_DEBUG) return 0;
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    if (n <= 0) return 0;
    std::string s(size_t(n) + 1, '\0');
    std::vsnprintf(s.data(), s.size(), fmt, ap);
    s.resize(size_t(n));
    // Verifier logs come as one block: one debug line per line.
    std::stringstream lines(s);
    for (std::string line; std::getline(lines, line);)
        if (!line.empty()) spdlog::debug("libbpf: {}", line);
    return 0;
}

// Which of the guard's programs are loaded: the BPF LSM guard (all but the
// cgroup ones), or the tracing programs only (marks and the exec audit), with
// or without the cgroup sock_addr programs that record the network.
enum class Programs { lsm, audit, audit_network };

bool is_cgroup_program(const std::string& name) { return name.starts_with("cgroup_"); }

// Marks which programs of an opened skeleton its load will load.
void choose_programs(::guard* s, Programs which) {
    bpf_program* prog;
    bpf_object__for_each_program(prog, s->obj) {
        std::string name = bpf_program__name(prog);
        bool tracing = name == "sched_process_exec" || name == "sched_process_fork";
        bool load = which == Programs::lsm ? !is_cgroup_program(name)
                                           : tracing || (which == Programs::audit_network && is_cgroup_program(name));
        bpf_program__set_autoload(prog, load);
    }
}

// Opens, loads and attaches which; returns the skeleton or the errno and the
// step. (The cgroup programs are attached later, to a sandbox's cgroup.)
::guard* open_guard(int& err, const char*& step, Programs which = Programs::lsm) {
    libbpf_set_print(libbpf_log);
    ::guard* s = guard__open();
    if (!s) {
        err = errno;
        step = "open";
        return nullptr;
    }
    choose_programs(s, which);
    if ((err = -guard__load(s)) != 0) {
        step = "load";
    } else if ((err = -guard__attach(s)) != 0) {
        step = "attach";
    } else {
        return s;
    }
    guard__destroy(s);
    return nullptr;
}

std::string how_to_fix(bool listed, int err) {
    if (!listed)
        return "\"bpf\" is not in /sys/kernel/security/lsm: boot with lsm=...,bpf on the kernel command line "
               "(and CONFIG_BPF_LSM=y)";
    if (err == EPERM)
        return "the kernel refused BPF LSM programs (EPERM): run as root on a kernel that allows them";
    return std::string("loading the guard failed: ") + std::strerror(err);
}

}  // namespace

GuardProbe probe_guard() {
    GuardProbe p;
    p.built = true;
    p.lsm_listed = bpf_lsm_listed();
    int err = 0;
    const char* step = "";
    ::guard* s = open_guard(err, step);
    if (s) {
        p.usable = true;
        guard__destroy(s);
        return p;
    }
    p.failure = std::string(step) + ": " + std::strerror(err);
    p.fix = how_to_fix(p.lsm_listed, err);
    return p;
}

std::unique_ptr<Guard> Guard::load() {
    int err = 0;
    const char* step = "";
    ::guard* s = open_guard(err, step);
    if (!s) throw UserError("BPF LSM guard unavailable (" + std::string(step) + "): " + how_to_fix(bpf_lsm_listed(), err));
    return std::unique_ptr<Guard>(new Guard(static_cast<Skeleton*>(s), true));
}

std::unique_ptr<Guard> Guard::load_pinned(const std::string& dir) {
    libbpf_set_print(libbpf_log);
    if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST)
        throw UserError(sys_error("mkdir", dir) + " (is bpffs mounted? mount -t bpf bpf /sys/fs/bpf)");
    ::guard* s = guard__open();
    if (!s) throw UserError(std::string("guard: open: ") + std::strerror(errno));
    std::unique_ptr<Guard> g(new Guard(static_cast<Skeleton*>(s), true));
    choose_programs(s, Programs::lsm);
    bpf_map* map;
    bpf_object__for_each_map(map, s->obj) {
        std::string name = bpf_map__name(map);
        if (!name.starts_with(".")) bpf_map__set_pin_path(map, (dir + "/" + name).c_str());
    }
    if (int err = -guard__load(s)) {
        // A first load that fails leaves no maps behind; under a running
        // guard (pinned links) the pinned maps are its own and stay.
        bool running = false;
        if (DIR* d = ::opendir(dir.c_str())) {
            while (struct dirent* e = ::readdir(d)) running |= std::string(e->d_name).starts_with("link-");
            ::closedir(d);
        }
        if (!running) {
            bpf_object__unpin_maps(s->obj, nullptr);
            ::rmdir(dir.c_str());
        }
        throw UserError(std::string("guard: load (with the maps pinned in ") + dir + "): " + std::strerror(err));
    }
    if (int err = -guard__attach(s)) throw UserError(std::string("guard: attach: ") + std::strerror(err));
    // Now both the new links and the pinned old ones are attached.
    std::set<std::string> current;
    for (int i = 0; i < s->skeleton->prog_cnt; ++i) {
        bpf_prog_skeleton& ps = s->skeleton->progs[i];
        if (!*ps.link) continue;
        std::string path = dir + "/link-" + ps.name;
        current.insert("link-" + std::string(ps.name));
        bpf_link* old = bpf_link__open(path.c_str());
        ::unlink(path.c_str());
        if (bpf_link__pin(*ps.link, path.c_str()) < 0)
            throw UserError(sys_error("pin the guard's link", path));
        if (old) bpf_link__destroy(old);  // the old program is detached here
    }
    // Links of programs this version no longer has.
    if (DIR* d = ::opendir(dir.c_str())) {
        while (struct dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (!n.starts_with("link-") || current.count(n)) continue;
            if (bpf_link* old = bpf_link__open((dir + "/" + n).c_str())) {
                ::unlinkat(::dirfd(d), n.c_str(), 0);
                bpf_link__destroy(old);
            }
        }
        ::closedir(d);
    }
    // Closing this process's link descriptors must not detach the programs.
    for (int i = 0; i < s->skeleton->prog_cnt; ++i)
        if (*s->skeleton->progs[i].link) bpf_link__disconnect(*s->skeleton->progs[i].link);
    return g;
}

uint32_t Guard::max_sandbox_id() {
    uint32_t key = 0, next = 0, max = 0;
    const void* prev = nullptr;
    while (bpf_map__get_next_key(skel_->maps.policies, prev, &next, sizeof next) == 0) {
        max = std::max(max, next);
        key = next;
        prev = &key;
    }
    return max;
}

std::unique_ptr<Guard> Guard::load_audit(bool network) {
    int err = 0;
    const char* step = "";
    ::guard* s = open_guard(err, step, network ? Programs::audit_network : Programs::audit);
    if (!s)
        throw UserError(std::string(network ? "BPF exec audit and network record" : "BPF exec audit") + " unavailable (" +
                        step + "): " + std::strerror(err));
    return std::unique_ptr<Guard>(new Guard(static_cast<Skeleton*>(s), false));
}

void Guard::LinkCloser::operator()(::bpf_link* l) const { bpf_link__destroy(l); }

void Guard::record_network(pid_t sandbox_init, int cgroup_dir) {
    struct stat st;
    if (::fstat(cgroup_dir, &st) < 0) throw UserError(sys_error("fstat", "the sandbox's cgroup"));
    uint64_t cgroup_id = st.st_ino;  // cgroup v2: the id is the directory's inode number
    uint32_t id = static_cast<uint32_t>(sandbox_init);
    if (bpf_map__update_elem(skel_->maps.net_cgroups, &cgroup_id, sizeof cgroup_id, &id, sizeof id, BPF_ANY) < 0)
        throw UserError(std::string("cannot record the network: ") + std::strerror(errno));
    bpf_program* prog;
    bpf_object__for_each_program(prog, skel_->obj) {
        if (!is_cgroup_program(bpf_program__name(prog))) continue;
        LinkRef link(bpf_program__attach_cgroup(prog, cgroup_dir));
        if (!link)
            throw UserError(std::string("cannot record the network: attach ") + bpf_program__name(prog) +
                            " to the sandbox's cgroup: " + std::strerror(errno));
        cgroup_links_.push_back(std::move(link));
    }
}

struct Guard::Events {
    ring_buffer* rb = nullptr;
    GuardEventSink sink;
    int64_t boot_to_unix = 0;
    std::atomic<bool> stop{false};
    UniqueFd wake;  // an eventfd: stop_events() ends the thread's wait at once
    std::thread thread;
};

Guard::Guard(Skeleton* s, bool enforcing) : skel_(s), enforcing_(enforcing) {}

int Guard::event_fd(GuardEventSink sink) {
    auto ev = std::make_unique<Events>();
    ev->sink = std::move(sink);
    ev->boot_to_unix = boot_to_unix_ns();
    ev->rb = ring_buffer__new(
        bpf_map__fd(skel_->maps.events),
        [](void* ctx, void* data, size_t size) -> int {
            auto* e = static_cast<Events*>(ctx);
            if (size < sizeof(mbx_guard_event)) return 0;
            const auto* g = static_cast<const mbx_guard_event*>(data);
            e->sink(event_json(*g, e->boot_to_unix), g->error != 0, g->sandbox);
            return 0;
        },
        ev.get(), nullptr);
    if (!ev->rb) throw UserError(std::string("guard: cannot read its events: ") + std::strerror(errno));
    events_ = std::move(ev);
    return ring_buffer__epoll_fd(events_->rb);
}

void Guard::consume_events() {
    if (events_) ring_buffer__consume(events_->rb);
}

void Guard::start_events(GuardEventSink sink) {
    int ring = event_fd(std::move(sink));
    Events* raw = events_.get();
    // One wait for the ring buffer's descriptor and a wake-up, so that the
    // end of a run does not wait out a poll's timeout (without them: polls).
    UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
    raw->wake.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (ep && raw->wake) {
        struct epoll_event e{};
        e.events = EPOLLIN;
        ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, ring, &e);
        ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, raw->wake.get(), &e);
    } else {
        ep.reset();
    }
    raw->thread = std::thread([raw, ep = std::move(ep)] {
        while (!raw->stop.load()) {
            struct epoll_event ev[2];
            if (ep) ::epoll_wait(ep.get(), ev, 2, 100);
            else ring_buffer__poll(raw->rb, 100);
            ring_buffer__consume(raw->rb);
        }
        ring_buffer__consume(raw->rb);  // what came in last
    });
}

void Guard::stop_events() {
    if (!events_) return;
    events_->stop = true;
    if (events_->wake) {
        uint64_t one = 1;
        (void)!::write(events_->wake.get(), &one, sizeof one);
    }
    if (events_->thread.joinable()) events_->thread.join();
    ring_buffer__free(events_->rb);
    events_.reset();
}

Guard::~Guard() {
    stop_events();
    cgroup_links_.clear();  // detached before the programs go
    guard__destroy(skel_);
}

namespace {
// The kernel's own encoding of s_dev (MKDEV), not the user-space one.
unsigned kernel_dev(uint64_t dev) { return unsigned((major(dev) << 20) | minor(dev)); }

// The exec_rules key of a path for sandbox id (NUL-padded, as the BPF side builds it).
mbx_guard_exec_key exec_key(uint32_t id, const std::string& path) {
    mbx_guard_exec_key k{};
    k.sandbox = id;
    std::memcpy(k.path, path.data(), std::min(path.size(), sizeof k.path - 1));
    return k;
}
}  // namespace

void Guard::enroll(int pidfd, const GuardPolicy& policy) {
    auto pid = pidfd_pid(pidfd);
    if (!pid) throw UserError("guard: the sandbox's process is gone");
    enroll_as(pidfd, static_cast<uint32_t>(*pid), policy);
}

void Guard::update_net(int pidfd, const GuardPolicy& old, const GuardPolicy& now) {
    auto id = mark_of(pidfd);
    if (!id) throw UserError("guard: the sandbox is not confined (gone?)");
    change_policy(*id, old, now);
}

bool Guard::is_marked(int pidfd) {
    mbx_guard_mark m{};
    return bpf_map__lookup_elem(skel_->maps.marks, &pidfd, sizeof pidfd, &m, sizeof m, 0) == 0;
}

void Guard::forget(uint32_t id, const GuardPolicy& policy) {
    for (auto& b : policy.bind_roots) {
        mbx_guard_bind_key k{id, kernel_dev(b.dev), b.ino};
        bpf_map__delete_elem(skel_->maps.bind_roots, &k, sizeof k, 0);
    }
    for (auto& [path, bits] : policy.exec.rule_bits()) {
        mbx_guard_exec_key k = exec_key(id, path);
        bpf_map__delete_elem(skel_->maps.exec_rules, &k, sizeof k, 0);
    }
    bpf_map__delete_elem(skel_->maps.policies, &id, sizeof id, 0);
}

void Guard::enroll_as(int pidfd, uint32_t id, const GuardPolicy& policy) {
    set_policy(id, policy);
    mbx_guard_mark m{id};
    if (bpf_map__update_elem(skel_->maps.marks, &pidfd, sizeof pidfd, &m, sizeof m, BPF_NOEXIST) < 0)
        throw UserError(std::string("guard: cannot mark the sandbox: ") + std::strerror(errno));
}

std::optional<uint32_t> Guard::mark_of(int pidfd) {
    mbx_guard_mark m{};
    if (bpf_map__lookup_elem(skel_->maps.marks, &pidfd, sizeof pidfd, &m, sizeof m, 0) < 0) return std::nullopt;
    return m.sandbox;
}

void Guard::change_policy(uint32_t id, const GuardPolicy& old, const GuardPolicy& now) {
    set_policy(id, now);  // the new exec rules are in before the old ones go
    auto kept = now.exec.rule_bits();
    for (auto& [path, bits] : old.exec.rule_bits())
        if (!kept.count(path)) {
            mbx_guard_exec_key k = exec_key(id, path);
            bpf_map__delete_elem(skel_->maps.exec_rules, &k, sizeof k, 0);
        }
}

void Guard::set_policy(uint32_t id, const GuardPolicy& policy) {
    auto fail = [](const char* what) {
        throw UserError(std::string("guard: cannot set the sandbox's ") + what + ": " + std::strerror(errno));
    };
    mbx_guard_policy p{};
    p.net_mode = policy.net.mode;
    for (auto& r : policy.net.rules)
        if (p.n_net_rules < MBX_GUARD_MAX_NET_RULES) p.net_rules[p.n_net_rules++] = r;
    for (uint64_t dev : policy.writable_devs) {
        unsigned k = kernel_dev(dev);
        if (std::find(p.writable_dev, p.writable_dev + p.n_writable, k) != p.writable_dev + p.n_writable) continue;
        if (p.n_writable >= MBX_GUARD_MAX_DEVS)
            throw UserError("more than " + std::to_string(MBX_GUARD_MAX_DEVS) + " writable file systems for the guard");
        p.writable_dev[p.n_writable++] = k;
    }
    for (auto& f : policy.writable_files) {
        if (p.n_files >= MBX_GUARD_MAX_FILES) break;
        p.writable_file[p.n_files].dev = kernel_dev(f.dev);
        p.writable_file[p.n_files++].ino = f.ino;
    }
    for (auto& b : policy.bind_roots) {
        mbx_guard_bind_key k{id, kernel_dev(b.dev), b.ino};
        uint8_t one = 1;
        if (bpf_map__update_elem(skel_->maps.bind_roots, &k, sizeof k, &one, sizeof one, BPF_ANY) < 0)
            fail("--bind paths");
        p.flags |= MBX_POLICY_BINDS;
    }
    for (auto& [path, bits] : policy.exec.rule_bits()) {
        mbx_guard_exec_key k = exec_key(id, path);
        if (bpf_map__update_elem(skel_->maps.exec_rules, &k, sizeof k, &bits, sizeof bits, BPF_ANY) < 0)
            fail("exec rules");
    }
    if (policy.complain) p.flags |= MBX_POLICY_COMPLAIN;
    if (policy.monitor) p.flags |= MBX_POLICY_MONITOR;
    if (!policy.exec.allow.empty()) p.exec_mode |= MBX_EXEC_ALLOWLIST;
    if (!policy.exec.deny.empty()) p.exec_mode |= MBX_EXEC_DENYLIST;
    if (policy.exec.has_dir_rules()) p.exec_mode |= MBX_EXEC_DIR_RULES;
    if (!policy.exec.interpreters.empty()) p.exec_mode |= MBX_EXEC_NO_SOCKET_INTERPRETER;
    // One element, replaced at once: every hook sees the old or the new policy.
    if (bpf_map__update_elem(skel_->maps.policies, &id, sizeof id, &p, sizeof p, BPF_ANY) < 0) fail("policy");
}

#else

struct Guard::Skeleton {};
struct Guard::Events {};

Guard::Guard(Skeleton* s, bool enforcing) : skel_(s), enforcing_(enforcing) {}

GuardProbe probe_guard() {
    GuardProbe p;
    p.lsm_listed = bpf_lsm_listed();
    p.failure = "this mbx was built without the guard";
    p.fix = "build with meson -Dguard=enabled (needs clang, bpftool and libbpf)";
    return p;
}

std::unique_ptr<Guard> Guard::load() {
    GuardProbe p = probe_guard();
    throw UserError("BPF LSM guard unavailable: " + p.failure + "; " + p.fix);
}

std::unique_ptr<Guard> Guard::load_audit(bool) { throw UserError("this mbx was built without the guard"); }
void Guard::record_network(pid_t, int) {}
void Guard::LinkCloser::operator()(::bpf_link*) const {}
std::unique_ptr<Guard> Guard::load_pinned(const std::string&) { return load(); }
uint32_t Guard::max_sandbox_id() { return 0; }

Guard::~Guard() = default;

void Guard::enroll(int, const GuardPolicy&) {}
void Guard::update_net(int, const GuardPolicy&, const GuardPolicy&) {}
void Guard::enroll_as(int, uint32_t, const GuardPolicy&) {}
void Guard::set_policy(uint32_t, const GuardPolicy&) {}
void Guard::change_policy(uint32_t, const GuardPolicy&, const GuardPolicy&) {}
std::optional<uint32_t> Guard::mark_of(int) { return std::nullopt; }
void Guard::forget(uint32_t, const GuardPolicy&) {}
bool Guard::is_marked(int) { return false; }
void Guard::start_events(GuardEventSink) {}
void Guard::stop_events() {}
int Guard::event_fd(GuardEventSink) { return -1; }
void Guard::consume_events() {}

#endif

}  // namespace mbx
