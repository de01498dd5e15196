// Merged directory listings: upper entries, and lower entries that are neither
// shadowed, whited out, hidden, nor under an opaque upper directory; in the
// order of their cookies (stable readdir offsets).
#include <dirent.h>
#include <xxhash.h>

#include <algorithm>
#include <unordered_set>

#include "overlay/filesystem.h"
#include "overlay/sys/sys.h"

namespace mbx::overlay {

namespace {

uint64_t cookie_of(const std::string& name) {
    uint64_t c = XXH3_64bits(name.data(), name.size()) >> 1;  // a positive off_t
    return c < 3 ? c + 3 : c;
}

}  // namespace

Result<Listing> Filesystem::list(Inode& dir) {
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
            out.push_back({e.name, present_ino(st->st_dev, st->st_ino), type, cookie_of(e.name)});
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
                out.push_back({e.name, present_ino(ldev, e.ino), e.type, cookie_of(e.name)});
            }
        }
    }
    // Two names with one cookie (a 63-bit hash) would make a read that stops
    // between them skip the second: not expected in this universe.
    std::sort(out.begin(), out.end(), [](const MergedEntry& a, const MergedEntry& b) { return a.cookie < b.cookie; });
    return Listing{std::move(out)};
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
