#include "commit/change_scan.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "overlay/copy_data.h"
#include "overlay/layer_format.h"
#include "overlay/sys/sys.h"

namespace mbx::commit {

char kind_letter(ChangeKind k) {
    switch (k) {
        case ChangeKind::Added: return 'A';
        case ChangeKind::Modified: return 'M';
        case ChangeKind::Deleted: return 'D';
        case ChangeKind::TypeChanged: return 'T';
        case ChangeKind::MetadataOnly: return 'm';
    }
    return '?';
}

char effect_letter(const Change& c) {
    if (c.kind == ChangeKind::Deleted) return 'D';
    if (c.kind == ChangeKind::Added && c.conflict != Conflict::HostAppeared) return 'A';
    return 'M';
}

const char* conflict_name(Conflict c) {
    switch (c) {
        case Conflict::None: return nullptr;
        case Conflict::HostChanged: return "host-changed";
        case Conflict::HostVanished: return "host-vanished";
        case Conflict::HostAppeared: return "host-appeared";
    }
    return nullptr;
}

const char* type_name(mode_t mode) {
    switch (mode & S_IFMT) {
        case S_IFDIR: return "dir";
        case S_IFLNK: return "symlink";
        case S_IFIFO: return "fifo";
        case S_IFSOCK: return "socket";
        case S_IFCHR: return "char";
        case S_IFBLK: return "block";
        default: return "file";
    }
}

namespace {

// What the layer records about one entry.
struct LayerEntry {
    struct stat st;          // the layer file itself
    mode_t mode;             // presented type and mode
    uint32_t uid, gid;
    dev_t rdev = 0;
    bool owner_set = false;
    std::optional<layer::Origin> origin;
};

struct Walker {
    int host_root;
    uint32_t record_less_uid, record_less_gid;
    bool times;
    std::vector<Change> out;

    // The host entry at rel now, reached without following any symlink on
    // the way (a path the sandbox saw had none).
    std::optional<struct stat> host_stat(const std::string& rel) {
        auto f = sys::open_beneath(host_root, rel, O_PATH);
        if (!f) return std::nullopt;
        auto st = sys::stat_fd(f->get());
        if (!st) return std::nullopt;
        return *st;
    }

    std::optional<std::string> host_hash(const std::string& rel) {
        auto f = sys::open_beneath(host_root, rel, O_RDONLY);
        if (!f) return std::nullopt;
        auto h = copyup::hash_file(f->get());
        if (!h) return std::nullopt;
        return *h;
    }

    LayerEntry read_entry(int dir, const char* name, const struct stat& st, const std::string& path) {
        LayerEntry e{st, st.st_mode, record_less_uid, record_less_gid, 0, false, std::nullopt};
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return e;
        // The names first: most entries have one or two of the three records.
        auto names = sys::list_xattr_at(dir, name);
        if (!names) return e;
        auto has = [&](const char* x) { return std::find(names->begin(), names->end(), x) != names->end(); };
        if (has(layer::kOverrideXattr))
            if (auto o = sys::get_xattr_at(dir, name, layer::kOverrideXattr))
                if (auto p = layer::parse_override(*o, st.st_mode)) {
                    e.mode = p->mode;
                    e.uid = p->uid;
                    e.gid = p->gid;
                    e.rdev = p->rdev;
                }
        e.owner_set = has(layer::kChownXattr);
        if (has(layer::kOriginXattr))
            if (auto v = sys::get_xattr_at(dir, name, layer::kOriginXattr)) e.origin = layer::parse_origin(*v);
        if (e.origin && !layer::origin_at(*e.origin, path)) e.origin.reset();
        return e;
    }

    std::optional<std::string> layer_hash(int dir, const char* name) {
        auto fd = sys::open_at(dir, name, O_RDONLY);
        if (!fd) return std::nullopt;
        auto h = copyup::hash_file(fd->get());
        if (!h) return std::nullopt;
        return *h;
    }

    bool xattrs_differ(int dir, const char* name, const std::string& rel) {
        auto l = sys::open_path(dir, name);
        auto h = sys::open_beneath(host_root, rel, O_PATH);
        if (!l || !h) return false;
        return copyup::user_xattrs(l->get()) != copyup::user_xattrs(h->get());
    }

    // Is the host entry still the one the origin describes? Identity first;
    // a regular file whose size or time moved is confirmed by its hash.
    bool host_unchanged(const layer::Origin& o, const struct stat& h, const std::string& rel) {
        if (h.st_dev != o.dev || h.st_ino != o.ino || (h.st_mode & S_IFMT) != (o.mode & S_IFMT)) return false;
        int64_t mtime = sys::to_ns(h.st_mtim);
        if (h.st_size == o.size && mtime == o.mtime_ns) return true;
        if (!S_ISREG(h.st_mode) || o.xxh3.empty()) return S_ISDIR(h.st_mode);
        auto hh = host_hash(rel);
        return hh && *hh == o.xxh3;
    }

    void add(ChangeKind k, const std::string& path, const LayerEntry* e, const std::optional<struct stat>& host,
             Conflict c, int dir = -1, const char* name = nullptr) {
        Change ch;
        ch.kind = k;
        ch.path = path;
        ch.conflict = c;
        if (e) {
            ch.mode = e->mode;
            ch.uid = e->uid;
            ch.gid = e->gid;
            ch.rdev = e->rdev;
            ch.owner_set = e->owner_set;
            ch.layer_ino = e->st.st_ino;
            ch.layer_nlink = e->st.st_nlink;
            ch.layer_atime_ns = sys::to_ns(e->st.st_atim);
            ch.layer_mtime_ns = sys::to_ns(e->st.st_mtim);
            if (S_ISLNK(e->st.st_mode) && dir >= 0) {
                char buf[4096];
                ssize_t n = ::readlinkat(dir, name, buf, sizeof buf);
                if (n >= 0) ch.target.assign(buf, n);
            }
        }
        if (host) ch.host_mode = host->st_mode;
        out.push_back(std::move(ch));
    }

    // An entry the layer has at path, against the host's entry there now.
    // Returns whether the host has a directory there (then the walk goes on
    // comparing below it).
    // replaced: the entry is in a directory that replaced the host's (opaque),
    // and the host directory has had no entry added or removed since.
    void classify(int dir, const char* name, const std::string& path, const LayerEntry& e,
                  const std::optional<struct stat>& host, bool replaced) {
        std::string rel = path.substr(1);
        mode_t ltype = e.mode & S_IFMT;
        if (!host) {
            // Copied from a host entry that is gone now, or new.
            if (e.origin) add(ChangeKind::Modified, path, &e, host, Conflict::HostVanished, dir, name);
            else add(ChangeKind::Added, path, &e, host, Conflict::None, dir, name);
            return;
        }
        mode_t htype = host->st_mode & S_IFMT;
        if (S_ISLNK(e.st.st_mode)) {
            // Symlinks carry no record: compare with the host as it is.
            if (htype != S_IFLNK) return add(ChangeKind::TypeChanged, path, &e, host, Conflict::None, dir, name);
            char a[4096], b[4096];
            ssize_t na = ::readlinkat(dir, name, a, sizeof a);
            ssize_t nb = -1;
            std::string hdir = rel.find('/') == std::string::npos ? "." : rel.substr(0, rel.rfind('/'));
            if (auto hfd = sys::open_beneath(host_root, hdir, O_PATH | O_DIRECTORY))
                nb = ::readlinkat(hfd->get(), rel.substr(rel.rfind('/') + 1).c_str(), b, sizeof b);
            if (na != nb || (na > 0 && std::string(a, na) != std::string(b, nb)))
                add(ChangeKind::Modified, path, &e, host, Conflict::None, dir, name);
            return;
        }
        if (!e.origin) {
            // Created in the sandbox where the host entry was deleted with its
            // directory: it replaces that entry.
            if (replaced)
                return add(htype == ltype ? ChangeKind::Modified : ChangeKind::TypeChanged, path, &e, host,
                           Conflict::None, dir, name);
            // Created in the sandbox, and the host has something there now.
            return add(ChangeKind::Added, path, &e, host, Conflict::HostAppeared, dir, name);
        }
        Conflict c = host_unchanged(*e.origin, *host, rel) ? Conflict::None : Conflict::HostChanged;
        mode_t otype = e.origin->mode & S_IFMT;
        if (ltype != otype) return add(ChangeKind::TypeChanged, path, &e, host, c, dir, name);
        if (S_ISREG(e.st.st_mode) && ltype == S_IFREG) {
            bool same = e.st.st_size == e.origin->size && !e.origin->xxh3.empty();
            if (same) {
                auto h = layer_hash(dir, name);
                same = h && *h == e.origin->xxh3;
            }
            if (!same) return add(ChangeKind::Modified, path, &e, host, c, dir, name);
        }
        if (e.mode != e.origin->mode || e.uid != e.origin->uid || e.gid != e.origin->gid ||
            xattrs_differ(dir, name, rel) ||
            (times && sys::to_ns(e.st.st_mtim) != e.origin->mtime_ns))
            return add(ChangeKind::MetadataOnly, path, &e, host, c, dir, name);
        // Unchanged here, changed there (a directory only if it is no longer one).
        if (c != Conflict::None && (!S_ISDIR(e.st.st_mode) || !S_ISDIR(host->st_mode)))
            add(ChangeKind::Modified, path, &e, host, c, dir, name);
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
            std::string p = path + "/" + e.name;
            add(ChangeKind::Deleted, p, nullptr, host_stat(p.substr(1)), Conflict::None);
        }
    }

    void walk(int dir, const std::string& prefix, bool all_new, bool replaced = false) {
        auto entries = sys::read_dir(dir);
        if (!entries) return;
        for (auto& de : *entries) {
            const char* name = de.name.c_str();
            auto st = sys::stat_at(dir, name);
            if (!st) continue;
            std::string path = prefix + "/" + de.name;
            std::optional<struct stat> host = all_new ? std::nullopt : host_stat(path.substr(1));
            if (layer::is_whiteout(dir, name, *st)) {
                if (!host) continue;  // already gone from the host: nothing to delete
                // Whiteouts record identity only (no hash): a host file whose
                // size or time moved counts as changed.
                Conflict c = Conflict::None;
                if (auto fd = sys::open_path(dir, name))
                    if (auto v = sys::get_xattr(fd->get(), layer::kOriginXattr))
                        if (auto o = layer::parse_origin(*v); o && layer::origin_at(*o, path))
                            if (!host_unchanged(*o, *host, path.substr(1))) c = Conflict::HostChanged;
                add(ChangeKind::Deleted, path, nullptr, host, c);
                continue;
            }
            LayerEntry e = read_entry(dir, name, *st, path);
            if (all_new) add(ChangeKind::Added, path, &e, host, Conflict::None, dir, name);
            else classify(dir, name, path, e, host, replaced);
            if (S_ISDIR(st->st_mode)) {
                auto sub = sys::open_at(dir, name, O_RDONLY | O_DIRECTORY);
                if (!sub) continue;
                bool host_dir = host && S_ISDIR(host->st_mode);
                bool opaque = host_dir && layer::is_opaque(sub->get());
                if (opaque) deleted_below(sub->get(), path);
                // A directory's time moves with every entry added or removed.
                bool unchanged = opaque && e.origin && e.origin->dev == host->st_dev && e.origin->ino == host->st_ino &&
                                 e.origin->mtime_ns == sys::to_ns(host->st_mtim);
                walk(sub->get(), path, !host_dir, unchanged);
            }
        }
    }
};

}  // namespace

std::vector<Change> scan_layer(int layer_dir, int host_root, uint32_t record_less_uid, uint32_t record_less_gid,
                               bool times) {
    Walker w{host_root, record_less_uid, record_less_gid, times, {}};
    w.walk(layer_dir, "", false);
    std::sort(w.out.begin(), w.out.end(), [](const Change& a, const Change& b) { return a.path < b.path; });
    return w.out;
}

}  // namespace mbx::commit
