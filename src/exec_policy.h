// --exec-allow / --exec-deny: which executables a sandbox may run, by full
// path as the sandbox sees it, symlinks resolved (/bin/sh is /usr/bin/dash
// on Debian). Enforced by the guard on the file that is about to run.
#pragma once

#include <string>
#include <vector>

namespace mbx {

struct ExecPolicy {
    std::vector<std::string> allow;  // if not empty: nothing else runs
    std::vector<std::string> deny;   // never runs (even if allowed)
    bool empty() const { return allow.empty() && deny.empty(); }
};

// Each value is a comma-separated list of absolute paths of existing files;
// they are resolved now. Throws UserError naming the bad path.
ExecPolicy parse_exec_policy(const std::vector<std::string>& allow, const std::vector<std::string>& deny);

}  // namespace mbx
