// mbx run --monitor: what the sandbox did through the view (opens with their
// access and result, names looked up in vain, entries made, changed and
// removed), as records of the session's log (mbx-log(1)), each distinct
// (what, path, result) written once; and the record that says what a
// monitored run records and what it does not.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "overlay/access_log.h"
#include "src/guard.h"

namespace mbx {

// One record of the view as a log line (pid: as the sandbox numbers it).
std::string view_access_json(overlay::Access a, const std::string& path, int error, pid_t pid);

// The first record of a monitored run: recorded: the kinds recorded ("view",
// "exec", "network"); missing: what is not, and why.
// cwd: where the command started (mbx profile generate writes $CWD for it).
std::string monitor_json(const std::vector<std::string>& recorded, const std::string& missing,
                         const std::string& cwd);

class ViewRecorder {
public:
    // Distinct records beyond max are not kept (memory stays bounded); dropped() counts them.
    explicit ViewRecorder(GuardEventSink sink, size_t max = size_t(1) << 18);
    // For overlay::Config::access_log; this recorder must outlive the server.
    overlay::AccessLog access_log();
    size_t dropped() const { return dropped_.load(); }

private:
    void record(overlay::Access a, const std::string& path, int error, pid_t pid);
    GuardEventSink sink_;
    size_t max_;
    std::mutex mu_;
    std::unordered_set<std::string> seen_;
    std::atomic<size_t> dropped_{0};
};

}  // namespace mbx
