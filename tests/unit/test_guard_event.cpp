// The guard's events as log lines: JSON of the documented shape, and text.
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <nlohmann/json.hpp>

#include "src/guard_event.h"

using namespace mbx;

TEST_CASE("an exec event becomes one JSON line with its argv") {
    mbx_guard_event e{};
    e.time_ns = 5'000'000;
    e.hook = MBX_HOOK_EXEC;
    e.pid = 7;
    e.ppid = 1;
    std::strcpy(e.comm, "sh");
    std::strcpy(e.path, "/bin/sh");
    const char args[] = "sh\0-c\0echo \xff";
    std::memcpy(e.args, args, sizeof args);
    e.args_len = sizeof args;  // with the last NUL
    std::string line = event_json(e, 1'000'000'000);
    CHECK(line.find('\n') == std::string::npos);
    auto j = nlohmann::json::parse(line);
    CHECK(j["hook"] == "exec");
    CHECK(j["denied"] == false);
    CHECK(j["time_ms"] == 1005);
    REQUIRE(j["argv"].size() == 3);
    CHECK(j["argv"][1] == "-c");
    CHECK_FALSE(j.contains("error"));
    CHECK(event_text(line).find("exec sh -c") != std::string::npos);
}

TEST_CASE("a denial names its hook, object and error") {
    mbx_guard_event e{};
    e.hook = MBX_HOOK_FILE_OPEN;
    e.error = -1;  // -EPERM
    e.pid = 9;
    std::strcpy(e.comm, "cat");
    std::strcpy(e.path, "/etc/shadow");
    auto j = nlohmann::json::parse(event_json(e, 0));
    CHECK(j["denied"] == true);
    CHECK(j["hook"] == "file_open");
    CHECK(j["path"] == "/etc/shadow");
    CHECK(j["error"] == "Operation not permitted");
    CHECK(event_text(event_json(e, 0)).find("denied file_open /etc/shadow (pid 9 cat)") != std::string::npos);
    CHECK(std::string(hook_name(9999)) == "unknown");
}

TEST_CASE("a line that is not JSON is shown as it is, quoted when it must be") {
    CHECK(event_text("garbage") == "garbage");
}

#include "src/error.h"
#include "src/net_policy.h"

TEST_CASE("--net values parse into the guard's network policy") {
    CHECK(parse_net("host").mode == MBX_NET_HOST);
    CHECK(parse_net("none").mode == MBX_NET_NONE);
    CHECK_FALSE(parse_net("none").needs_guard());
    CHECK(parse_net("loopback").needs_guard());
    auto p = parse_net("allow=10.0.0.0/8:443,127.0.0.1:5432-5433,[2001:db8::]/32:80,::1");
    CHECK(p.mode == MBX_NET_ALLOW);
    REQUIRE(p.rules.size() == 4);
    CHECK(p.rules[0].family == AF_INET);
    CHECK(p.rules[0].prefix == 8);
    CHECK(p.rules[0].addr[0] == 10);
    CHECK(p.rules[0].port_lo == 443);
    CHECK(p.rules[0].port_hi == 443);
    CHECK(p.rules[1].port_hi == 5433);
    CHECK(p.rules[2].family == AF_INET6);
    CHECK(p.rules[2].prefix == 32);
    CHECK(p.rules[2].port_lo == 80);
    CHECK(p.rules[3].prefix == 128);
    CHECK(p.rules[3].port_lo == 0);
    CHECK(p.rules[3].port_hi == 65535);
    CHECK_THROWS_AS(parse_net("allow="), UserError);
    CHECK_THROWS_AS(parse_net("allow=example.com:80"), UserError);
    CHECK_THROWS_AS(parse_net("allow=10.0.0.1:99999"), UserError);
    CHECK_THROWS_AS(parse_net("allow=10.0.0.1:90-80"), UserError);
    CHECK_THROWS_AS(parse_net("allow=10.0.0.0/33"), UserError);
    CHECK_THROWS_AS(parse_net("bogus"), UserError);
}
