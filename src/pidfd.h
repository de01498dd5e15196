// Processes by pidfd: a descriptor that keeps naming the same process (its
// pid cannot be reused while the process lives), for the guard's enrollment.
#pragma once

#include <sys/types.h>

#include <optional>

#include "overlay/sys/unique_fd.h"

namespace mbx {

// pidfd_open(2), close-on-exec; an empty fd on failure (errno set).
UniqueFd open_pidfd(pid_t pid);
// The pid (in our PID namespace) of the process behind pidfd, if it is a
// pidfd of a live process.
std::optional<pid_t> pidfd_pid(int pidfd);
// Its real uid, read while the pidfd shows it alive (so that it is that
// process's, not a successor's under the same pid).
std::optional<uid_t> pidfd_uid(int pidfd);

}  // namespace mbx
