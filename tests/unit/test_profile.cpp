// The profile format (mbx-profile(5)): every key read, every mistake named
// with its file, line and key, includes merged and their cycles refused.
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "src/error.h"
#include "bpf/guard.h"
#include "src/exec_policy.h"
#include "src/profile.h"

using mbx::Profile;
using mbx::UserError;

namespace {

Profile parse(const std::string& text) { return mbx::parse_profile(text, "/p/test.toml"); }

// The message of the UserError parse(text) throws ("" if none).
std::string error_of(const std::string& text) {
    try {
        parse(text);
    } catch (const UserError& e) {
        return e.what();
    }
    return "";
}

struct TempDir {
    std::string path;
    TempDir() {
        char t[] = "/tmp/mbx-profile-test.XXXXXX";
        path = ::mkdtemp(t);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(path + "/" + name) << text;
        return path + "/" + name;
    }
};

}  // namespace

TEST_CASE("every key of the format is read") {
    Profile p = parse(R"(
version = 1
description = "all of it"
[fs]
writable = ["/usr/local", "/tmp"]
hidden = ["~/.ssh"]
readonly = ["$CWD/.git"]
direct = ["$CWD/out"]
[net]
mode = "allow"
allow = ["10.0.0.0/8:443", "deb.example:80"]
listen = [8080, "9000-9010"]
dns = true
[exec]
allow = ["/usr/bin/*"]
deny = ["/usr/bin/curl"]
deny_interpreters_on_sockets = true
[limits]
memory = "512M"
pids = 100
cpus = 1.5
[run]
fake_root = false
guard = "bpf"
keep_tmp = true
)");
    CHECK(p.description == "all of it");
    CHECK(p.fs.writable == std::vector<std::string>{"/usr/local", "/tmp"});
    CHECK(p.fs.hidden == std::vector<std::string>{"~/.ssh"});
    CHECK(p.fs.readonly == std::vector<std::string>{"$CWD/.git"});
    CHECK(p.fs.direct == std::vector<std::string>{"$CWD/out"});
    CHECK(p.net.mode == "allow");
    CHECK(p.net.allow == std::vector<std::string>{"10.0.0.0/8:443", "deb.example:80"});
    CHECK(p.net.listen == std::vector<std::string>{"8080", "9000-9010"});
    CHECK(p.net.dns == true);
    CHECK(p.exec.allow == std::vector<std::string>{"/usr/bin/*"});
    CHECK(p.exec.deny == std::vector<std::string>{"/usr/bin/curl"});
    CHECK(p.exec.deny_interpreters_on_sockets == true);
    CHECK(p.limits.memory == 512ull << 20);
    CHECK(p.limits.pids == 100u);
    CHECK(p.limits.cpus == 1.5);
    CHECK(p.run.fake_root == false);
    CHECK(p.run.guard == "bpf");
    CHECK(p.run.keep_tmp == true);
    CHECK(p.sources == std::vector<std::string>{"/p/test.toml"});
}

TEST_CASE("a printed profile reads back as the same policy") {
    Profile p = parse(R"(
[fs]
writable = ["/usr/local"]
hidden = ["/a b", "/new\nline"]
[net]
mode = "allow"
allow = ["127.0.0.1:5432"]
listen = ["8080"]
[limits]
memory = 1024
)");
    Profile q = parse(mbx::profile_to_toml(p));
    CHECK(q.fs.writable == p.fs.writable);
    CHECK(q.fs.hidden == p.fs.hidden);
    CHECK(q.net.mode == p.net.mode);
    CHECK(q.net.allow == p.net.allow);
    CHECK(q.net.listen == p.net.listen);
    CHECK(q.limits.memory == p.limits.memory);
}

TEST_CASE("each key's wrong value is named with file, line and key") {
    CHECK(error_of("[fs]\nwritable = \"/usr\"\n") == "/p/test.toml:2: fs.writable: expected an array of strings, like [\"/usr/local\"]");
    CHECK(error_of("[fs]\n\nhidden = [1]\n").starts_with("/p/test.toml:3: fs.hidden: expected a string"));
    CHECK(error_of("[fs]\nreadonly = [\"\"]\n").starts_with("/p/test.toml:2: fs.readonly: an empty string"));
    CHECK(error_of("[fs]\ndirect = 3\n").starts_with("/p/test.toml:2: fs.direct:"));
    CHECK(error_of("[net]\nmode = \"internet\"\n") ==
          "/p/test.toml:2: net.mode: 'internet' is not one of none, loopback, host, allow");
    CHECK(error_of("[net]\nmode = \"none\"\nallow = [\"1.2.3.4\"]\n").starts_with("/p/test.toml:3: net.allow: only with mode"));
    CHECK(error_of("[net]\nlisten = [70000]\n").starts_with("/p/test.toml:2: net.listen: '70000' is not a port"));
    CHECK(error_of("[net]\nlisten = [\"9010-9000\"]\n").starts_with("/p/test.toml:2: net.listen:"));
    CHECK(error_of("[net]\ndns = \"yes\"\n") == "/p/test.toml:2: net.dns: expected true or false");
    CHECK(error_of("[exec]\nallow = \"/bin/sh\"\n").starts_with("/p/test.toml:2: exec.allow:"));
    CHECK(error_of("[exec]\ndeny = [false]\n").starts_with("/p/test.toml:2: exec.deny:"));
    CHECK(error_of("[exec]\ndeny_interpreters_on_sockets = 1\n").starts_with("/p/test.toml:2: exec.deny_interpreters_on_sockets:"));
    CHECK(error_of("[limits]\nmemory = \"lots\"\n").starts_with("/p/test.toml:2: limits.memory: 'lots' is not a size"));
    CHECK(error_of("[limits]\npids = 0\n").starts_with("/p/test.toml:2: limits.pids:"));
    CHECK(error_of("[limits]\ncpus = -1\n").starts_with("/p/test.toml:2: limits.cpus:"));
    CHECK(error_of("[run]\nfake_root = \"no\"\n").starts_with("/p/test.toml:2: run.fake_root:"));
    CHECK(error_of("[run]\nguard = \"strict\"\n").starts_with("/p/test.toml:2: run.guard:"));
    CHECK(error_of("[run]\nkeep_tmp = 0\n").starts_with("/p/test.toml:2: run.keep_tmp:"));
    CHECK(error_of("version = 2\n").starts_with("/p/test.toml:1: version: profile format 2 is not one this mbx reads"));
    CHECK(error_of("fs = 1\n").starts_with("/p/test.toml:1: fs: expected a table"));
}

TEST_CASE("an unknown key is an error, not ignored") {
    CHECK(error_of("[fs]\nwriteable = [\"/usr\"]\n") ==
          "/p/test.toml:2: fs.writeable: unknown key in [fs] (known: writable, hidden, readonly, direct)");
    CHECK(error_of("[network]\nmode = \"none\"\n").starts_with("/p/test.toml:1: network: unknown key (known:"));
    CHECK(error_of("[net]\nports = [1]\n").starts_with("/p/test.toml:2: net.ports: unknown key in [net]"));
}

TEST_CASE("a malformed file names its line") {
    std::string e = error_of("[fs]\nwritable = [\"/usr\"\n\n");
    CHECK(e.starts_with("/p/test.toml:"));
    CHECK(e.find("not valid TOML") != std::string::npos);
    CHECK(error_of("[fs]\nwritable = [\"/a\"]\nwritable = [\"/b\"]\n").starts_with("/p/test.toml:3: not valid TOML"));
}

TEST_CASE("includes are merged before the file's own values") {
    TempDir d;
    d.write("base.toml", "description = \"base\"\n[fs]\nhidden = [\"~/.ssh\"]\n[net]\nmode = \"allow\"\nallow = [\"10.0.0.1:80\"]\n[run]\nguard = \"bpf\"\n");
    std::string top = d.write("top.toml",
                              "include = [\"base.toml\"]\n[fs]\nhidden = [\"~/.gnupg\", \"~/.ssh\"]\n[net]\nallow = [\"10.0.0.2:80\"]\n");
    Profile p = mbx::load_profile(top);
    CHECK(p.fs.hidden == std::vector<std::string>{"~/.ssh", "~/.gnupg"});
    CHECK(p.net.mode == "allow");
    CHECK(p.net.allow == std::vector<std::string>{"10.0.0.1:80", "10.0.0.2:80"});
    CHECK(p.run.guard == "bpf");
    CHECK(p.description == "base");
    CHECK(p.sources == std::vector<std::string>{d.path + "/base.toml", top});

    // Setting the mode starts the allow list afresh.
    std::string other = d.write("other.toml", "include = \"base.toml\"\n[net]\nmode = \"allow\"\nallow = [\"10.0.0.3:80\"]\n");
    CHECK(mbx::load_profile(other).net.allow == std::vector<std::string>{"10.0.0.3:80"});
}

TEST_CASE("an include cycle is refused") {
    TempDir d;
    d.write("a.toml", "include = [\"b.toml\"]\n");
    d.write("b.toml", "include = [\"c.toml\"]\n");
    d.write("c.toml", "include = [\"a.toml\"]\n");
    d.write("self.toml", "include = [\"self.toml\"]\n");
    try {
        mbx::load_profile(d.path + "/a.toml");
        FAIL("no error");
    } catch (const UserError& e) {
        CHECK(std::string(e.what()) == "profile include cycle: " + d.path + "/a.toml -> " + d.path + "/b.toml -> " +
                                            d.path + "/c.toml -> " + d.path + "/a.toml");
    }
    CHECK_THROWS_WITH(mbx::load_profile(d.path + "/self.toml"), Catch::Contains("include cycle"));
    // The same file twice, not in a cycle, is fine.
    d.write("x.toml", "[fs]\nhidden = [\"/x\"]\n");
    d.write("y.toml", "include = [\"x.toml\"]\n");
    std::string both = d.write("both.toml", "include = [\"x.toml\", \"y.toml\"]\n");
    CHECK(mbx::load_profile(both).fs.hidden == std::vector<std::string>{"/x"});
}

TEST_CASE("profiles are found by name on the search path") {
    TempDir d;
    d.write("mine.toml", "description = \"mine\"\n");
    ::setenv("MBX_PROFILE_PATH", d.path.c_str(), 1);
    CHECK(mbx::load_profile("mine").description == "mine");
    CHECK_THROWS_WITH(mbx::load_profile("nosuch"), Catch::StartsWith("no profile named 'nosuch'"));
    CHECK_THROWS_WITH(mbx::load_profile(d.path + "/missing.toml"), Catch::Contains("No such file"));
    bool listed = false;
    for (auto& e : mbx::list_profiles()) listed = listed || (e.name == "mine" && e.description == "mine");
    CHECK(listed);
    ::unsetenv("MBX_PROFILE_PATH");
}

TEST_CASE("profile paths: ~, $HOME and $CWD expand; others must be absolute") {
    using mbx::expand_profile_path;
    CHECK(expand_profile_path("~", "k", "/home/u", "/src") == "/home/u");
    CHECK(expand_profile_path("~/.ssh", "k", "/home/u", "/src") == "/home/u/.ssh");
    CHECK(expand_profile_path("$HOME/.gnupg/", "k", "/home/u", "/src") == "/home/u/.gnupg");
    CHECK(expand_profile_path("$CWD/out/../build", "k", "/home/u", "/src") == "/src/build");
    CHECK(expand_profile_path("/usr//local", "k", "/home/u", "/src") == "/usr/local");
    CHECK_THROWS_WITH(expand_profile_path("~user/x", "fs.hidden", "/home/u", "/src"),
                      "fs.hidden \"~user/x\": give an absolute path (or one starting with ~, $HOME or $CWD)");
    CHECK_THROWS_WITH(expand_profile_path("build", "fs.direct", "/home/u", "/src"), Catch::Contains("absolute path"));
}

TEST_CASE("exec rules: files, DIR/* and DIR/**, resolved; their bits for the guard") {
    mbx::ExecPolicy p = mbx::parse_exec_policy({"/bin/sh,/usr/bin/*"}, {"/usr/**"});
    char sh[4096];
    REQUIRE(::realpath("/bin/sh", sh));
    CHECK(p.allow == std::vector<std::string>{sh, "/usr/bin/*"});
    CHECK(p.deny == std::vector<std::string>{"/usr/**"});
    CHECK(p.has_dir_rules());
    p.interpreters = {sh};
    auto bits = p.rule_bits();
    CHECK(bits[sh] == (MBX_EXEC_ALLOW | MBX_EXEC_INTERPRETER));
    CHECK(bits["/usr/**"] == MBX_EXEC_DENY);
    CHECK(mbx::parse_exec_policy({"/**"}, {}).allow == std::vector<std::string>{"/**"});
    CHECK_THROWS_WITH(mbx::parse_exec_policy({"/etc/passwd/*"}, {}), Catch::Contains("not a directory"));
    CHECK_THROWS_WITH(mbx::parse_exec_policy({"/usr/bin/py*"}, {}), Catch::Contains("'*' only as DIR/* or DIR/**"));
    CHECK_THROWS_WITH(mbx::parse_exec_policy({"/usr"}, {}), Catch::Contains("not a regular file"));
    auto interp = mbx::installed_interpreters();
    CHECK(std::find(interp.begin(), interp.end(), std::string(sh)) != interp.end());
}
