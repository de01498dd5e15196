// Planning the sandbox's id maps.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "src/id_map.h"

using namespace mbx;

TEST_CASE("fake root without a subordinate range maps only the caller, as 0") {
    auto m = plan_id_maps(1000, 1000, false, std::nullopt, std::nullopt);
    CHECK(m.single);
    CHECK_FALSE(m.via_helpers);
    CHECK(format_map(m.uids) == "0 1000 1\n");
    CHECK(m.inside_uid == 0);
}

TEST_CASE("fake root with a subordinate range maps 0..65535") {
    auto m = plan_id_maps(1000, 1000, false, SubRange{100000, 65536}, SubRange{100000, 65536});
    CHECK(m.via_helpers);
    CHECK(format_map(m.uids) == "0 1000 1\n1 100000 65535\n");
}

TEST_CASE("--user keeps the caller's id and fills the rest from the range") {
    auto m = plan_id_maps(1000, 1000, true, SubRange{100000, 65536}, SubRange{100000, 65536});
    CHECK(m.inside_uid == 1000);
    CHECK(format_map(m.uids) == "0 100000 1000\n1000 1000 1\n1001 101000 64535\n");
    auto single = plan_id_maps(1000, 1000, true, std::nullopt, std::nullopt);
    CHECK(format_map(single.uids) == "1000 1000 1\n");
}

TEST_CASE("root maps every id onto itself") {
    auto m = plan_id_maps(0, 0, false, std::nullopt, std::nullopt);
    CHECK(format_map(m.uids) == "0 0 4294967295\n");
    CHECK_FALSE(m.single);
}

TEST_CASE("subordinate ranges are found by name or uid, malformed lines skipped") {
    char path[] = "/tmp/mbx-subuid-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    std::ofstream(path) << "garbage\nalice:x:5\nbob:200000:0\n1001:300000:65536\nbob:100000:65536\n";
    auto a = find_subrange(path, "alice", 1000);
    CHECK_FALSE(a);
    auto b = find_subrange(path, "bob", 1002);
    REQUIRE(b);
    CHECK(b->start == 100000);
    auto c = find_subrange(path, "carol", 1001);
    REQUIRE(c);
    CHECK(c->start == 300000);
    unlink(path);
}
