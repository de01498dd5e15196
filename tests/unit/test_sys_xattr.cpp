// sys::get_xattr_at / list_xattr_at: the same answers through getxattrat(2)
// and listxattrat(2) as through the /proc path they fall back to on kernels
// without them (simulated with a seccomp filter answering ENOSYS).
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdlib>
#include <string>

#include "overlay/sys/sys.h"

namespace {

const std::string kLong(3000, 'v');  // past the first buffer (256): the ERANGE growth

// A temporary directory, removed again even when a REQUIRE throws while it is filled.
struct TempDir {
    std::string path;
    TempDir() {
        char t[] = "/var/tmp/mbx-unit-xattr.XXXXXX";
        REQUIRE(::mkdtemp(t));
        path = t;
    }
    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        (void)std::system(cmd.c_str());
    }
};

struct Fixture {
    TempDir tmp;
    const std::string& dir = tmp.path;
    int fd = -1;
    Fixture() {
        std::string f = dir + "/a b\nc";
        int w = ::open(f.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        REQUIRE(w >= 0);
        ::close(w);
        REQUIRE(::setxattr(f.c_str(), "user.short", "s", 1, 0) == 0);
        REQUIRE(::setxattr(f.c_str(), "user.long", kLong.data(), kLong.size(), 0) == 0);
        REQUIRE(::symlink("a b\nc", (dir + "/link").c_str()) == 0);
        fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(fd >= 0);
    }
    ~Fixture() { ::close(fd); }
};

// What the calls answer, true when all is as set up above.
bool answers_right(int dir) {
    auto s = mbx::sys::get_xattr_at(dir, "a b\nc", "user.short");
    auto l = mbx::sys::get_xattr_at(dir, "a b\nc", "user.long");
    auto missing = mbx::sys::get_xattr_at(dir, "a b\nc", "user.none");
    auto names = mbx::sys::list_xattr_at(dir, "a b\nc");
    auto of_link = mbx::sys::get_xattr_at(dir, "link", "user.short");  // not followed
    if (!s || *s != "s" || !l || *l != kLong || missing || missing.error() != ENODATA || !names || of_link) return false;
    std::sort(names->begin(), names->end());
    return *names == std::vector<std::string>{"user.long", "user.short"};
}

void deny_xattrat() {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 464, 2, 0),  // getxattrat
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 465, 1, 0),  // listxattrat
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
        ::_exit(2);
}

}  // namespace

TEST_CASE("xattrs of dir/name: getxattrat and listxattrat, and the /proc path without them") {
    Fixture fx;
    CHECK(answers_right(fx.fd));
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        deny_xattrat();
        ::_exit(answers_right(fx.fd) ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
