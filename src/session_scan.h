// What diff, commit and discard share: "[SESSION] [PATH...]" arguments and
// the scan of a session's layer against the host, filtered by those paths.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "commit/change_scan.h"
#include "overlay/sys/unique_fd.h"
#include "src/session_store.h"

namespace mbx {

struct SessionPaths {
    std::optional<std::string> session;
    std::vector<std::string> paths;  // absolute, without trailing slashes
};
// The first argument names the session unless it starts with "/"; the rest
// must be absolute paths as seen inside the sandbox.
SessionPaths parse_session_paths(const std::vector<std::string>& args);

// Is path one of the filters or below one (whole components)? No filters: yes.
bool path_selected(const std::string& path, const std::vector<std::string>& filters);

struct SessionScan {
    UniqueFd layer;  // the session's layer/
    UniqueFd host;   // the host "/"
    std::vector<commit::Change> changes;
};

// Scans the session in directory session_path; entries outside the filters
// are left out. times: see commit::scan_layer.
SessionScan scan_session(const std::string& session_path, const SessionMeta& meta,
                         const std::vector<std::string>& filters = {}, bool times = false);

}  // namespace mbx
