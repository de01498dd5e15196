// The change counts of a session, as printed at the end of mbx run and by mbx list.
#pragma once

#include <vector>

#include "commit/change_scan.h"
#include "src/session_store.h"

namespace mbx {

struct ChangeCounts {
    int added = 0, modified = 0, deleted = 0;
};

ChangeCounts count_changes(const std::vector<commit::Change>& changes);
// Scans the session's layer against the host.
std::vector<commit::Change> session_changes(int session_dir, const std::string& session_path);
// "mbx: session 3: 12 added, 4 modified, 1 deleted — review with ..." on stderr.
void print_summary(Session& s);

}  // namespace mbx
