#include "overlay/layer_format.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "overlay/sys/sys.h"
#include "overlay/sys/unique_fd.h"

namespace mbx::layer {

bool is_internal_xattr(std::string_view name) {
    return name.starts_with("user.overlay.") || name.starts_with("user.mbx.") ||
           name.starts_with("user.containers.") || name.starts_with("user.fuseoverlayfs.");
}

std::string format_override(const Override& o) {
    char buf[96];
    const char* type = "file";
    char dev[48] = "";
    switch (o.mode & S_IFMT) {
        case S_IFDIR: type = "dir"; break;
        case S_IFLNK: type = "symlink"; break;
        case S_IFIFO: type = "pipe"; break;
        case S_IFSOCK: type = "socket"; break;
        case S_IFCHR:
            std::snprintf(dev, sizeof dev, "char%u:%u", major(o.rdev), minor(o.rdev));
            type = dev;
            break;
        case S_IFBLK:
            std::snprintf(dev, sizeof dev, "block%u:%u", major(o.rdev), minor(o.rdev));
            type = dev;
            break;
        default: break;
    }
    std::snprintf(buf, sizeof buf, "%u:%u:%o:%s", o.uid, o.gid, o.mode & 07777, type);
    return buf;
}

namespace {
template <typename T>
bool parse_num(std::string_view s, T& out, int base = 10) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
    return ec == std::errc() && p == s.data() + s.size();
}

bool parse_dev(std::string_view s, dev_t& out) {
    auto colon = s.find(':');
    if (colon == std::string_view::npos) return false;
    unsigned ma, mi;
    if (!parse_num(s.substr(0, colon), ma) || !parse_num(s.substr(colon + 1), mi)) return false;
    out = makedev(ma, mi);
    return true;
}
}  // namespace

std::optional<Override> parse_override(std::string_view v, mode_t real_type) {
    Override o;
    std::string_view parts[3];
    for (auto& part : parts) {
        auto c = v.find(':');
        part = v.substr(0, c);
        v = c == std::string_view::npos ? std::string_view{} : v.substr(c + 1);
        if (c == std::string_view::npos && &part != &parts[2]) return std::nullopt;
    }
    mode_t perm;
    if (!parse_num(parts[0], o.uid) || !parse_num(parts[1], o.gid) || !parse_num(parts[2], perm, 8) ||
        perm > 07777)
        return std::nullopt;
    mode_t type = real_type & S_IFMT;
    if (!v.empty()) {
        if (v == "dir") type = S_IFDIR;
        else if (v == "file") type = S_IFREG;
        else if (v == "symlink") type = S_IFLNK;
        else if (v == "pipe") type = S_IFIFO;
        else if (v == "socket") type = S_IFSOCK;
        else if (v.starts_with("char") && parse_dev(v.substr(4), o.rdev)) type = S_IFCHR;
        else if (v.starts_with("block") && parse_dev(v.substr(5), o.rdev)) type = S_IFBLK;
        else return std::nullopt;
    }
    // A record cannot turn a directory into a file or a file into a directory
    // (symlinks carry no record): such a value is not ours, so it is ignored.
    mode_t real = real_type & S_IFMT;
    if (real == S_IFDIR && type != S_IFDIR) return std::nullopt;
    if (real == S_IFREG && (type == S_IFDIR || type == S_IFLNK)) return std::nullopt;
    o.mode = type | perm;
    return o;
}

std::string format_origin(const Origin& o) {
    nlohmann::json j = {{"v", 1},          {"dev", o.dev}, {"ino", o.ino}, {"size", o.size},
                        {"mtime_ns", o.mtime_ns}, {"mode", o.mode}, {"uid", o.uid},
                        {"gid", o.gid}};
    if (!o.xxh3.empty()) j["xxh3"] = o.xxh3;
    if (!o.path_hash.empty()) j["path_hash"] = o.path_hash;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<Origin> parse_origin(std::string_view value) {
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("v", 0) != 1) return std::nullopt;
    try {
        Origin o;
        o.dev = j.at("dev").get<uint64_t>();
        o.ino = j.at("ino").get<uint64_t>();
        o.size = j.at("size").get<int64_t>();
        o.mtime_ns = j.at("mtime_ns").get<int64_t>();
        o.mode = j.at("mode").get<uint32_t>();
        o.uid = j.at("uid").get<uint32_t>();
        o.gid = j.at("gid").get<uint32_t>();
        o.xxh3 = j.value("xxh3", std::string{});
        o.path_hash = j.value("path_hash", std::string{});
        return o;
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
}

std::string path_hash(const std::string& path) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx",
                  static_cast<unsigned long long>(XXH3_64bits(path.data(), path.size())));
    return buf;
}

bool origin_at(const Origin& o, const std::string& path) {
    return o.path_hash.empty() || o.path_hash == path_hash(path);
}

Origin origin_from_stat(const struct stat& st) {
    Origin o;
    o.dev = st.st_dev;
    o.ino = st.st_ino;
    o.size = st.st_size;
    o.mtime_ns = sys::to_ns(st.st_mtim);
    o.mode = st.st_mode;
    o.uid = st.st_uid;
    o.gid = st.st_gid;
    return o;
}

Result<void> put_whiteout(int work, const std::string& tmp, int dir, const char* name, const Origin& origin,
                          bool replace_existing) {
    auto fd = sys::open_at(work, tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (!fd) return Errno{fd.error()};
    Result<void> r = sys::set_xattr(fd->get(), kWhiteoutXattr, "y");
    if (r) r = sys::set_xattr(fd->get(), kOriginXattr, format_origin(origin));
    if (r) r = sys::rename_at(work, tmp.c_str(), dir, name, replace_existing ? 0 : RENAME_NOREPLACE);
    if (!r) ::unlinkat(work, tmp.c_str(), 0);
    return r;
}

bool is_whiteout(int dirfd, const char* name, const struct stat& st) {
    if (S_ISCHR(st.st_mode)) return st.st_rdev == makedev(0, 0);
    if (!S_ISREG(st.st_mode) || st.st_size != 0) return false;
    auto fd = sys::open_path(dirfd, name);
    if (!fd) return false;
    auto v = sys::get_xattr(fd->get(), kWhiteoutXattr);
    return v.ok();
}

bool is_opaque(int dirfd) {
    auto v = sys::get_xattr(dirfd, kOpaqueXattr);
    return v.ok() && *v == "y";
}

}  // namespace mbx::layer
