// The BPF LSM guard, from user space: loads and attaches bpf/guard.bpf.c
// through its skeleton (owned here, RAII), enrolls sandboxes, reads events.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "src/exec_policy.h"
#include "src/net_policy.h"

struct bpf_link;  // libbpf's

namespace mbx {

// Why BPF LSM is or is not usable here, found by loading and attaching the
// guard (not only by reading the LSM list).
struct GuardProbe {
    bool built = false;       // this mbx was built with the guard
    bool lsm_listed = false;  // "bpf" in /sys/kernel/security/lsm
    bool usable = false;      // loaded and attached
    std::string failure;      // what failed ("load: Operation not permitted")
    std::string fix;          // how to fix it
};
GuardProbe probe_guard();
// Is "bpf" in the kernel's LSM list? Without it the guard cannot work (with
// it, it still may not: probe_guard() and Guard::load() find out).
bool bpf_lsm_listed();

// What one sandbox may do besides the built-in allowlist (pipes, sockets,
// ptys, /dev/null and friends).
struct GuardPolicy {
    struct FileId {
        uint64_t dev, ino;
    };
    std::vector<uint64_t> writable_devs;  // whole file systems (st_dev): its view, its tmpfs mounts
    std::vector<FileId> writable_files;   // single files: its stdin, stdout, stderr
    std::vector<FileId> bind_roots;       // everything beneath these (--bind)
    NetPolicy net;
    ExecPolicy exec;
    // --guard complain: every would-be denial is logged, none is enforced.
    bool complain = false;
    // --monitor: the network addresses it may use are recorded too.
    bool monitor = false;
};

// One audit record or denial, as a JSON line of the session's log (see
// mbx-log(1)), and the sandbox it is about.
using GuardEventSink = std::function<void(const std::string& json_line, bool denied, uint32_t sandbox)>;

// What mbx run needs of a guard: the BPF programs loaded by mbx itself
// (Guard), or by mbx-guardd on its behalf (GuardClient).
class GuardLink {
public:
    virtual ~GuardLink() = default;
    // Does it deny (BPF LSM), or only audit execs?
    virtual bool enforcing() const = 0;
    // Confines the process behind pidfd (and every task it creates from now
    // on) under policy; throws UserError saying why not.
    virtual void enroll(int pidfd, const GuardPolicy& policy) = 0;
    // Puts now's network rules in force for the sandbox behind pidfd while
    // it runs (old: its policy so far; the rest of now is old's); throws
    // UserError saying why not.
    virtual void update_net(int pidfd, const GuardPolicy& old, const GuardPolicy& now) = 0;
    // Delivers the sandbox's events to sink, from a thread of its own, until
    // stop_events() (which drains what is left).
    virtual void start_events(GuardEventSink sink) = 0;
    virtual void stop_events() = 0;
};

class Guard : public GuardLink {
public:
    // Loads and attaches every program; throws UserError saying why not.
    static std::unique_ptr<Guard> load();
    // Only the tracing programs: marks and the exec audit, no denials (for
    // the Landlock fallback, where BPF LSM programs do not load; root only).
    // With network, also the cgroup programs record_network() attaches.
    static std::unique_ptr<Guard> load_audit(bool network = false);
    // Records (once each) the IP addresses the processes of a cgroup connect,
    // send to and bind, as the events of the sandbox whose init is
    // sandbox_init: cgroup sock_addr programs attached to cgroup_dir (a
    // cgroup v2 directory of the sandbox's own) until this Guard goes.
    // Needs load_audit(true); throws UserError saying why not.
    void record_network(pid_t sandbox_init, int cgroup_dir);
    // For mbx-guardd: the maps are pinned in dir (a bpffs directory) and
    // reused from an earlier load, and the links are pinned there too, so the
    // programs stay attached when this process exits (fail closed). The new
    // programs are attached before the pinned old ones are detached: both
    // only deny, so the overlap leaves no gap.
    static std::unique_ptr<Guard> load_pinned(const std::string& dir);
    // The highest sandbox id with a policy (from an earlier load), or 0.
    uint32_t max_sandbox_id();
    ~Guard() override;
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

    bool enforcing() const override { return enforcing_; }
    // As sandbox id = the pidfd's pid (one sandbox per mbx run).
    void enroll(int pidfd, const GuardPolicy& policy) override;
    void update_net(int pidfd, const GuardPolicy& old, const GuardPolicy& now) override;
    // As sandbox id (mbx-guardd numbers them).
    void enroll_as(int pidfd, uint32_t id, const GuardPolicy& policy);
    // Replaces sandbox id's policy (old: what it was): live, no restart.
    void change_policy(uint32_t id, const GuardPolicy& old, const GuardPolicy& now);
    // The sandbox the process behind pidfd is confined in, if any.
    std::optional<uint32_t> mark_of(int pidfd);
    // Removes sandbox id's policy (its tasks are gone).
    void forget(uint32_t id, const GuardPolicy& policy);
    // Is the process behind pidfd confined already?
    bool is_marked(int pidfd);
    void start_events(GuardEventSink sink) override;
    void stop_events() override;
    // For a caller with its own poll loop (mbx-guardd): events go to sink
    // when consume_events() is called; poll the returned descriptor.
    int event_fd(GuardEventSink sink);
    void consume_events();

private:
    struct Skeleton;
    struct Events;
    Guard(Skeleton* s, bool enforcing);
    void set_policy(uint32_t id, const GuardPolicy& policy);  // all but the mark
    Skeleton* skel_;
    bool enforcing_;
    std::unique_ptr<Events> events_;
    struct LinkCloser {
        void operator()(::bpf_link* l) const;  // bpf_link__destroy: detaches it
    };
    using LinkRef = std::unique_ptr<::bpf_link, LinkCloser>;
    std::vector<LinkRef> cgroup_links_;  // record_network()'s
};

}  // namespace mbx
