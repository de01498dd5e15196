#include "commit/change_scan.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "overlay/copy_data.h"
#include "overlay/layer_format.h"
#include "overlay/sys/sys.h"

namespace mbx::commit {

char kind_letter(ChangeKind k) {
    switch (k) {
        case ChangeKind::Added: return 'A';
        case ChangeKind::Modified: return 'M';
        case ChangeKind::Deleted: return 'D';
    }
    return '?';
}

namespace {

struct Walker {
    int host_root;
    std::vector<Change> out;

    // Does the host have this path now? (Read-only probe: intermediate
    // symlinks may be followed; nothing is written.)
    bool host_has(const std::string& rel) {
        struct stat st;
        return ::fstatat(host_root, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    }

    // A copied-up entry that equals its origin (same content, mode, owner) is unchanged.
    bool same_as_origin(int dir, const char* name, const struct stat& st) {
        auto fd = sys::open_path(dir, name);
        if (!fd) return false;
        auto ov = sys::get_xattr(fd->get(), layer::kOriginXattr);
        if (!ov) return false;
        auto origin = layer::parse_origin(*ov);
        if (!origin) return false;
        mode_t mode = st.st_mode;
        uint32_t uid = st.st_uid, gid = st.st_gid;
        if (auto o = sys::get_xattr(fd->get(), layer::kOverrideXattr))
            if (auto p = layer::parse_override(*o, st.st_mode)) {
                mode = p->mode;
                uid = p->uid;
                gid = p->gid;
            }
        if (mode != origin->mode || uid != origin->uid || gid != origin->gid) return false;
        if (!S_ISREG(st.st_mode)) return S_ISDIR(st.st_mode) || (S_ISREG(mode) == false && st.st_size == 0);
        if (st.st_size != origin->size || origin->xxh3.empty()) return false;
        auto rfd = sys::reopen(fd->get(), O_RDONLY);
        if (!rfd) return false;
        auto h = copyup::hash_file(rfd->get());
        return h && *h == origin->xxh3;
    }

    mode_t presented_mode(int dir, const char* name, const struct stat& st) {
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return st.st_mode;
        auto fd = sys::open_path(dir, name);
        if (!fd) return st.st_mode;
        if (auto o = sys::get_xattr(fd->get(), layer::kOverrideXattr))
            if (auto p = layer::parse_override(*o, st.st_mode)) return p->mode;
        return st.st_mode;
    }

    // An opaque layer directory hides the host directory's entries: those the
    // layer does not have again are deleted.
    void deleted_below(int upper_dir, const std::string& path) {
        auto host = sys::open_at(host_root, path.substr(1).c_str(), O_RDONLY | O_DIRECTORY);
        if (!host) return;
        auto entries = sys::read_dir(host->get());
        if (!entries) return;
        for (auto& e : *entries) {
            struct stat st;
            if (::fstatat(upper_dir, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) continue;
            out.push_back({ChangeKind::Deleted, path + "/" + e.name, 0});
        }
    }

    void walk(int dir, const std::string& prefix, bool all_new) {
        auto entries = sys::read_dir(dir);
        if (!entries) return;
        for (auto& e : *entries) {
            const char* name = e.name.c_str();
            auto st = sys::stat_at(dir, name);
            if (!st) continue;
            std::string path = prefix + "/" + e.name;
            std::string rel = path.substr(1);
            if (layer::is_whiteout(dir, name, *st)) {
                if (!all_new) out.push_back({ChangeKind::Deleted, path, 0});
                continue;
            }
            bool on_host = !all_new && host_has(rel);
            if (!on_host) {
                out.push_back({ChangeKind::Added, path, presented_mode(dir, name, *st)});
            } else if (!same_as_origin(dir, name, *st)) {
                out.push_back({ChangeKind::Modified, path, presented_mode(dir, name, *st)});
            }
            if (S_ISDIR(st->st_mode)) {
                auto sub = sys::open_at(dir, name, O_RDONLY | O_DIRECTORY);
                if (!sub) continue;
                if (on_host && layer::is_opaque(sub->get())) deleted_below(sub->get(), path);
                walk(sub->get(), path, !on_host);
            }
        }
    }
};

}  // namespace

std::vector<Change> scan_layer(int layer_dir, int host_root) {
    Walker w{host_root, {}};
    w.walk(layer_dir, "", false);
    std::sort(w.out.begin(), w.out.end(), [](const Change& a, const Change& b) { return a.path < b.path; });
    return w.out;
}

}  // namespace mbx::commit
