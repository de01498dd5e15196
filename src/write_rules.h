// [fs] writable and readonly of a profile (mbx-profile(5)), applied inside the
// sandbox with mounts: the view's root is remounted read-only when there are
// writable paths, each writable path is a bind mount of itself made writable
// again, each readonly path one made read-only. The kernel then answers
// EROFS, for every way of writing (mmap included), at no cost per call; the
// nested user namespace (lock_mounts) keeps the flags from being lifted.
#pragma once

#include <string>
#include <vector>

namespace mbx {

// Runs in the sandbox's init after pivot_root, before lock_mounts. Absent
// writable paths are made (directories, in the layer); a symbolic link on the
// way of any path is refused (an earlier run may have planted it in the
// layer). Returns an error message, or "" when done.
std::string restrict_writes(const std::vector<std::string>& writable, const std::vector<std::string>& readonly);

}  // namespace mbx
