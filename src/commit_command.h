// mbx commit, mbx revert and mbx discard PATH: the commands over commit/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "src/session_store.h"

namespace mbx {

struct CommitArgs {
    std::vector<std::string> args;  // [SESSION] [PATH...]
    bool force = false;
    bool interactive = false;
    bool resume = false;
    bool dry_run = false;
};

// Exit status: 0 all applied, 1 some entries failed, 3 conflicts skipped, 4 entries need root.
int cmd_commit(SessionStore& store, const CommitArgs& a);

struct RevertArgs {
    std::optional<std::string> session;
    bool force = false;
};
int cmd_revert(SessionStore& store, const RevertArgs& a);

// mbx discard SESSION PATH...: those entries leave the layer.
int cmd_discard_paths(SessionStore& store, const std::string& session, const std::vector<std::string>& paths);

// A commit killed half-way is finished by the next mbx command: this runs
// first in every command (sessions in use are left to their holder).
void finish_interrupted_commits(SessionStore& store);

}  // namespace mbx
