// Merged directory listings: upper entries first, then lower entries that are
// neither shadowed, whited out, hidden, nor under an opaque upper directory.
#include <dirent.h>

#include <unordered_set>

#include "overlay/filesystem.h"
#include "overlay/sys/sys.h"

namespace mbx::overlay {

Result<std::vector<MergedEntry>> Filesystem::list(Inode& dir) {
    auto f = fds(dir);
    if (!f) return Errno{f.error()};
    int upper = f->u(), lower = f->l();
    bool opaque;
    {
        std::lock_guard lock(dir.mu);
        opaque = dir.opaque;
    }
    std::vector<MergedEntry> out;
    std::unordered_set<std::string> seen;  // every upper name, whiteouts included
    if (upper >= 0) {
        auto entries = sys::read_dir(upper);
        if (!entries) return Errno{entries.error()};
        for (auto& e : *entries) {
            auto st = sys::stat_at(upper, e.name.c_str());
            if (!st) continue;  // gone meanwhile
            unsigned char type = e.type;
            if (S_ISREG(st->st_mode) || S_ISCHR(st->st_mode)) {
                if (layer::is_whiteout(upper, e.name.c_str(), *st)) {
                    seen.insert(std::move(e.name));
                    continue;
                }
                // A layer file may stand for a device, FIFO or socket (its
                // type is in the owner record): let the caller stat it.
                type = DT_UNKNOWN;
            }
            out.push_back({e.name, present_ino(st->st_dev, st->st_ino), type});
            seen.insert(std::move(e.name));
        }
    }
    if (lower >= 0 && !opaque) {
        auto entries = sys::read_dir(lower);
        if (!entries) {
            // Unreadable on the host: show what the layer has, if anything.
            if (upper < 0 || entries.error() != EACCES) return Errno{entries.error()};
        } else {
            auto dst = sys::stat_fd(lower);
            dev_t ldev = dst ? dst->st_dev : 0;
            for (auto& e : *entries) {
                if (seen.count(e.name)) continue;
                if (maybe_hidden(e.name)) {
                    auto st = sys::stat_at(lower, e.name.c_str());
                    if (st && hidden(*st)) continue;
                }
                out.push_back({e.name, present_ino(ldev, e.ino), e.type});
            }
        }
    }
    return out;
}

Result<void> Filesystem::check_empty(int upper_dir, int lower_dir, bool opaque) {
    std::unordered_set<std::string> whiteouts;
    if (upper_dir >= 0) {
        auto entries = sys::read_dir(upper_dir);
        if (!entries) return Errno{entries.error()};
        for (auto& e : *entries) {
            auto st = sys::stat_at(upper_dir, e.name.c_str());
            if (!st) continue;
            if (!layer::is_whiteout(upper_dir, e.name.c_str(), *st)) return Errno{ENOTEMPTY};
            whiteouts.insert(e.name);
        }
    }
    if (lower_dir >= 0 && !opaque) {
        auto entries = sys::read_dir(lower_dir);
        if (!entries) return Errno{entries.error()};
        for (auto& e : *entries) {
            if (whiteouts.count(e.name)) continue;
            if (maybe_hidden(e.name)) {
                auto st = sys::stat_at(lower_dir, e.name.c_str());
                if (st && hidden(*st)) continue;
            }
            return Errno{ENOTEMPTY};
        }
    }
    return {};
}

Result<void> Filesystem::clear_whiteouts(int upper_dir) {
    auto entries = sys::read_dir(upper_dir);
    if (!entries) return Errno{entries.error()};
    for (auto& e : *entries)
        if (::unlinkat(upper_dir, e.name.c_str(), 0) < 0 && errno != ENOENT) return last_errno();
    return {};
}

}  // namespace mbx::overlay
