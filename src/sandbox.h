// The inside of a sandbox: what the first process of the new namespaces does
// (see launcher.cpp for the outside). It mounts the FUSE view, builds /proc,
// /dev, /sys and /tmp on it, pivots into it, then runs the command as the
// namespace's init: reaping orphans, passing on signals, and emulating mknod
// of devices (which the kernel refuses to every user namespace).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "src/landlock.h"

namespace mbx {

struct SandboxPlan {
    std::vector<std::string> argv;
    std::string cwd;
    std::vector<std::string> binds;  // host paths shown at the same place, writable
    std::vector<std::string> writable, readonly;  // see write_rules.h
    bool keep_tmp = false;
    bool net_none = false;
    bool emulate_mknod = false;  // fake root: devices become layer entries
    uid_t inside_uid = 0;
    gid_t inside_gid = 0;
    bool may_setgroups = false;
    // The launcher confines the init with the BPF guard before the command
    // runs: the init reports its writable file systems and waits for "E".
    bool bpf_guard = false;
    // The fallback guard instead: the init refuses the mount family, bpf(),
    // modules, kexec, keyctl and perf_event_open (seccomp), and the command
    // restricts itself with Landlock just before it runs.
    bool fallback_guard = false;
    LandlockRules landlock;
    // The ids mapped into the sandbox's user namespace, as (first, count) seen
    // inside: the nested namespace that locks the mounts maps them onto themselves.
    std::vector<std::pair<uint32_t, uint32_t>> uid_ranges;
    std::vector<std::pair<uint32_t, uint32_t>> gid_ranges;
};

// Runs in the child created with the new namespaces; never returns. sock is
// the socket to the launcher: it first waits for "go" (id maps written),
// then sends back the /dev/fuse descriptor it mounted ("F"); with the BPF guard,
// once its mounts are made it sends "R d:DEV... b:DEV:INO..." (the st_dev of
// every file system it may write, and the root of every --bind) and waits
// for "E" (enrolled) before running the command. With either guard the init
// then reports there what it refused ("D HOOK PID COMM\nPATH").
[[noreturn]] void sandbox_main(const SandboxPlan& plan, int sock);

}  // namespace mbx
