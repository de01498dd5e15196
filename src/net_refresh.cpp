#include "src/net_refresh.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "src/error.h"

namespace mbx {

NetRefresh::NetRefresh(Resolve resolve, std::string current, Apply apply, std::chrono::milliseconds every)
    : resolve_(std::move(resolve)), current_(std::move(current)), apply_(std::move(apply)), every_(every) {
    thread_ = std::thread([this] { loop(); });
}

NetRefresh::~NetRefresh() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

std::chrono::milliseconds NetRefresh::interval() {
    double s = 60;
    if (const char* v = std::getenv("MBX_RESOLVE_INTERVAL")) s = std::clamp(std::strtod(v, nullptr), 0.1, 86400.0);
    return std::chrono::milliseconds(static_cast<long long>(s * 1000));
}

void NetRefresh::loop() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, every_, [this] { return stop_; })) {
        lock.unlock();
        try {
            std::string now = resolve_();
            if (now != current_) {
                apply_(now);
                spdlog::debug("net.allow re-resolved: {}", now);
                current_ = std::move(now);
            }
        } catch (const UserError& e) {
            // The addresses in force stay (a resolver that is down must not open or close anything).
            spdlog::debug("net.allow not re-resolved: {}", e.what());
        }
        lock.lock();
    }
}

}  // namespace mbx
