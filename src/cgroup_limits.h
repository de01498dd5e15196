// [limits] of a profile: memory, pids and CPU of the whole sandbox, through a
// cgroup v2 of its own made beneath mbx's cgroup. That works where the host
// delegates the controllers to the caller (root in a cgroup v2 host; a user
// in a systemd scope with Delegate=yes); where it does not, create() says so
// and which controllers the cgroup offers, and nothing runs.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "overlay/sys/unique_fd.h"
#include "src/profile.h"

namespace mbx {

class SandboxCgroup {
public:
    // nullptr when limits sets nothing, unless always (a cgroup of its own
    // without controllers: where --monitor's network record is attached);
    // throws UserError when it cannot be done.
    static std::unique_ptr<SandboxCgroup> create(const Profile::Limits& limits, bool always = false);
    ~SandboxCgroup();  // removes the cgroup (and puts mbx back where it was)
    SandboxCgroup(const SandboxCgroup&) = delete;
    SandboxCgroup& operator=(const SandboxCgroup&) = delete;

    // Moves pid (the sandbox's first process, before it runs anything) in;
    // its descendants are born there.
    void add(pid_t pid);
    const std::string& path() const { return path_; }
    int dir_fd() const { return dir_.get(); }

private:
    SandboxCgroup() = default;
    UniqueFd base_;            // mbx's own cgroup
    std::string base_path_;
    std::string name_;         // the sandbox's, beneath base_
    std::string path_;
    UniqueFd dir_;             // the sandbox's cgroup directory
    std::string launcher_;     // where mbx moved itself, if base_ held it ("" if not)
    std::string enabled_;      // controllers this object turned on in base_ ("+memory +pids")
};

}  // namespace mbx
