// A profile's net.allow host names, resolved again while the sandbox runs
// (every MBX_RESOLVE_INTERVAL seconds, default 60): when their addresses
// change, the guard's rules change with them. Between two resolutions the
// sandbox may reach the addresses of the last one (mbx-profile(5)).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace mbx {

class NetRefresh {
public:
    // resolve: the --net spec the names give now; apply: puts a new spec in
    // force. Both may throw UserError: the rules in force then stay.
    using Resolve = std::function<std::string()>;
    using Apply = std::function<void(const std::string& spec)>;
    NetRefresh(Resolve resolve, std::string current, Apply apply, std::chrono::milliseconds every);
    ~NetRefresh();  // stops (and waits for) the thread
    NetRefresh(const NetRefresh&) = delete;
    NetRefresh& operator=(const NetRefresh&) = delete;

    // The interval: MBX_RESOLVE_INTERVAL (seconds, fractions allowed, at
    // least 0.1), else 60 s.
    static std::chrono::milliseconds interval();

private:
    void loop();
    Resolve resolve_;
    std::string current_;
    Apply apply_;
    std::chrono::milliseconds every_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace mbx
