// The on-disk format of a session layer (documented in mbx-layer(5)):
// whiteouts, opaque directories, the credential map (override_stat) and the
// record of the host original kept with every copied-up entry.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "overlay/sys/result.h"

namespace mbx::layer {

// overlayfs "xwhiteout" convention (userxattr mode): an empty regular file with
// this xattr hides the lower entry of the same name. A 0/0 character device is
// accepted as a whiteout too, but never written (it cannot carry xattrs).
inline constexpr const char* kWhiteoutXattr = "user.overlay.whiteout";
// "y" on an upper directory: nothing of the lower directory shows through.
inline constexpr const char* kOpaqueXattr = "user.overlay.opaque";
// fuse-overlayfs / containers convention: "uid:gid:octal-mode[:type]".
inline constexpr const char* kOverrideXattr = "user.containers.override_stat";
// JSON record of the host original at copy-up (see Origin).
inline constexpr const char* kOriginXattr = "user.mbx.origin";
// "y" on an entry whose owner the sandbox set explicitly (chown, install -o):
// mbx commit gives it that owner, where other entries get the committer's.
inline constexpr const char* kChownXattr = "user.mbx.chown";
// Request channel from the sandbox's init to the server: set on a directory,
// value "MODE RDEV NAME" creates a device node NAME (see launcher mknod emulation).
inline constexpr const char* kMknodXattr = "user.mbx.mknod";

// Names the sandbox may neither see nor set: they are the layer's own bookkeeping.
bool is_internal_xattr(std::string_view name);

// Presented ownership and mode of a layer entry, independent of the real
// owner of the file in the layer (which is always the user running mbx).
struct Override {
    uint32_t uid = 0;
    uint32_t gid = 0;
    mode_t mode = 0;  // file type and permission bits
    dev_t rdev = 0;
};
std::string format_override(const Override& o);
// real_type: S_IFMT of the layer file, used when the value names no type.
std::optional<Override> parse_override(std::string_view value, mode_t real_type);

// Identity and content hash of the host entry an upper entry was copied from
// (or a whiteout deleted): what the commit compares with the host to find conflicts.
struct Origin {
    uint64_t dev = 0;
    uint64_t ino = 0;
    int64_t size = 0;
    int64_t mtime_ns = 0;
    uint32_t mode = 0;
    uint32_t uid = 0;  // owner as presented inside the sandbox
    uint32_t gid = 0;
    std::string xxh3;  // 32 hex digits of xxh3-128 for regular files, else empty
    // path_hash() of the path (inside the view) the host entry had: an entry
    // moved elsewhere in the sandbox no longer stands for it. Hashed so that
    // names which are not UTF-8 compare exactly.
    std::string path_hash;
};
// The form in which Origin::path is stored and compared.
std::string path_hash(const std::string& path);
// Does the origin describe the host entry at path? (Records without a path do.)
bool origin_at(const Origin& o, const std::string& path);
std::string format_origin(const Origin& o);
std::optional<Origin> parse_origin(std::string_view value);
Origin origin_from_stat(const struct stat& st);

// Makes dir/name a whiteout carrying origin, staged as work/tmp first so that
// it appears complete; replace_existing: over whatever is there.
Result<void> put_whiteout(int work, const std::string& tmp, int dir, const char* name, const Origin& origin,
                          bool replace_existing);

// Is dirfd/name (already stat'ed as st) a whiteout?
bool is_whiteout(int dirfd, const char* name, const struct stat& st);
// Is the directory (an fd to it) marked opaque?
bool is_opaque(int dirfd);

}  // namespace mbx::layer
