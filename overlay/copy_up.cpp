// Copy-up: moving a host object into the layer before its first change.
// Every copy is staged in the session's work directory (data, owner record,
// xattrs, times, origin) and then renamed into place, so a layer entry is
// either absent or complete, whatever happens to mbx in between.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "overlay/copy_data.h"
#include "overlay/filesystem.h"
#include "overlay/sys/sys.h"

namespace mbx::overlay {

namespace {

struct Staged {
    std::string tmp;
    std::optional<layer::Override> ovr;
};

// The real mode of a layer file: the presented permission bits, plus what
// the server itself needs to read, write and search it.
mode_t layer_mode(mode_t presented) {
    return (presented & 0777) | (S_ISDIR(presented) ? 0700 : 0600);
}

}  // namespace

std::string Filesystem::temp_name() {
    char buf[48];
    std::snprintf(buf, sizeof buf, "t.%d.%llu", static_cast<int>(::getpid()),
                  static_cast<unsigned long long>(++tmp_counter_));
    return buf;
}

Result<void> Filesystem::install(const char* tmp, int upper_dir, const char* name,
                                 bool over_whiteout) {
    if (over_whiteout) {
        // The new entry stands where the host entry was: it inherits the record
        // of what it replaces (symlinks cannot carry it).
        if (auto wh = sys::open_path(upper_dir, name))
            if (auto v = sys::get_xattr(wh->get(), layer::kOriginXattr))
                if (auto t = sys::open_path(work(), tmp)) (void)sys::set_xattr(t->get(), layer::kOriginXattr, *v);
        auto r = sys::rename_at(work(), tmp, upper_dir, name, RENAME_EXCHANGE);
        if (!r) return r;
        ::unlinkat(work(), tmp, 0);  // the whiteout that was there
        return {};
    }
    return sys::rename_at(work(), tmp, upper_dir, name, RENAME_NOREPLACE);
}

Result<void> Filesystem::put_whiteout(int upper_dir, const char* name, const layer::Origin& origin,
                                      bool replace_existing) {
    return layer::put_whiteout(work(), temp_name(), upper_dir, name, origin, replace_existing);
}

Result<void> Filesystem::write_override(Inode& in, int upper_fd, const layer::Override& o) {
    auto r = sys::set_xattr(upper_fd, layer::kOverrideXattr, layer::format_override(o));
    if (!r) return r;
    in.ovr = o;
    return {};
}

namespace {

// Stages a copy of the host object src (an O_PATH fd, stat'ed as st) in work.
Result<Staged> stage_copy(Filesystem& fs, int src, const struct stat& st, bool with_data, const std::string& path) {
    Staged s;
    s.tmp = fs.temp_name();
    const char* tmp = s.tmp.c_str();
    int work = fs.work();
    layer::Origin origin = layer::origin_from_stat(st);
    origin.path_hash = layer::path_hash(path);
    layer::Override ovr{fs.cfg().ids.uid(st.st_uid), fs.cfg().ids.gid(st.st_gid), st.st_mode,
                        st.st_rdev};
    // The origin keeps the owner as presented inside, to compare with the owner record.
    origin.uid = ovr.uid;
    origin.gid = ovr.gid;
    UniqueFd staged;
    auto fail = [&](int e) -> Result<Staged> {
        staged.reset();
        (void)sys::remove_tree_at(work, tmp);
        return Errno{e};
    };

    switch (st.st_mode & S_IFMT) {
        case S_IFDIR: {
            if (::mkdirat(work, tmp, 0700) < 0) return last_errno();
            auto fd = sys::open_path(work, tmp);
            if (!fd) return fail(fd.error());
            staged = std::move(*fd);
            break;
        }
        case S_IFREG: {
            auto in = sys::reopen(src, O_RDONLY);
            if (!in) return Errno{in.error()};
            auto out = sys::open_at(work, tmp, O_CREAT | O_EXCL | O_RDWR, 0600);
            if (!out) return Errno{out.error()};
            staged = std::move(*out);
            auto hash = with_data ? copyup::copy_file_data(in->get(), staged.get(), st.st_size)
                                  : copyup::hash_file(in->get());
            if (!hash) return fail(hash.error());
            origin.xxh3 = *hash;
            break;
        }
        case S_IFLNK: {
            auto target = sys::readlink_fd(src);
            if (!target) return Errno{target.error()};
            if (::symlinkat(target->c_str(), work, tmp) < 0) return last_errno();
            // Symlinks carry no user xattrs: their owner shows as the real one.
            struct timespec ts[2] = {st.st_atim, st.st_mtim};
            ::utimensat(work, tmp, ts, AT_SYMLINK_NOFOLLOW);
            return s;
        }
        default: {
            // Devices, FIFOs and sockets become empty files whose type lives in
            // the owner record: the layer never holds a real device node.
            auto out = sys::open_at(work, tmp, O_CREAT | O_EXCL | O_WRONLY, 0600);
            if (!out) return Errno{out.error()};
            staged = std::move(*out);
            break;
        }
    }
    if (auto r = copyup::copy_xattrs(src, staged.get()); !r) return fail(r.error());
    if (auto r = sys::set_xattr(staged.get(), layer::kOverrideXattr, layer::format_override(ovr)); !r)
        return fail(r.error());
    if (auto r = sys::set_xattr(staged.get(), layer::kOriginXattr, layer::format_origin(origin)); !r)
        return fail(r.error());
    if (::fchmodat(work, tmp, layer_mode(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ? st.st_mode : S_IFREG | 0600), 0) < 0)
        return fail(errno);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(work, tmp, ts, AT_SYMLINK_NOFOLLOW) < 0) return fail(errno);
    s.ovr = ovr;
    return s;
}

}  // namespace

Result<void> Filesystem::copy_up(const std::shared_ptr<Inode>& in, bool with_data) {
    std::shared_ptr<Inode> parent;
    std::string name;
    {
        std::lock_guard lock(in->mu);
        if (in->has_upper) return {};
        // Its name now leads elsewhere (a whiteout, or a file renamed over
        // it): copying up by name would give it someone else's entry. Its
        // changes go to its private copy (see Filesystem::detached); what
        // cannot (xattrs, links) fails as for a file with no name.
        if (in->detached) return Errno{ENOENT};
        parent = in->parent;
        name = in->name;
    }
    if (!parent) return Errno{EIO};  // only the root has no parent, and it is always upper
    if (auto r = copy_up(parent); !r) return r;
    auto pf = fds(*parent);
    if (!pf) return Errno{pf.error()};
    auto f = fds(*in);
    if (!f) return Errno{f.error()};
    int pupper = pf->u();

    std::string in_path = path_of(*in);
    FdCache::TrimOnExit trim{fd_cache_};  // the handle set_upper adds
    std::lock_guard lock(in->mu);
    if (in->has_upper) return {};
    auto adopt = [&]() -> Result<void> {
        auto st = sys::stat_at(pupper, name.c_str());
        if (!st) return Errno{st.error()};
        auto fd = sys::open_path(pupper, name.c_str());
        if (!fd) return Errno{fd.error()};
        in->ovr = read_override(fd->get(), st->st_mode);
        set_upper(*in, std::move(*fd));
        if (!S_ISDIR(st->st_mode)) in->has_lower = false;  // the host file no longer matters
        table_.rekey(in.get(), InodeKey{st->st_dev, st->st_ino, 0});
        return {};
    };
    // Another Inode of the same name (a renamed tree, a hard link) may have
    // copied it already.
    if (auto st = sys::stat_at(pupper, name.c_str()); st && !layer::is_whiteout(pupper, name.c_str(), *st))
        return adopt();

    auto st = sys::stat_fd(f->l());
    if (!st) return Errno{st.error()};
    auto staged = stage_copy(*this, f->l(), *st, with_data, in_path);
    if (!staged) return Errno{staged.error()};
    auto r = sys::rename_at(work(), staged->tmp.c_str(), pupper, name.c_str(), RENAME_NOREPLACE);
    if (!r) {
        (void)sys::remove_tree_at(work(), staged->tmp.c_str());
        if (r.error() == EEXIST) return adopt();
        return r;
    }
    return adopt();
}

namespace {

// Copies every visible lower entry of lower_dir into upper_dir (recursively),
// leaving entries the layer already has, then marks upper_dir opaque.
Result<void> copy_tree(Filesystem& fs, int lower_dir, int upper_dir, const std::string& prefix) {
    auto entries = sys::read_dir(lower_dir);
    if (!entries) return Errno{entries.error()};
    for (auto& e : *entries) {
        const char* name = e.name.c_str();
        auto lst = sys::stat_at(lower_dir, name);
        if (!lst || fs.hidden(*lst)) continue;
        auto ust = sys::stat_at(upper_dir, name);
        if (ust) {
            if (layer::is_whiteout(upper_dir, name, *ust)) continue;
            if (!S_ISDIR(ust->st_mode) || !S_ISDIR(lst->st_mode)) continue;
        } else {
            auto src = sys::open_path(lower_dir, name);
            if (!src) return Errno{src.error()};
            auto staged = stage_copy(fs, src->get(), *lst, true, prefix + "/" + e.name);
            if (!staged) return Errno{staged.error()};
            auto r = sys::rename_at(fs.work(), staged->tmp.c_str(), upper_dir, name, RENAME_NOREPLACE);
            if (!r) {
                (void)sys::remove_tree_at(fs.work(), staged->tmp.c_str());
                return r;
            }
            if (!S_ISDIR(lst->st_mode)) continue;
        }
        auto sub_upper = sys::open_path(upper_dir, name);
        if (!sub_upper) return Errno{sub_upper.error()};
        if (layer::is_opaque(sub_upper->get())) continue;
        auto sub_lower = sys::open_path(lower_dir, name);
        if (!sub_lower) return Errno{sub_lower.error()};
        if (auto r = copy_tree(fs, sub_lower->get(), sub_upper->get(), prefix + "/" + e.name); !r) return r;
    }
    return sys::set_xattr(upper_dir, layer::kOpaqueXattr, "y");
}

}  // namespace

Result<void> Filesystem::copy_up_tree(const std::shared_ptr<Inode>& dir) {
    if (auto r = copy_up(dir); !r) return r;
    auto f = fds(*dir);
    if (!f) return Errno{f.error()};
    std::string prefix = path_of(*dir);  // before taking dir->mu: path_of locks it
    if (prefix == "/") prefix.clear();
    std::lock_guard lock(dir->mu);
    if (dir->opaque || !f->lower) {
        dir->opaque = true;
        return sys::set_xattr(f->u(), layer::kOpaqueXattr, "y");
    }
    auto r = copy_tree(*this, f->l(), f->u(), prefix);
    if (r) dir->opaque = true;
    return r;
}

}  // namespace mbx::overlay
