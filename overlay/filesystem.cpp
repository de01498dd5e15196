// Handles, name resolution and attribute presentation of the merged view.
#include "overlay/filesystem.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstring>

#include "overlay/copy_data.h"
#include "overlay/sys/sys.h"

namespace mbx::overlay {

namespace {
FdRef share(UniqueFd fd) { return fd ? std::make_shared<const UniqueFd>(std::move(fd)) : nullptr; }

// An Inode for parent/name as a lookup or a creation finds it; handles come later.
std::shared_ptr<Inode> new_inode(const std::shared_ptr<Inode>& parent, const char* name, bool has_upper,
                                 bool has_lower, mode_t type, const std::optional<layer::Override>& ovr, bool opaque,
                                 uint64_t ino) {
    auto n = std::make_shared<Inode>();
    n->has_upper = has_upper;
    n->has_lower = has_lower;
    n->parent = parent;
    n->name = name;
    n->type = type;
    n->opaque = opaque;
    n->ovr = ovr;
    n->ino = ino;
    return n;
}
}  // namespace

Filesystem::Filesystem(Config cfg) : cfg_(std::move(cfg)), fd_cache_(cfg_.fd_budget) {
    ::clock_gettime(CLOCK_REALTIME, &started_);
    root_ = std::make_shared<Inode>();
    root_->upper = share(UniqueFd(::fcntl(cfg_.upper_root.get(), F_DUPFD_CLOEXEC, 3)));
    root_->lower = share(UniqueFd(::fcntl(cfg_.lower_root.get(), F_DUPFD_CLOEXEC, 3)));
    root_->has_upper = root_->has_lower = true;
    root_->pinned = true;
    root_->type = S_IFDIR;
    root_->nlookup = 1;
    if (auto st = sys::stat_fd(root_->lower->get())) root_->ino = present_ino(st->st_dev, st->st_ino);
    struct statfs sf;
    if (::fstatfs(cfg_.upper_root.get(), &sf) == 0) {
        switch (static_cast<unsigned long>(sf.f_type)) {
        case NFS_SUPER_MAGIC:
        case SMB_SUPER_MAGIC:
        case 0xff534d42UL:  // CIFS
        case 0xfe534d42UL:  // SMB2
        case 0x00c36400UL:  // Ceph
        case FUSE_SUPER_MAGIC:
            flush_on_close_ = true;
            break;
        default:
            break;
        }
    }
}

Filesystem::~Filesystem() = default;

Inode* Filesystem::inode(uint64_t nodeid) const {
    return nodeid == FUSE_ROOT_ID ? root_.get() : reinterpret_cast<Inode*>(nodeid);
}

std::shared_ptr<Inode> Filesystem::shared(uint64_t nodeid) const {
    // The kernel holds a reference, so the Inode is live and owned by the table.
    return inode(nodeid)->shared_from_this();
}

Result<Fds> Filesystem::fds(Inode& in) {
    // The handles returned are the caller's to hold, whether or not the cache
    // keeps them. If eviction drops the handle we did not re-open between our
    // looks, a second round re-opens both.
    for (int round = 0; round < 2; ++round) {
        std::shared_ptr<Inode> parent;
        std::string name;
        bool want_u, want_l;
        {
            std::lock_guard lock(in.mu);
            in.referenced.store(true, std::memory_order_relaxed);
            want_u = in.has_upper && (!in.upper || round > 0);
            want_l = in.has_lower && (!in.lower || round > 0);
            if (!want_u && !want_l) return Fds{in.upper, in.lower};
            parent = in.parent;
            name = in.name;
        }
        if (!parent) return Errno{ESTALE};
        auto pf = fds(*parent);
        if (!pf) return pf;
        FdRef u, l;
        if (want_u) {
            auto fd = sys::open_path(pf->u(), name.c_str());
            if (!fd) return Errno{fd.error() == ENOENT ? ESTALE : fd.error()};
            u = share(std::move(*fd));
        }
        if (want_l) {
            // A host entry replaced since the lookup shows its new self (host
            // changes stay visible); one that vanished is stale.
            auto fd = sys::open_path(pf->l(), name.c_str());
            if (!fd) return Errno{fd.error() == ENOENT ? ESTALE : fd.error()};
            l = share(std::move(*fd));
        }
        Fds out;
        {
            std::lock_guard lock(in.mu);
            size_t added = 0;
            if (u && !in.upper && in.has_upper) {
                in.upper = u;
                ++added;
            }
            if (l && !in.lower && in.has_lower) {
                in.lower = l;
                ++added;
            }
            if (added) fd_cache_.added(in, added);
            out.upper = in.has_upper ? (u ? u : in.upper) : nullptr;
            out.lower = in.has_lower ? (l ? l : in.lower) : nullptr;
            if ((in.has_upper && !out.upper) || (in.has_lower && !out.lower)) continue;
        }
        fd_cache_.trim();
        return out;
    }
    return Errno{ESTALE};
}

void Filesystem::set_upper(Inode& in, UniqueFd fd) {
    in.has_upper = true;
    if (!in.upper) {
        in.upper = share(std::move(fd));
        fd_cache_.added(in, 1);
    }
}

std::string Filesystem::path_of(Inode& in) {
    std::vector<std::string> parts;
    std::shared_ptr<Inode> cur = in.shared_from_this();
    for (;;) {
        std::shared_ptr<Inode> parent;
        {
            std::lock_guard lock(cur->mu);
            parent = cur->parent;
            if (parent) parts.push_back(cur->name);
        }
        if (!parent) break;
        cur = parent;
    }
    std::string path;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) path += "/" + *it;
    return path.empty() ? "/" : path;
}

void Filesystem::pin(Inode& in) {
    {
        std::lock_guard lock(in.mu);
        in.pinned = true;  // first, so eviction cannot take what fds() brings
    }
    (void)fds(in);  // the handles must be there before the name goes
}

void Filesystem::pin_upper_entry(int upper_dir, const char* name) {
    // Called before the entry is removed or replaced.
    auto st = sys::stat_at(upper_dir, name);
    if (!st) return;
    if (auto in = table_.find(InodeKey{st->st_dev, st->st_ino, 0})) {
        pin(*in);
        table_.unhash(in.get());
    }
}

bool Filesystem::hidden(const struct stat& st) const {
    for (auto& h : cfg_.hidden)
        if (st.st_dev == h.dev && st.st_ino == h.ino) return true;
    return false;
}

bool Filesystem::maybe_hidden(const std::string& name) const {
    for (auto& h : cfg_.hidden)
        if (h.name == name) return true;
    return false;
}

uint64_t Filesystem::present_ino(dev_t dev, ino_t ino) {
    // All of the view shares one st_dev, so objects of different host
    // filesystems are told apart by an index in the top byte (like overlayfs xino).
    const uint64_t want = uint64_t(dev) + 1;
    size_t i = 0;
    for (; i < devs_.size(); ++i) {
        uint64_t seen = devs_[i].load(std::memory_order_acquire);
        if (seen == 0 && devs_[i].compare_exchange_strong(seen, want, std::memory_order_acq_rel)) break;
        if (seen == want) break;
    }
    // More than 128 host filesystems share the last index (inode numbers may then collide).
    return (uint64_t(std::min<size_t>(i, devs_.size() - 1)) << 56) ^ uint64_t(ino);
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
    if (parent.ovr && (parent.ovr->mode & S_ISGID)) {
        o.gid = parent.ovr->gid;
        if (S_ISDIR(mode)) o.mode |= S_ISGID;
    }
    return o;
}

Result<Resolved> Filesystem::resolve(Inode& parent, const char* name, bool under_file) {
    Resolved r;
    auto pf = fds(parent);
    if (!pf) return Errno{pf.error()};
    bool opaque;
    {
        std::lock_guard lock(parent.mu);
        opaque = parent.opaque;
    }
    int upper = pf->u(), lower = pf->l();
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
        // An upper non-directory hides the lower entry (only its removal
        // needs to know of it), and an opaque upper directory hides it too.
        if (r.upper_exists && !S_ISDIR(r.upper_st.st_mode) && !under_file) return r;
        auto st = sys::stat_at(lower, name);
        if (st) {
            if (!hidden(*st)) {
                r.lower_exists = true;
                r.lower_st = *st;
            }
        } else if (st.error() != ENOENT && st.error() != ENOTDIR && st.error() != EACCES) {
            // A host directory the caller cannot search counts as empty on
            // the host: the sandbox can still create there (in the layer).
            return Errno{st.error()};
        }
    }
    return r;
}

namespace {

// The table key of the Inode of an existing entry: its backing object, and
// for a host file with other names, the name too (each name of a host hard
// link is its own Inode until copied up).
InodeKey key_of(const Inode& parent, const char* name, const Resolved& r) {
    const struct stat& st = r.upper_exists ? r.upper_st : r.lower_st;
    InodeKey key{st.st_dev, st.st_ino, 0};
    if (!r.upper_exists && !S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        uint64_t seed = reinterpret_cast<uintptr_t>(&parent);
        key.tag = XXH3_64bits_withSeed(name, std::strlen(name), seed) | 1;
    }
    return key;
}

}  // namespace

void Filesystem::pin_lower_entry(const Inode& parent, const char* name, const Resolved& r) {
    if (r.upper_exists || !r.lower_exists) return;
    if (auto in = table_.find(key_of(parent, name, r))) {
        pin(*in);
        table_.unhash(in.get());
        std::lock_guard lock(in->mu);
        in->detached = !in->has_upper;
    }
}

namespace {

// A private, unnamed copy of a host file (its name gone from the view), for
// writes through descriptors still open on it. size: the file's (stat'ed by
// the caller).
Result<UniqueFd> private_copy(int work, int lower_path_fd, off_t size) {
    auto src = sys::reopen(lower_path_fd, O_RDONLY);
    if (!src) return Errno{src.error()};
    int fd = ::openat(work, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return last_errno();
    UniqueFd dst(fd);
    if (auto r = copyup::copy_file_data(src->get(), dst.get(), size); !r) return Errno{r.error()};
    return dst;
}

}  // namespace

Result<FdRef> Filesystem::data_fd(const std::shared_ptr<Inode>& in, bool for_write) {
    bool detached;
    {
        // The common case, one lock: the descriptor is there and fits.
        std::lock_guard lock(in->mu);
        in->referenced.store(true, std::memory_order_relaxed);
        if (in->data_private) return in->data;
        if (in->data && in->data_upper == in->has_upper && (in->has_upper || !for_write)) return in->data;
        detached = in->detached;
    }
    if (for_write && detached) {
        auto f = fds(*in);  // pinned: still there
        if (!f) return Errno{f.error()};
        auto host = sys::stat_fd(f->l());
        if (!host) return Errno{host.error()};
        struct stat shown = present(*in, *host, false, false);
        auto copy = private_copy(work(), f->l(), host->st_size);
        if (!copy) return Errno{copy.error()};
        FdRef data;
        {
            std::lock_guard lock(in->mu);
            if (!in->data_private) {
                put_data(*in, share(std::move(*copy)), false, true);
                // From now on the copy's owner and mode: the host's as shown.
                in->ovr = layer::Override{shown.st_uid, shown.st_gid, shown.st_mode, 0};
            }
            data = in->data;
        }
        fd_cache_.trim();
        return data;
    }
    if (for_write)
        if (auto r = copy_up(in); !r) return Errno{r.error()};
    // A copy-up by another thread between our looks makes a host-side
    // descriptor stale: look again.
    for (int round = 0; round < 3; ++round) {
        {
            std::lock_guard lock(in->mu);
            in->referenced.store(true, std::memory_order_relaxed);
            if (in->data && in->data_upper == in->has_upper) return in->data;
        }
        auto f = fds(*in);
        if (!f) return Errno{f.error()};
        bool upper = f->upper != nullptr;
        auto fd = sys::reopen(f->top(), upper ? O_RDWR : O_RDONLY);
        if (!fd) return Errno{fd.error()};
        FdRef made = share(std::move(*fd));
        {
            std::lock_guard lock(in->mu);
            if (in->data && in->data_upper == in->has_upper) return in->data;  // another thread's
            if (upper != in->has_upper) continue;
            put_data(*in, made, upper, false);
        }
        fd_cache_.trim();
        return made;
    }
    return Errno{EIO};
}

bool Filesystem::detached(Inode& in) {
    std::lock_guard lock(in.mu);
    return in.detached;
}

void Filesystem::set_data(Inode& in, UniqueFd fd) {
    {
        std::lock_guard lock(in.mu);
        put_data(in, share(std::move(fd)), true, false);
    }
    fd_cache_.trim();
}

void Filesystem::put_data(Inode& in, FdRef fd, bool upper, bool private_copy) {
    if (!in.data) fd_cache_.added(in, 1);  // a replaced one was counted already
    in.data = std::move(fd);
    in.data_upper = upper;
    in.data_private = private_copy;
}

Result<Filesystem::Looked> Filesystem::lookup(const std::shared_ptr<Inode>& parent, const char* name) {
    auto res = resolve(*parent, name);
    if (!res) return Errno{res.error()};
    Resolved& r = *res;
    if (!r.exists()) return Errno{ENOENT};

    const struct stat& st = r.upper_exists ? r.upper_st : r.lower_st;
    InodeKey key = key_of(*parent, name, r);
    bool merged_dir = r.upper_exists && S_ISDIR(r.upper_st.st_mode) && r.lower_exists &&
                      S_ISDIR(r.lower_st.st_mode);
    bool has_lower = r.lower_exists && (!r.upper_exists || merged_dir);

    std::optional<layer::Override> ovr;
    bool opaque = false;
    // An Inode the kernel knows keeps its owner record and opaque flag up to
    // date (every change goes through this server): no xattr reads again.
    std::shared_ptr<Inode> known = r.upper_exists ? table_.find(key) : nullptr;
    if (known) {
        // Copied also for the case it leaves the table before ours is made.
        std::lock_guard lock(known->mu);
        ovr = known->ovr;
        opaque = known->opaque;
    } else if (r.upper_exists && (S_ISREG(r.upper_st.st_mode) || S_ISDIR(r.upper_st.st_mode))) {
        auto pf = fds(*parent);
        if (!pf) return Errno{pf.error()};
        auto fd = sys::open_path(pf->u(), name);
        if (!fd) return Errno{fd.error()};
        ovr = read_override(fd->get(), r.upper_st.st_mode);
        if (S_ISDIR(r.upper_st.st_mode)) opaque = layer::is_opaque(fd->get());
    }
    uint64_t ino = has_lower ? present_ino(r.lower_st.st_dev, r.lower_st.st_ino)
                             : present_ino(r.upper_st.st_dev, r.upper_st.st_ino);
    mode_t type = ovr ? (ovr->mode & S_IFMT) : (st.st_mode & S_IFMT);

    // Handles are opened lazily by fds(); a lookup costs no descriptor.
    auto in = table_.find_or_insert(
        key, [&] { return new_inode(parent, name, r.upper_exists, has_lower, type, ovr, opaque, ino); });
    if (!in) return Errno{ENOMEM};
    bool from_upper;
    {
        std::lock_guard lock(in->mu);
        from_upper = r.upper_exists && (in->ovr || !has_lower || !S_ISDIR(type));
    }
    struct stat shown = from_upper ? r.upper_st : r.lower_st;
    if (merged_dir) take_later_mtime(shown, r.lower_st);
    return Looked{in, present(*in, shown, from_upper, merged_dir)};
}

Result<Filesystem::Looked> Filesystem::adopt(const std::shared_ptr<Inode>& parent, const char* name,
                                             const struct stat& st, const std::optional<layer::Override>& record,
                                             bool opaque, UniqueFd handle) {
    InodeKey key{st.st_dev, st.st_ino, 0};
    uint64_t ino = present_ino(st.st_dev, st.st_ino);
    mode_t type = record ? (record->mode & S_IFMT) : (st.st_mode & S_IFMT);
    auto in = table_.find_or_insert(key, [&] {
        // Only in the layer: a new entry hides whatever the host has there.
        auto n = new_inode(parent, name, true, false, type, record, opaque, ino);
        n->no_file_caps = true;
        return n;
    });
    if (!in) return Errno{ENOMEM};
    if (handle) {
        {
            std::lock_guard lock(in->mu);
            set_upper(*in, std::move(handle));
        }
        fd_cache_.trim();
    }
    return Looked{in, present(*in, st, true, false)};
}

Result<struct stat> Filesystem::attr(Inode& in) {
    FdRef copy;  // a detached host file's private copy, once written
    bool gone;
    {
        std::lock_guard lock(in.mu);
        gone = in.detached;
        if (in.data_private) copy = in.data;  // pinned: never evicted
    }
    if (copy) {
        auto st = sys::stat_fd(copy->get());
        if (!st) return st;
        struct stat shown = present(in, *st, true, false);
        shown.st_nlink = 0;
        return shown;
    }
    auto f = fds(in);
    if (!f) return Errno{f.error()};
    bool use_upper;
    {
        std::lock_guard lock(in.mu);
        // A merged directory without its own record (the layer root) shows the host's.
        use_upper = f->upper && (in.ovr || !f->lower || !S_ISDIR(in.type));
    }
    auto st = sys::stat_fd(use_upper ? f->u() : f->l());
    if (!st) return st;
    // Its name is gone from the view (the host's file is still there).
    if (gone && st->st_nlink > 0) st->st_nlink--;
    bool merged_dir = S_ISDIR(st->st_mode) && f->upper && f->lower;
    if (merged_dir && use_upper)
        if (auto lst = sys::stat_fd(f->l())) take_later_mtime(*st, *lst);
    return present(in, *st, use_upper, merged_dir);
}

bool Filesystem::host_data_changed(Inode& in, const struct stat& st) {
    if (!S_ISREG(st.st_mode)) return false;
    auto ns = [](const struct timespec& t) { return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec; };
    std::array<int64_t, 2> now{ns(st.st_mtim), ns(st.st_ctim)};
    std::lock_guard lock(in.mu);
    // The layer's copy changes only through the view, and the kernel's cache
    // sees every such change: only host files need this.
    if (in.has_upper || in.data_private) return false;
    bool changed = in.host_shown && *in.host_shown != now;
    in.host_shown = now;
    return changed;
}

void Filesystem::forget_cached_data(uint64_t ino) {
    if (session) fuse_lowlevel_notify_inval_inode(session, ino, 0, 0);
}

// A merged directory shows the mtime of its layer side, unless the host
// changed its side during the run: the kernel keeps a directory's cached
// listing while its mtime stays, and a host change must end that too.
void Filesystem::take_later_mtime(struct stat& st, const struct stat& other) const {
    auto later = [](const struct timespec& a, const struct timespec& b) {
        return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
    };
    if (later(other.st_mtim, started_) && later(other.st_mtim, st.st_mtim)) st.st_mtim = other.st_mtim;
}

struct stat Filesystem::present(Inode& in, struct stat st, bool from_upper, bool merged_dir) {
    std::optional<layer::Override> ovr;
    {
        std::lock_guard lock(in.mu);
        ovr = in.ovr;
        st.st_ino = in.ino;
    }
    if (from_upper && ovr) {
        st.st_uid = ovr->uid;
        st.st_gid = ovr->gid;
        st.st_mode = ovr->mode;
        if (S_ISCHR(ovr->mode) || S_ISBLK(ovr->mode)) {
            st.st_rdev = ovr->rdev;
            st.st_size = 0;
        } else if (S_ISFIFO(ovr->mode) || S_ISSOCK(ovr->mode)) {
            st.st_size = 0;
        }
    } else if (from_upper) {
        st.st_uid = cfg_.ids.layer_uid;
        st.st_gid = cfg_.ids.layer_gid;
    } else {
        st.st_uid = cfg_.ids.uid(st.st_uid);
        st.st_gid = cfg_.ids.gid(st.st_gid);
    }
    // Merged directories count links on two filesystems; 1 means "unknown"
    // to find(1) and friends, as on overlayfs.
    if (merged_dir) st.st_nlink = 1;
    return st;
}

}  // namespace mbx::overlay
