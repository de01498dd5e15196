// mbx log: the guard's record of a session (execs and denials), see mbx-log(1).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "src/session_store.h"

namespace mbx {

struct LogArgs {
    std::optional<std::string> session;
    bool json = false;
    bool follow = false;
    bool summary = false;  // see log_summary.h
};

// The log file of a session (in $MBX_HOME/NAME, or .committed/NAME once committed).
std::string session_log_path(const SessionStore& store, const std::string& name);

// The lines of a session's log (default: the most recent session); none if
// it has no log. Throws UserError if there is no such session.
std::vector<std::string> read_log_lines(const SessionStore& store, const std::optional<std::string>& session);

int cmd_log(SessionStore& store, const LogArgs& a);

}  // namespace mbx
