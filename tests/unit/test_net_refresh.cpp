// Host names of net.allow resolved again while a sandbox runs: only a change
// is applied, and a failed resolution or application keeps the rules in force.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "src/error.h"
#include "src/net_refresh.h"

TEST_CASE("NetRefresh applies a changed spec once; failures keep the old one") {
    std::atomic<int> calls{0};
    std::mutex mu;
    std::vector<std::string> applied;
    {
        mbx::NetRefresh r(
            [&]() -> std::string {
                int n = ++calls;
                if (n == 2) throw mbx::UserError("resolver down");
                return n < 4 ? "allow=10.0.0.1:80" : "allow=10.0.0.2:80";
            },
            "allow=10.0.0.1:80",
            [&](const std::string& spec) {
                std::lock_guard lock(mu);
                applied.push_back(spec);
            },
            std::chrono::milliseconds(5));
        for (int i = 0; i < 400 && calls < 8; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    int seen = calls;  // the thread has stopped
    CHECK(seen >= 8);
    CHECK(applied == std::vector<std::string>{"allow=10.0.0.2:80"});
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    CHECK(calls == seen);
}

TEST_CASE("NetRefresh interval comes from MBX_RESOLVE_INTERVAL") {
    ::setenv("MBX_RESOLVE_INTERVAL", "0.5", 1);
    CHECK(mbx::NetRefresh::interval() == std::chrono::milliseconds(500));
    ::setenv("MBX_RESOLVE_INTERVAL", "0", 1);
    CHECK(mbx::NetRefresh::interval() == std::chrono::milliseconds(100));
    ::unsetenv("MBX_RESOLVE_INTERVAL");
    CHECK(mbx::NetRefresh::interval() == std::chrono::seconds(60));
}
