// The BPF LSM guard, from user space: loads and attaches bpf/guard.bpf.c
// through its skeleton (owned here, RAII), enrolls sandboxes, reads events.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "src/exec_policy.h"
#include "src/net_policy.h"

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

class Guard {
public:
    // Loads and attaches every program; throws UserError saying why not.
    static std::unique_ptr<Guard> load();
    // Only the tracing programs: marks and the exec audit, no denials (for
    // the Landlock fallback, where BPF LSM programs do not load; root only).
    static std::unique_ptr<Guard> load_audit();
    // Does it deny (BPF LSM), or only audit?
    bool enforcing() const { return enforcing_; }
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

    struct FileId {
        uint64_t dev, ino;
    };
    // What one sandbox may do besides the built-in allowlist (pipes, sockets,
    // ptys, /dev/null and friends).
    struct Policy {
        std::vector<uint64_t> writable_devs;  // whole file systems (st_dev): its view, its tmpfs mounts
        std::vector<FileId> writable_files;   // single files: its stdin, stdout, stderr
        std::vector<FileId> bind_roots;       // everything beneath these (--bind)
        NetPolicy net;
        ExecPolicy exec;
    };
    // Confines the process behind pidfd (and every task it creates from now
    // on) as sandbox `id`.
    void enroll(int pidfd, uint32_t id, const Policy& policy);

    // One audit record or denial, as a JSON line of the session's log (see mbx-log(1)).
    using EventSink = std::function<void(const std::string& json_line, bool denied)>;
    // Delivers the events of the sandboxes this guard confines to sink, from
    // a thread of its own, until stop_events() (which drains what is left).
    void start_events(EventSink sink);
    void stop_events();

private:
    struct Skeleton;
    struct Events;
    Guard(Skeleton* s, bool enforcing);
    Skeleton* skel_;
    bool enforcing_;
    std::unique_ptr<Events> events_;
};

}  // namespace mbx
