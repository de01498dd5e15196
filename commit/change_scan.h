// The change set of a session: walks the layer and classifies every entry
// against the host as added, modified or deleted. No FUSE dependency.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace mbx::commit {

enum class ChangeKind { Added, Modified, Deleted };

struct Change {
    ChangeKind kind;
    std::string path;  // absolute path as seen inside the sandbox
    mode_t mode = 0;   // presented type and mode of the layer entry (0 for deletions)
};

char kind_letter(ChangeKind k);

// layer_dir: an fd of the session's layer/; host_root: an fd of the host "/".
// Sorted by path. A copied-up entry whose content and metadata equal the
// host original's is not a change.
std::vector<Change> scan_layer(int layer_dir, int host_root);

}  // namespace mbx::commit
