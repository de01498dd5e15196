// The change set of a session: walks the layer and classifies every entry
// against the host as it is now. No FUSE dependency.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mbx::commit {

enum class ChangeKind {
    Added,         // A: the host has nothing there
    Modified,      // M: a file's bytes (or a symlink's target) differ from the host's
    Deleted,       // D: the layer removes the host entry
    TypeChanged,   // T: file, directory, symlink, ... became another type
    MetadataOnly,  // m: same content, other mode, owner or user.* xattrs (or time, if asked)
};

// How the host has moved since the sandbox saw it.
enum class Conflict {
    None,
    HostChanged,   // the host entry is no longer the one the sandbox copied or deleted
    HostVanished,  // the host entry the sandbox changed is gone
    HostAppeared,  // the host has an entry where the sandbox created one
};

struct Change {
    ChangeKind kind = ChangeKind::Added;
    std::string path;       // absolute path as seen inside the sandbox
    Conflict conflict = Conflict::None;
    mode_t mode = 0;        // the layer entry's presented type and mode (0 for deletions)
    uint32_t uid = 0;       // its presented owner
    uint32_t gid = 0;
    mode_t host_mode = 0;   // the host entry's type and mode now (0 if none)
    std::string target;     // symlink target, for symlinks in the layer
    dev_t rdev = 0;         // device number, for device records
    bool owner_set = false; // the sandbox chowned it (see layer::kChownXattr)
    ino_t layer_ino = 0;    // the layer file, to find hard links made in the sandbox
    nlink_t layer_nlink = 0;
    int64_t layer_atime_ns = -1;  // the layer entry's times (what a commit gives the host's)
    int64_t layer_mtime_ns = -1;
};

char kind_letter(ChangeKind k);
// What the change does to the host, in the three kinds of mbx status: A (adds
// a path), D (removes one), M (changes what is there, whatever the kind).
char effect_letter(const Change& c);
const char* conflict_name(Conflict c);  // "host-changed", ... or nullptr
const char* type_name(mode_t mode);      // "file", "dir", "symlink", "fifo", "socket", "char", "block"

// layer_dir: an fd of the session's layer/; host_root: an fd of the host "/".
// Sorted by path. A copied-up entry whose content and metadata equal the
// host original's is not a change.
// Entries without an owner record (symlinks) are shown as owned by
// record_less_uid:record_less_gid, the identity the sandbox ran as.
// times: a copied-up entry whose modification time moved is a change (m)
// even when nothing else did.
std::vector<Change> scan_layer(int layer_dir, int host_root, uint32_t record_less_uid = 0,
                               uint32_t record_less_gid = 0, bool times = false);

}  // namespace mbx::commit
