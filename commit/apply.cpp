#include "commit/apply.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commit/fault.h"
#include "commit/host_tree.h"
#include "overlay/copy_data.h"
#include "overlay/layer_format.h"
#include "overlay/sys/sys.h"

namespace mbx::commit {

namespace {

struct Where {
    UniqueFd dir;
    std::string name;
};

Result<Where> host_parent(int root, const std::string& path) {
    auto d = open_dir_beneath(root, parent_of(path));
    if (!d) return Errno{d.error()};
    return Where{std::move(*d), base_of(path)};
}

StepOutcome outcome_at(int dir, const char* name) {
    StepOutcome o;
    if (auto st = sys::stat_at(dir, name)) {
        o.ino = st->st_ino;
        o.mtime_ns = sys::to_ns(st->st_mtim);
        o.size = st->st_size;
    }
    return o;
}

StepOutcome failed(int err) {
    StepOutcome o;
    o.err = err ? err : EIO;
    return o;
}

bool places(StepKind k) {
    return k != StepKind::Remove && k != StepKind::MakeDir && k != StepKind::SetMeta && k != StepKind::DirMeta;
}

// Extended attributes by name, with their values.
using Xattrs = std::vector<std::pair<std::string, std::string>>;

// A layer file that became the host's new file by a rename: what it needs to
// go back to the layer as it was, should its step fail.
struct Moved {
    std::string path;  // in the layer
    Xattrs records;    // the layer's own records (layer::is_internal_xattr), taken off
};

// A host directory that new entries go into, opened once for all of them
// that follow in it, with what it means for a new file made there.
struct HostDir {
    UniqueFd fd;
    dev_t dev = 0;
    gid_t group = 0;           // the group a new file gets
    bool default_acl = false;  // a new file would inherit an ACL
};

// A new entry made under its temporary name, not yet renamed into place.
struct Placed {
    size_t n;
    std::shared_ptr<const HostDir> dir;
    std::string name, tmp;
    std::optional<Moved> moved;
    // Already at its name: moved there straight from the layer, or placed by
    // an interrupted attempt whose record was lost.
    bool done = false;
    std::optional<StepOutcome> known;  // its outcome, known without a stat (a moved file)
    int fd() const { return dir->fd.get(); }
};

// Puts records taken by take_records (the first n of them) back on fd.
void put_records(int fd, const Xattrs& records, size_t n = SIZE_MAX) {
    for (size_t k = 0; k < records.size() && k < n; ++k)
        (void)sys::set_xattr(fd, records[k].first.c_str(), records[k].second);
}

// Takes the layer's own records off a file that leaves the layer (fd: opened
// for I/O); all or none.
Result<Xattrs> take_records(int fd) {
    Xattrs out;
    auto names = sys::list_xattr_open(fd);
    if (!names) return names.error() == ENOTSUP ? Result<Xattrs>(out) : Result<Xattrs>(Errno{names.error()});
    for (auto& name : *names)
        if (layer::is_internal_xattr(name))
            if (auto v = sys::get_xattr_open(fd, name.c_str())) out.push_back({name, *v});
    for (size_t i = 0; i < out.size(); ++i)
        if (::fremovexattr(fd, out[i].first.c_str()) < 0 && errno != ENODATA) {
            int err = errno;
            put_records(fd, out, i);
            return Errno{err};
        }
    return out;
}

class Applier {
public:
    Applier(Journal& j, const ApplyTarget& t) : j_(j), t_(t) {}

    // A step that makes a directory, removes an entry or sets metadata.
    StepOutcome run(size_t n, const Step& s) {
        host_dir_.reset();  // it may remove or replace a directory
        auto w = host_parent(t_.host_root, s.path);
        if (!w) return failed(w.error());
        int dir = w->dir.get();
        touched(dir);
        const char* name = w->name.c_str();
        std::string tmp = temp_name(n);
        if (s.kind == StepKind::MakeDir) (void)::unlinkat(dir, tmp.c_str(), AT_REMOVEDIR);  // an interrupted attempt's
        Result<void> r;
        switch (s.kind) {
            case StepKind::Remove: r = remove(n, dir, name); break;
            case StepKind::MakeDir: r = make_dir(s, dir, name, tmp.c_str()); break;
            default: r = set_meta(s, dir, name); break;
        }
        if (!r) {
            if (s.kind == StepKind::MakeDir) (void)::unlinkat(dir, tmp.c_str(), AT_REMOVEDIR);
            return failed(r.error());
        }
        sync_dir(dir);
        return s.kind == StepKind::Remove ? StepOutcome{} : outcome_at(dir, name);
    }

    // The first half of a step that places an entry (a file, link, symlink
    // or node): the host entry it replaces kept as backup n, the new one
    // complete under a temporary name beside it. The data is not synced
    // yet: finish() syncs a whole batch at once, then renames.
    Result<Placed> prepare(size_t n, const Step& s) {
        auto d = host_dir(parent_of(s.path));
        if (!d) return Errno{d.error()};
        int dir = (*d)->fd.get();
        Placed p{n, std::move(*d), base_of(s.path), temp_name(n), std::nullopt, false, std::nullopt};
        const char* name = p.name.c_str();
        const char* tmp = p.tmp.c_str();
        if (j_.resumed()) {
            if (auto r = resume(s, p); !r) return Errno{r.error()};
            if (p.done) return p;
        }
        auto r = [&]() -> Result<void> {
            if (s.backup)
                if (auto st = sys::stat_at(dir, name); st) {
                    if (S_ISDIR(st->st_mode)) return Errno{EISDIR};  // the host moved on
                    if (auto k = keep(n, dir, name, *st, false, false); !k) return k;
                }
            if (p.moved) return adopt(s, p);  // moved by an interrupted attempt
            if (auto c = create(s, p); !c) return c;
            // Regular files got theirs through their descriptor; a hard link has its first name's.
            if (s.kind == StepKind::PlaceSymlink || s.kind == StepKind::PlaceNode)
                return set_meta_at(dir, tmp, s.mode, s.uid, s.gid, s.atime_ns, s.mtime_ns);
            return {};
        }();
        if (!r) {
            drop(p);
            return Errno{r.error()};
        }
        fault_point();
        return p;
    }

    // The second half, for a batch of prepared entries: their data (and the
    // backups) on disk first, so that no rename below can reach the disk
    // before the data it puts in place; then the renames; then each
    // directory renamed in, once. The host has the old entry or the new one,
    // whole, at every moment. Many entries are synced by one sync of each
    // file system; a few by a sync of each file (a whole-file-system sync
    // would also wait for whatever else is being written there).
    void finish(std::vector<Placed>& batch) {
        if (batch.empty()) return;
        if (batch.size() >= kSyncFsFrom) {
            sync_touched();
        } else {
            for (auto& p : batch)  // only regular files have data to sync (never open a device)
                if (auto st = sys::stat_at(p.fd(), p.tmp.c_str()); st && S_ISREG(st->st_mode))
                    if (auto f = sys::open_at(p.fd(), p.tmp.c_str(), O_RDONLY | O_NOFOLLOW)) ::fsync(f->get());
            if (unsynced_backups_) sync_dir(j_.backups());
        }
        unsynced_backups_ = false;
        std::vector<std::pair<size_t, StepOutcome>> outcomes;
        for (auto& p : batch) {
            StepOutcome o;
            if (!p.done)
                if (auto r = sys::rename_at(p.fd(), p.tmp.c_str(), p.fd(), p.name.c_str()); !r) {
                    drop(p);
                    o = failed(r.error());
                }
            if (!o.err) o = p.known ? *p.known : outcome_at(p.fd(), p.name.c_str());
            outcomes.push_back({p.n, o});
            fault_point();
        }
        std::vector<const HostDir*> synced_dirs;
        for (auto& p : batch) {
            if (std::find(synced_dirs.begin(), synced_dirs.end(), p.dir.get()) != synced_dirs.end()) continue;
            synced_dirs.push_back(p.dir.get());
            sync_dir(p.fd());
        }
        // Recorded once on disk: a record never claims a rename a power cut could undo.
        j_.record(outcomes);
        batch.clear();
    }

    static constexpr size_t kSyncFsFrom = 16;

private:
    // Every file system written so far, synced.
    void sync_touched() {
        for (auto& [dev, fd] : touched_) ::syncfs(fd.get());
        ::syncfs(j_.backups());
    }

    // Keeps the host entry dir/name as backup n, once: a retried step finds
    // the backup of its first attempt. move: the entry may leave the host.
    // sync: the backup is on disk when this returns (else the caller syncs
    // before anything replaces the entry).
    Result<void> keep(size_t n, int dir, const char* name, const struct stat& st, bool move, bool sync = true) {
        std::string b = std::to_string(n), part = b + ".part";
        int backups = j_.backups();
        struct stat bst;
        if (::fstatat(backups, b.c_str(), &bst, AT_SYMLINK_NOFOLLOW) == 0) {
            if (!sync) unsynced_backups_ = true;  // a first attempt's, maybe not on disk yet
            return {};
        }
        (void)sys::remove_tree_at(backups, part.c_str());
        if (move) {
            if (::renameat(dir, name, backups, b.c_str()) == 0) {
                sync_dir(backups);
                return {};
            }
            if (errno != EXDEV) return last_errno();
        }
        // A hard link keeps the old inode as it is: the commit renames over
        // the name and never writes into the file.
        bool linked = S_ISREG(st.st_mode) && ::linkat(dir, name, backups, part.c_str(), 0) == 0;
        if (!linked)
            if (auto r = copy_tree(dir, name, backups, part.c_str()); !r) {
                (void)sys::remove_tree_at(backups, part.c_str());
                return r;
            }
        if (::renameat(backups, part.c_str(), backups, b.c_str()) < 0) return last_errno();
        if (sync) sync_dir(backups);
        else unsynced_backups_ = true;
        fault_point();
        return {};
    }

    Result<void> remove(size_t n, int dir, const char* name) {
        auto st = sys::stat_at(dir, name);
        if (!st) return st.error() == ENOENT ? Result<void>() : Result<void>(Errno{st.error()});
        if (auto r = keep(n, dir, name, *st, true); !r) return r;
        auto r = sys::remove_tree_at(dir, name);
        if (!r && r.error() != ENOENT) return r;
        return {};
    }

    Result<void> make_dir(const Step& s, int dir, const char* name, const char* tmp) {
        if (auto st = sys::stat_at(dir, name); st && S_ISDIR(st->st_mode)) return {};  // made by an earlier attempt
        if (::mkdirat(dir, tmp, 0700) < 0) return last_errno();
        if (auto r = set_meta_at(dir, tmp, 0, s.uid, s.gid, -1, -1); !r) return r;
        return sys::rename_at(dir, tmp, dir, name, RENAME_NOREPLACE);
    }

    Result<void> set_meta(const Step& s, int dir, const char* name) {
        auto st = sys::stat_at(dir, name);
        if (!st) return Errno{st.error()};
        if ((st->st_mode & S_IFMT) != (s.mode & S_IFMT)) return Errno{EEXIST};  // the host moved on
        if (auto r = set_meta_at(dir, name, s.mode, s.uid, s.gid, s.atime_ns, s.mtime_ns); !r) return r;
        if (S_ISLNK(s.mode)) return {};
        auto src = sys::open_beneath(t_.layer, s.path.substr(1), O_PATH);
        auto dst = sys::open_path(dir, name);
        if (!src) return Errno{src.error()};
        if (!dst) return Errno{dst.error()};
        return sync_user_xattrs(src->get(), dst->get());
    }

    Result<void> create(const Step& s, Placed& p) {
        int dir = p.fd();
        const char* tmp = p.tmp.c_str();
        switch (s.kind) {
            case StepKind::PlaceSymlink:
                if (::symlinkat(s.target.c_str(), dir, tmp) < 0) return last_errno();
                return {};
            case StepKind::PlaceNode:
                if (::mknodat(dir, tmp, (s.mode & S_IFMT) | 0600, s.rdev) < 0) return last_errno();
                return {};
            case StepKind::PlaceLink:
                if (auto first = host_parent(t_.host_root, s.target))
                    if (::linkat(first->dir.get(), first->name.c_str(), dir, tmp, 0) == 0) return {};
                return create_file(s, p);  // the first name failed, or another filesystem
            default:
                return create_file(s, p);
        }
    }

    Result<void> create_file(const Step& s, Placed& p) {
        int dir = p.fd();
        const char* tmp = p.tmp.c_str();
        // The layer file, reached without following symlinks: one planted in
        // the layer after review gives ELOOP instead of another file's bytes.
        auto from = layer_dir(parent_of(s.path));
        if (!from) return Errno{from.error()};
        std::string base = base_of(s.path);
        auto src = sys::open_at(*from, base.c_str(), O_RDONLY);
        if (!src) return Errno{src.error()};
        auto st = sys::stat_fd(src->get());
        if (!st) return Errno{st.error()};
        if (!S_ISREG(st->st_mode)) return Errno{ELOOP};
        auto moved = move_from_layer(s, src->get(), *st, *from, p);
        if (!moved) return Errno{moved.error()};
        if (*moved) return {};
        auto dst = sys::open_at(dir, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (!dst) return Errno{dst.error()};
        int fd = dst->get();
        if (auto r = copyup::copy_file_data(src->get(), fd, st->st_size); !r) return Errno{r.error()};
        (void)copyup::copy_xattrs(src->get(), fd);
        return own(s, fd, p);  // synced with its batch (finish)
    }

    // The layer's file itself becomes the new host file (fd: open on it, st:
    // its stat): no copy, and nothing left in the layer to delete (on this
    // machine's discard-mounted disk, freeing a synced file's blocks waits
    // for the device). Only where nothing tells the two apart and no one
    // else can reach it: one name (no other layer name shares the inode),
    // owned by whoever commits (root committing a user's session copies:
    // the user could hold the layer file open), the same file system, and a
    // directory without a default ACL (a new file would inherit it). A name
    // new to the host gets the file straight away, with its records off and
    // its metadata set in the layer first (the layer's data synced once
    // before: the rename must not reach the disk before the bytes); else it
    // goes to its temporary name, renamed over the host's entry with its
    // batch. false: copy it instead.
    Result<bool> move_from_layer(const Step& s, int fd, const struct stat& st, int from, Placed& p) {
        if (st.st_nlink != 1 || st.st_uid != euid_ || st.st_dev != p.dir->dev || p.dir->default_acl) return false;
        std::string base = base_of(s.path);
        auto records = take_records(fd);
        if (!records) return Errno{records.error()};
        p.moved = Moved{s.path, std::move(*records)};
        p.known = StepOutcome{0, st.st_ino, s.mtime_ns, st.st_size};
        if (!s.backup && layer_synced()) {
            if (own(s, fd, p, &st) &&
                sys::rename_at(from, base.c_str(), p.fd(), p.name.c_str(), RENAME_NOREPLACE)) {
                p.done = true;
                return true;
            }
            put_back(fd, st);  // the temporary name's way below
        }
        if (::renameat(from, base.c_str(), p.fd(), p.tmp.c_str()) < 0) {
            put_back(fd, st, &p.moved->records);
            p.moved.reset();
            p.known.reset();
            return false;  // the copy it is
        }
        if (auto r = own(s, fd, p, &st); !r) return Errno{r.error()};  // prepare's drop() puts it back
        return true;
    }

    // A layer file's owner and mode as they were (was) before a move that
    // did not happen, and its records if given.
    static void put_back(int fd, const struct stat& was, const Xattrs* records = nullptr) {
        (void)::fchown(fd, was.st_uid, was.st_gid);
        (void)::fchmod(fd, was.st_mode & 07777);
        if (records) put_records(fd, *records);
    }

    // The layer's file system synced, once (see move_from_layer).
    bool layer_synced() {
        if (!layer_synced_) layer_synced_ = ::syncfs(t_.layer) == 0;
        return layer_synced_;
    }

    // A file moved by an interrupted attempt, taken up again.
    Result<void> adopt(const Step& s, Placed& p) {
        auto fd = sys::open_at(p.fd(), p.tmp.c_str(), O_RDONLY | O_NOFOLLOW);
        if (!fd) return Errno{fd.error()};
        auto records = take_records(fd->get());
        if (!records) return Errno{records.error()};
        p.moved->records = std::move(*records);
        return own(s, fd->get(), p);
    }

    // Owner, mode and times of a new file. One made by this process has the
    // committer's owner and group already; a moved one gets the same (the
    // group of a set-group-ID directory, else the committer's), and what it
    // has already (was: its stat) is not set again.
    Result<void> own(const Step& s, int fd, const Placed& p, const struct stat* was = nullptr) {
        int64_t uid = s.uid, gid = s.gid;
        if (p.moved) {
            if (uid < 0) uid = euid_;
            if (gid < 0) gid = p.dir->group;
        }
        if (was && uid_t(uid) == was->st_uid && gid_t(gid) == was->st_gid) uid = gid = -1;
        // Owner first: chown clears set-id bits.
        if ((uid >= 0 || gid >= 0) && ::fchown(fd, uid_t(uid < 0 ? -1 : uid), gid_t(gid < 0 ? -1 : gid)) < 0)
            return last_errno();
        if (!was || uid >= 0 || (was->st_mode & 07777) != (s.mode & 07777))
            if (::fchmod(fd, s.mode & 07777) < 0) return last_errno();
        if (was && sys::to_ns(was->st_atim) == s.atime_ns && sys::to_ns(was->st_mtim) == s.mtime_ns) return {};
        struct timespec ts[2] = {sys::from_ns(s.atime_ns), sys::from_ns(s.mtime_ns)};
        if (::futimens(fd, ts) < 0) return last_errno();
        return {};
    }

    // What an interrupted attempt left of step s: a partial copy at its
    // temporary name goes; the layer's file moved there is taken up again;
    // with neither that nor the layer's file, and the step's file at the
    // host's name (a regular file with the step's mtime), the step was done
    // and only its record lost.
    Result<void> resume(const Step& s, Placed& p) {
        int dir = p.fd();
        struct stat st;
        bool at_tmp = ::fstatat(dir, p.tmp.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
        auto gone_from_layer = [&] {
            auto l = sys::open_beneath(t_.layer, s.path.substr(1), O_PATH);
            return !l && l.error() == ENOENT;
        };
        if (s.kind == StepKind::PlaceFile && gone_from_layer()) {
            if (at_tmp && S_ISREG(st.st_mode)) {
                p.moved = Moved{s.path, {}};
                return {};
            }
            if (auto h = sys::stat_at(dir, p.name.c_str()); !at_tmp && h && S_ISREG(h->st_mode) &&
                                                              sys::to_ns(h->st_mtim) == s.mtime_ns) {
                p.done = true;
                return {};
            }
            return Errno{ENOENT};
        }
        if (at_tmp) (void)::unlinkat(dir, p.tmp.c_str(), 0);
        return {};
    }

    // Undoes a prepared entry whose step failed: a copy is removed, a moved
    // file goes back to the layer with its records.
    void drop(const Placed& p) {
        if (!p.moved) {
            (void)::unlinkat(p.fd(), p.tmp.c_str(), 0);
            return;
        }
        if (auto fd = sys::open_at(p.fd(), p.tmp.c_str(), O_RDONLY | O_NOFOLLOW))
            put_records(fd->get(), p.moved->records);
        if (auto to = layer_dir(parent_of(p.moved->path)))
            (void)::renameat(p.fd(), p.tmp.c_str(), *to, base_of(p.moved->path).c_str());
    }

    // The host directory at path, opened once for the new entries that
    // follow in it (they come in path order).
    Result<std::shared_ptr<const HostDir>> host_dir(const std::string& path) {
        if (host_dir_ && host_dir_path_ == path) return host_dir_;
        host_dir_.reset();
        auto fd = open_dir_beneath(t_.host_root, path);
        if (!fd) return Errno{fd.error()};
        auto st = sys::stat_fd(fd->get());
        if (!st) return Errno{st.error()};
        auto d = std::make_shared<HostDir>();
        d->fd = std::move(*fd);
        d->dev = st->st_dev;
        d->group = (st->st_mode & S_ISGID) ? st->st_gid : ::getegid();
        // Unknown (an O_PATH descriptor of a directory we may not read) counts as one.
        d->default_acl = ::fgetxattr(d->fd.get(), "system.posix_acl_default", nullptr, 0) >= 0 ||
                         (errno != ENODATA && errno != ENOTSUP);
        touched(d->fd.get());
        host_dir_ = d;
        host_dir_path_ = path;
        return std::shared_ptr<const HostDir>(d);
    }

    // The layer directory at path, likewise (it only ever loses files here).
    Result<int> layer_dir(const std::string& path) {
        if (layer_dir_.get() < 0 || layer_dir_path_ != path) {
            layer_dir_ = UniqueFd();
            auto fd = open_dir_beneath(t_.layer, path);
            if (!fd) return Errno{fd.error()};
            layer_dir_ = std::move(*fd);
            layer_dir_path_ = path;
        }
        return layer_dir_.get();
    }

    std::string temp_name(size_t n) const { return ".mbx-commit-" + j_.plan().id + "-" + std::to_string(n); }

    // Remembers the file system of dir (a descriptor on it) for sync_touched.
    void touched(int dir) {
        struct stat st;
        if (::fstat(dir, &st) < 0 || touched_.count(st.st_dev)) return;
        int fd = ::fcntl(dir, F_DUPFD_CLOEXEC, 3);
        if (fd >= 0) touched_.emplace(st.st_dev, UniqueFd(fd));
    }

    Journal& j_;
    const ApplyTarget& t_;
    std::map<dev_t, UniqueFd> touched_;
    const uid_t euid_ = ::geteuid();
    std::shared_ptr<const HostDir> host_dir_;
    std::string host_dir_path_;
    UniqueFd layer_dir_;
    std::string layer_dir_path_;
    bool unsynced_backups_ = false;  // keep(sync = false) since the last finish()
    bool layer_synced_ = false;
};

}  // namespace

void apply_plan(Journal& j, const ApplyTarget& t) {
    Applier a(j, t);
    const auto& steps = j.plan().steps;
    // Paths that did not come to be on the host: nothing below them can.
    std::vector<std::pair<std::string, int>> blocked;
    // Entries placed under temporary names, synced and renamed together: one
    // sync per batch instead of one per file (and per directory).
    constexpr size_t kBatch = 256;  // each holds its directory open
    std::vector<Placed> batch;
    for (size_t n = 0; n < steps.size(); ++n) {
        const Step& s = steps[n];
        auto done = j.outcomes().find(n);
        if (done != j.outcomes().end()) {
            if (done->second.err && (s.kind == StepKind::MakeDir || s.kind == StepKind::Remove))
                blocked.push_back({s.path, done->second.err});
            continue;
        }
        StepOutcome o;
        for (auto& [p, err] : blocked)
            if (is_below(s.path, p)) o = failed(err);
        if (!o.err && places(s.kind)) {
            if (s.kind == StepKind::PlaceLink) a.finish(batch);  // its first name must be in place
            auto p = a.prepare(n, s);
            if (p) {
                batch.push_back(std::move(*p));
                if (batch.size() >= kBatch) a.finish(batch);
                continue;
            }
            o = failed(p.error());
        } else if (!o.err) {
            a.finish(batch);  // what the step may depend on is in place first
            o = a.run(n, s);
        }
        if (o.err && (s.kind == StepKind::MakeDir || s.kind == StepKind::Remove)) blocked.push_back({s.path, o.err});
        j.record(n, o);
        fault_point();
    }
    a.finish(batch);
    j.mark_host_done();
    fault_point();
}

std::set<size_t> committed_entries(const Journal& j) {
    const auto& p = j.plan();
    std::vector<bool> ok(p.entries.size(), true);
    for (size_t n = 0; n < p.steps.size(); ++n) {
        auto o = j.outcomes().find(n);
        if (o == j.outcomes().end() || o->second.err) ok[p.steps[n].entry] = false;
    }
    std::set<size_t> out;
    for (size_t e = 0; e < ok.size(); ++e)
        if (ok[e]) out.insert(e);
    return out;
}

}  // namespace mbx::commit
