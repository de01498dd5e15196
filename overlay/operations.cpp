// The FUSE low-level operations of the merged view: one op_* per request,
// each replying exactly once and never throwing. Host objects are reached
// only through the O_PATH descriptors held by Inodes and *at() calls.
#include <dirent.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "overlay/filesystem.h"
#include "overlay/sys/sys.h"

namespace mbx::overlay {

namespace {

struct FileHandle {
    UniqueFd fd;
};

constexpr const char* kFileCapsXattr = "security.capability";

Filesystem& fsof(fuse_req_t req) { return *static_cast<Filesystem*>(fuse_req_userdata(req)); }
FileHandle& fh(fuse_file_info* fi) { return *reinterpret_cast<FileHandle*>(fi->fh); }

// The descriptor an I/O request on ino goes through: its open handle's, or
// without OPEN (handle 0) the Inode's own; for_write: on the layer's copy.
// Held by the caller for the request (eviction may drop the Inode's).
Result<FdRef> io_fd(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, bool for_write) {
    Filesystem& fs = fsof(req);
    if (fi && fi->fh) {
        // A handle opened for reading a host file whose name went since, and
        // which another descriptor wrote to: the private copy has the data.
        if (!for_write) {
            Inode& in = *fs.inode(ino);
            std::lock_guard lock(in.mu);
            if (in.data_private) return in.data;
        }
        FileHandle& h = fh(fi);
        return FdRef(std::shared_ptr<const UniqueFd>(), &h.fd);  // aliasing: not owned, lives as long as the open
    }
    return fs.data_fd(fs.shared(ino), for_write);
}

mode_t layer_mode(mode_t presented) {
    return (presented & 0777) | (S_ISDIR(presented) ? 0700 : 0600);
}

using Looked = Filesystem::Looked;

fuse_entry_param entry_of(Filesystem& fs, const Looked& l) {
    fuse_entry_param e;
    std::memset(&e, 0, sizeof e);
    e.ino = reinterpret_cast<fuse_ino_t>(l.inode.get());
    e.attr = l.attr;
    e.attr_timeout = fs.cfg().entry_timeout;
    e.entry_timeout = fs.cfg().entry_timeout;
    return e;
}

// Replies with an Inode that already carries the reference this reply hands
// to the kernel.
void reply_entry(fuse_req_t req, Filesystem& fs, const Looked& l) {
    fuse_entry_param e = entry_of(fs, l);
    fuse_reply_entry(req, &e);
}


std::string child_path(Filesystem& fs, Inode& parent, const char* name) {
    std::string p = fs.path_of(parent);
    return (p == "/" ? "" : p) + "/" + name;
}

// ---- mbx run --monitor (Config::access_log)

// The error the current request was answered with (0: not with an error).
// Each request is served start to end on one thread.
thread_local int t_replied_error = 0;

int reply_err(fuse_req_t req, int err) {
    t_replied_error = err;
    return fuse_reply_err(req, err);
}

// The kernel's __FMODE_EXEC, which it leaves in the flags of the opens that
// execve (and the ELF loader) make.
constexpr int kExecOpenFlag = 040;

// Reports one request to the access log, if there is one, when the request
// is done: with the error it was answered with, and the path of an entry
// (parent + name) or of an Inode as it is then.
class Noted {
public:
    Noted(fuse_req_t req, Access a, fuse_ino_t parent, const char* name) : Noted(req, a) {
        if (log_) {
            parent_ = fsof(req).shared(parent);
            name_ = name;
        }
    }
    Noted(fuse_req_t req, Access a, const std::shared_ptr<Inode>& in) : Noted(req, a) {
        if (log_) inode_ = in;  // no reference taken unless monitored: opens are hot
    }
    ~Noted() {
        if (!log_) return;
        std::string path = parent_ ? child_path(*fs_, *parent_, name_.c_str()) : fs_->path_of(*inode_);
        (*log_)(access_, path, t_replied_error, pid_);
    }
    Noted(const Noted&) = delete;
    Noted& operator=(const Noted&) = delete;

private:
    Noted(fuse_req_t req, Access a) : fs_(&fsof(req)), access_(a) {
        t_replied_error = 0;
        if (fs_->cfg().access_log) {
            log_ = &fs_->cfg().access_log;
            pid_ = fuse_req_ctx(req)->pid;  // the request is gone after the reply
        }
    }
    Filesystem* fs_;
    Access access_;
    const AccessLog* log_ = nullptr;
    pid_t pid_ = 0;
    std::shared_ptr<Inode> parent_, inode_;
    std::string name_;
};

Access open_access(int flags) {
    if (flags & kExecOpenFlag) return Access::Exec;
    if ((flags & O_ACCMODE) == O_RDWR) return Access::ReadWrite;
    if ((flags & O_ACCMODE) == O_WRONLY || (flags & O_TRUNC)) return Access::Write;
    return Access::Read;
}

// The record of the host entry at `path` (= parent-upper/name): a copied-up
// entry still standing for it remembers the original; otherwise it is the host
// entry now.
layer::Origin origin_of(Filesystem& fs, int upper_dir, const char* name, const Resolved& r, const std::string& path) {
    if (r.upper_exists && upper_dir >= 0) {
        if (auto fd = sys::open_path(upper_dir, name)) {
            if (auto v = sys::get_xattr(fd->get(), layer::kOriginXattr))
                if (auto o = layer::parse_origin(*v); o && layer::origin_at(*o, path)) return *o;
        }
    }
    layer::Origin o = layer::origin_from_stat(r.lower_st);
    o.path_hash = layer::path_hash(path);
    o.uid = fs.cfg().ids.uid(o.uid);  // owners are recorded as presented inside
    o.gid = fs.cfg().ids.gid(o.gid);
    return o;
}

// Creates parent/name in the layer, owned by uid:gid: build(tmp, fd) makes the
// object in the work directory (keeping an open descriptor in fd if it wants),
// then its owner record is written and it is renamed into place. Returns the
// new Inode, carrying one kernel reference.
template <typename Build>
Result<Looked> create_entry(Filesystem& fs, fuse_ino_t parent, const char* name,
                                            uid_t uid, gid_t gid, mode_t mode, dev_t rdev, Build build,
                                            UniqueFd& open_fd) {
    if (std::strlen(name) > NAME_MAX) return Errno{ENAMETOOLONG};
    auto p = fs.shared(parent);
    auto res = fs.resolve(*p, name);
    if (!res) return Errno{res.error()};
    if (res->exists()) return Errno{EEXIST};
    if (auto r = fs.copy_up(p); !r) return Errno{r.error()};
    auto pf = fs.fds(*p);
    if (!pf) return Errno{pf.error()};

    layer::Override ovr;
    {
        std::lock_guard lock(p->mu);
        ovr = fs.override_for_new(uid, gid, mode, rdev, *p);
    }
    std::string tmp = fs.temp_name();
    if (auto built = build(tmp.c_str(), open_fd); !built) return Errno{built.error()};
    auto fail = [&](int err) -> Result<Looked> {
        open_fd.reset();
        (void)sys::remove_tree_at(fs.work(), tmp.c_str());
        return Errno{err};
    };
    // The new object's attributes, owner record and handle are known here:
    // the reply needs no second lookup of the name.
    UniqueFd handle;
    struct stat st;
    std::optional<layer::Override> record;
    bool opaque = false;
    if (S_ISLNK(mode)) {
        auto s = sys::stat_at(fs.work(), tmp.c_str());
        if (!s) return fail(s.error());
        st = *s;
    } else {
        int fd = open_fd.get();
        if (fd < 0) {
            auto h = sys::open_path(fs.work(), tmp.c_str());
            if (!h) return fail(h.error());
            handle = std::move(*h);
            fd = handle.get();
        }
        if (auto r = sys::set_xattr(fd, layer::kOverrideXattr, layer::format_override(ovr)); !r)
            return fail(r.error());
        record = ovr;
        // A directory made where a whiteout hid a host entry must not show
        // what was under it.
        if (S_ISDIR(mode) && res->whiteout) {
            if (auto r = sys::set_xattr(fd, layer::kOpaqueXattr, "y"); !r) return fail(r.error());
            opaque = true;
        }
        mode_t real = layer_mode(S_ISDIR(mode) ? mode : (S_IFREG | (mode & 0777)));
        int r = open_fd ? ::fchmod(fd, real) : ::fchmodat(fs.work(), tmp.c_str(), real, 0);
        if (r < 0) return fail(errno);
        auto s = sys::stat_fd(fd);
        if (!s) return fail(s.error());
        st = *s;
    }
    if (auto r = fs.install(tmp.c_str(), pf->u(), name, res->whiteout); !r) return fail(r.error());
    return fs.adopt(p, name, st, record, opaque, std::move(handle));
}

template <typename Build>
void make_entry(fuse_req_t req, Access a, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev,
                Build build) {
    Noted noted(req, a, parent, name);
    Filesystem& fs = fsof(req);
    const fuse_ctx* ctx = fuse_req_ctx(req);
    UniqueFd unused;
    auto in = create_entry(fs, parent, name, ctx->uid, ctx->gid, mode, rdev, build, unused);
    if (!in) return (void)reply_err(req, in.error());
    reply_entry(req, fs, *in);
}

// What removing parent/name needs: the entry exists, and the parent is in the layer.
struct Removal {
    std::shared_ptr<Inode> parent;
    Resolved res;
    Fds pf;  // the parent's handles
};

Result<Removal> prepare_removal(Filesystem& fs, fuse_ino_t parent, const char* name) {
    Removal rm;
    rm.parent = fs.shared(parent);
    auto res = fs.resolve(*rm.parent, name, true);
    if (!res) return Errno{res.error()};
    if (!res->exists()) return Errno{ENOENT};
    rm.res = *res;
    if (auto r = fs.copy_up(rm.parent); !r) return Errno{r.error()};
    auto pf = fs.fds(*rm.parent);
    if (!pf) return Errno{pf.error()};
    rm.pf = *pf;
    return rm;
}

// ---- operations

void op_init(void* userdata, fuse_conn_info* conn) {
    Filesystem& fs = *static_cast<Filesystem*>(userdata);
    // The kernel clears setuid bits itself (through setattr), so the owner
    // record stays the one place modes live.
    conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
    if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
    // No SPLICE_MOVE: the kernel refuses to steal our page-cache pages ("trying
    // to steal weird page") and copies anyway, after a warning each time.
    conn->want &= ~FUSE_CAP_SPLICE_MOVE;
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    // Without OPEN nobody would truncate for an open with O_TRUNC: the
    // kernel then truncates first (SETATTR), as for truncate(2).
    if (fs.per_inode_io()) conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
    conn->want &= ~FUSE_CAP_POSIX_LOCKS;
    conn->want &= ~FUSE_CAP_FLOCK_LOCKS;
    // Written data stays in the kernel's page cache and comes in big writes:
    // one request per file written instead of one per write(2).
    if (fs.cfg().writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    else
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    // Listings with attributes where lookups follow them (ls -l), plain ones
    // where they do not (find): the kernel switches between them.
    if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
    if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO) conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
    // Symlinks never change in place: their targets may stay cached.
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    // No AUTO_INVAL_DATA: it drops a file's cached data whenever the mtime
    // in fresh attributes differs from the kernel's, and every write through
    // the view makes it differ (the kernel does not keep mtimes itself without
    // the writeback cache), so a file just written was read again from the
    // server. Host changes are told by the server (host_data_changed); size
    // changes the kernel notices itself.
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    conn->time_gran = 1;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Filesystem& fs = fsof(req);
    if (std::strlen(name) > NAME_MAX) return (void)reply_err(req, ENAMETOOLONG);
    auto in = fs.lookup(fs.shared(parent), name);
    if (!in && in.error() == ENOENT) {
        if (fs.cfg().access_log)
            fs.cfg().access_log(Access::Missing, child_path(fs, *fs.inode(parent), name), ENOENT,
                                fuse_req_ctx(req)->pid);
        // The kernel may remember the absence too (compilers and shells look
        // for many files that are not there); entries made through the view
        // replace such a record at once.
        fuse_entry_param e;
        std::memset(&e, 0, sizeof e);
        e.entry_timeout = fs.cfg().entry_timeout;
        return (void)fuse_reply_entry(req, &e);
    }
    if (!in) return (void)reply_err(req, in.error());
    // Before the reply: a reader that follows it must not get old data.
    if (fs.host_data_changed(*in->inode, in->attr))
        fs.forget_cached_data(reinterpret_cast<fuse_ino_t>(in->inode.get()));
    reply_entry(req, fs, *in);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
    Filesystem& fs = fsof(req);
    if (ino != FUSE_ROOT_ID) fs.table().forget(fs.inode(ino), n);
    fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    Filesystem& fs = fsof(req);
    for (size_t i = 0; i < count; ++i)
        if (forgets[i].ino != FUSE_ROOT_ID) fs.table().forget(fs.inode(forgets[i].ino), forgets[i].nlookup);
    fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    Filesystem& fs = fsof(req);
    Inode& in = *fs.inode(ino);
    auto st = fs.attr(in);
    if (!st) return (void)reply_err(req, st.error());
    bool stale = fs.host_data_changed(in, *st);
    fuse_reply_attr(req, &*st, fs.cfg().entry_timeout);
    if (stale) fs.forget_cached_data(ino);  // the kernel waits in this GETATTR until the reply
}

// The size and times part of a SETATTR (after the owner part), then the reply.
// A regular file's go through the descriptor its reads and writes use: no
// re-open (an open with O_TRUNC, tar's times).
void setattr_data(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int valid, fuse_file_info* fi) {
    Filesystem& fs = fsof(req);
    Inode& in = *fs.inode(ino);
    mode_t type;
    {
        std::lock_guard lock(in.mu);
        type = in.type;
    }
    FdRef data;
    if (S_ISREG(type) && (valid & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
        auto d = io_fd(req, ino, fi, true);
        if (!d) return (void)reply_err(req, d.error());
        data = std::move(*d);
    }
    if (valid & FUSE_SET_ATTR_SIZE) {
        if (!data) return (void)reply_err(req, EINVAL);  // the kernel truncates regular files only
        if (::ftruncate(data->get(), attr->st_size) < 0) return (void)reply_err(req, errno);
    }
    if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
        struct timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
        if (valid & FUSE_SET_ATTR_ATIME_NOW) ts[0].tv_nsec = UTIME_NOW;
        else if (valid & FUSE_SET_ATTR_ATIME) ts[0] = attr->st_atim;
        if (valid & FUSE_SET_ATTR_MTIME_NOW) ts[1].tv_nsec = UTIME_NOW;
        else if (valid & FUSE_SET_ATTR_MTIME) ts[1] = attr->st_mtim;
        int r;
        if (data) {
            r = ::futimens(data->get(), ts);
        } else {
            auto f = fs.fds(in);
            if (!f) return (void)reply_err(req, f.error());
            r = ::utimensat(AT_FDCWD, sys::fd_path(f->u()).c_str(), ts, 0);
        }
        if (r < 0) return (void)reply_err(req, errno);
    }
    op_getattr(req, ino, fi);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int valid, fuse_file_info* fi) {
    Filesystem& fs = fsof(req);
    auto in = fs.shared(ino);
    Noted noted(req, Access::Setattr, in);
    const int owner_bits = FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID;
    auto changed_owner = [&](layer::Override o) {
        if (valid & FUSE_SET_ATTR_MODE) o.mode = (o.mode & S_IFMT) | (attr->st_mode & 07777);
        if (valid & FUSE_SET_ATTR_UID) o.uid = attr->st_uid;
        if (valid & FUSE_SET_ATTR_GID) o.gid = attr->st_gid;
        return o;
    };
    if (fs.detached(*in)) {
        // Its private copy takes the change (size and times below); owner
        // and mode stay in the Inode, for as long as it is open. Only
        // regular files have one (opening a FIFO or device to copy it
        // would block or touch the device).
        if (!S_ISREG(in->type)) return (void)reply_err(req, ENOENT);
        if (valid & owner_bits) {
            auto d = fs.data_fd(in, true);
            if (!d) return (void)reply_err(req, d.error());
            std::lock_guard lock(in->mu);
            if (in->ovr) in->ovr = changed_owner(*in->ovr);
        }
        return setattr_data(req, ino, attr, valid, fi);
    }
    bool truncate_all = (valid & FUSE_SET_ATTR_SIZE) && attr->st_size == 0;
    if (auto r = fs.copy_up(in, !truncate_all); !r) return (void)reply_err(req, r.error());
    auto f = fs.fds(*in);
    if (!f) return (void)reply_err(req, f.error());
    int ufd = f->u();
    {
        std::lock_guard lock(in->mu);
        if (in->ovr && (valid & owner_bits)) {
            layer::Override o = changed_owner(*in->ovr);
            if (auto r = fs.write_override(*in, ufd, o); !r) return (void)reply_err(req, r.error());
            if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
                if (auto r = sys::set_xattr(ufd, layer::kChownXattr, "y"); !r)
                    return (void)reply_err(req, r.error());
            if ((valid & FUSE_SET_ATTR_MODE) &&
                ::chmod(sys::fd_path(ufd).c_str(), layer_mode(S_ISDIR(o.mode) ? o.mode : (S_IFREG | (o.mode & 0777)))) < 0)
                return (void)reply_err(req, errno);
        }
        // Symlinks carry no owner record; their mode is fixed and owner
        // changes are accepted and not kept (see mbx-layer(5)).
    }
    setattr_data(req, ino, attr, valid, fi);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
    Filesystem& fs = fsof(req);
    auto f = fs.fds(*fs.inode(ino));
    if (!f) return (void)reply_err(req, f.error());
    auto t = sys::readlink_fd(f->top());
    if (!t) return (void)reply_err(req, t.error());
    fuse_reply_readlink(req, t->c_str());
}

// How the server opens the backing file for a FUSE open with these flags.
// With the writeback cache the kernel reads pages around partial writes, also
// of write-only files, and places appends itself.
int backing_flags(Filesystem& fs, int flags) {
    if (!fs.cfg().writeback) return flags;
    if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
    return flags & ~O_APPEND;
}

Result<void> make_file(Filesystem& fs, const char* tmp, UniqueFd* keep, int flags) {
    auto fd = sys::open_at(fs.work(), tmp, O_CREAT | O_EXCL | flags, 0600);
    if (!fd) return Errno{fd.error()};
    if (keep) *keep = std::move(*fd);
    return {};
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
    Filesystem& fs = fsof(req);
    // Devices, FIFOs and sockets are empty layer files whose type is in the owner record.
    make_entry(req, Access::Mknod, parent, name, mode, rdev, [&](const char* tmp, UniqueFd&) {
        return make_file(fs, tmp, nullptr, O_WRONLY);
    });
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    Filesystem& fs = fsof(req);
    make_entry(req, Access::Mkdir, parent, name, S_IFDIR | (mode & 07777), 0, [&](const char* tmp, UniqueFd&) -> Result<void> {
        if (::mkdirat(fs.work(), tmp, 0700) < 0) return last_errno();
        return {};
    });
}

void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
    Filesystem& fs = fsof(req);
    make_entry(req, Access::Symlink, parent, name, S_IFLNK | 0777, 0, [&](const char* tmp, UniqueFd&) -> Result<void> {
        if (::symlinkat(link, fs.work(), tmp) < 0) return last_errno();
        return {};
    });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
    Noted noted(req, Access::Create, parent, name);
    Filesystem& fs = fsof(req);
    // Without OPEN the file's descriptor is shared by every open of it: the
    // kernel places appends itself.
    int extra = fs.per_inode_io() ? 0
                                  : backing_flags(fs, fi->flags) & (O_APPEND | O_DIRECT | O_SYNC | O_DSYNC | O_NOATIME);
    const fuse_ctx* ctx = fuse_req_ctx(req);
    UniqueFd fd;
    auto in = create_entry(fs, parent, name, ctx->uid, ctx->gid, S_IFREG | (mode & 07777), 0,
                           [&](const char* tmp, UniqueFd& keep) { return make_file(fs, tmp, &keep, O_RDWR | extra); },
                           fd);
    if (!in) return (void)reply_err(req, in.error());
    fuse_entry_param e = entry_of(fs, *in);
    if (fs.per_inode_io()) {
        // No handle: once OPEN has failed with ENOSYS the kernel sends no
        // RELEASE, for created files either.
        fs.set_data(*in->inode, std::move(fd));
        fi->fh = 0;
        fi->keep_cache = 1;
        fuse_reply_create(req, &e, fi);
        return;
    }
    fi->fh = reinterpret_cast<uint64_t>(new FileHandle{std::move(fd)});
    if (fuse_reply_create(req, &e, fi) != 0) delete reinterpret_cast<FileHandle*>(fi->fh);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
    Noted noted(req, Access::Link, newparent, newname);
    Filesystem& fs = fsof(req);
    auto in = fs.shared(ino);
    auto np = fs.shared(newparent);
    auto res = fs.resolve(*np, newname);
    if (!res) return (void)reply_err(req, res.error());
    if (res->exists()) return (void)reply_err(req, EEXIST);
    if (auto r = fs.copy_up(in); !r) return (void)reply_err(req, r.error());
    if (auto r = fs.copy_up(np); !r) return (void)reply_err(req, r.error());
    auto f = fs.fds(*in);
    if (!f) return (void)reply_err(req, f.error());
    auto npf = fs.fds(*np);
    if (!npf) return (void)reply_err(req, npf.error());
    std::string tmp = fs.temp_name();
    if (::linkat(AT_FDCWD, sys::fd_path(f->u()).c_str(), fs.work(), tmp.c_str(), AT_SYMLINK_FOLLOW) < 0)
        return (void)reply_err(req, errno);
    if (auto r = fs.install(tmp.c_str(), npf->u(), newname, res->whiteout); !r) {
        ::unlinkat(fs.work(), tmp.c_str(), 0);
        return (void)reply_err(req, r.error());
    }
    auto st = fs.attr(*in);
    if (!st) return (void)reply_err(req, st.error());
    fs.table().add_lookup(in.get());
    reply_entry(req, fs, Looked{in, *st});
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Noted noted(req, Access::Unlink, parent, name);
    Filesystem& fs = fsof(req);
    auto rm = prepare_removal(fs, parent, name);
    if (!rm) return (void)reply_err(req, rm.error());
    const Resolved* res = &rm->res;
    int pupper = rm->pf.u();
    // An open file stays usable after its name goes.
    if (res->upper_exists) fs.pin_upper_entry(pupper, name);
    else fs.pin_lower_entry(*rm->parent, name, *res);
    Result<void> r;
    if (res->lower_exists)
        r = fs.put_whiteout(pupper, name, origin_of(fs, pupper, name, *res, child_path(fs, *rm->parent, name)),
                            res->upper_exists);
    else if (::unlinkat(pupper, name, 0) < 0)
        r = last_errno();
    reply_err(req, r.error());
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Noted noted(req, Access::Rmdir, parent, name);
    Filesystem& fs = fsof(req);
    auto rm = prepare_removal(fs, parent, name);
    if (!rm) return (void)reply_err(req, rm.error());
    const Resolved* res = &rm->res;
    int pupper = rm->pf.u();
    int plower;
    {
        std::lock_guard lock(rm->parent->mu);
        plower = rm->parent->opaque ? -1 : rm->pf.l();
    }
    UniqueFd cu, cl;
    if (res->upper_exists) {
        auto fd = sys::open_path(pupper, name);
        if (!fd) return (void)reply_err(req, fd.error());
        cu = std::move(*fd);
    }
    if (res->lower_exists && plower >= 0 && S_ISDIR(res->lower_st.st_mode)) {
        auto fd = sys::open_path(plower, name);
        if (!fd) return (void)reply_err(req, fd.error());
        cl = std::move(*fd);
    }
    bool opaque = cu && layer::is_opaque(cu.get());
    if (auto r = fs.check_empty(cu ? cu.get() : -1, cl ? cl.get() : -1, opaque); !r)
        return (void)reply_err(req, r.error());
    Result<void> r;
    if (res->upper_exists) {
        fs.pin_upper_entry(pupper, name);
        if (auto c = fs.clear_whiteouts(cu.get()); !c) return (void)reply_err(req, c.error());
        if (res->lower_exists) {
            // Swap the emptied directory for a whiteout in one step.
            layer::Origin origin = origin_of(fs, pupper, name, *res, child_path(fs, *rm->parent, name));
            std::string tmp = fs.temp_name();
            auto fd = sys::open_at(fs.work(), tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
            if (!fd) return (void)reply_err(req, fd.error());
            r = sys::set_xattr(fd->get(), layer::kWhiteoutXattr, "y");
            if (r) r = sys::set_xattr(fd->get(), layer::kOriginXattr, layer::format_origin(origin));
            if (r) r = sys::rename_at(fs.work(), tmp.c_str(), pupper, name, RENAME_EXCHANGE);
            if (r) r = sys::remove_tree_at(fs.work(), tmp.c_str());
            else ::unlinkat(fs.work(), tmp.c_str(), 0);
        } else if (::unlinkat(pupper, name, AT_REMOVEDIR) < 0) {
            r = last_errno();
        }
    } else {
        r = fs.put_whiteout(pupper, name, origin_of(fs, pupper, name, *res, child_path(fs, *rm->parent, name)), false);
    }
    reply_err(req, r.error());
}

void set_place(Inode& in, const std::shared_ptr<Inode>& parent, const char* name) {
    std::lock_guard lock(in.mu);
    in.parent = parent;
    in.name = name;
}

// Copies the entry (a whole tree for directories) into the layer so that
// renaming it is a rename inside the layer.
Result<void> copy_up_for_rename(Filesystem& fs, const std::shared_ptr<Inode>& in) {
    if (S_ISDIR(in->type)) return fs.copy_up_tree(in);
    return fs.copy_up(in);
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned flags) {
    // Both ends, as named before the move (destroyed in reverse: from, then to).
    Noted to(req, Access::RenameTo, newparent, newname);
    Noted from(req, Access::RenameFrom, parent, name);
    Filesystem& fs = fsof(req);
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return (void)reply_err(req, EINVAL);
    if (std::strlen(newname) > NAME_MAX) return (void)reply_err(req, ENAMETOOLONG);
    auto p = fs.shared(parent);
    auto np = fs.shared(newparent);
    auto src = fs.resolve(*p, name, true);
    if (!src) return (void)reply_err(req, src.error());
    if (!src->exists()) return (void)reply_err(req, ENOENT);
    auto dst = fs.resolve(*np, newname, true);
    if (!dst) return (void)reply_err(req, dst.error());
    if ((flags & RENAME_NOREPLACE) && dst->exists()) return (void)reply_err(req, EEXIST);
    if ((flags & RENAME_EXCHANGE) && !dst->exists()) return (void)reply_err(req, ENOENT);

    auto s = fs.lookup(p, name);
    if (!s) return (void)reply_err(req, s.error());
    std::shared_ptr<Inode> sin = s->inode;
    std::shared_ptr<Inode> din;
    auto done = [&](int err) {
        fs.table().forget(sin.get(), 1);
        if (din) fs.table().forget(din.get(), 1);
        reply_err(req, err);
    };
    if (auto r = fs.copy_up(p); !r) return done(r.error());
    if (auto r = fs.copy_up(np); !r) return done(r.error());
    if (auto r = copy_up_for_rename(fs, sin); !r) return done(r.error());
    auto pf = fs.fds(*p);
    if (!pf) return done(pf.error());
    auto npf = fs.fds(*np);
    if (!npf) return done(npf.error());
    int pupper = pf->u(), npupper = npf->u();

    if (flags & RENAME_EXCHANGE) {
        auto d = fs.lookup(np, newname);
        if (!d) return done(d.error());
        din = d->inode;
        if (auto r = copy_up_for_rename(fs, din); !r) return done(r.error());
        if (auto r = sys::rename_at(pupper, name, npupper, newname, RENAME_EXCHANGE); !r) return done(r.error());
        set_place(*sin, np, newname);
        set_place(*din, p, name);
        return done(0);
    }

    bool src_dir = S_ISDIR(sin->type);
    if (dst->exists()) {
        bool dst_dir = S_ISDIR(dst->upper_exists ? dst->upper_st.st_mode : dst->lower_st.st_mode);
        if (dst_dir) {
            UniqueFd du, dl;
            if (dst->upper_exists) {
                auto fd = sys::open_path(npupper, newname);
                if (!fd) return done(fd.error());
                du = std::move(*fd);
            }
            if (dst->lower_exists && S_ISDIR(dst->lower_st.st_mode)) {
                if (auto fd = sys::open_path(npf->l(), newname)) dl = std::move(*fd);
            }
            bool opaque = du && layer::is_opaque(du.get());
            if (auto r = fs.check_empty(du ? du.get() : -1, dl ? dl.get() : -1, opaque); !r)
                return done(r.error());
            if (du)
                if (auto r = fs.clear_whiteouts(du.get()); !r) return done(r.error());
        }
    }
    if (dst->upper_exists) fs.pin_upper_entry(npupper, newname);
    else fs.pin_lower_entry(*np, newname, *dst);
    // What the moved entry replaces (a host entry, or a whiteout's record of
    // one) becomes its record; what leaves the source path is recorded there.
    std::string src_path = child_path(fs, *p, name), dst_path = child_path(fs, *np, newname);
    std::optional<std::string> dst_origin;
    if (dst->whiteout) {
        if (auto wh = sys::open_path(npupper, newname))
            if (auto v = sys::get_xattr(wh->get(), layer::kOriginXattr)) dst_origin = *v;
    } else if (dst->exists()) {
        dst_origin = layer::format_origin(origin_of(fs, npupper, newname, *dst, dst_path));
    }
    std::optional<layer::Origin> src_origin;
    if (src->lower_exists) src_origin = origin_of(fs, pupper, name, *src, src_path);
    Result<void> r;
    if (src_dir && dst->whiteout) {
        // A directory cannot replace the whiteout file by rename: swap them,
        // and the whiteout lands where the source was.
        r = sys::rename_at(pupper, name, npupper, newname, RENAME_EXCHANGE);
        if (!r) return done(r.error());
        if (!src_origin) ::unlinkat(pupper, name, 0);
        else if (auto wh = sys::open_path(pupper, name))
            (void)sys::set_xattr(wh->get(), layer::kOriginXattr, layer::format_origin(*src_origin));
    } else {
        r = sys::rename_at(pupper, name, npupper, newname, 0);
        if (!r) return done(r.error());
        if (src_origin)
            if (auto w = fs.put_whiteout(pupper, name, *src_origin, false); !w) return done(w.error());
    }
    if (dst_origin)
        if (auto moved = sys::open_path(npupper, newname))
            (void)sys::set_xattr(moved->get(), layer::kOriginXattr, *dst_origin);  // fails on symlinks: fine
    set_place(*sin, np, newname);
    done(0);
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Filesystem& fs = fsof(req);
    // ENOSYS once, and the kernel sends no more OPEN nor RELEASE: two round
    // trips saved on every open(2) (a build opens each header many times).
    // Reads and writes then go through the Inode's descriptor, and a file is
    // copied up at its first write or truncation, not when opened for writing.
    if (fs.per_inode_io()) return (void)reply_err(req, ENOSYS);
    auto in = fs.shared(ino);
    Noted noted(req, open_access(fi->flags), in);
    bool writes = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
    FdRef src;  // what the handle opens
    if (writes && fs.detached(*in)) {
        // Opened again (/proc/PID/fd) after its name went: its private copy.
        auto d = fs.data_fd(in, true);
        if (!d) return (void)reply_err(req, d.error());
        src = std::move(*d);
    } else {
        if (writes)
            if (auto r = fs.copy_up(in, !(fi->flags & O_TRUNC)); !r) return (void)reply_err(req, r.error());
        auto f = fs.fds(*in);
        if (!f) return (void)reply_err(req, f.error());
        src = f->upper ? f->upper : f->lower;
    }
    auto fd = sys::reopen(src->get(), backing_flags(fs, fi->flags) & ~(O_CREAT | O_EXCL | O_NOCTTY));
    if (!fd) return (void)reply_err(req, fd.error());
    fi->fh = reinterpret_cast<uint64_t>(new FileHandle{std::move(*fd)});
    // The page cache stays valid across opens: every change made inside
    // passes through it, and the server tells of host changes (op_getattr).
    fi->keep_cache = 1;
    if (fuse_reply_open(req, fi) != 0) delete reinterpret_cast<FileHandle*>(fi->fh);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    auto fd = io_fd(req, ino, fi, false);
    if (!fd) return (void)reply_err(req, fd.error());
    fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    buf.buf[0].fd = (*fd)->get();
    buf.buf[0].pos = off;
    fuse_reply_data(req, &buf, static_cast<fuse_buf_copy_flags>(0));
}

void op_write_buf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* in_buf, off_t off, fuse_file_info* fi) {
    auto fd = io_fd(req, ino, fi, true);
    if (!fd) return (void)reply_err(req, fd.error());
    fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
    out.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    out.buf[0].fd = (*fd)->get();
    out.buf[0].pos = off;
    ssize_t n = fuse_buf_copy(&out, in_buf, static_cast<fuse_buf_copy_flags>(0));
    if (n < 0) return (void)reply_err(req, static_cast<int>(-n));
    fuse_reply_write(req, static_cast<size_t>(n));
}

void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    // ENOSYS once, and the kernel sends no more flushes: a round trip saved
    // on every close. (Written data still reaches us before close returns.)
    if (!fsof(req).flush_on_close()) return (void)reply_err(req, ENOSYS);
    auto fd = io_fd(req, ino, fi, false);
    if (!fd) return (void)reply_err(req, fd.error());
    // close() of a duplicate reports delayed write errors, as close(2) would.
    int r = ::close(::dup((*fd)->get()));
    reply_err(req, r < 0 ? errno : 0);
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    delete reinterpret_cast<FileHandle*>(fi->fh);  // none (0) without OPEN
    reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
    Filesystem& fs = fsof(req);
    auto ref = io_fd(req, ino, fi, false);
    if (!ref) return (void)reply_err(req, ref.error());
    int fd = (*ref)->get();
    int r = datasync ? ::fdatasync(fd) : ::fsync(fd);
    int err = r < 0 ? errno : 0;
    // With the writeback cache the kernel keeps the attributes it had before
    // the data reached us: st_blocks would stay stale. Before the reply, so
    // that a stat after fsync sees it; attributes only, which needs none of
    // the locks the waiting fsync holds.
    if (r == 0 && fs.cfg().writeback && fs.session) fuse_lowlevel_notify_inval_inode(fs.session, ino, -1, 0);
    reply_err(req, err);
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info* fi) {
    auto fd = io_fd(req, ino, fi, true);
    if (!fd) return (void)reply_err(req, fd.error());
    int r = ::fallocate((*fd)->get(), mode, off, len);
    reply_err(req, r < 0 ? errno : 0);
}

void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi) {
    // The backing file lacks what the writeback cache still holds, so its
    // holes are not the file's: ENOSYS makes the kernel answer from its own
    // size, the whole file being data (never a hole where data is).
    if (fsof(req).cfg().writeback) return (void)reply_err(req, ENOSYS);
    auto fd = io_fd(req, ino, fi, false);
    if (!fd) return (void)reply_err(req, fd.error());
    off_t r = ::lseek((*fd)->get(), off, whence);
    if (r < 0) return (void)reply_err(req, errno);
    fuse_reply_lseek(req, r);
}

void op_opendir(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
    // ENOSYS once, and the kernel sends no more OPENDIR nor RELEASEDIR: two
    // round trips saved on every listing. Listings then live in the Inode
    // (READDIR at offset 0 makes one), and the kernel caches every
    // directory's: it drops the cache when the directory changes through the
    // view or its mtime changes (a merged directory shows the host side's
    // mtime once the host changes it, see Filesystem::take_later_mtime).
    reply_err(req, ENOSYS);
}

// The listing of dir that READDIR at off reads from: made afresh at offset 0
// (opendir, rewinddir), else the one being read.
Result<std::shared_ptr<const Listing>> listing_at(Filesystem& fs, Inode& dir, off_t off) {
    if (off != 0) {
        std::lock_guard lock(dir.mu);
        if (dir.listing) return dir.listing;
    }
    auto l = fs.list(dir);
    if (!l) return Errno{l.error()};
    auto made = std::make_shared<const Listing>(std::move(*l));
    std::lock_guard lock(dir.mu);
    dir.listing = made;
    return made;
}

void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
    Filesystem& fs = fsof(req);
    auto dir = fs.shared(ino);
    auto listing = listing_at(fs, *dir, off);
    if (!listing) return (void)reply_err(req, listing.error());
    const std::vector<MergedEntry>& entries = (*listing)->entries;
    std::unique_ptr<char[]> buf(new char[size]);
    char* p = buf.get();
    size_t rem = size;
    // "." and ".." at cookies 1 and 2, then the entries after off.
    size_t first = static_cast<size_t>(
        std::upper_bound(entries.begin(), entries.end(), uint64_t(off),
                         [](uint64_t o, const MergedEntry& e) { return o < e.cookie; }) -
        entries.begin());
    size_t total = entries.size() + 2;
    size_t i = off < 2 ? static_cast<size_t>(off) : first + 2;
    for (; i < total; ++i) {
        const char* name;
        uint64_t eino, cookie;
        unsigned char type;
        if (i < 2) {
            name = i == 0 ? "." : "..";
            eino = dir->ino;
            type = DT_DIR;
            cookie = i + 1;
        } else {
            const MergedEntry& e = entries[i - 2];
            name = e.name.c_str();
            eino = e.ino;
            type = e.type;
            cookie = e.cookie;
        }
        size_t n;
        if (plus) {
            fuse_entry_param e{};
            std::shared_ptr<Inode> child;
            if (i < 2) {
                e.attr.st_ino = eino;
                e.attr.st_mode = DTTOIF(type);
            } else {
                auto c = fs.lookup(dir, name);
                if (!c) continue;  // vanished since the listing was taken
                child = c->inode;
                e = entry_of(fs, *c);
            }
            n = fuse_add_direntry_plus(req, p, rem, name, &e, static_cast<off_t>(cookie));
            if (n > rem) {
                if (child) fs.table().forget(child.get(), 1);
                break;
            }
            if (child && fs.host_data_changed(*child, e.attr)) fs.forget_cached_data(e.ino);
        } else {
            struct stat st {};
            st.st_ino = eino;
            st.st_mode = DTTOIF(type);
            n = fuse_add_direntry(req, p, rem, name, &st, static_cast<off_t>(cookie));
            if (n > rem) break;
        }
        p += n;
        rem -= n;
    }
    // The kernel reads until a READDIR comes back empty: the listing is done.
    if (rem == size) {
        std::lock_guard lock(dir->mu);
        if (dir->listing == *listing) dir->listing.reset();
    }
    fuse_reply_buf(req, buf.get(), size - rem);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    do_readdir(req, ino, size, off, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    do_readdir(req, ino, size, off, true);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
    Filesystem& fs = fsof(req);
    auto f = fs.fds(*fs.inode(ino));
    if (!f) return (void)reply_err(req, f.error());
    if (!f->upper) return (void)reply_err(req, 0);  // nothing of it is in the layer
    auto fd = sys::reopen(f->u(), O_RDONLY | O_DIRECTORY);
    if (!fd) return (void)reply_err(req, fd.error());
    reply_err(req, ::fsync(fd->get()) < 0 ? errno : 0);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
    // Writes land in the layer, so its filesystem is the one that fills up.
    struct statvfs sv;
    if (::fstatvfs(fsof(req).cfg().upper_root.get(), &sv) < 0) return (void)reply_err(req, errno);
    fuse_reply_statfs(req, &sv);
}

// The sandbox's init asks for a device node through this xattr on the parent
// directory, because the kernel refuses mknod of devices to any user namespace
// (CAP_MKNOD is checked in the initial one). See launcher/mknod emulation.
void mknod_request(fuse_req_t req, fuse_ino_t dir, const char* value, size_t size) {
    if (fuse_req_ctx(req)->uid != 0) return (void)reply_err(req, EPERM);
    std::string v(value, size);
    unsigned long mode, rdev;
    int consumed = 0;
    if (std::sscanf(v.c_str(), "%lo %lu %n", &mode, &rdev, &consumed) < 2 || consumed <= 0 ||
        static_cast<size_t>(consumed) >= v.size())
        return (void)reply_err(req, EINVAL);
    std::string name = v.substr(consumed);
    if (name.find('/') != std::string::npos || name == "." || name == "..")
        return (void)reply_err(req, EINVAL);
    if (!S_ISCHR(mode) && !S_ISBLK(mode)) return (void)reply_err(req, EINVAL);
    Filesystem& fs = fsof(req);
    UniqueFd unused;
    auto in = create_entry(fs, dir, name.c_str(), 0, fuse_req_ctx(req)->gid, static_cast<mode_t>(mode),
                           static_cast<dev_t>(rdev),
                           [&](const char* tmp, UniqueFd&) { return make_file(fs, tmp, nullptr, O_WRONLY); }, unused);
    if (!in) return (void)reply_err(req, in.error());
    fs.table().forget(in->inode.get(), 1);  // no entry goes to the kernel with this reply
    reply_err(req, 0);
    // The kernel may remember the name as absent. (After the reply: the
    // kernel holds the directory's lock until the setxattr returns.)
    if (fs.session) fuse_lowlevel_notify_inval_entry(fs.session, dir, name.c_str(), name.size());
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                 int flags) {
    Filesystem& fs = fsof(req);
    auto in = fs.shared(ino);
    if (std::strcmp(name, layer::kMknodXattr) == 0 && S_ISDIR(in->type))
        return mknod_request(req, ino, value, size);
    if (layer::is_internal_xattr(name)) return (void)reply_err(req, EPERM);
    Noted noted(req, Access::Xattr, in);
    if (auto r = fs.copy_up(in); !r) return (void)reply_err(req, r.error());
    auto f = fs.fds(*in);
    if (!f) return (void)reply_err(req, f.error());
    if (std::strcmp(name, kFileCapsXattr) == 0) {
        std::lock_guard lock(in->mu);
        in->no_file_caps = false;  // before the call: a reader racing it asks the file
    }
    auto r = sys::set_xattr(f->u(), name, std::string_view(value, size), flags);
    reply_err(req, r.error());
}

// Whether getxattr(name) is known to find nothing without asking the layer.
bool known_absent(Inode& in, const char* name) {
    if (std::strcmp(name, kFileCapsXattr) != 0) return false;
    std::lock_guard lock(in.mu);
    return in.no_file_caps;
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    Filesystem& fs = fsof(req);
    if (layer::is_internal_xattr(name) || known_absent(*fs.inode(ino), name)) return (void)reply_err(req, ENODATA);
    auto f = fs.fds(*fs.inode(ino));
    if (!f) return (void)reply_err(req, f.error());
    int fd = f->top();
    auto v = sys::get_xattr(fd, name);
    if (!v) return (void)reply_err(req, v.error());
    if (size == 0) return (void)fuse_reply_xattr(req, v->size());
    if (v->size() > size) return (void)reply_err(req, ERANGE);
    fuse_reply_buf(req, v->data(), v->size());
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    Filesystem& fs = fsof(req);
    auto f = fs.fds(*fs.inode(ino));
    if (!f) return (void)reply_err(req, f.error());
    int fd = f->top();
    auto names = sys::list_xattr(fd);
    std::string out;
    if (names) {
        for (auto& n : *names)
            if (!layer::is_internal_xattr(n)) out.append(n).push_back('\0');
    } else if (names.error() != ENOTSUP && names.error() != EPERM) {
        return (void)reply_err(req, names.error());
    }
    if (size == 0) return (void)fuse_reply_xattr(req, out.size());
    if (out.size() > size) return (void)reply_err(req, ERANGE);
    fuse_reply_buf(req, out.data(), out.size());
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
    Filesystem& fs = fsof(req);
    if (layer::is_internal_xattr(name)) return (void)reply_err(req, ENODATA);
    auto in = fs.shared(ino);
    Noted noted(req, Access::Xattr, in);
    if (auto r = fs.copy_up(in); !r) return (void)reply_err(req, r.error());
    auto f = fs.fds(*in);
    if (!f) return (void)reply_err(req, f.error());
    auto r = sys::remove_xattr(f->u(), name);
    reply_err(req, r.error());
}

const fuse_lowlevel_ops kOps = [] {
    fuse_lowlevel_ops o{};
    o.init = op_init;
    o.lookup = op_lookup;
    o.forget = op_forget;
    o.forget_multi = op_forget_multi;
    o.getattr = op_getattr;
    o.setattr = op_setattr;
    o.readlink = op_readlink;
    o.mknod = op_mknod;
    o.mkdir = op_mkdir;
    o.unlink = op_unlink;
    o.rmdir = op_rmdir;
    o.symlink = op_symlink;
    o.rename = op_rename;
    o.link = op_link;
    o.open = op_open;
    o.read = op_read;
    o.write_buf = op_write_buf;
    o.flush = op_flush;
    o.release = op_release;
    o.fsync = op_fsync;
    o.opendir = op_opendir;
    o.readdir = op_readdir;
    o.readdirplus = op_readdirplus;
    o.fsyncdir = op_fsyncdir;
    o.statfs = op_statfs;
    o.setxattr = op_setxattr;
    o.getxattr = op_getxattr;
    o.listxattr = op_listxattr;
    o.removexattr = op_removexattr;
    o.create = op_create;
    o.fallocate = op_fallocate;
    o.lseek = op_lseek;
    return o;
}();

}  // namespace

Server::Server(Config cfg) : fs_(std::make_unique<Filesystem>(std::move(cfg))) {}

Server::~Server() {
    if (se_) fuse_session_destroy(se_);
}

int Server::serve(UniqueFd fuse_fd) {
    const char* argv[] = {"mbx", nullptr};
    fuse_args args = FUSE_ARGS_INIT(1, const_cast<char**>(argv));
    se_ = fuse_session_new(&args, &kOps, sizeof kOps, fs_.get());
    if (!se_) return EIO;
    fs_->session = se_;
    // "/dev/fd/N" makes libfuse adopt an already-mounted device descriptor.
    std::string dev = "/dev/fd/" + std::to_string(fuse_fd.get());
    if (fuse_session_mount(se_, dev.c_str()) != 0) return EIO;
    fuse_fd.release();
    fuse_loop_config* lc = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(lc, 1);
    fuse_loop_cfg_set_max_threads(lc, fs_->cfg().max_threads);
    // Idle workers stay: starting a thread per burst of requests costs more.
    fuse_loop_cfg_set_idle_threads(lc, fs_->cfg().max_threads);
    int r = fuse_session_loop_mt(se_, lc);
    fuse_loop_cfg_destroy(lc);
    // The kernel ends the connection with ENODEV when the mount is gone: that is a normal end.
    return r == -ENODEV || r == 0 ? 0 : -r;
}

void Server::stop() {
    if (se_) fuse_session_exit(se_);
}

}  // namespace mbx::overlay
