#include "commit/apply.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "commit/fault.h"
#include "commit/host_tree.h"
#include "overlay/copy_data.h"
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

// A new entry made under its temporary name, not yet renamed into place.
struct Placed {
    size_t n;
    UniqueFd dir;
    std::string name, tmp;
};

class Applier {
public:
    Applier(Journal& j, const ApplyTarget& t) : j_(j), t_(t) {}

    // A step that makes a directory, removes an entry or sets metadata.
    StepOutcome run(size_t n, const Step& s) {
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
        auto w = host_parent(t_.host_root, s.path);
        if (!w) return Errno{w.error()};
        int dir = w->dir.get();
        touched(dir);
        Placed p{n, std::move(w->dir), w->name, temp_name(n)};
        const char* name = p.name.c_str();
        const char* tmp = p.tmp.c_str();
        (void)::unlinkat(dir, tmp, 0);  // left by an interrupted attempt
        auto r = [&]() -> Result<void> {
            if (s.backup)
                if (auto st = sys::stat_at(dir, name); st) {
                    if (S_ISDIR(st->st_mode)) return Errno{EISDIR};  // the host moved on
                    if (auto k = keep(n, dir, name, *st, false, false); !k) return k;
                }
            if (auto c = create(s, dir, tmp); !c) return c;
            // Regular files got theirs through their descriptor; a hard link has its first name's.
            if (s.kind == StepKind::PlaceSymlink || s.kind == StepKind::PlaceNode)
                return set_meta_at(dir, tmp, s.mode, s.uid, s.gid, s.atime_ns, s.mtime_ns);
            return {};
        }();
        if (!r) {
            (void)::unlinkat(dir, tmp, 0);
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
                if (auto st = sys::stat_at(p.dir.get(), p.tmp.c_str()); st && S_ISREG(st->st_mode))
                    if (auto f = sys::open_at(p.dir.get(), p.tmp.c_str(), O_RDONLY | O_NOFOLLOW)) ::fsync(f->get());
            if (unsynced_backups_) sync_dir(j_.backups());
        }
        unsynced_backups_ = false;
        std::vector<StepOutcome> outcomes;
        for (auto& p : batch) {
            StepOutcome o;
            if (auto r = sys::rename_at(p.dir.get(), p.tmp.c_str(), p.dir.get(), p.name.c_str()); !r) {
                (void)::unlinkat(p.dir.get(), p.tmp.c_str(), 0);
                o = failed(r.error());
            } else {
                o = outcome_at(p.dir.get(), p.name.c_str());
            }
            outcomes.push_back(o);
            fault_point();
        }
        std::vector<std::pair<dev_t, ino_t>> synced_dirs;
        for (auto& p : batch) {
            auto st = sys::stat_fd(p.dir.get());
            if (!st) continue;
            std::pair<dev_t, ino_t> id{st->st_dev, st->st_ino};
            if (std::find(synced_dirs.begin(), synced_dirs.end(), id) != synced_dirs.end()) continue;
            synced_dirs.push_back(id);
            sync_dir(p.dir.get());
        }
        // Recorded once on disk: a record never claims a rename a power cut could undo.
        for (size_t i = 0; i < batch.size(); ++i) j_.record(batch[i].n, outcomes[i]);
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

    Result<void> create(const Step& s, int dir, const char* tmp) {
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
                return create_file(s, dir, tmp);  // the first name failed, or another filesystem
            default:
                return create_file(s, dir, tmp);
        }
    }

    Result<void> create_file(const Step& s, int dir, const char* tmp) {
        // The layer file, reached without following symlinks: one planted in
        // the layer after review gives ELOOP instead of another file's bytes.
        auto src = sys::open_beneath(t_.layer, s.path.substr(1), O_RDONLY);
        if (!src) return Errno{src.error()};
        auto st = sys::stat_fd(src->get());
        if (!st) return Errno{st.error()};
        if (!S_ISREG(st->st_mode)) return Errno{ELOOP};
        auto dst = sys::open_at(dir, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (!dst) return Errno{dst.error()};
        int fd = dst->get();
        if (auto r = copyup::copy_file_data(src->get(), fd, st->st_size); !r) return Errno{r.error()};
        (void)copyup::copy_xattrs(src->get(), fd);
        // Owner first: chown clears set-id bits.
        if ((s.uid >= 0 || s.gid >= 0) && ::fchown(fd, uid_t(s.uid < 0 ? -1 : s.uid), gid_t(s.gid < 0 ? -1 : s.gid)) < 0)
            return last_errno();
        if (::fchmod(fd, s.mode & 07777) < 0) return last_errno();
        struct timespec ts[2] = {sys::from_ns(s.atime_ns), sys::from_ns(s.mtime_ns)};
        if (::futimens(fd, ts) < 0) return last_errno();
        return {};  // synced with its batch (finish)
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
    bool unsynced_backups_ = false;  // keep(sync = false) since the last finish()
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
