// Name resolution and attribute presentation of the merged view.
#include "overlay/filesystem.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <unistd.h>

#include <cstring>
#include <xxhash.h>

#include "overlay/sys/sys.h"

namespace mbx::overlay {

Filesystem::Filesystem(Config cfg) : cfg_(std::move(cfg)) {
    root_ = std::make_shared<Inode>();
    root_->upper.reset(::fcntl(cfg_.upper_root.get(), F_DUPFD_CLOEXEC, 3));
    root_->lower.reset(::fcntl(cfg_.lower_root.get(), F_DUPFD_CLOEXEC, 3));
    root_->type = S_IFDIR;
    root_->opaque = false;
    root_->nlookup = 1;
    if (auto st = sys::stat_fd(root_->lower.get())) root_->ino = present_ino(st->st_dev, st->st_ino);
}

Inode* Filesystem::inode(uint64_t nodeid) const {
    return nodeid == FUSE_ROOT_ID ? root_.get() : reinterpret_cast<Inode*>(nodeid);
}

std::shared_ptr<Inode> Filesystem::shared(uint64_t nodeid) const {
    // The kernel holds a reference, so the Inode is live and owned by the table.
    return inode(nodeid)->shared_from_this();
}

bool Filesystem::hidden(const struct stat& st) const {
    for (auto& [dev, ino] : cfg_.hidden)
        if (st.st_dev == dev && st.st_ino == ino) return true;
    return false;
}

uint64_t Filesystem::present_ino(dev_t dev, ino_t ino) {
    // All of the view shares one st_dev, so objects of different host
    // filesystems are told apart by an index in the top byte (like overlayfs xino).
    std::lock_guard lock(dev_mu_);
    size_t i = 0;
    for (; i < devs_.size(); ++i)
        if (devs_[i] == dev) break;
    if (i == devs_.size()) devs_.push_back(dev);
    return (uint64_t(i & 0x7f) << 56) ^ uint64_t(ino);
}

std::optional<layer::Override> Filesystem::read_override(int upper_fd, mode_t real_mode) {
    if (!S_ISREG(real_mode) && !S_ISDIR(real_mode)) return std::nullopt;
    auto v = sys::get_xattr(upper_fd, layer::kOverrideXattr);
    if (!v) return std::nullopt;
    return layer::parse_override(*v, real_mode);
}

layer::Override Filesystem::override_for_new(uid_t uid, gid_t gid, mode_t mode, dev_t rdev,
                                             const Inode& parent) {
    layer::Override o;
    o.uid = uid;
    o.gid = gid;
    o.mode = mode;
    o.rdev = rdev;
    // BSD group semantics under a setgid directory, as every Linux filesystem does.
    mode_t pmode = parent.ovr ? parent.ovr->mode : 0;
    uint32_t pgid = parent.ovr ? parent.ovr->gid : 0;
    if (!parent.ovr) {
        if (auto st = sys::stat_fd(const_cast<Inode&>(parent).fd_for_attr())) {
            pmode = st->st_mode;
            pgid = cfg_.ids.gid(st->st_gid);
        }
    }
    if (pmode & S_ISGID) {
        o.gid = pgid;
        if (S_ISDIR(mode)) o.mode |= S_ISGID;
    }
    return o;
}

Result<Resolved> Filesystem::resolve(Inode& parent, const char* name) {
    Resolved r;
    int upper, lower;
    bool opaque;
    {
        std::lock_guard lock(parent.mu);
        upper = parent.upper.get();
        lower = parent.lower.get();
        opaque = parent.opaque;
    }
    if (upper >= 0) {
        auto st = sys::stat_at(upper, name);
        if (st) {
            if (layer::is_whiteout(upper, name, *st)) {
                r.whiteout = true;
                return r;
            }
            r.upper_exists = true;
            r.upper_st = *st;
        } else if (st.error() != ENOENT) {
            return Errno{st.error()};
        }
    }
    if (lower >= 0 && !opaque) {
        // Below an upper non-directory the lower entry is irrelevant, and an
        // opaque upper directory hides it too.
        if (r.upper_exists && !S_ISDIR(r.upper_st.st_mode)) return r;
        auto st = sys::stat_at(lower, name);
        if (st) {
            if (!hidden(*st)) {
                r.lower_exists = true;
                r.lower_st = *st;
            }
        } else if (st.error() != ENOENT && st.error() != EACCES && st.error() != ENOTDIR) {
            if (!r.upper_exists) return Errno{st.error()};
        } else if (st.error() == EACCES && !r.upper_exists) {
            return Errno{EACCES};
        }
    }
    return r;
}

Result<std::shared_ptr<Inode>> Filesystem::lookup(const std::shared_ptr<Inode>& parent,
                                                  const char* name) {
    auto res = resolve(*parent, name);
    if (!res) return Errno{res.error()};
    Resolved& r = *res;
    if (!r.exists()) return Errno{ENOENT};

    int pupper, plower;
    {
        std::lock_guard lock(parent->mu);
        pupper = parent->upper.get();
        plower = parent->lower.get();
    }
    InodeKey key;
    const struct stat& st = r.upper_exists ? r.upper_st : r.lower_st;
    key.dev = st.st_dev;
    key.ino = st.st_ino;
    if (!r.upper_exists && !S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        uint64_t seed = reinterpret_cast<uintptr_t>(parent.get());
        key.tag = XXH3_64bits_withSeed(name, std::strlen(name), seed) | 1;
    }
    bool merged_dir = r.upper_exists && S_ISDIR(r.upper_st.st_mode) && r.lower_exists &&
                      S_ISDIR(r.lower_st.st_mode);

    // Open the handles before taking the table lock; they are dropped if the
    // Inode already exists.
    UniqueFd ufd, lfd;
    if (r.upper_exists) {
        auto fd = sys::open_path(pupper, name);
        if (!fd) return Errno{fd.error()};
        ufd = std::move(*fd);
    }
    if (r.lower_exists && (!r.upper_exists || merged_dir)) {
        auto fd = sys::open_path(plower, name);
        if (!fd) return Errno{fd.error()};
        lfd = std::move(*fd);
    }
    std::optional<layer::Override> ovr;
    bool opaque = false;
    if (r.upper_exists) {
        ovr = read_override(ufd.get(), r.upper_st.st_mode);
        if (S_ISDIR(r.upper_st.st_mode)) opaque = layer::is_opaque(ufd.get());
    }
    uint64_t ino = lfd ? present_ino(r.lower_st.st_dev, r.lower_st.st_ino)
                       : present_ino(r.upper_st.st_dev, r.upper_st.st_ino);
    mode_t type = ovr ? (ovr->mode & S_IFMT) : (st.st_mode & S_IFMT);

    auto in = table_.find_or_insert(key, [&] {
        auto n = std::make_shared<Inode>();
        n->upper = std::move(ufd);
        n->lower = std::move(lfd);
        n->parent = parent;
        n->name = name;
        n->type = type;
        n->opaque = opaque || (S_ISDIR(type) && !n->lower && r.upper_exists);
        n->ovr = ovr;
        n->ino = ino;
        return n;
    });
    if (!in) return Errno{ENOMEM};
    return in;
}

Result<struct stat> Filesystem::attr(Inode& in) {
    int ufd, lfd;
    std::optional<layer::Override> ovr;
    uint64_t ino;
    mode_t type;
    {
        std::lock_guard lock(in.mu);
        ufd = in.upper.get();
        lfd = in.lower.get();
        ovr = in.ovr;
        ino = in.ino;
        type = in.type;
    }
    // A merged directory without its own record (the layer root) shows the host's.
    bool use_upper = ufd >= 0 && (ovr || lfd < 0 || !S_ISDIR(type));
    auto st = sys::stat_fd(use_upper ? ufd : lfd);
    if (!st) return st;
    if (use_upper && ovr) {
        st->st_uid = ovr->uid;
        st->st_gid = ovr->gid;
        st->st_mode = ovr->mode;
        if (S_ISCHR(ovr->mode) || S_ISBLK(ovr->mode)) {
            st->st_rdev = ovr->rdev;
            st->st_size = 0;
        } else if (S_ISFIFO(ovr->mode) || S_ISSOCK(ovr->mode)) {
            st->st_size = 0;
        }
    } else {
        st->st_uid = cfg_.ids.uid(st->st_uid);
        st->st_gid = cfg_.ids.gid(st->st_gid);
    }
    // Merged directories count links on two filesystems; 1 means "unknown"
    // to find(1) and friends, as on overlayfs.
    if (S_ISDIR(st->st_mode) && ufd >= 0 && lfd >= 0) st->st_nlink = 1;
    st->st_ino = ino;
    return st;
}

}  // namespace mbx::overlay
