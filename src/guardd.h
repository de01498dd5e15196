// mbx-guardd: the guard for users other than root. It loads the BPF LSM guard
// once, listens on a unix socket, and enrolls a client's sandbox (given by
// pidfd) when that process belongs to the client's user and is not confined
// yet; then it sends the client that sandbox's audit records and denials.
// The guard only denies, so enrolling a user's own processes cannot give
// anyone more than they had. The guard's maps and links are pinned (see
// Guard::load_pinned): it outlives the daemon. Single-threaded: one poll loop, non-blocking
// sends (a client that does not read loses records, and never stalls it).
#pragma once

#include <string>

namespace mbx {

struct GuarddOptions {
    std::string socket_path;  // default: guard_socket_path()
    std::string pin_dir;      // default: /sys/fs/bpf/mbx
};

// Runs until SIGTERM or SIGINT; returns the exit status.
int run_guardd(const GuarddOptions& opt);

}  // namespace mbx
