// mbx run, from the outside: creates the namespaces, writes the id maps,
// serves the FUSE view the sandbox mounted, waits for the command, and reports.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "src/profile.h"
#include "src/session_store.h"

namespace mbx {

struct RunOptions {
    std::optional<std::string> session;
    bool keep_user = false;
    std::string net = "host";
    // A profile's [net] with host names in net.allow: resolved again while
    // the sandbox runs, and the guard's rules follow (net_refresh.h).
    std::optional<Profile::Net> net_names;
    std::vector<std::string> hide;
    std::vector<std::string> bind;
    // Not empty: the view is read-only except beneath these (made in the
    // layer if absent). readonly: never writable, even in the layer.
    std::vector<std::string> writable, readonly;
    bool keep_tmp = false;
    bool review = false;  // -i: mbx commit -i when the command exits
    // auto: the BPF LSM guard when it loads (root, a kernel with BPF LSM);
    // bpf: the guard or an error; off: none.
    std::string guard = "auto";
    // Descriptors besides stdin, stdout and stderr that the command inherits
    // (every other one is closed: the guard cannot revoke what it never saw).
    std::vector<int> pass_fds;
    // --exec-allow / --exec-deny values (comma-separated paths; need the guard).
    std::vector<std::string> exec_allow, exec_deny;
    // A profile's rules that have no flag of their own (mbx-profile(5)).
    std::vector<std::string> listen;
    bool deny_interpreters_on_sockets = false;
    // What this host's guard cannot enforce (the reverse-shell rule under the
    // Landlock fallback) is dropped with a warning instead of refusing to run.
    bool allow_weaker = false;
    // --monitor: record what the command does (the view's opens and changes,
    // execs, network addresses) in the session's log; with --guard auto
    // nothing is enforced beyond the layer (BPF LSM in complain mode).
    bool monitor = false;
    Profile::Limits limits;
    std::vector<std::string> argv;
};

// The directory mbx runs in ("/" if it has none: the sandbox starts there).
std::string current_dir();

// Returns the command's exit status (128+N if killed by signal N); the
// session it ran in is stored in *used (if given).
int run_sandboxed(const RunOptions& opt, SessionStore& store, std::string* used = nullptr);

}  // namespace mbx
