#include "commit/apply.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
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

class Applier {
public:
    Applier(Journal& j, const ApplyTarget& t) : j_(j), t_(t) {}

    StepOutcome run(size_t n, const Step& s) {
        auto w = host_parent(t_.host_root, s.path);
        if (!w) return failed(w.error());
        int dir = w->dir.get();
        const char* name = w->name.c_str();
        std::string tmp = ".mbx-commit-" + j_.plan().id + "-" + std::to_string(n);
        (void)::unlinkat(dir, tmp.c_str(), 0);  // left by an interrupted attempt
        if (s.kind == StepKind::MakeDir) (void)::unlinkat(dir, tmp.c_str(), AT_REMOVEDIR);
        Result<void> r;
        switch (s.kind) {
            case StepKind::Remove: r = remove(n, dir, name); break;
            case StepKind::MakeDir: r = make_dir(s, dir, name, tmp.c_str()); break;
            case StepKind::SetMeta:
            case StepKind::DirMeta: r = set_meta(s, dir, name); break;
            default: r = place(n, s, dir, name, tmp.c_str()); break;
        }
        if (!r) {
            (void)::unlinkat(dir, tmp.c_str(), s.kind == StepKind::MakeDir ? AT_REMOVEDIR : 0);
            return failed(r.error());
        }
        sync_dir(dir);
        return s.kind == StepKind::Remove ? StepOutcome{} : outcome_at(dir, name);
    }

private:
    // Keeps the host entry dir/name as backup n, once: a retried step finds
    // the backup of its first attempt. move: the entry may leave the host.
    Result<void> keep(size_t n, int dir, const char* name, const struct stat& st, bool move) {
        std::string b = std::to_string(n), part = b + ".part";
        int backups = j_.backups();
        struct stat bst;
        if (::fstatat(backups, b.c_str(), &bst, AT_SYMLINK_NOFOLLOW) == 0) return {};
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
        sync_dir(backups);
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

    // A new entry under a temporary name, complete and synced, then renamed
    // over the target: the host has either the old entry or the new one.
    Result<void> place(size_t n, const Step& s, int dir, const char* name, const char* tmp) {
        if (s.backup)
            if (auto st = sys::stat_at(dir, name); st) {
                if (S_ISDIR(st->st_mode)) return Errno{EISDIR};  // the host moved on
                if (auto r = keep(n, dir, name, *st, false); !r) return r;
            }
        Result<void> r = create(s, dir, tmp);
        if (!r) return r;
        // Regular files got theirs through their descriptor; a hard link has its first name's.
        if (s.kind == StepKind::PlaceSymlink || s.kind == StepKind::PlaceNode)
            if (r = set_meta_at(dir, tmp, s.mode, s.uid, s.gid, s.atime_ns, s.mtime_ns); !r) return r;
        fault_point();
        if (r = sys::rename_at(dir, tmp, dir, name); !r) return r;
        fault_point();
        return {};
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
        fault_point();
        if (::fsync(fd) < 0) return last_errno();
        return {};
    }

    Journal& j_;
    const ApplyTarget& t_;
};

}  // namespace

void apply_plan(Journal& j, const ApplyTarget& t) {
    Applier a(j, t);
    const auto& steps = j.plan().steps;
    // Paths that did not come to be on the host: nothing below them can.
    std::vector<std::pair<std::string, int>> blocked;
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
        if (!o.err) o = a.run(n, s);
        if (o.err && (s.kind == StepKind::MakeDir || s.kind == StepKind::Remove)) blocked.push_back({s.path, o.err});
        j.record(n, o);
        fault_point();
    }
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
