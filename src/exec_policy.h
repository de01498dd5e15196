// --exec-allow / --exec-deny: which executables a sandbox may run, by full
// path as the sandbox sees it, symlinks resolved (/bin/sh is /usr/bin/dash
// on Debian). Enforced by the guard on the file that is about to run.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mbx {

struct ExecPolicy {
    // Paths of files, or "DIR/*" (the files in DIR) and "DIR/**" (everything
    // beneath DIR), DIR resolved too.
    std::vector<std::string> allow;  // if not empty: nothing else runs
    std::vector<std::string> deny;   // never runs (even if allowed)
    // Not empty: these (shells and interpreters) may not run with a socket
    // as standard input or output (exec.deny_interpreters_on_sockets).
    std::vector<std::string> interpreters;
    bool empty() const { return allow.empty() && deny.empty() && interpreters.empty(); }
    bool has_dir_rules() const;
    // Every path with its MBX_EXEC_* bits, as the guard's exec_rules map holds them.
    std::map<std::string, uint8_t> rule_bits() const;
};

// Each value is a comma-separated list of absolute paths of existing files,
// or of existing directories followed by /* or /**; they are resolved now.
// Throws UserError naming the bad path.
ExecPolicy parse_exec_policy(const std::vector<std::string>& allow, const std::vector<std::string>& deny);

// The shells and script interpreters installed here (their real paths), for
// the reverse-shell rule.
std::vector<std::string> installed_interpreters();

}  // namespace mbx
