// Carrying out a journalled plan on the host, step by step. Every step is
// idempotent, so an interrupted commit is finished by running this again.
#pragma once

#include <cstddef>
#include <set>

#include "commit/journal.h"

namespace mbx::commit {

struct ApplyTarget {
    int host_root;  // "/" of the host
    int layer;      // the session's layer/
};

// Runs every step the journal has no outcome for, recording each, then
// marks the host done. MBX_FAULT_AFTER_STEPS=N (tests) aborts the process
// after N steps of this call, as a crash would.
void apply_plan(Journal& j, const ApplyTarget& t);

// Entries of the plan whose every step succeeded.
std::set<size_t> committed_entries(const Journal& j);

}  // namespace mbx::commit
