// mbx profile generate: a monitored run's log becomes the tightest profile.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "src/error.h"
#include "src/monitor_log.h"
#include "src/profile.h"
#include "src/profile_generate.h"

namespace {

std::string view(const std::string& hook, const std::string& path, const std::string& access = "",
                 const std::string& result = "ok") {
    std::string a = access.empty() ? "" : R"(,"access":")" + access + "\"";
    return R"({"hook":")" + hook + R"(","denied":false,"source":"view","pid":3,"path":")" + path + "\"" + a +
           R"(,"result":")" + result + "\"}";
}

struct TempDir {
    std::string path;
    // Not under /tmp: the sandbox's /tmp is private, and no rule is made for it.
    TempDir() {
        const char* home = std::getenv("HOME");
        std::string t = std::string(home && *home ? home : "/var/tmp") + "/mbx-gen.XXXXXX";
        path = ::mkdtemp(t.data());
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("profile generate: writable directories, programs and peers, with where each came from") {
    TempDir d;  // stands for the run's cwd: it exists on the host, out/ does not
    std::string cwd = d.path;
    std::vector<std::string> lines = {
        mbx::monitor_json({"view", "exec", "network"}, "", cwd),
        view("open", "/usr/bin/make", "x"),
        view("open", "/usr/bin/dash", "x"),
        view("open", "/usr/include/stdio.h", "r"),
        view("lookup", "/usr/include/nope.h", "", "No such file or directory"),
        view("mkdir", cwd + "/out"),
        view("create", cwd + "/out/prog"),
        view("open", cwd + "/out/prog", "x"),
        view("create", cwd + "/log.txt"),
        view("open", "/etc/passwd", "w", "Read-only file system"),  // failed: no rule
        view("unlink", "/usr/local/share/old"),
        R"({"hook":"exec","denied":false,"pid":4,"comm":"sh","path":"/bin/sh","argv":["sh"]})",
        R"({"hook":"exec","denied":false,"pid":4,"comm":"sh","path":"./configure","argv":["./configure"]})",
        R"({"hook":"connect","denied":false,"pid":4,"comm":"wget","address":"127.0.0.1:8080"})",
        R"({"hook":"connect","denied":true,"complain":true,"pid":4,"comm":"wget","address":"10.1.2.3:443"})",
        R"({"hook":"connect","denied":true,"pid":4,"comm":"wget","address":"10.9.9.9:443"})",
        R"({"hook":"bind","denied":false,"pid":4,"comm":"srv","address":"0.0.0.0:9000"})",
        R"({"hook":"bind","denied":false,"pid":4,"comm":"dig","address":"0.0.0.0:0"})",
    };
    std::string toml = mbx::generate_profile(lines, {"s1", "make all"});
    INFO(toml);
    CHECK(toml.find("# of: mbx run --monitor -- make all") != std::string::npos);
    // The rules parse as a profile.
    mbx::Profile p = mbx::parse_profile(toml, cwd + "/gen.toml");
    // The cwd (where out/ was made and log.txt written), /usr/local/share, the private /tmp.
    std::sort(p.fs.writable.begin(), p.fs.writable.end());
    CHECK(p.fs.writable == std::vector<std::string>{"$CWD", "/tmp", "/usr/local/share"});
    CHECK(toml.find("\"$CWD\",  # create x2, mkdir") != std::string::npos);
    CHECK(p.net.mode == "allow");
    CHECK(p.net.allow == std::vector<std::string>{"10.1.2.3:443", "127.0.0.1:8080"});  // not the refused one
    CHECK(p.net.listen == std::vector<std::string>{"9000"});
    // Programs by path; the one the run built, in a directory it made, by
    // the nearest directory that was there before.
    std::sort(p.exec.allow.begin(), p.exec.allow.end());
    CHECK(p.exec.allow == std::vector<std::string>{"$CWD/**", "/bin/sh", "/usr/bin/dash", "/usr/bin/make"});
    CHECK(toml.find("run (made by the run)") != std::string::npos);
}

TEST_CASE("profile generate: no network used is mode none; not recorded is left out; unmonitored is refused") {
    std::vector<std::string> lines = {mbx::monitor_json({"view", "exec", "network"}, "", "/")};
    auto p = mbx::parse_profile(mbx::generate_profile(lines, {"s", ""}), "/x/gen.toml");
    CHECK(p.net.mode == "none");
    CHECK(p.fs.writable == std::vector<std::string>{"/tmp"});
    CHECK(p.exec.allow.empty());

    lines = {mbx::monitor_json({"view"}, "network addresses", "/")};
    std::string t = mbx::generate_profile(lines, {"s", ""});
    CHECK(!mbx::parse_profile(t, "/x/gen.toml").net.mode);
    CHECK(t.find("Not recorded") != std::string::npos);

    CHECK_THROWS_WITH(mbx::generate_profile({R"({"hook":"guard","mechanism":"bpf lsm"})"}, {"s7", ""}),
                      Catch::Contains("session s7 has no monitored run") && Catch::Contains("mbx run --monitor"));
}

TEST_CASE("view records: one JSON line each, with access and result") {
    using mbx::overlay::Access;
    std::string j = mbx::view_access_json(Access::Exec, "/usr/bin/a\nb", 0, 12);
    CHECK(j.find(R"("hook":"open")") != std::string::npos);
    CHECK(j.find(R"("access":"x")") != std::string::npos);
    CHECK(j.find(R"("path":"/usr/bin/a\nb")") != std::string::npos);
    CHECK(j.find('\n') == std::string::npos);
    j = mbx::view_access_json(Access::Missing, "/nope", ENOENT, 12);
    CHECK(j.find(R"("hook":"lookup")") != std::string::npos);
    CHECK(j.find(R"("result":"No such file or directory")") != std::string::npos);
    CHECK(j.find("access") == std::string::npos);

    // Each distinct (what, path, result) once.
    std::vector<std::string> got;
    mbx::ViewRecorder r([&](const std::string& l, bool, uint32_t) { got.push_back(l); }, 2);
    auto log = r.access_log();
    log(Access::Read, "/a", 0, 1);
    log(Access::Read, "/a", 0, 2);
    log(Access::Write, "/a", 0, 2);
    log(Access::Read, "/b", 0, 2);  // beyond the bound of 2: dropped, counted
    CHECK(got.size() == 2);
    CHECK(r.dropped() == 1);
}

TEST_CASE("profile generate: names with quotes, backslashes and newlines come back as written") {
    TempDir d;
    std::string odd = d.path + "/we\"ird\\\nname";
    std::filesystem::create_directory(odd);
    nlohmann::json rec = {{"hook", "create"}, {"denied", false}, {"source", "view"}, {"pid", 1},
                          {"path", odd + "/f"}, {"result", "ok"}};
    std::vector<std::string> lines = {mbx::monitor_json({"view"}, "", "/"), rec.dump()};
    auto p = mbx::parse_profile(mbx::generate_profile(lines, {"s", ""}), "/x/gen.toml");
    CHECK(std::find(p.fs.writable.begin(), p.fs.writable.end(), odd) != p.fs.writable.end());
}
