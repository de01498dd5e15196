#include "commit/revert.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>

#include "commit/host_tree.h"
#include "overlay/sys/sys.h"

namespace mbx::commit {

namespace {


// Is the host entry at the step's path still what the step left there?
bool as_left(int host_root, const Step& s, const StepOutcome& o) {
    auto fd = sys::open_beneath(host_root, s.path.substr(1), O_PATH);
    if (s.kind == StepKind::Remove) return !fd && fd.error() == ENOENT;
    if (!fd) return false;
    auto st = sys::stat_fd(fd->get());
    if (!st || st->st_ino != o.ino) return false;
    if (S_ISDIR(st->st_mode)) return true;  // entries below are checked on their own
    return sys::to_ns(st->st_mtim) == o.mtime_ns && st->st_size == o.size;
}

// Puts backup n back at dir/name (replacing what is there, atomically when
// it can be moved; else through a temporary copy).
Result<void> restore_backup(int backups, size_t n, int dir, const char* name, const std::string& tmp) {
    std::string b = std::to_string(n);
    if (::renameat(backups, b.c_str(), dir, name) == 0) return {};
    if (errno != EXDEV) return last_errno();
    (void)sys::remove_tree_at(dir, tmp.c_str());
    if (auto r = copy_tree(backups, b.c_str(), dir, tmp.c_str()); !r) {
        (void)sys::remove_tree_at(dir, tmp.c_str());
        return r;
    }
    return sys::rename_at(dir, tmp.c_str(), dir, name);
}

Result<void> undo(const Journal& data, size_t n, const Step& s, int host_root) {
    auto dir = open_dir_beneath(host_root, parent_of(s.path));
    if (!dir) return Errno{dir.error()};
    std::string name = base_of(s.path);
    std::string tmp = ".mbx-revert-" + data.plan().id + "-" + std::to_string(n);
    int d = dir->get();
    Result<void> r;
    switch (s.kind) {
        case StepKind::SetMeta:
        case StepKind::DirMeta:
            if (!s.before.exists) return {};
            r = set_meta_at(d, name.c_str(), s.before.mode, ::geteuid() == 0 ? int64_t(s.before.uid) : -1,
                            ::geteuid() == 0 ? int64_t(s.before.gid) : -1, s.before.atime_ns, s.before.mtime_ns);
            break;
        case StepKind::MakeDir:
            if (::unlinkat(d, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT) return last_errno();
            break;
        case StepKind::Remove:
            r = restore_backup(data.backups(), n, d, name.c_str(), tmp);
            break;
        default:
            if (s.backup && s.before.exists) r = restore_backup(data.backups(), n, d, name.c_str(), tmp);
            else if (::unlinkat(d, name.c_str(), 0) < 0 && errno != ENOENT) return last_errno();
            break;
    }
    if (r) sync_dir(d);
    return r;
}

}  // namespace

RevertReport revert_commit(const Journal& data, int host_root, bool force) {
    RevertReport rep;
    const auto& steps = data.plan().steps;
    // What each path should be now: the outcome of the last step done there.
    std::map<std::string, size_t> last;
    for (size_t n = 0; n < steps.size(); ++n) {
        auto o = data.outcomes().find(n);
        if (o != data.outcomes().end() && !o->second.err) last[steps[n].path] = n;
    }
    std::set<std::string> changed;
    for (auto& [path, n] : last)
        if (!as_left(host_root, steps[n], data.outcomes().at(n))) {
            changed.insert(path);
            rep.changed.push_back(path);
        }
    if (!changed.empty() && !force) return rep;
    for (size_t n = steps.size(); n-- > 0;) {
        auto o = data.outcomes().find(n);
        if (o == data.outcomes().end() || o->second.err || changed.count(steps[n].path)) continue;
        if (auto r = undo(data, n, steps[n], host_root); !r) rep.failed.push_back({steps[n].path, r.error()});
        else rep.restored++;
    }
    return rep;
}

}  // namespace mbx::commit
