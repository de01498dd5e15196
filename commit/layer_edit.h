// Entries leaving a session's layer: after a commit (the host has them now)
// and for mbx discard PATH (the host versions show again). Every operation
// is idempotent, so an interrupted commit redoes it safely.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "commit/plan.h"

namespace mbx::commit {

struct LayerDirs {
    int layer;      // the session's layer/
    int work;       // its work/ (staging, same filesystem)
    int host_root;  // "/" of the host
};

// drop: entries leaving the layer; keep: the session's other changes, which
// must read the same afterwards. committed: the host has the dropped
// entries now, so a directory with entries kept below it stays, recording
// the host directory as its origin; otherwise (discard) dropped
// directories go whole.
void drop_entries(const LayerDirs& d, const std::vector<PlanEntry>& drop, const std::vector<PlanEntry>& keep,
                  bool committed);

// Does the layer hold nothing?
bool layer_empty(int layer);

}  // namespace mbx::commit
