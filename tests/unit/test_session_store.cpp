// Sessions on disk: names, the lock, the default session, metadata, removal.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "src/error.h"
#include "src/session_store.h"

using namespace mbx;
namespace fs = std::filesystem;

namespace {
struct TempHome {
    std::string path;
    TempHome() {
        char tmpl[] = "/tmp/mbx-unit-XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        path = std::string(tmpl) + "/home";  // does not exist yet: the store creates it
    }
    ~TempHome() { fs::remove_all(fs::path(path).parent_path()); }
};
}  // namespace

TEST_CASE("automatic session names count up from 1, skipping used ones") {
    TempHome h;
    SessionStore store(h.path);
    { Session s = store.open(std::nullopt, true); CHECK(s.name() == "1"); }
    { Session s = store.open(std::string("build"), true); CHECK(s.name() == "build"); }
    { Session s = store.open(std::nullopt, true); CHECK(s.name() == "2"); }
    auto all = store.list();
    REQUIRE(all.size() == 3);
    CHECK(all[0].name == "1");
    CHECK(all[1].name == "2");
    CHECK(all[2].name == "build");
}

TEST_CASE("a session has one writer at a time") {
    TempHome h;
    SessionStore store(h.path);
    Session first = store.open(std::string("x"), true);
    try {
        Session second = store.open(std::string("x"), true);
        FAIL("a second open of a locked session succeeded");
    } catch (const UserError& e) {
        CHECK(std::string(e.what()).find("in use") != std::string::npos);
    }
}

TEST_CASE("the most recently used session is the default") {
    TempHome h;
    SessionStore store(h.path);
    { Session s = store.open(std::string("a"), true); }
    { Session s = store.open(std::string("b"), true); }
    CHECK(store.resolve(std::nullopt) == "b");
    { Session s = store.open(std::string("a"), false); }
    CHECK(store.resolve(std::nullopt) == "a");
    CHECK(store.resolve(std::string("b")) == "b");
    CHECK_THROWS_AS(store.resolve(std::string("nope")), UserError);
}

TEST_CASE("without sessions there is no default, with a message saying what to do") {
    TempHome h;
    SessionStore store(h.path);
    try {
        store.resolve(std::nullopt);
        FAIL("resolve found a session in an empty store");
    } catch (const UserError& e) {
        CHECK(std::string(e.what()).find("mbx run") != std::string::npos);
    }
}

TEST_CASE("session names that could escape $MBX_HOME or confuse options are refused") {
    for (const char* bad : {"", ".", "..", ".hidden", "-rf", "a/b", "../x", "a b", "a\nb"})
        CHECK_THROWS_AS(SessionStore::check_name(bad), UserError);
    for (const char* good : {"1", "build-2", "my_session.v2"}) CHECK_NOTHROW(SessionStore::check_name(good));
    CHECK_THROWS_AS(SessionStore::check_name(std::string(65, 'a')), UserError);
}

TEST_CASE("metadata round-trips, and unreadable metadata is an error naming the fix") {
    TempHome h;
    SessionStore store(h.path);
    {
        Session s = store.open(std::string("m"), true);
        s.meta().runs.push_back({{"make", "install"}, 1, 2, 0});
        s.save_meta();
    }
    {
        Session s = store.open(std::string("m"), false);
        REQUIRE(s.meta().runs.size() == 1);
        CHECK(s.meta().runs[0].argv == std::vector<std::string>{"make", "install"});
    }
    std::ofstream(h.path + "/m/meta") << "{garbage";
    try {
        Session s = store.open(std::string("m"), false);
        FAIL("opened a session with garbage metadata");
    } catch (const UserError& e) {
        CHECK(std::string(e.what()).find("mbx discard m") != std::string::npos);
    }
}

TEST_CASE("opening a session empties its work directory, removing leaves nothing") {
    TempHome h;
    SessionStore store(h.path);
    { Session s = store.open(std::string("w"), true); }
    fs::create_directories(h.path + "/w/work/t.1.1/deep");
    std::ofstream(h.path + "/w/work/t.1.2") << "half a copy-up";
    { Session s = store.open(std::string("w"), false); }
    CHECK(fs::is_empty(h.path + "/w/work"));
    store.remove("w");
    CHECK_FALSE(fs::exists(h.path + "/w"));
    CHECK(store.list().empty());
}
