#include "commit/layer_edit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "commit/fault.h"
#include "overlay/layer_format.h"
#include "overlay/sys/sys.h"

namespace mbx::commit {

namespace {

Result<UniqueFd> layer_dir(int layer, const std::string& path) {
    return sys::open_beneath(layer, path == "/" ? "." : path.substr(1), O_RDONLY | O_DIRECTORY);
}

bool dir_empty(int dir) {
    auto e = sys::read_dir(dir);
    return e && e->empty();
}

// The origin a layer directory gets when it stands for the host directory
// at path as it is now: unchanged, as far as the change scan can tell.
void record_host_origin(const LayerDirs& d, int dir, const std::string& path) {
    auto host = sys::open_beneath(d.host_root, path.substr(1), O_PATH);
    if (!host) return;
    auto st = sys::stat_fd(host->get());
    if (!st) return;
    layer::Origin o = layer::origin_from_stat(*st);
    if (auto v = sys::get_xattr(dir, layer::kOverrideXattr))
        if (auto ovr = layer::parse_override(*v, S_IFDIR)) {
            o.mode = ovr->mode;
            o.uid = ovr->uid;
            o.gid = ovr->gid;
        }
    o.path_hash = layer::path_hash(path);
    (void)sys::set_xattr(dir, layer::kOriginXattr, layer::format_origin(o));
}

// An opaque directory hides every host entry it does not have; once some of
// its entries leave the layer it must hide exactly the deletions still
// pending: explicit whiteouts for those, then no opaque mark.
void clear_opaque(const LayerDirs& d, int dir, const std::string& path, const std::vector<PlanEntry>& keep) {
    if (!layer::is_opaque(dir)) return;
    for (auto& k : keep) {
        if (k.kind != 'D' || parent_of(k.path) != path) continue;
        std::string name = base_of(k.path);
        struct stat st;
        if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) continue;
        auto host = sys::open_beneath(d.host_root, k.path.substr(1), O_PATH);
        if (!host) continue;
        auto hst = sys::stat_fd(host->get());
        if (!hst) continue;
        layer::Origin o = layer::origin_from_stat(*hst);
        o.path_hash = layer::path_hash(k.path);
        (void)layer::put_whiteout(d.work, ".mbx-whiteout", dir, name.c_str(), o, false);
    }
    (void)sys::remove_xattr(dir, layer::kOpaqueXattr);
}

}  // namespace

void drop_entries(const LayerDirs& d, const std::vector<PlanEntry>& drop, const std::vector<PlanEntry>& keep,
                  bool committed) {
    std::set<std::string> kept;
    for (auto& k : keep) kept.insert(k.path);
    // Every directory on the way to a dropped entry, deepest first.
    std::set<std::string, std::greater<>> dirs;
    for (auto& e : drop) {
        if (e.dir) dirs.insert(e.path);
        for (std::string p = parent_of(e.path); p != "/"; p = parent_of(p)) dirs.insert(p);
    }
    for (auto& p : dirs)
        if (auto dir = layer_dir(d.layer, p)) clear_opaque(d, dir->get(), p, keep);

    std::vector<PlanEntry> order = drop;
    std::sort(order.begin(), order.end(), [](const PlanEntry& a, const PlanEntry& b) { return a.path > b.path; });
    std::string parent_path;  // of parent, opened once for the entries that follow in it
    Result<UniqueFd> parent = Errno{ENOENT};
    for (auto& e : order) {
        if (parent_of(e.path) != parent_path || !parent) {
            parent_path = parent_of(e.path);
            parent = layer_dir(d.layer, parent_path);
        }
        if (!parent) continue;
        std::string name = base_of(e.path);
        auto st = sys::stat_at(parent->get(), name.c_str());
        if (!st) continue;
        if (S_ISDIR(st->st_mode) && committed) {
            auto dir = sys::open_at(parent->get(), name.c_str(), O_RDONLY | O_DIRECTORY);
            if (!dir) continue;
            if (dir_empty(dir->get())) ::unlinkat(parent->get(), name.c_str(), AT_REMOVEDIR);
            else record_host_origin(d, dir->get(), e.path);
        } else {
            (void)sys::remove_tree_at(parent->get(), name.c_str());
        }
        fault_point();
    }
    // Directories that were only the way to what left: gone when empty.
    for (auto& p : dirs) {
        if (kept.count(p)) continue;
        auto parent = layer_dir(d.layer, parent_of(p));
        if (!parent) continue;
        std::string name = base_of(p);
        if (auto dir = sys::open_at(parent->get(), name.c_str(), O_RDONLY | O_DIRECTORY); dir && dir_empty(dir->get()))
            ::unlinkat(parent->get(), name.c_str(), AT_REMOVEDIR);
    }
}

bool layer_empty(int layer) { return dir_empty(layer); }

}  // namespace mbx::commit
