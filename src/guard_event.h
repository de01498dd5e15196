// The guard's events as the session log keeps them: one JSON object per line
// (schema in mbx-log(1)), and back for printing.
#pragma once

#include <cstdint>
#include <string>

#include "bpf/guard.h"

namespace mbx {

const char* hook_name(unsigned hook);  // "file_open", "exec", ...
// boot_to_unix_ns: add to a CLOCK_BOOTTIME time to get unix time.
std::string event_json(const mbx_guard_event& e, int64_t boot_to_unix_ns);
int64_t boot_to_unix_ns();
// A denial made in user space (mbx's mknod emulation), in the same form.
std::string denial_json(unsigned hook, int pid, const std::string& comm, const std::string& path);
// The first record of a run: which guard confines it ("bpf lsm",
// "landlock+seccomp") and why that one.
std::string guard_json(const std::string& mechanism, const std::string& detail);

// One log line for people: "12:03:04 denied file_open /etc/passwd (pid 7 sh)".
std::string event_text(const std::string& json_line);

}  // namespace mbx
