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
// marks the host done. New entries are made under temporary names, then
// synced and renamed in batches (each step is on disk before its record).
// MBX_FAULT_AT=K (tests, fault.h) kills the process at its K-th fault point.
void apply_plan(Journal& j, const ApplyTarget& t);

// Entries of the plan whose every step succeeded.
std::set<size_t> committed_entries(const Journal& j);

}  // namespace mbx::commit
