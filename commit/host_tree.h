// Host-side file operations of commit and revert, all relative to directory
// fds reached without following symlinks.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "overlay/sys/result.h"
#include "overlay/sys/unique_fd.h"

namespace mbx::commit {

// The directory at an absolute path below root ("/" = root itself), every
// component a real directory: a symlink anywhere on the way gives ELOOP.
Result<UniqueFd> open_dir_beneath(int root, const std::string& path);

// Owner (-1 leaves it), permission bits (skipped for symlinks and when mode
// is 0) and times (-1 leaves them) of dir/name, not following a symlink there.
// The owner comes first: chown clears set-id bits.
Result<void> set_meta_at(int dir, const char* name, mode_t mode, int64_t uid, int64_t gid,
                         int64_t atime_ns, int64_t mtime_ns);

// Makes the user.* extended attributes of dst those of src (the layer's own
// records aside): sets what src has, removes what only dst has.
Result<void> sync_user_xattrs(int src, int dst);

// Copies dir/name (file, symlink, node or whole tree) to to_dir/to_name,
// with modes, times, xattrs and, as root, owners; files are fsynced.
Result<void> copy_tree(int dir, const char* name, int to_dir, const char* to_name);

// Moves dir/name to to_dir/to_name when both are on one filesystem, else
// copies it; the source stays in place either way unless moved. Returns
// whether it moved.
Result<bool> move_or_copy(int dir, const char* name, int to_dir, const char* to_name);

// fsync of a directory fd; O_PATH fds (directories we may not read) are skipped.
void sync_dir(int dir);

}  // namespace mbx::commit
