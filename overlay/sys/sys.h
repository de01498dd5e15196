// Thin typed wrappers over the raw syscalls the overlay and commit code use.
// Every fd comes back owned (UniqueFd) and O_CLOEXEC; every path argument is
// relative to a directory fd and never follows a final symlink unless the name says so.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "overlay/sys/result.h"
#include "overlay/sys/unique_fd.h"

namespace mbx::sys {

// O_PATH handle to dirfd/name, not following a final symlink.
Result<UniqueFd> open_path(int dirfd, const char* name);
// Real open relative to dirfd; O_NOFOLLOW and O_CLOEXEC always added.
Result<UniqueFd> open_at(int dirfd, const char* name, int flags, mode_t mode = 0);
// Opens rel below root without following any symlink (or magic link) on the
// way, final component included: for host and layer paths that had none when
// the sandbox saw them, so that one planted since cannot redirect the open.
Result<UniqueFd> open_beneath(int root, const std::string& rel, int flags);
// Re-open an O_PATH fd with real access flags (through /proc/self/fd, the
// only way to upgrade an O_PATH descriptor).
Result<UniqueFd> reopen(int opath_fd, int flags);
// "/proc/self/fd/N" for an fd, for the calls that have no *at() form.
std::string fd_path(int fd);

// Times as nanoseconds since the epoch, and back (negative: UTIME_OMIT).
inline int64_t to_ns(const struct timespec& t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }
inline struct timespec from_ns(int64_t ns) {
    if (ns < 0) return {0, UTIME_OMIT};
    return {time_t(ns / 1000000000), long(ns % 1000000000)};
}

Result<struct stat> stat_fd(int fd);
Result<struct stat> stat_at(int dirfd, const char* name);

Result<std::string> readlink_fd(int opath_fd);

// Extended attributes of the object an fd refers to (O_PATH fds allowed;
// symlinks answer ENODATA/EPERM as the kernel does for user.* names).
Result<std::string> get_xattr(int fd, const char* name);
Result<void> set_xattr(int fd, const char* name, std::string_view value, int flags = 0);
Result<void> remove_xattr(int fd, const char* name);
Result<std::vector<std::string>> list_xattr(int fd);
// The same for dir/name without opening it; a symlink there is not followed.
Result<std::string> get_xattr_at(int dirfd, const char* name, const char* xname);
Result<std::vector<std::string>> list_xattr_at(int dirfd, const char* name);
// The same for an fd opened for I/O (not O_PATH): the f* calls, no lookup in /proc.
Result<std::string> get_xattr_open(int fd, const char* name);
Result<std::vector<std::string>> list_xattr_open(int fd);

Result<void> rename_at(int olddir, const char* oldname, int newdir, const char* newname,
                       unsigned flags = 0);

struct DirEntry {
    std::string name;
    ino_t ino;
    unsigned char type;  // DT_*
};
// Every entry of a directory except "." and "..".
Result<std::vector<DirEntry>> read_dir(int dirfd);

// Removes dirfd/name and, if it is a directory, everything under it.
Result<void> remove_tree_at(int dirfd, const char* name);

}  // namespace mbx::sys
