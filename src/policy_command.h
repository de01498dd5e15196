// mbx policy: show or change a running sandbox's guard policy (its network
// and exec rules), live, through mbx-guardd; see mbx-policy(1).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "src/session_store.h"

namespace mbx {

struct PolicyArgs {
    std::optional<std::string> session;
    std::optional<std::string> net;
    std::vector<std::string> exec_allow, exec_deny;
    bool exec_none = false;  // --exec-any: drop the exec lists
    bool show = false;
};

int cmd_policy(SessionStore& store, const PolicyArgs& a);

// The file in a running session's directory that names its sandbox for mbx
// policy: "PID daemon" (enrolled by mbx-guardd) or "PID local".
constexpr const char* kSandboxFile = "sandbox.pid";

}  // namespace mbx
