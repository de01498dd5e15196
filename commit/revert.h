// Undoing the last commit of a session from its revert data (the journal of
// that commit, with the host entries it replaced or removed).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "commit/journal.h"

namespace mbx::commit {

struct RevertReport {
    std::vector<std::string> changed;                  // host paths changed since the commit
    std::vector<std::pair<std::string, int>> failed;   // path, errno
    size_t restored = 0;                               // steps undone
};

// Checks every path the commit touched against what it left there; if any
// changed and !force, changes nothing and lists them. Otherwise undoes the
// commit's steps, last first (skipping the changed paths).
RevertReport revert_commit(const Journal& data, int host_root, bool force);

}  // namespace mbx::commit
