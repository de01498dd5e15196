#include "commit/host_tree.h"

#include <fcntl.h>
#include <unistd.h>

#include "overlay/copy_data.h"
#include "overlay/sys/sys.h"

namespace mbx::commit {

namespace {


}  // namespace

Result<UniqueFd> open_dir_beneath(int root, const std::string& path) {
    std::string rel = path == "/" ? "." : path.substr(1);
    auto fd = sys::open_beneath(root, rel, O_RDONLY | O_DIRECTORY);
    if (!fd && fd.error() == EACCES) return sys::open_beneath(root, rel, O_PATH | O_DIRECTORY);
    return fd;
}

Result<void> set_meta_at(int dir, const char* name, mode_t mode, int64_t uid, int64_t gid, int64_t atime_ns,
                         int64_t mtime_ns) {
    if ((uid >= 0 || gid >= 0) &&
        ::fchownat(dir, name, uid_t(uid < 0 ? -1 : uid), gid_t(gid < 0 ? -1 : gid), AT_SYMLINK_NOFOLLOW) < 0)
        return last_errno();
    if (mode && !S_ISLNK(mode) && ::fchmodat(dir, name, mode & 07777, AT_SYMLINK_NOFOLLOW) < 0) return last_errno();
    if (atime_ns >= 0 || mtime_ns >= 0) {
        struct timespec ts[2] = {sys::from_ns(atime_ns), sys::from_ns(mtime_ns)};
        if (::utimensat(dir, name, ts, AT_SYMLINK_NOFOLLOW) < 0) return last_errno();
    }
    return {};
}

Result<void> sync_user_xattrs(int src, int dst) {
    auto want = copyup::user_xattrs(src);
    for (auto& [name, value] : copyup::user_xattrs(dst))
        if (!want.count(name))
            if (auto r = sys::remove_xattr(dst, name.c_str()); !r && r.error() != ENODATA) return r;
    for (auto& [name, value] : want)
        if (auto r = sys::set_xattr(dst, name.c_str(), value); !r) return r;
    return {};
}

Result<void> copy_tree(int dir, const char* name, int to_dir, const char* to_name) {
    auto st = sys::stat_at(dir, name);
    if (!st) return Errno{st.error()};
    bool root = ::geteuid() == 0;
    int64_t uid = root ? int64_t(st->st_uid) : -1, gid = root ? int64_t(st->st_gid) : -1;
    mode_t type = st->st_mode & S_IFMT;
    if (type == S_IFREG) {
        auto src = sys::open_at(dir, name, O_RDONLY);
        if (!src) return Errno{src.error()};
        auto dst = sys::open_at(to_dir, to_name, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (!dst) return Errno{dst.error()};
        if (auto r = copyup::copy_file_data(src->get(), dst->get(), st->st_size); !r) return Errno{r.error()};
        (void)copyup::copy_xattrs(src->get(), dst->get());
        if (::fsync(dst->get()) < 0) return last_errno();
    } else if (type == S_IFDIR) {
        if (::mkdirat(to_dir, to_name, 0700) < 0) return last_errno();
        auto src = sys::open_at(dir, name, O_RDONLY | O_DIRECTORY);
        auto dst = sys::open_at(to_dir, to_name, O_RDONLY | O_DIRECTORY);
        if (!src) return Errno{src.error()};
        if (!dst) return Errno{dst.error()};
        auto entries = sys::read_dir(src->get());
        if (!entries) return Errno{entries.error()};
        for (auto& e : *entries)
            if (auto r = copy_tree(src->get(), e.name.c_str(), dst->get(), e.name.c_str()); !r) return r;
        (void)copyup::copy_xattrs(src->get(), dst->get());
        sync_dir(dst->get());
    } else if (type == S_IFLNK) {
        auto link = sys::open_path(dir, name);
        if (!link) return Errno{link.error()};
        auto target = sys::readlink_fd(link->get());
        if (!target) return Errno{target.error()};
        if (::symlinkat(target->c_str(), to_dir, to_name) < 0) return last_errno();
    } else {
        if (::mknodat(to_dir, to_name, st->st_mode, st->st_rdev) < 0) return last_errno();
    }
    return set_meta_at(to_dir, to_name, st->st_mode, uid, gid, sys::to_ns(st->st_atim), sys::to_ns(st->st_mtim));
}

Result<bool> move_or_copy(int dir, const char* name, int to_dir, const char* to_name) {
    if (::renameat(dir, name, to_dir, to_name) == 0) return true;
    if (errno != EXDEV) return last_errno();
    if (auto r = copy_tree(dir, name, to_dir, to_name); !r) {
        (void)sys::remove_tree_at(to_dir, to_name);
        return Errno{r.error()};
    }
    return false;
}

void sync_dir(int dir) {
    int flags = ::fcntl(dir, F_GETFL);
    if (flags >= 0 && !(flags & O_PATH)) ::fsync(dir);
}

}  // namespace mbx::commit
