// mbx log: the guard's record of a session (execs and denials), see mbx-log(1).
#pragma once

#include <optional>
#include <string>

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

int cmd_log(SessionStore& store, const LogArgs& a);

}  // namespace mbx
