// The guard for users other than root: mbx-guardd (src/guardd.*) holds the
// BPF programs and enrolls the caller's sandbox for it; this is mbx run's
// side of that conversation (src/guard_protocol.h).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "overlay/sys/unique_fd.h"
#include "src/guard.h"

namespace mbx {

class GuardClient : public GuardLink {
public:
    // Connects to the daemon at path; throws UserError if it is not there.
    static std::unique_ptr<GuardClient> connect(const std::string& path);
    ~GuardClient() override;

    bool enforcing() const override { return true; }
    // One request (with pidfd attached) and its reply; throws UserError with
    // the daemon's reason when it answers "error ...". The reply's first
    // line is "ok".
    std::string request(const std::string& msg, int pidfd);
    void enroll(int pidfd, const GuardPolicy& policy) override;
    // Over a connection of its own (this one carries the sandbox's records);
    // the daemon keeps the listen rules as enrolled.
    void update_net(int pidfd, const GuardPolicy& old, const GuardPolicy& now) override;
    void start_events(GuardEventSink sink) override;
    // Waits (5 s at most) for the daemon to say the sandbox has ended.
    void stop_events() override;

private:
    explicit GuardClient(UniqueFd sock) : sock_(std::move(sock)) {}
    // Reads the records once the reply to the request is in (the reply and
    // the records come on the same socket).
    void read_events();
    UniqueFd sock_;
    GuardEventSink sink_;
    bool enrolled_ = false;
    std::thread thread_;
    std::atomic<bool> stop_{false};
};

}  // namespace mbx
