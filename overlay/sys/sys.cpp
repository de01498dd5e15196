#include "overlay/sys/sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <optional>

namespace mbx::sys {

std::string fd_path(int fd) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
    return buf;
}

Result<UniqueFd> open_path(int dirfd, const char* name) {
    int fd = ::openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return last_errno();
    return UniqueFd(fd);
}

Result<UniqueFd> open_at(int dirfd, const char* name, int flags, mode_t mode) {
    int fd = ::openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) return last_errno();
    return UniqueFd(fd);
}

Result<UniqueFd> open_beneath(int root, const std::string& rel, int flags) {
    struct open_how how {};
    how.flags = static_cast<uint64_t>(flags | O_NOFOLLOW | O_CLOEXEC);
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    int fd = static_cast<int>(::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how));
    if (fd < 0) return last_errno();
    return UniqueFd(fd);
}

Result<UniqueFd> reopen(int opath_fd, int flags) {
    // The magic link is our own descriptor, not a path the sandbox controls.
    int fd = ::open(fd_path(opath_fd).c_str(), (flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL)) | O_CLOEXEC);
    if (fd < 0) return last_errno();
    return UniqueFd(fd);
}

Result<struct stat> stat_fd(int fd) {
    struct stat st;
    if (::fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) return last_errno();
    return st;
}

Result<struct stat> stat_at(int dirfd, const char* name) {
    struct stat st;
    if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return last_errno();
    return st;
}

Result<std::string> readlink_fd(int opath_fd) {
    std::string buf(256, '\0');
    for (;;) {
        ssize_t n = ::readlinkat(opath_fd, "", buf.data(), buf.size());
        if (n < 0) return last_errno();
        if (static_cast<size_t>(n) < buf.size()) {
            buf.resize(n);
            return buf;
        }
        buf.resize(buf.size() * 2);
    }
}

namespace {

// One xattr value or name list, read by call(buf, size) (a getxattr or
// listxattr of some form), the buffer grown as needed.
template <typename Call>
Result<std::string> read_xattr(Call call, size_t first) {
    std::string buf(first, '\0');
    for (;;) {
        ssize_t n = call(buf.data(), buf.size());
        if (n >= 0) {
            buf.resize(n);
            return buf;
        }
        if (errno != ERANGE) return last_errno();
        n = call(nullptr, 0);
        if (n < 0) return last_errno();
        buf.resize(n + 1);
    }
}

// getxattr/lgetxattr of a path.
Result<std::string> get_xattr_path(const std::string& p, const char* name, bool follow) {
    auto get = follow ? ::getxattr : ::lgetxattr;
    return read_xattr([&](char* b, size_t n) { return get(p.c_str(), name, b, n); }, 256);
}

// The names of a listxattr answer.
Result<std::vector<std::string>> split_names(Result<std::string> list) {
    if (!list) return Errno{list.error()};
    std::vector<std::string> names;
    for (size_t i = 0; i < list->size();) {
        std::string name(list->data() + i);
        i += name.size() + 1;
        if (!name.empty()) names.push_back(std::move(name));
    }
    return names;
}

Result<std::vector<std::string>> list_xattr_path(const std::string& p, bool follow) {
    auto list = follow ? ::listxattr : ::llistxattr;
    return split_names(read_xattr([&](char* b, size_t n) { return list(p.c_str(), b, n); }, 1024));
}

// dir/name through the directory's /proc link: an *at() form for the
// xattr calls on kernels without getxattrat/listxattrat (the l* calls do
// not follow name).
std::string at_path(int dirfd, const char* name) { return fd_path(dirfd) + "/" + name; }

// getxattrat(2) and listxattrat(2), Linux 6.13 (no glibc wrapper in Debian
// 12): one lookup of name in dir, where the /proc path costs a walk of
// /proc/self/fd first. Until the first ENOSYS.
constexpr long kGetxattrat = 464, kListxattrat = 465;
struct XattrArgs {  // struct xattr_args
    uint64_t value;
    uint32_t size;
    uint32_t flags;
};
std::atomic<bool> xattrat_missing{false};

// What a getxattrat/listxattrat call answered, or nothing on a kernel
// without them (remembered: the /proc path from then on).
template <typename Call>
std::optional<Result<std::string>> read_xattr_at(Call call, size_t first) {
    if (xattrat_missing.load(std::memory_order_relaxed)) return std::nullopt;
    auto r = read_xattr(call, first);
    if (!r && r.error() == ENOSYS) {
        xattrat_missing.store(true, std::memory_order_relaxed);
        return std::nullopt;
    }
    return r;
}

}  // namespace

Result<std::string> get_xattr(int fd, const char* name) { return get_xattr_path(fd_path(fd), name, true); }

Result<std::string> get_xattr_at(int dirfd, const char* name, const char* xname) {
    auto r = read_xattr_at(
        [&](char* b, size_t n) {
            XattrArgs a{reinterpret_cast<uintptr_t>(b), static_cast<uint32_t>(n), 0};
            return ::syscall(kGetxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, xname, &a, sizeof a);
        },
        256);
    return r ? *r : get_xattr_path(at_path(dirfd, name), xname, false);
}

Result<void> set_xattr(int fd, const char* name, std::string_view value, int flags) {
    if (::setxattr(fd_path(fd).c_str(), name, value.data(), value.size(), flags) < 0)
        return last_errno();
    return {};
}

Result<void> remove_xattr(int fd, const char* name) {
    if (::removexattr(fd_path(fd).c_str(), name) < 0) return last_errno();
    return {};
}

Result<std::vector<std::string>> list_xattr(int fd) { return list_xattr_path(fd_path(fd), true); }

Result<std::vector<std::string>> list_xattr_at(int dirfd, const char* name) {
    auto r = read_xattr_at(
        [&](char* b, size_t n) { return ::syscall(kListxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, b, n); }, 1024);
    return r ? split_names(*r) : list_xattr_path(at_path(dirfd, name), false);
}

Result<std::string> get_xattr_open(int fd, const char* name) {
    return read_xattr([&](char* b, size_t n) { return ::fgetxattr(fd, name, b, n); }, 256);
}

Result<std::vector<std::string>> list_xattr_open(int fd) {
    return split_names(read_xattr([&](char* b, size_t n) { return ::flistxattr(fd, b, n); }, 1024));
}

Result<void> rename_at(int olddir, const char* oldname, int newdir, const char* newname,
                       unsigned flags) {
    if (::renameat2(olddir, oldname, newdir, newname, flags) < 0) return last_errno();
    return {};
}

Result<std::vector<DirEntry>> read_dir(int dirfd) {
    int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return last_errno();
    DIR* d = ::fdopendir(fd);
    if (!d) {
        int e = errno;
        ::close(fd);
        return Errno{e};
    }
    std::vector<DirEntry> out;
    errno = 0;
    while (struct dirent* de = ::readdir(d)) {
        if (de->d_name[0] == '.' &&
            (de->d_name[1] == 0 || (de->d_name[1] == '.' && de->d_name[2] == 0)))
            continue;
        out.push_back({de->d_name, de->d_ino, de->d_type});
    }
    int e = errno;
    ::closedir(d);
    if (e) return Errno{e};
    return out;
}

Result<void> remove_tree_at(int dirfd, const char* name) {
    if (::unlinkat(dirfd, name, 0) == 0) return {};
    if (errno != EISDIR && errno != EPERM) return last_errno();
    int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return last_errno();
    UniqueFd dir(fd);
    auto entries = read_dir(dir.get());
    if (!entries) return Errno{entries.error()};
    for (auto& e : *entries) {
        auto r = remove_tree_at(dir.get(), e.name.c_str());
        if (!r && r.error() != ENOENT) return r;
    }
    if (::unlinkat(dirfd, name, AT_REMOVEDIR) < 0) return last_errno();
    return {};
}

}  // namespace mbx::sys
