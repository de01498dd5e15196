// POSIX / Linux filesystem semantics battery for mbx.
//
// The same binary must pass on a plain ext4 directory and on mbx's merged
// (copy-on-write FUSE) view. It works inside $MBX_FS_DIR (required): every
// TEST_CASE gets a fresh, uniquely named scratch subdirectory that is removed
// again when the test case ends (a removal failure makes the run fail).
//
// Rules followed throughout:
//  * every check can fail if the filesystem gets the behaviour wrong;
//  * exact errno values are checked where POSIX/Linux define them;
//  * nothing ext4 itself does not guarantee is assumed (exact st_blocks,
//    d_type != DT_UNKNOWN, directory st_size, directory link counts);
//  * no privilege is needed; checks whose outcome differs between root and
//    an unprivileged user are only made for the unprivileged case.

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/falloc.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <source_location>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

std::string g_root;            // $MBX_FS_DIR
int g_cleanup_failures = 0;    // scratch directories that could not be removed

constexpr off_t KiB = 1024;
constexpr off_t MiB = 1024 * KiB;
constexpr off_t GiB = 1024 * MiB;

std::string errname(int e) {
    const char* n = strerrorname_np(e);
    return std::string(n ? n : "errno") + "(" + std::to_string(e) + ", " + strerror(e) + ")";
}

bool errno_in(int e, const std::vector<int>& allowed) {
    return std::find(allowed.begin(), allowed.end(), e) != allowed.end();
}

}  // namespace

// Run a syscall that must succeed (result != -1); evaluates to its result.
#define SYS(expr)                                                                  \
    ([&]() {                                                                       \
        errno = 0;                                                                 \
        auto sys_result_ = (expr);                                                 \
        const int sys_errno_ = errno;                                              \
        INFO("`" #expr "` failed with " << errname(sys_errno_));                   \
        REQUIRE(sys_result_ != -1);                                                \
        return sys_result_;                                                        \
    }())

// Run a syscall that must fail with -1 and one of the listed errno values.
#define REQUIRE_ERRNO(expr, ...)                                                   \
    do {                                                                           \
        errno = 0;                                                                 \
        const long long err_result_ = static_cast<long long>(expr);                \
        const int err_errno_ = errno;                                              \
        const std::vector<int> err_allowed_{__VA_ARGS__};                          \
        INFO("`" #expr "` returned " << err_result_ << " with errno "              \
                                     << errname(err_errno_)                        \
                                     << "; expected -1 with " #__VA_ARGS__);       \
        REQUIRE(err_result_ == -1);                                                \
        REQUIRE(errno_in(err_errno_, err_allowed_));                               \
    } while (0)

namespace {

// ---------------------------------------------------------------- helpers ---

// Helpers take the caller's location so that a failure inside them names the
// line of the test that called them.
using Loc = std::source_location;
#define CALLER(loc) INFO("called from line " << (loc).line())

struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
    ~Fd() { reset(); }
    void reset(int f = -1) {
        if (fd >= 0) ::close(fd);
        fd = f;
    }
    operator int() const { return fd; }
};

struct Mapping {
    void* p = MAP_FAILED;
    size_t len = 0;
    Mapping(void* p_, size_t l) : p(p_), len(l) {}
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() {
        if (p != MAP_FAILED) munmap(p, len);
    }
    unsigned char* bytes() const { return static_cast<unsigned char*>(p); }
};

struct Ent {
    std::string name;
    ino_t ino;
    unsigned char type;
};

void write_all(int fd, const void* buf, size_t len, Loc loc = Loc::current()) {
    CALLER(loc);
    const char* p = static_cast<const char*>(buf);
    while (len > 0) {
        ssize_t n = ::write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        INFO("write of " << len << " bytes failed with " << errname(errno));
        REQUIRE(n > 0);
        p += n;
        len -= size_t(n);
    }
}

void write_all(int fd, std::string_view s, Loc loc = Loc::current()) { write_all(fd, s.data(), s.size(), loc); }

void pwrite_all(int fd, const void* buf, size_t len, off_t off, Loc loc = Loc::current()) {
    CALLER(loc);
    const char* p = static_cast<const char*>(buf);
    while (len > 0) {
        ssize_t n = ::pwrite(fd, p, len, off);
        if (n < 0 && errno == EINTR) continue;
        INFO("pwrite of " << len << " bytes at " << off << " failed with " << errname(errno));
        REQUIRE(n > 0);
        p += n;
        len -= size_t(n);
        off += n;
    }
}

void pwrite_all(int fd, std::string_view s, off_t off, Loc loc = Loc::current()) { pwrite_all(fd, s.data(), s.size(), off, loc); }

// Reads up to len bytes at off (short only at EOF).
std::string pread_str(int fd, size_t len, off_t off, Loc loc = Loc::current()) {
    CALLER(loc);
    std::string s(len, '\0');
    size_t got = 0;
    while (got < len) {
        ssize_t n = ::pread(fd, s.data() + got, len - got, off + off_t(got));
        if (n < 0 && errno == EINTR) continue;
        INFO("pread of " << len << " bytes at " << off << " failed with " << errname(errno));
        REQUIRE(n >= 0);
        if (n == 0) break;
        got += size_t(n);
    }
    s.resize(got);
    return s;
}

bool all_zero(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

std::string read_file_at(int dfd, const std::string& name, Loc loc = Loc::current()) {
    CALLER(loc);
    INFO("reading " << name);
    Fd fd{SYS(openat(dfd, name.c_str(), O_RDONLY | O_CLOEXEC))};
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = SYS(::read(fd, buf, sizeof buf));
        if (n == 0) break;
        out.append(buf, size_t(n));
    }
    return out;
}

void make_file_at(int dfd, const std::string& name, std::string_view content, mode_t mode = 0644, Loc loc = Loc::current()) {
    CALLER(loc);
    INFO("creating " << name);
    Fd fd{SYS(openat(dfd, name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode))};
    write_all(fd, content);
}

struct stat lstat_at(int dfd, const std::string& name, Loc loc = Loc::current()) {
    CALLER(loc);
    struct stat st{};
    INFO("lstat " << name);
    SYS(fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW));
    return st;
}

struct stat stat_at(int dfd, const std::string& name, Loc loc = Loc::current()) {
    CALLER(loc);
    struct stat st{};
    INFO("stat " << name);
    SYS(fstatat(dfd, name.c_str(), &st, 0));
    return st;
}

struct stat fstat_fd(int fd, Loc loc = Loc::current()) {
    CALLER(loc);
    struct stat st{};
    SYS(fstat(fd, &st));
    return st;
}

// True if the name exists (lstat), false on ENOENT; anything else fails.
bool exists_at(int dfd, const std::string& name, Loc loc = Loc::current()) {
    CALLER(loc);
    struct stat st{};
    errno = 0;
    if (fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
    const int e = errno;
    INFO("lstat " << name << " failed with " << errname(e));
    REQUIRE(e == ENOENT);
    return false;
}

// Entries of an already open directory, read from the start with readdir(3).
std::vector<Ent> list_dir_fd(int dirfd, Loc loc = Loc::current()) {
    CALLER(loc);
    int d2 = SYS(fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
    SYS(lseek(d2, 0, SEEK_SET));
    DIR* d = fdopendir(d2);
    if (!d) ::close(d2);
    REQUIRE(d != nullptr);
    std::vector<Ent> out;
    errno = 0;
    while (struct dirent* de = readdir(d)) {
        out.push_back({de->d_name, de->d_ino, de->d_type});
        errno = 0;
    }
    const int e = errno;
    closedir(d);
    INFO("readdir failed with " << errname(e));
    REQUIRE(e == 0);
    return out;
}

std::vector<Ent> list_dir_at(int dfd, const std::string& name, Loc loc = Loc::current()) {
    CALLER(loc);
    Fd fd{SYS(openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC))};
    return list_dir_fd(fd, loc);
}

std::multiset<std::string> names_of(const std::vector<Ent>& v) {
    std::multiset<std::string> s;
    for (const auto& e : v) s.insert(e.name);
    return s;
}

std::multiset<std::string> names_at(int dfd, const std::string& name, Loc loc = Loc::current()) {
    return names_of(list_dir_at(dfd, name, loc));
}

std::multiset<std::string> with_dots(std::initializer_list<std::string> names) {
    std::multiset<std::string> s{".", ".."};
    s.insert(names.begin(), names.end());
    return s;
}

// Recursive removal with unlinkat(2). Directories are made searchable first.
// Entries are collected before they are removed so that a filesystem with a
// readdir-while-unlinking bug does not make cleanup skip entries.
bool remove_tree_at(int parentfd, const char* name, std::string* why) {
    if (unlinkat(parentfd, name, 0) == 0) return true;
    if (errno == ENOENT) return true;
    if (errno != EISDIR && errno != EPERM) {
        if (why) *why = std::string("unlink ") + name + ": " + errname(errno);
        return false;
    }
    (void)fchmodat(parentfd, name, 0700, 0);
    int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (why) *why = std::string("open ") + name + ": " + errname(errno);
        return false;
    }
    for (int pass = 0; pass < 4; ++pass) {
        std::vector<std::string> names;
        int d2 = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (d2 < 0 || lseek(d2, 0, SEEK_SET) < 0) break;
        DIR* d = fdopendir(d2);
        if (!d) {
            ::close(d2);
            break;
        }
        while (struct dirent* de = readdir(d)) {
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) names.push_back(de->d_name);
        }
        closedir(d);
        if (names.empty()) break;
        for (const auto& n : names) {
            if (!remove_tree_at(fd, n.c_str(), why)) {
                ::close(fd);
                return false;
            }
        }
    }
    ::close(fd);
    if (unlinkat(parentfd, name, AT_REMOVEDIR) != 0) {
        if (why) *why = std::string("rmdir ") + name + ": " + errname(errno);
        return false;
    }
    return true;
}

// A fresh scratch directory for one test case (one run of it, with SECTIONs).
struct Scratch {
    std::string path;
    int dfd = -1;

    Scratch() {
        std::string name = Catch::getResultCapture().getCurrentTestName();
        for (auto& c : name)
            if (!isalnum(static_cast<unsigned char>(c))) c = '-';
        if (name.size() > 40) name.resize(40);
        std::string tmpl = g_root + "/sem-" + name + "-XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        errno = 0;
        char* p = mkdtemp(buf.data());
        INFO("mkdtemp " << tmpl << " failed with " << errname(errno));
        REQUIRE(p != nullptr);
        path = p;
        dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
            const int e = errno;
            rmdir(p);
            INFO("open of scratch dir failed with " << errname(e));
            REQUIRE(dfd >= 0);
        }
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    ~Scratch() {
        if (dfd >= 0) ::close(dfd);
        std::string why;
        if (!remove_tree_at(AT_FDCWD, path.c_str(), &why)) {
            fprintf(stderr, "fs-semantics: could not remove scratch directory %s: %s\n", path.c_str(),
                    why.c_str());
            ++g_cleanup_failures;
        }
    }
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

bool ts_eq(const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }
bool ts_gt(const timespec& a, const timespec& b) {
    return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}
std::string ts_str(const timespec& t) {
    char buf[64];
    snprintf(buf, sizeof buf, "%lld.%09ld", static_cast<long long>(t.tv_sec), static_cast<long>(t.tv_nsec));
    return buf;
}
time_t now_sec() {
    timespec t{};
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec;
}
void tick() {
    // Longer than one jiffy at any HZ, so coarse timestamps must advance.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
}

// Directory link counts: POSIX does not fix them and some filesystems report
// 1; if a filesystem does count, the count must be 2 + number of subdirs.
void check_dir_nlink(int dfd, const std::string& name, nlink_t subdirs) {
    struct stat st = lstat_at(dfd, name);
    INFO("directory " << name << " has st_nlink " << st.st_nlink << ", expected 1 or " << 2 + subdirs);
    CHECK((st.st_nlink == 1 || st.st_nlink == 2 + subdirs));
}

std::vector<std::string> split_xattr_list(const char* buf, ssize_t len) {
    std::vector<std::string> out;
    ssize_t i = 0;
    while (i < len) {
        std::string n(buf + i);
        i += ssize_t(n.size()) + 1;
        out.push_back(n);
    }
    return out;
}

std::vector<std::string> xattr_names(const std::string& path, Loc loc = Loc::current()) {
    CALLER(loc);
    ssize_t sz = SYS(listxattr(path.c_str(), nullptr, 0));
    std::vector<char> buf(size_t(sz) + 1);
    ssize_t n = SYS(listxattr(path.c_str(), buf.data(), buf.size()));
    return split_xattr_list(buf.data(), n);
}

template <class C, class T>
size_t count_of(const C& c, const T& v) {
    return size_t(std::count(c.begin(), c.end(), v));
}

uint64_t fnv1a(uint64_t h, const unsigned char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}
constexpr uint64_t kFnvInit = 14695981039346656037ULL;

void fill_pattern(std::vector<unsigned char>& buf, uint64_t& state) {
    for (size_t i = 0; i + 8 <= buf.size(); i += 8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        memcpy(&buf[i], &state, 8);
    }
}

}  // namespace

// ============================================================ basic I/O ====

TEST_CASE("a new file honours mode and umask and reads back exactly what was written") {
    Scratch s;
    Fd fd{SYS(openat(s.dfd, "f", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0666))};
    struct stat st = fstat_fd(fd);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 07777) == 0644);  // umask 022 set in main()
    CHECK(st.st_size == 0);
    CHECK(st.st_nlink == 1);
    CHECK(st.st_uid == geteuid());

    write_all(fd, "hello world");
    CHECK(SYS(lseek(fd, 0, SEEK_CUR)) == 11);
    CHECK(SYS(lseek(fd, 0, SEEK_SET)) == 0);
    char buf[64];
    ssize_t n = SYS(::read(fd, buf, sizeof buf));
    REQUIRE(n == 11);
    CHECK(std::string(buf, 11) == "hello world");
    CHECK(SYS(::read(fd, buf, sizeof buf)) == 0);  // EOF

    CHECK(pread_str(fd, 5, 6) == "world");
    pwrite_all(fd, "WORLD", 6);
    CHECK(SYS(lseek(fd, 0, SEEK_CUR)) == 11);  // pread/pwrite do not move the offset
    CHECK(pread_str(fd, 64, 0) == "hello WORLD");

    // Writing past EOF leaves a zero-filled gap.
    pwrite_all(fd, "!", 20);
    CHECK(fstat_fd(fd).st_size == 21);
    CHECK(pread_str(fd, 64, 0) == std::string("hello WORLD") + std::string(9, '\0') + "!");
    CHECK(pread_str(fd, 10, 21).empty());
    CHECK(pread_str(fd, 10, 1000).empty());
    CHECK(SYS(lseek(fd, 0, SEEK_END)) == 21);

    SYS(fsync(fd));
    SYS(fdatasync(fd));
    SYS(fsync(s.dfd));

    // A second open file description sees the data, and new writes, at once.
    Fd rd{SYS(openat(s.dfd, "f", O_RDONLY | O_CLOEXEC))};
    CHECK(pread_str(rd, 64, 0) == pread_str(fd, 64, 0));
    pwrite_all(fd, "more", 21);
    CHECK(pread_str(rd, 64, 21) == "more");
    CHECK(fstat_fd(rd).st_size == 25);
    CHECK(stat_at(s.dfd, "f").st_size == 25);
    CHECK(SYS(lseek(rd, 0, SEEK_END)) == 25);
}

TEST_CASE("O_CREAT without O_EXCL opens an existing file without truncating it or changing its mode") {
    Scratch s;
    make_file_at(s.dfd, "f", "keep me", 0600);
    {
        Fd fd{SYS(openat(s.dfd, "f", O_CREAT | O_RDWR | O_CLOEXEC, 0777))};
        CHECK(fstat_fd(fd).st_size == 7);
    }
    CHECK(read_file_at(s.dfd, "f") == "keep me");
    CHECK((lstat_at(s.dfd, "f").st_mode & 07777) == 0600);
}

TEST_CASE("O_EXCL with O_CREAT fails with EEXIST on files, directories and dangling symlinks") {
    Scratch s;
    make_file_at(s.dfd, "f", "x");
    SYS(mkdirat(s.dfd, "d", 0755));
    SYS(symlinkat("nowhere", s.dfd, "dangling"));
    REQUIRE_ERRNO(openat(s.dfd, "f", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644), EEXIST);
    REQUIRE_ERRNO(openat(s.dfd, "d", O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC, 0644), EEXIST);
    REQUIRE_ERRNO(openat(s.dfd, "dangling", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644), EEXIST);
    CHECK_FALSE(exists_at(s.dfd, "nowhere"));  // O_EXCL must not follow the link
    CHECK(read_file_at(s.dfd, "f") == "x");
}

TEST_CASE("O_TRUNC empties an existing file and stale data never reappears") {
    Scratch s;
    make_file_at(s.dfd, "f", "0123456789");
    {
        Fd fd{SYS(openat(s.dfd, "f", O_WRONLY | O_TRUNC | O_CLOEXEC))};
        CHECK(fstat_fd(fd).st_size == 0);
        CHECK(stat_at(s.dfd, "f").st_size == 0);
        pwrite_all(fd, "ab", 0);
        SYS(ftruncate(fd, 10));
    }
    CHECK(read_file_at(s.dfd, "f") == std::string("ab") + std::string(8, '\0'));
}

TEST_CASE("truncate and ftruncate shrink and extend files with zero fill") {
    Scratch s;
    make_file_at(s.dfd, "f", "abcdefgh");
    Fd fd{SYS(openat(s.dfd, "f", O_RDWR | O_CLOEXEC))};
    SYS(ftruncate(fd, 4));
    CHECK(fstat_fd(fd).st_size == 4);
    CHECK(pread_str(fd, 100, 0) == "abcd");
    SYS(ftruncate(fd, 8));
    CHECK(pread_str(fd, 100, 0) == std::string("abcd") + std::string(4, '\0'));  // old tail must not come back

    SYS(truncate((s / "f").c_str(), 2));
    CHECK(fstat_fd(fd).st_size == 2);
    CHECK(pread_str(fd, 100, 0) == "ab");
    SYS(truncate((s / "f").c_str(), 10000));
    CHECK(stat_at(s.dfd, "f").st_size == 10000);
    std::string all = pread_str(fd, 20000, 0);
    REQUIRE(all.size() == 10000);
    CHECK(all.substr(0, 2) == "ab");
    CHECK(all_zero(std::string_view(all).substr(2)));
    SYS(ftruncate(fd, 0));
    CHECK(read_file_at(s.dfd, "f").empty());

    SYS(mkdirat(s.dfd, "d", 0755));
    REQUIRE_ERRNO(truncate((s / "missing").c_str(), 0), ENOENT);
    REQUIRE_ERRNO(truncate((s / "d").c_str(), 0), EISDIR);
    REQUIRE_ERRNO(truncate((s / "f").c_str(), -1), EINVAL);
    Fd ro{SYS(openat(s.dfd, "f", O_RDONLY | O_CLOEXEC))};
    REQUIRE_ERRNO(ftruncate(ro, 0), EINVAL, EBADF);
}

TEST_CASE("O_APPEND writes always land at the current end of file") {
    Scratch s;
    make_file_at(s.dfd, "f", "0123456789");
    Fd ap{SYS(openat(s.dfd, "f", O_WRONLY | O_APPEND | O_CLOEXEC))};
    SYS(lseek(ap, 0, SEEK_SET));
    write_all(ap, "abc");
    CHECK(read_file_at(s.dfd, "f") == "0123456789abc");
    CHECK(SYS(lseek(ap, 0, SEEK_CUR)) == 13);

    // Linux: pwrite on an O_APPEND descriptor appends regardless of offset.
    CHECK(SYS(::pwrite(ap, "XYZ", 3, 0)) == 3);
    CHECK(read_file_at(s.dfd, "f") == "0123456789abcXYZ");

    // The file grows through another descriptor; append follows the new end.
    Fd other{SYS(openat(s.dfd, "f", O_WRONLY | O_CLOEXEC))};
    pwrite_all(other, "END", 30);
    write_all(ap, "+");
    CHECK(stat_at(s.dfd, "f").st_size == 34);
    CHECK(read_file_at(s.dfd, "f").substr(30) == "END+");

    // Two appenders interleave without overwriting each other.
    SYS(ftruncate(other, 0));
    Fd a1{SYS(openat(s.dfd, "f", O_WRONLY | O_APPEND | O_CLOEXEC))};
    Fd a2{SYS(openat(s.dfd, "f", O_WRONLY | O_APPEND | O_CLOEXEC))};
    std::string expected;
    for (int i = 0; i < 100; ++i) {
        char l1[16], l2[16];
        snprintf(l1, sizeof l1, "A%03d\n", i);
        snprintf(l2, sizeof l2, "B%03d\n", i);
        write_all(a1, l1);
        write_all(a2, l2);
        expected += l1;
        expected += l2;
    }
    CHECK(read_file_at(s.dfd, "f") == expected);
}

TEST_CASE("open and I/O report ENOENT, ENOTDIR, EISDIR and EBADF where Linux defines them") {
    Scratch s;
    make_file_at(s.dfd, "f", "x");
    SYS(mkdirat(s.dfd, "d", 0755));
    REQUIRE_ERRNO(openat(s.dfd, "missing", O_RDONLY | O_CLOEXEC), ENOENT);
    REQUIRE_ERRNO(openat(s.dfd, "", O_RDONLY | O_CLOEXEC), ENOENT);
    REQUIRE_ERRNO(openat(s.dfd, "nodir/f", O_CREAT | O_WRONLY | O_CLOEXEC, 0644), ENOENT);
    REQUIRE_ERRNO(openat(s.dfd, "f/x", O_RDONLY | O_CLOEXEC), ENOTDIR);
    REQUIRE_ERRNO(openat(s.dfd, "f/x", O_CREAT | O_WRONLY | O_CLOEXEC, 0644), ENOTDIR);
    REQUIRE_ERRNO(openat(s.dfd, "f/", O_RDONLY | O_CLOEXEC), ENOTDIR);
    REQUIRE_ERRNO(openat(s.dfd, "f", O_RDONLY | O_DIRECTORY | O_CLOEXEC), ENOTDIR);
    REQUIRE_ERRNO(openat(s.dfd, "d", O_WRONLY | O_CLOEXEC), EISDIR);
    REQUIRE_ERRNO(openat(s.dfd, "d", O_RDWR | O_CLOEXEC), EISDIR);
    REQUIRE_ERRNO(openat(s.dfd, "d", O_CREAT | O_RDONLY | O_CLOEXEC, 0644), EISDIR);
    REQUIRE_ERRNO(openat(s.dfd, "newdir/", O_CREAT | O_RDONLY | O_CLOEXEC, 0644), EISDIR, ENOENT);
    CHECK_FALSE(exists_at(s.dfd, "newdir"));
    Fd d{SYS(openat(s.dfd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC))};
    char c;
    REQUIRE_ERRNO(::read(d, &c, 1), EISDIR);
    SYS(fsync(d));

    // Descriptors keep their access mode.
    Fd ro{SYS(openat(s.dfd, "f", O_RDONLY | O_CLOEXEC))};
    Fd wo{SYS(openat(s.dfd, "f", O_WRONLY | O_CLOEXEC))};
    REQUIRE_ERRNO(::write(ro, "y", 1), EBADF);
    REQUIRE_ERRNO(::pwrite(ro, "y", 1, 0), EBADF);
    REQUIRE_ERRNO(::read(wo, &c, 1), EBADF);
    REQUIRE_ERRNO(::pread(wo, &c, 1, 0), EBADF);
    CHECK(read_file_at(s.dfd, "f") == "x");
    CHECK(names_at(s.dfd, ".") == with_dots({"f", "d"}));
}

TEST_CASE("255-byte names work and 256-byte names fail with ENAMETOOLONG") {
    Scratch s;
    const std::string n255a(255, 'a');
    const std::string n255b = std::string(254, 'b') + "B";
    const std::string n256(256, 'c');
    make_file_at(s.dfd, n255a, "long");
    CHECK(S_ISREG(lstat_at(s.dfd, n255a).st_mode));
    SYS(renameat(s.dfd, n255a.c_str(), s.dfd, n255b.c_str()));
    CHECK(names_at(s.dfd, ".") == with_dots({n255b}));
    CHECK(read_file_at(s.dfd, n255b) == "long");
    SYS(unlinkat(s.dfd, n255b.c_str(), 0));
    // Deleting and recreating the same long name (whiteouts must not need a longer name).
    make_file_at(s.dfd, n255b, "again");
    CHECK(read_file_at(s.dfd, n255b) == "again");
    SYS(unlinkat(s.dfd, n255b.c_str(), 0));
    SYS(mkdirat(s.dfd, n255a.c_str(), 0755));
    make_file_at(s.dfd, n255a + "/" + n255b, "nested");
    SYS(unlinkat(s.dfd, (n255a + "/" + n255b).c_str(), 0));
    SYS(unlinkat(s.dfd, n255a.c_str(), AT_REMOVEDIR));
    CHECK(names_at(s.dfd, ".") == with_dots({}));

    make_file_at(s.dfd, "short", "s");
    REQUIRE_ERRNO(openat(s.dfd, n256.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644), ENAMETOOLONG);
    REQUIRE_ERRNO(mkdirat(s.dfd, n256.c_str(), 0755), ENAMETOOLONG);
    REQUIRE_ERRNO(symlinkat("short", s.dfd, n256.c_str()), ENAMETOOLONG);
    REQUIRE_ERRNO(renameat(s.dfd, "short", s.dfd, n256.c_str()), ENAMETOOLONG);
    REQUIRE_ERRNO(openat(s.dfd, n256.c_str(), O_RDONLY | O_CLOEXEC), ENAMETOOLONG);
    CHECK(names_at(s.dfd, ".") == with_dots({"short"}));
}

// ==================================================== directories, nodes ====

TEST_CASE("mkdir creates directories and reports EEXIST, ENOENT and ENOTDIR") {
    Scratch s;
    SYS(mkdirat(s.dfd, "d", 0777));
    struct stat st = lstat_at(s.dfd, "d");
    CHECK(S_ISDIR(st.st_mode));
    CHECK((st.st_mode & 07777) == 0755);
    CHECK(st.st_uid == geteuid());
    CHECK(names_at(s.dfd, "d") == with_dots({}));
    check_dir_nlink(s.dfd, "d", 0);
    SYS(mkdirat(s.dfd, "d/sub", 0700));
    CHECK((lstat_at(s.dfd, "d/sub").st_mode & 07777) == 0700);
    check_dir_nlink(s.dfd, "d", 1);
    SYS(mkdirat(s.dfd, "trailing/", 0755));
    CHECK(S_ISDIR(lstat_at(s.dfd, "trailing").st_mode));

    make_file_at(s.dfd, "f", "");
    SYS(symlinkat("nowhere", s.dfd, "dangling"));
    REQUIRE_ERRNO(mkdirat(s.dfd, "d", 0755), EEXIST);
    REQUIRE_ERRNO(mkdirat(s.dfd, "f", 0755), EEXIST);
    REQUIRE_ERRNO(mkdirat(s.dfd, "dangling", 0755), EEXIST);
    REQUIRE_ERRNO(mkdirat(s.dfd, "missing/x", 0755), ENOENT);
    REQUIRE_ERRNO(mkdirat(s.dfd, "f/x", 0755), ENOTDIR);
    CHECK_FALSE(exists_at(s.dfd, "nowhere"));
}

TEST_CASE("rmdir removes only empty directories") {
    Scratch s;
    SYS(mkdirat(s.dfd, "withfile", 0755));
    make_file_at(s.dfd, "withfile/f", "x");
    SYS(mkdirat(s.dfd, "withdir", 0755));
    SYS(mkdirat(s.dfd, "withdir/sub", 0755));
    SYS(mkdirat(s.dfd, "empty", 0755));
    make_file_at(s.dfd, "file", "x");
    SYS(symlinkat("empty", s.dfd, "dirlink"));

    REQUIRE_ERRNO(unlinkat(s.dfd, "withfile", AT_REMOVEDIR), ENOTEMPTY);
    REQUIRE_ERRNO(unlinkat(s.dfd, "withdir", AT_REMOVEDIR), ENOTEMPTY);
    REQUIRE_ERRNO(rmdir((s / "withfile").c_str()), ENOTEMPTY);
    REQUIRE_ERRNO(unlinkat(s.dfd, "file", AT_REMOVEDIR), ENOTDIR);
    REQUIRE_ERRNO(unlinkat(s.dfd, "dirlink", AT_REMOVEDIR), ENOTDIR);
    REQUIRE_ERRNO(unlinkat(s.dfd, "missing", AT_REMOVEDIR), ENOENT);
    REQUIRE_ERRNO(rmdir((s / "empty/.").c_str()), EINVAL);
    CHECK(read_file_at(s.dfd, "withfile/f") == "x");
    CHECK(S_ISDIR(lstat_at(s.dfd, "withdir/sub").st_mode));
    CHECK(S_ISDIR(lstat_at(s.dfd, "empty").st_mode));

    SYS(unlinkat(s.dfd, "empty", AT_REMOVEDIR));
    CHECK_FALSE(exists_at(s.dfd, "empty"));
    SYS(unlinkat(s.dfd, "withfile/f", 0));
    SYS(unlinkat(s.dfd, "withfile", AT_REMOVEDIR));
    SYS(unlinkat(s.dfd, "withdir/sub", AT_REMOVEDIR));
    SYS(rmdir((s / "withdir").c_str()));
    CHECK(names_at(s.dfd, ".") == with_dots({"file", "dirlink"}));
    // A removed directory can be recreated and is empty.
    SYS(mkdirat(s.dfd, "withfile", 0755));
    CHECK(names_at(s.dfd, "withfile") == with_dots({}));
}

TEST_CASE("unlink removes files and symlinks and refuses directories with EISDIR") {
    Scratch s;
    make_file_at(s.dfd, "target", "t");
    SYS(symlinkat("target", s.dfd, "link"));
    SYS(mkdirat(s.dfd, "d", 0755));
    REQUIRE_ERRNO(unlinkat(s.dfd, "d", 0), EISDIR);
    REQUIRE_ERRNO(unlink((s / "d").c_str()), EISDIR);
    REQUIRE_ERRNO(unlinkat(s.dfd, "missing", 0), ENOENT);
    REQUIRE_ERRNO(unlinkat(s.dfd, "target/x", 0), ENOTDIR);
    SYS(unlinkat(s.dfd, "link", 0));
    CHECK_FALSE(exists_at(s.dfd, "link"));
    CHECK(read_file_at(s.dfd, "target") == "t");
    SYS(unlinkat(s.dfd, "target", 0));
    CHECK(names_at(s.dfd, ".") == with_dots({"d"}));
    REQUIRE_ERRNO(unlinkat(s.dfd, "target", 0), ENOENT);
}

TEST_CASE("mknodat creates a FIFO that carries data, and regular files") {
    Scratch s;
    SYS(mknodat(s.dfd, "fifo", S_IFIFO | 0666, 0));
    struct stat st = lstat_at(s.dfd, "fifo");
    CHECK(S_ISFIFO(st.st_mode));
    CHECK((st.st_mode & 07777) == 0644);
    REQUIRE_ERRNO(mknodat(s.dfd, "fifo", S_IFIFO | 0644, 0), EEXIST);
    REQUIRE_ERRNO(mkfifoat(s.dfd, "fifo", 0644), EEXIST);

    // No reader yet: a non-blocking writer gets ENXIO.
    REQUIRE_ERRNO(openat(s.dfd, "fifo", O_WRONLY | O_NONBLOCK | O_CLOEXEC), ENXIO);
    Fd rd{SYS(openat(s.dfd, "fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC))};
    Fd wr{SYS(openat(s.dfd, "fifo", O_WRONLY | O_NONBLOCK | O_CLOEXEC))};
    write_all(wr, "through the pipe");
    char buf[64];
    ssize_t n = SYS(::read(rd, buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "through the pipe");
    REQUIRE_ERRNO(::read(rd, buf, sizeof buf), EAGAIN);
    CHECK(lstat_at(s.dfd, "fifo").st_size == 0);  // data never reaches the filesystem

    SYS(mkfifoat(s.dfd, "fifo2", 0600));
    CHECK(S_ISFIFO(lstat_at(s.dfd, "fifo2").st_mode));
    CHECK((lstat_at(s.dfd, "fifo2").st_mode & 07777) == 0600);

    SYS(mknodat(s.dfd, "reg", S_IFREG | 0640, 0));
    st = lstat_at(s.dfd, "reg");
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 07777) == 0640);
    CHECK(st.st_size == 0);

    SYS(renameat(s.dfd, "fifo", s.dfd, "fifo-renamed"));
    CHECK(S_ISFIFO(lstat_at(s.dfd, "fifo-renamed").st_mode));
    SYS(unlinkat(s.dfd, "fifo-renamed", 0));
    CHECK(names_at(s.dfd, ".") == with_dots({"fifo2", "reg"}));
}

TEST_CASE("bind of a unix socket creates a socket inode that accepts connections") {
    Scratch s;
    const std::string path = "/proc/self/fd/" + std::to_string(s.dfd) + "/sock";
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    Fd srv{SYS(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0))};
    SYS(bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    CHECK(S_ISSOCK(lstat_at(s.dfd, "sock").st_mode));
    SYS(listen(srv, 1));
    Fd cli{SYS(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0))};
    SYS(connect(cli, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
    Fd acc{SYS(accept4(srv, nullptr, nullptr, SOCK_CLOEXEC))};
    write_all(cli, "hi");
    char buf[8];
    ssize_t n = SYS(::read(acc, buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "hi");
    Fd again{SYS(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0))};
    REQUIRE_ERRNO(bind(again, reinterpret_cast<sockaddr*>(&addr), sizeof addr), EADDRINUSE);
    SYS(unlinkat(s.dfd, "sock", 0));
    CHECK(names_at(s.dfd, ".") == with_dots({}));
}

// ============================================================= symlinks ====

TEST_CASE("symlink and readlink round-trip targets exactly") {
    Scratch s;
    make_file_at(s.dfd, "target", "via link");
    const std::vector<std::string> targets = {
        "target", "../x/./y//z", "/nonexistent/absolute/path", std::string(1000, 'L'), "with space\tand\nnewline",
    };
    int i = 0;
    for (const auto& t : targets) {
        const std::string name = "l" + std::to_string(i++);
        SYS(symlinkat(t.c_str(), s.dfd, name.c_str()));
        struct stat st = lstat_at(s.dfd, name);
        CHECK(S_ISLNK(st.st_mode));
        CHECK(st.st_size == off_t(t.size()));
        std::vector<char> buf(t.size() + 16, 'Z');
        ssize_t n = SYS(readlinkat(s.dfd, name.c_str(), buf.data(), buf.size()));
        REQUIRE(n == ssize_t(t.size()));
        CHECK(std::string(buf.data(), size_t(n)) == t);
        CHECK(buf[size_t(n)] == 'Z');  // readlink does not NUL-terminate
        // A short buffer truncates silently.
        char small[4];
        CHECK(SYS(readlinkat(s.dfd, name.c_str(), small, sizeof small)) == 4);
        CHECK(std::string(small, 4) == t.substr(0, 4));
    }

    // Following the link reaches the target.
    CHECK(stat_at(s.dfd, "l0").st_ino == lstat_at(s.dfd, "target").st_ino);
    CHECK(read_file_at(s.dfd, "l0") == "via link");
    REQUIRE_ERRNO(fstatat(s.dfd, "l2", std::vector<struct stat>(1).data(), 0), ENOENT);  // dangling

    char b[16];
    REQUIRE_ERRNO(readlinkat(s.dfd, "target", b, sizeof b), EINVAL);
    REQUIRE_ERRNO(readlinkat(s.dfd, "missing", b, sizeof b), ENOENT);
    REQUIRE_ERRNO(symlinkat("x", s.dfd, "target"), EEXIST);
    REQUIRE_ERRNO(symlinkat("x", s.dfd, "l0"), EEXIST);
    REQUIRE_ERRNO(symlinkat("", s.dfd, "empty"), ENOENT);

    // Relative targets resolve against the link's directory.
    SYS(mkdirat(s.dfd, "sub", 0755));
    make_file_at(s.dfd, "sub/inner", "inner");
    SYS(symlinkat("inner", s.dfd, "sub/rel"));
    SYS(symlinkat("../target", s.dfd, "sub/up"));
    CHECK(read_file_at(s.dfd, "sub/rel") == "inner");
    CHECK(read_file_at(s.dfd, "sub/up") == "via link");

    // Symlink to a directory: traversal works, trailing slash follows.
    SYS(symlinkat("sub", s.dfd, "dirlink"));
    CHECK(read_file_at(s.dfd, "dirlink/inner") == "inner");
    CHECK(S_ISDIR(lstat_at(s.dfd, "dirlink/").st_mode));
    CHECK(S_ISLNK(lstat_at(s.dfd, "dirlink").st_mode));

    // O_CREAT through a dangling symlink creates the target.
    SYS(symlinkat("created-through-link", s.dfd, "dangle"));
    {
        Fd fd{SYS(openat(s.dfd, "dangle", O_CREAT | O_WRONLY | O_CLOEXEC, 0644))};
        write_all(fd, "made");
    }
    CHECK(S_ISLNK(lstat_at(s.dfd, "dangle").st_mode));
    CHECK(read_file_at(s.dfd, "created-through-link") == "made");

    // A symlink survives rename with its target intact.
    SYS(renameat(s.dfd, "l1", s.dfd, "l1-renamed"));
    CHECK(SYS(readlinkat(s.dfd, "l1-renamed", b, sizeof b)) == ssize_t(targets[1].size()));
    CHECK(std::string(b, targets[1].size()) == targets[1]);
}

TEST_CASE("symlink loops give ELOOP and O_NOFOLLOW refuses a final symlink") {
    Scratch s;
    make_file_at(s.dfd, "file", "content");
    SYS(symlinkat("b", s.dfd, "a"));
    SYS(symlinkat("a", s.dfd, "b"));
    SYS(symlinkat("self", s.dfd, "self"));
    struct stat st{};
    REQUIRE_ERRNO(openat(s.dfd, "a", O_RDONLY | O_CLOEXEC), ELOOP);
    REQUIRE_ERRNO(openat(s.dfd, "self", O_RDONLY | O_CLOEXEC), ELOOP);
    REQUIRE_ERRNO(openat(s.dfd, "a", O_CREAT | O_WRONLY | O_CLOEXEC, 0644), ELOOP);
    REQUIRE_ERRNO(openat(s.dfd, "a/x", O_RDONLY | O_CLOEXEC), ELOOP);
    REQUIRE_ERRNO(fstatat(s.dfd, "a", &st, 0), ELOOP);
    REQUIRE_ERRNO(mkdirat(s.dfd, "self/x", 0755), ELOOP);
    CHECK(S_ISLNK(lstat_at(s.dfd, "a").st_mode));  // lstat does not follow

    // A finite chain works.
    SYS(symlinkat("file", s.dfd, "c0"));
    for (int i = 1; i < 10; ++i)
        SYS(symlinkat(("c" + std::to_string(i - 1)).c_str(), s.dfd, ("c" + std::to_string(i)).c_str()));
    CHECK(read_file_at(s.dfd, "c9") == "content");

    SYS(symlinkat("file", s.dfd, "flink"));
    REQUIRE_ERRNO(openat(s.dfd, "flink", O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ELOOP);
    REQUIRE_ERRNO(openat(s.dfd, "flink", O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC), ELOOP);
    CHECK(read_file_at(s.dfd, "file") == "content");  // O_TRUNC did not reach the target
    {
        Fd fd{SYS(openat(s.dfd, "file", O_RDONLY | O_NOFOLLOW | O_CLOEXEC))};
    }
    // O_NOFOLLOW only concerns the last component.
    SYS(mkdirat(s.dfd, "dir", 0755));
    make_file_at(s.dfd, "dir/inner", "i");
    SYS(symlinkat("dir", s.dfd, "dlink"));
    {
        Fd fd{SYS(openat(s.dfd, "dlink/inner", O_RDONLY | O_NOFOLLOW | O_CLOEXEC))};
    }
    // O_PATH|O_NOFOLLOW opens the link itself.
    Fd p{SYS(openat(s.dfd, "flink", O_PATH | O_NOFOLLOW | O_CLOEXEC))};
    SYS(fstatat(p, "", &st, AT_EMPTY_PATH));
    CHECK(S_ISLNK(st.st_mode));
    CHECK(st.st_ino == lstat_at(s.dfd, "flink").st_ino);
}

// =============================================================== rename ====

TEST_CASE("rename over an existing file replaces it atomically") {
    Scratch s;
    make_file_at(s.dfd, "src", "new content");
    make_file_at(s.dfd, "dst", "old content");
    SYS(linkat(s.dfd, "dst", s.dfd, "dst-link", 0));
    const ino_t src_ino = lstat_at(s.dfd, "src").st_ino;
    const ino_t dst_ino = lstat_at(s.dfd, "dst").st_ino;
    Fd old_fd{SYS(openat(s.dfd, "dst", O_RDONLY | O_CLOEXEC))};

    SYS(renameat(s.dfd, "src", s.dfd, "dst"));
    CHECK_FALSE(exists_at(s.dfd, "src"));
    CHECK(read_file_at(s.dfd, "dst") == "new content");
    CHECK(lstat_at(s.dfd, "dst").st_ino == src_ino);
    CHECK(pread_str(old_fd, 100, 0) == "old content");  // replaced inode lives on for open fds
    struct stat l = lstat_at(s.dfd, "dst-link");
    CHECK(l.st_ino == dst_ino);
    CHECK(l.st_nlink == 1);
    CHECK(fstat_fd(old_fd).st_nlink == 1);
    CHECK(read_file_at(s.dfd, "dst-link") == "old content");
    CHECK(names_at(s.dfd, ".") == with_dots({"dst", "dst-link"}));

    // Concurrent readers must never miss the name nor see a partial file.
    constexpr size_t kLen = 256;
    make_file_at(s.dfd, "first", std::string(kLen, '@'));
    SYS(renameat(s.dfd, "first", s.dfd, "dst"));
    std::atomic<bool> stop{false};
    std::atomic<long> reads{0}, open_failures{0}, torn{0};
    std::atomic<int> first_errno{0};
    std::thread reader([&] {
        char buf[kLen + 16];
        while (!stop.load()) {
            int fd = openat(s.dfd, "dst", O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                int zero = 0;
                first_errno.compare_exchange_strong(zero, errno);
                ++open_failures;
                continue;
            }
            ssize_t n = ::pread(fd, buf, sizeof buf, 0);
            ::close(fd);
            bool ok = n == ssize_t(kLen);
            for (size_t i = 1; ok && i < kLen; ++i) ok = buf[i] == buf[0];
            if (!ok) ++torn;
            ++reads;
        }
    });
    struct Joiner {
        std::atomic<bool>& stop;
        std::thread& t;
        ~Joiner() {
            stop = true;
            if (t.joinable()) t.join();
        }
    } joiner{stop, reader};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    int gen = 0;
    while ((gen < 300 || reads.load() < 300) && std::chrono::steady_clock::now() < deadline) {
        const std::string tmp = "tmp" + std::to_string(gen);
        make_file_at(s.dfd, tmp, std::string(kLen, char('A' + gen % 26)));
        SYS(renameat(s.dfd, tmp.c_str(), s.dfd, "dst"));
        ++gen;
    }
    stop = true;
    reader.join();
    INFO(gen << " renames, " << reads.load() << " reads, first open errno "
              << (first_errno.load() ? errname(first_errno.load()) : std::string("none")));
    CHECK(reads.load() > 0);
    CHECK(open_failures.load() == 0);
    CHECK(torn.load() == 0);
    CHECK(names_at(s.dfd, ".") == with_dots({"dst", "dst-link"}));
}

TEST_CASE("rename of a directory over an empty directory replaces it") {
    Scratch s;
    SYS(mkdirat(s.dfd, "src", 0755));
    make_file_at(s.dfd, "src/inner", "inside");
    SYS(mkdirat(s.dfd, "dst", 0700));
    const ino_t src_ino = lstat_at(s.dfd, "src").st_ino;
    SYS(renameat(s.dfd, "src", s.dfd, "dst"));
    CHECK_FALSE(exists_at(s.dfd, "src"));
    struct stat st = lstat_at(s.dfd, "dst");
    CHECK(st.st_ino == src_ino);
    CHECK((st.st_mode & 07777) == 0755);
    CHECK(names_at(s.dfd, "dst") == with_dots({"inner"}));
    CHECK(read_file_at(s.dfd, "dst/inner") == "inside");
    check_dir_nlink(s.dfd, ".", 1);
}

TEST_CASE("rename of a directory over a non-empty directory fails with ENOTEMPTY or EEXIST") {
    Scratch s;
    SYS(mkdirat(s.dfd, "src", 0755));
    make_file_at(s.dfd, "src/a", "a");
    SYS(mkdirat(s.dfd, "dst", 0755));
    make_file_at(s.dfd, "dst/b", "b");
    REQUIRE_ERRNO(renameat(s.dfd, "src", s.dfd, "dst"), ENOTEMPTY, EEXIST);
    SYS(mkdirat(s.dfd, "dst2", 0755));
    SYS(mkdirat(s.dfd, "dst2/subdir", 0755));
    REQUIRE_ERRNO(renameat(s.dfd, "src", s.dfd, "dst2"), ENOTEMPTY, EEXIST);
    CHECK(names_at(s.dfd, "src") == with_dots({"a"}));
    CHECK(names_at(s.dfd, "dst") == with_dots({"b"}));
    CHECK(names_at(s.dfd, "dst2") == with_dots({"subdir"}));
}

TEST_CASE("rename of a file onto a directory fails with EISDIR and a directory onto a non-directory with ENOTDIR") {
    Scratch s;
    make_file_at(s.dfd, "file", "f");
    SYS(mkdirat(s.dfd, "dir", 0755));
    SYS(mkdirat(s.dfd, "fulldir", 0755));
    make_file_at(s.dfd, "fulldir/x", "x");
    SYS(symlinkat("dir", s.dfd, "dirlink"));
    REQUIRE_ERRNO(renameat(s.dfd, "file", s.dfd, "dir"), EISDIR);
    REQUIRE_ERRNO(renameat(s.dfd, "file", s.dfd, "fulldir"), EISDIR);
    REQUIRE_ERRNO(renameat(s.dfd, "dir", s.dfd, "file"), ENOTDIR);
    REQUIRE_ERRNO(renameat(s.dfd, "dir", s.dfd, "dirlink"), ENOTDIR);
    REQUIRE_ERRNO(renameat(s.dfd, "file", s.dfd, "newname/"), ENOTDIR);
    REQUIRE_ERRNO(renameat(s.dfd, "missing", s.dfd, "other"), ENOENT);
    REQUIRE_ERRNO(renameat(s.dfd, "file", s.dfd, "nodir/file"), ENOENT);
    REQUIRE_ERRNO(renameat(s.dfd, "file", s.dfd, "file/x"), ENOTDIR);
    CHECK(read_file_at(s.dfd, "file") == "f");
    CHECK(S_ISDIR(lstat_at(s.dfd, "dir").st_mode));
    CHECK(S_ISLNK(lstat_at(s.dfd, "dirlink").st_mode));
    CHECK(names_at(s.dfd, "fulldir") == with_dots({"x"}));
    CHECK(names_at(s.dfd, ".") == with_dots({"file", "dir", "fulldir", "dirlink"}));
}

TEST_CASE("rename of a directory with contents to another parent carries its contents") {
    Scratch s;
    SYS(mkdirat(s.dfd, "a", 0755));
    SYS(mkdirat(s.dfd, "b", 0755));
    SYS(mkdirat(s.dfd, "a/tree", 0750));
    make_file_at(s.dfd, "a/tree/f1", "one");
    SYS(mkdirat(s.dfd, "a/tree/sub", 0755));
    make_file_at(s.dfd, "a/tree/sub/f2", "two");
    SYS(mkdirat(s.dfd, "a/tree/sub/deeper", 0755));
    make_file_at(s.dfd, "a/tree/sub/deeper/f3", std::string(100000, '3'));
    SYS(symlinkat("f1", s.dfd, "a/tree/link"));
    SYS(setxattr((s / "a/tree/f1").c_str(), "user.moved", "yes", 3, 0));
    const ino_t tree_ino = lstat_at(s.dfd, "a/tree").st_ino;
    const ino_t f3_ino = lstat_at(s.dfd, "a/tree/sub/deeper/f3").st_ino;
    // A descriptor inside the tree keeps working across the move.
    Fd deep{SYS(openat(s.dfd, "a/tree/sub/deeper", O_RDONLY | O_DIRECTORY | O_CLOEXEC))};

    SYS(renameat(s.dfd, "a/tree", s.dfd, "b/moved"));
    CHECK(names_at(s.dfd, "a") == with_dots({}));
    CHECK(names_at(s.dfd, "b") == with_dots({"moved"}));
    CHECK(lstat_at(s.dfd, "b/moved").st_ino == tree_ino);
    CHECK((lstat_at(s.dfd, "b/moved").st_mode & 07777) == 0750);
    CHECK(names_at(s.dfd, "b/moved") == with_dots({"f1", "sub", "link"}));
    CHECK(read_file_at(s.dfd, "b/moved/f1") == "one");
    CHECK(read_file_at(s.dfd, "b/moved/sub/f2") == "two");
    CHECK(read_file_at(s.dfd, "b/moved/sub/deeper/f3") == std::string(100000, '3'));
    CHECK(lstat_at(s.dfd, "b/moved/sub/deeper/f3").st_ino == f3_ino);
    CHECK(read_file_at(s.dfd, "b/moved/link") == "one");
    char v[8];
    CHECK(SYS(getxattr((s / "b/moved/f1").c_str(), "user.moved", v, sizeof v)) == 3);
    CHECK(read_file_at(deep, "f3").size() == 100000);
    // ".." of the moved directory is its new parent.
    CHECK(lstat_at(s.dfd, "b/moved/..").st_ino == lstat_at(s.dfd, "b").st_ino);
    CHECK(lstat_at(deep, "../../..").st_ino == lstat_at(s.dfd, "b").st_ino);
    check_dir_nlink(s.dfd, "a", 0);
    check_dir_nlink(s.dfd, "b", 1);
    // New files in the moved tree land in the right place.
    make_file_at(s.dfd, "b/moved/sub/new", "new");
    CHECK(read_file_at(deep, "../new") == "new");

    // Moving into its own subtree is EINVAL.
    REQUIRE_ERRNO(renameat(s.dfd, "b/moved", s.dfd, "b/moved/sub/loop"), EINVAL);
    REQUIRE_ERRNO(renameat(s.dfd, "b", s.dfd, "b/moved/sub/deeper/loop"), EINVAL);

    // And back again, under another name.
    SYS(renameat(s.dfd, "b/moved", s.dfd, "a/back"));
    CHECK(read_file_at(s.dfd, "a/back/sub/deeper/f3").size() == 100000);
    CHECK(read_file_at(s.dfd, "a/back/sub/new") == "new");
    CHECK(names_at(s.dfd, "b") == with_dots({}));
}

TEST_CASE("RENAME_NOREPLACE refuses to overwrite with EEXIST and otherwise renames") {
    Scratch s;
    make_file_at(s.dfd, "a", "A");
    make_file_at(s.dfd, "b", "B");
    SYS(mkdirat(s.dfd, "d", 0755));
    REQUIRE_ERRNO(renameat2(s.dfd, "a", s.dfd, "b", RENAME_NOREPLACE), EEXIST);
    REQUIRE_ERRNO(renameat2(s.dfd, "a", s.dfd, "d", RENAME_NOREPLACE), EEXIST);
    REQUIRE_ERRNO(renameat2(s.dfd, "d", s.dfd, "a", RENAME_NOREPLACE), EEXIST);
    CHECK(read_file_at(s.dfd, "a") == "A");
    CHECK(read_file_at(s.dfd, "b") == "B");
    SYS(renameat2(s.dfd, "a", s.dfd, "c", RENAME_NOREPLACE));
    CHECK_FALSE(exists_at(s.dfd, "a"));
    CHECK(read_file_at(s.dfd, "c") == "A");
    SYS(renameat2(s.dfd, "d", s.dfd, "d2", RENAME_NOREPLACE));
    CHECK(names_at(s.dfd, ".") == with_dots({"b", "c", "d2"}));
    REQUIRE_ERRNO(renameat2(s.dfd, "missing", s.dfd, "x", RENAME_NOREPLACE), ENOENT);
}

TEST_CASE("RENAME_EXCHANGE swaps two files") {
    Scratch s;
    make_file_at(s.dfd, "a", "content of a");
    make_file_at(s.dfd, "b", "bbb");
    const ino_t ia = lstat_at(s.dfd, "a").st_ino, ib = lstat_at(s.dfd, "b").st_ino;
    SYS(renameat2(s.dfd, "a", s.dfd, "b", RENAME_EXCHANGE));
    CHECK(read_file_at(s.dfd, "a") == "bbb");
    CHECK(read_file_at(s.dfd, "b") == "content of a");
    CHECK(lstat_at(s.dfd, "a").st_ino == ib);
    CHECK(lstat_at(s.dfd, "b").st_ino == ia);
    CHECK(names_at(s.dfd, ".") == with_dots({"a", "b"}));
    REQUIRE_ERRNO(renameat2(s.dfd, "a", s.dfd, "missing", RENAME_EXCHANGE), ENOENT);
    REQUIRE_ERRNO(renameat2(s.dfd, "missing", s.dfd, "a", RENAME_EXCHANGE), ENOENT);
    REQUIRE_ERRNO(renameat2(s.dfd, "a", s.dfd, "b", RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
    CHECK(read_file_at(s.dfd, "a") == "bbb");
}

TEST_CASE("RENAME_EXCHANGE swaps a file and a directory, also across parents") {
    Scratch s;
    SYS(mkdirat(s.dfd, "p1", 0755));
    SYS(mkdirat(s.dfd, "p2", 0755));
    make_file_at(s.dfd, "p1/f", "file data");
    SYS(mkdirat(s.dfd, "p2/d", 0755));
    make_file_at(s.dfd, "p2/d/inner", "inner data");
    SYS(renameat2(s.dfd, "p1/f", s.dfd, "p2/d", RENAME_EXCHANGE));
    CHECK(S_ISDIR(lstat_at(s.dfd, "p1/f").st_mode));
    CHECK(S_ISREG(lstat_at(s.dfd, "p2/d").st_mode));
    CHECK(read_file_at(s.dfd, "p1/f/inner") == "inner data");
    CHECK(read_file_at(s.dfd, "p2/d") == "file data");
    CHECK(lstat_at(s.dfd, "p1/f/..").st_ino == lstat_at(s.dfd, "p1").st_ino);
    check_dir_nlink(s.dfd, "p1", 1);
    check_dir_nlink(s.dfd, "p2", 0);

    // Same parent, directory and file.
    SYS(renameat2(s.dfd, "p1/f", s.dfd, "p2/d", RENAME_EXCHANGE));
    CHECK(read_file_at(s.dfd, "p1/f") == "file data");
    CHECK(read_file_at(s.dfd, "p2/d/inner") == "inner data");
    make_file_at(s.dfd, "p2/g", "g");
    SYS(renameat2(s.dfd, "p2/d", s.dfd, "p2/g", RENAME_EXCHANGE));
    CHECK(read_file_at(s.dfd, "p2/g/inner") == "inner data");
    CHECK(read_file_at(s.dfd, "p2/d") == "g");
}

TEST_CASE("rename onto itself or onto another link of the same inode is a no-op") {
    Scratch s;
    make_file_at(s.dfd, "f", "same");
    SYS(mkdirat(s.dfd, "d", 0755));
    make_file_at(s.dfd, "d/x", "x");
    SYS(renameat(s.dfd, "f", s.dfd, "f"));
    CHECK(read_file_at(s.dfd, "f") == "same");
    SYS(renameat(s.dfd, "d", s.dfd, "d"));
    CHECK(names_at(s.dfd, "d") == with_dots({"x"}));
    SYS(linkat(s.dfd, "f", s.dfd, "g", 0));
    SYS(renameat(s.dfd, "f", s.dfd, "g"));
    // POSIX: both names remain.
    CHECK(names_at(s.dfd, ".") == with_dots({"f", "g", "d"}));
    CHECK(lstat_at(s.dfd, "f").st_nlink == 2);
    CHECK(read_file_at(s.dfd, "g") == "same");
}

// ============================================================ hard links ===

TEST_CASE("hard links share the inode, its content and its link count") {
    Scratch s;
    make_file_at(s.dfd, "f", "shared");
    Fd fd{SYS(openat(s.dfd, "f", O_RDWR | O_CLOEXEC))};
    SYS(linkat(s.dfd, "f", s.dfd, "g", 0));
    struct stat sf = lstat_at(s.dfd, "f"), sg = lstat_at(s.dfd, "g");
    CHECK(sf.st_ino == sg.st_ino);
    CHECK(sf.st_dev == sg.st_dev);
    CHECK(sf.st_nlink == 2);
    CHECK(sg.st_nlink == 2);
    CHECK(fstat_fd(fd).st_nlink == 2);

    SYS(mkdirat(s.dfd, "sub", 0755));
    SYS(link((s / "g").c_str(), (s / "sub/h").c_str()));
    CHECK(lstat_at(s.dfd, "f").st_nlink == 3);
    CHECK(lstat_at(s.dfd, "sub/h").st_ino == sf.st_ino);

    // Content and metadata are shared.
    pwrite_all(fd, " content", 6);
    CHECK(read_file_at(s.dfd, "g") == "shared content");
    CHECK(read_file_at(s.dfd, "sub/h") == "shared content");
    {
        Fd gfd{SYS(openat(s.dfd, "g", O_WRONLY | O_APPEND | O_CLOEXEC))};
        write_all(gfd, "!");
    }
    CHECK(pread_str(fd, 100, 0) == "shared content!");
    SYS(fchmodat(s.dfd, "g", 0600, 0));
    CHECK((lstat_at(s.dfd, "f").st_mode & 07777) == 0600);

    REQUIRE_ERRNO(linkat(s.dfd, "f", s.dfd, "g", 0), EEXIST);
    REQUIRE_ERRNO(linkat(s.dfd, "sub", s.dfd, "sublink", 0), EPERM);
    REQUIRE_ERRNO(linkat(s.dfd, "missing", s.dfd, "x", 0), ENOENT);
    REQUIRE_ERRNO(linkat(s.dfd, "f", s.dfd, "nodir/x", 0), ENOENT);

    SYS(unlinkat(s.dfd, "f", 0));
    CHECK(lstat_at(s.dfd, "g").st_nlink == 2);
    CHECK(fstat_fd(fd).st_nlink == 2);
    CHECK(read_file_at(s.dfd, "g") == "shared content!");
    SYS(unlinkat(s.dfd, "sub/h", 0));
    CHECK(lstat_at(s.dfd, "g").st_nlink == 1);
    CHECK(lstat_at(s.dfd, "g").st_ino == sf.st_ino);
    CHECK(read_file_at(s.dfd, "g") == "shared content!");

    // linkat on a symlink links the symlink itself unless AT_SYMLINK_FOLLOW.
    SYS(symlinkat("g", s.dfd, "sym"));
    SYS(linkat(s.dfd, "sym", s.dfd, "sym2", 0));
    CHECK(S_ISLNK(lstat_at(s.dfd, "sym2").st_mode));
    CHECK(lstat_at(s.dfd, "sym2").st_ino == lstat_at(s.dfd, "sym").st_ino);
    CHECK(lstat_at(s.dfd, "sym").st_nlink == 2);
    SYS(linkat(s.dfd, "sym", s.dfd, "followed", AT_SYMLINK_FOLLOW));
    CHECK(S_ISREG(lstat_at(s.dfd, "followed").st_mode));
    CHECK(lstat_at(s.dfd, "followed").st_ino == sf.st_ino);
    CHECK(lstat_at(s.dfd, "g").st_nlink == 2);
}

TEST_CASE("an unlinked open file stays readable and writable through its descriptor") {
    Scratch s;
    make_file_at(s.dfd, "f", "before");
    Fd fd{SYS(openat(s.dfd, "f", O_RDWR | O_CLOEXEC))};
    Fd fd2{SYS(openat(s.dfd, "f", O_RDONLY | O_CLOEXEC))};
    const ino_t ino = fstat_fd(fd).st_ino;
    SYS(unlinkat(s.dfd, "f", 0));
    CHECK_FALSE(exists_at(s.dfd, "f"));
    struct stat st = fstat_fd(fd);
    CHECK(st.st_nlink == 0);
    CHECK(st.st_ino == ino);
    CHECK(st.st_size == 6);
    // No hidden replacement name may appear in the directory.
    CHECK(names_at(s.dfd, ".") == with_dots({}));

    CHECK(pread_str(fd, 100, 0) == "before");
    pwrite_all(fd, "+after", 6);
    CHECK(fstat_fd(fd).st_size == 12);
    CHECK(pread_str(fd2, 100, 0) == "before+after");
    SYS(ftruncate(fd, 20));
    CHECK(fstat_fd(fd2).st_size == 20);
    SYS(fsync(fd));
    SYS(fchmod(fd, 0600));
    CHECK((fstat_fd(fd).st_mode & 07777) == 0600);

    // A new file with the same name is a different inode.
    make_file_at(s.dfd, "f", "new");
    CHECK(lstat_at(s.dfd, "f").st_ino != ino);
    CHECK(read_file_at(s.dfd, "f") == "new");
    CHECK(pread_str(fd, 12, 0) == "before+after");
    CHECK(fstat_fd(fd).st_nlink == 0);
    CHECK(names_at(s.dfd, ".") == with_dots({"f"}));
}

// ============================================================== readdir ====

// An open directory stream, closed at scope end.
struct DirStream {
    DIR* d;
    explicit DirStream(const std::string& path) : d(opendir(path.c_str())) { REQUIRE(d != nullptr); }
    ~DirStream() { closedir(d); }
    DirStream(const DirStream&) = delete;
    DirStream& operator=(const DirStream&) = delete;
    // Every entry from here on, with the telldir position it was read at.
    std::vector<std::pair<long, std::string>> positions() {
        std::vector<std::pair<long, std::string>> order;
        for (;;) {
            long pos = telldir(d);
            struct dirent* de = readdir(d);
            if (!de) return order;
            order.emplace_back(pos, de->d_name);
        }
    }
};

TEST_CASE("readdir lists . and .. and every entry once with consistent d_ino and d_type") {
    Scratch s;
    make_file_at(s.dfd, "file", "x");
    SYS(mkdirat(s.dfd, "dir", 0755));
    SYS(symlinkat("file", s.dfd, "link"));
    SYS(mkfifoat(s.dfd, "fifo", 0644));
    std::vector<Ent> ents = list_dir_at(s.dfd, ".");
    CHECK(names_of(ents) == with_dots({"file", "dir", "link", "fifo"}));
    for (const auto& e : ents) {
        INFO("entry " << e.name << " d_ino " << e.ino << " d_type " << int(e.type));
        struct stat st = lstat_at(s.dfd, e.name);
        if (e.name != "..") CHECK(e.ino == st.st_ino);
        if (e.type != DT_UNKNOWN) CHECK(mode_t(DTTOIF(e.type)) == (st.st_mode & S_IFMT));
    }
    CHECK(names_at(s.dfd, "dir") == with_dots({}));
}

TEST_CASE("a directory with 2000 entries lists all of them exactly once") {
    Scratch s;
    constexpr int N = 2000;
    SYS(mkdirat(s.dfd, "big", 0755));
    Fd big{SYS(openat(s.dfd, "big", O_RDONLY | O_DIRECTORY | O_CLOEXEC))};
    std::map<std::string, ino_t> made;
    for (int i = 0; i < N; ++i) {
        char name[64];
        snprintf(name, sizeof name, "entry-%05d-with-a-reasonably-long-name", i);
        Fd fd{SYS(openat(big, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644))};
        made[name] = fstat_fd(fd).st_ino;
    }

    // With readdir(3).
    std::vector<Ent> ents = list_dir_fd(big);
    std::map<std::string, int> seen;
    for (const auto& e : ents) seen[e.name]++;
    CHECK(ents.size() == size_t(N + 2));
    CHECK(seen["."] == 1);
    CHECK(seen[".."] == 1);
    int wrong_count = 0, unknown = 0, bad_ino = 0;
    for (const auto& [name, ino] : made)
        if (seen[name] != 1) ++wrong_count;
    for (const auto& e : ents) {
        if (e.name == "." || e.name == "..") continue;
        auto it = made.find(e.name);
        if (it == made.end()) ++unknown;
        else if (it->second != e.ino) ++bad_ino;
        if (e.type != DT_UNKNOWN && e.type != DT_REG) ++bad_ino;
    }
    CHECK(wrong_count == 0);
    CHECK(unknown == 0);
    CHECK(bad_ino == 0);

    // With getdents64 and a small buffer, forcing many calls.
    std::map<std::string, int> seen2;
    SYS(lseek(big, 0, SEEK_SET));
    alignas(8) char buf[1024];
    int calls = 0;
    for (;;) {
        long n = SYS(syscall(SYS_getdents64, int(big), buf, sizeof buf));
        if (n == 0) break;
        ++calls;
        for (long off = 0; off < n;) {
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof reclen);
            REQUIRE(reclen > 0);
            seen2[std::string(buf + off + 19)]++;
            off += reclen;
        }
    }
    CHECK(calls > 10);
    CHECK(seen2 == seen);

    // Unlink every other entry; a fresh listing shows exactly the rest.
    int k = 0;
    std::multiset<std::string> expect{".", ".."};
    for (const auto& [name, ino] : made) {
        if (k++ % 2) SYS(unlinkat(big, name.c_str(), 0));
        else expect.insert(name);
    }
    CHECK(names_of(list_dir_fd(big)) == expect);
}

TEST_CASE("readdir while unlinking and creating never repeats or invents names and rewinddir shows the new state") {
    Scratch s;
    constexpr int N = 1500;
    SYS(mkdirat(s.dfd, "d", 0755));
    Fd dfd{SYS(openat(s.dfd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC))};
    auto name_of = [](const char* prefix, int i) {
        char b[64];
        snprintf(b, sizeof b, "%s-%05d-padding-padding-padding", prefix, i);
        return std::string(b);
    };
    for (int i = 0; i < N; ++i) SYS(mknodat(dfd, name_of("old", i).c_str(), S_IFREG | 0644, 0));

    DirStream stream(s / "d");
    DIR* d = stream.d;

    std::map<std::string, int> seen;
    int count = 0;
    errno = 0;
    while (struct dirent* de = readdir(d)) {
        seen[de->d_name]++;
        if (++count == 100) {
            for (int i = 0; i < N; i += 2) SYS(unlinkat(dfd, name_of("old", i).c_str(), 0));
            for (int i = 0; i < 200; ++i) SYS(mknodat(dfd, name_of("new", i).c_str(), S_IFREG | 0644, 0));
        }
        errno = 0;
    }
    CHECK(errno == 0);
    REQUIRE(count >= 100);
    // Entries that existed throughout: exactly once. Removed/added ones: at most once.
    int odd_wrong = 0, dup = 0, invented = 0;
    std::string first_missing;
    for (int i = 1; i < N; i += 2) {
        const int c = seen[name_of("old", i)];
        if (c != 1) ++odd_wrong;
        if (c == 0 && first_missing.empty()) first_missing = name_of("old", i);
    }
    INFO(count << " entries returned; first never-removed entry that was skipped: "
               << (first_missing.empty() ? std::string("none") : first_missing));
    std::set<std::string> legal{".", ".."};
    for (int i = 0; i < N; ++i) legal.insert(name_of("old", i));
    for (int i = 0; i < 200; ++i) legal.insert(name_of("new", i));
    for (const auto& [name, c] : seen) {
        if (c > 1) ++dup;
        if (!legal.count(name)) ++invented;
    }
    CHECK(odd_wrong == 0);
    CHECK(dup == 0);
    CHECK(invented == 0);
    CHECK(seen["."] == 1);
    CHECK(seen[".."] == 1);

    // After rewinddir the listing is exactly the new state.
    rewinddir(d);
    std::multiset<std::string> after;
    errno = 0;
    while (struct dirent* de = readdir(d)) {
        after.insert(de->d_name);
        errno = 0;
    }
    CHECK(errno == 0);
    std::multiset<std::string> expect{".", ".."};
    for (int i = 1; i < N; i += 2) expect.insert(name_of("old", i));
    for (int i = 0; i < 200; ++i) expect.insert(name_of("new", i));
    CHECK(after.size() == expect.size());
    CHECK(after == expect);

    // Emptying the directory and rewinding shows only . and ..
    for (const auto& n : expect)
        if (n != "." && n != "..") SYS(unlinkat(dfd, n.c_str(), 0));
    rewinddir(d);
    std::multiset<std::string> empty;
    while (struct dirent* de = readdir(d)) empty.insert(de->d_name);
    CHECK(empty == with_dots({}));
}

TEST_CASE("telldir and seekdir resume at the same entry") {
    Scratch s;
    SYS(mkdirat(s.dfd, "d", 0755));
    for (int i = 0; i < 400; ++i) make_file_at(s.dfd, "d/e" + std::to_string(i), "");
    DirStream stream(s / "d");
    DIR* d = stream.d;
    auto order = stream.positions();
    REQUIRE(order.size() == 402);
    for (size_t k : {size_t(0), size_t(1), size_t(57), size_t(200), size_t(350), order.size() - 1, size_t(3)}) {
        INFO("position index " << k);
        seekdir(d, order[k].first);
        struct dirent* de = readdir(d);
        REQUIRE(de != nullptr);
        CHECK(std::string(de->d_name) == order[k].second);
        if (k + 1 < order.size()) {
            de = readdir(d);
            REQUIRE(de != nullptr);
            CHECK(std::string(de->d_name) == order[k + 1].second);
        } else {
            CHECK(readdir(d) == nullptr);
        }
    }
}

TEST_CASE("seekdir to a position taken before entries were added and removed resumes at that entry") {
    Scratch s;
    SYS(mkdirat(s.dfd, "d", 0755));
    for (int i = 0; i < 300; ++i) make_file_at(s.dfd, "d/e" + std::to_string(i), "");
    DirStream stream(s / "d");
    DIR* d = stream.d;
    auto order = stream.positions();
    REQUIRE(order.size() == 302);
    // Others change the directory; the positions taken still name their entries.
    for (int i = 0; i < 100; ++i) make_file_at(s.dfd, "d/new" + std::to_string(i), "");
    std::set<std::string> removed;
    for (size_t k = 10; k < 300; k += 7) {
        if (order[k].second[0] != 'e') continue;
        SYS(unlinkat(s.dfd, ("d/" + order[k].second).c_str(), 0));
        removed.insert(order[k].second);
    }
    for (size_t k : {size_t(2), size_t(50), size_t(151), size_t(299)}) {
        if (removed.count(order[k].second) || order[k].second[0] != 'e') continue;
        INFO("position index " << k << " (" << order[k].second << ")");
        seekdir(d, order[k].first);
        struct dirent* de = readdir(d);
        REQUIRE(de != nullptr);
        CHECK(std::string(de->d_name) == order[k].second);
    }
}

// ====================================================== sparse / large ====

TEST_CASE("a sparse file with data at 1 GiB has holes that read as zeros") {
    Scratch s;
    Fd fd{SYS(openat(s.dfd, "sparse", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644))};
    const std::string data(4096, 'x');
    pwrite_all(fd, data, GiB);
    SYS(fsync(fd));
    struct stat st = fstat_fd(fd);
    const off_t size = GiB + 4096;
    CHECK(st.st_size == size);
    INFO("st_blocks " << st.st_blocks);
    CHECK(st.st_blocks * 512 < MiB);
    CHECK(stat_at(s.dfd, "sparse").st_size == size);

    CHECK(all_zero(pread_str(fd, 65536, 0)));
    CHECK(all_zero(pread_str(fd, 65536, 512 * MiB + 3)));
    std::string edge = pread_str(fd, 200, GiB - 100);
    REQUIRE(edge.size() == 200);
    CHECK(all_zero(std::string_view(edge).substr(0, 100)));
    CHECK(edge.substr(100) == std::string(100, 'x'));
    CHECK(pread_str(fd, 8192, GiB) == data);

    // SEEK_DATA/SEEK_HOLE: Linux allows treating everything as data, so
    // accept both precise and "whole file is data" answers.
    const off_t d0 = SYS(lseek(fd, 0, SEEK_DATA));
    CHECK(d0 >= 0);
    CHECK(d0 <= GiB);
    const off_t h0 = SYS(lseek(fd, 0, SEEK_HOLE));
    CHECK((h0 == size || (h0 >= 0 && h0 <= GiB)));
    CHECK(SYS(lseek(fd, GiB, SEEK_DATA)) == GiB);
    CHECK(SYS(lseek(fd, GiB + 100, SEEK_DATA)) == GiB + 100);
    CHECK(SYS(lseek(fd, GiB, SEEK_HOLE)) == size);
    CHECK(SYS(lseek(fd, GiB + 100, SEEK_HOLE)) == size);
    REQUIRE_ERRNO(lseek(fd, size, SEEK_DATA), ENXIO);
    REQUIRE_ERRNO(lseek(fd, size, SEEK_HOLE), ENXIO);
    REQUIRE_ERRNO(lseek(fd, size + 5000, SEEK_DATA), ENXIO);

    // Shrinking back removes the data; extending again gives zeros.
    SYS(ftruncate(fd, GiB + 10));
    CHECK(pread_str(fd, 100, GiB) == std::string(10, 'x'));
    SYS(ftruncate(fd, GiB + 4096));
    std::string tail = pread_str(fd, 8192, GiB);
    REQUIRE(tail.size() == 4096);
    CHECK(tail.substr(0, 10) == std::string(10, 'x'));
    CHECK(all_zero(std::string_view(tail).substr(10)));
}

TEST_CASE("pwrite and pread beyond 4 GiB keep exact offsets and sizes") {
    Scratch s;
    Fd fd{SYS(openat(s.dfd, "big", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644))};
    const off_t off = 5 * GiB + 123;
    const std::string msg = "beyond-the-32-bit-boundary";
    pwrite_all(fd, msg, off);
    const off_t size = off + off_t(msg.size());
    CHECK(fstat_fd(fd).st_size == size);
    CHECK(stat_at(s.dfd, "big").st_size == size);
    CHECK(pread_str(fd, 100, off) == msg);
    CHECK(pread_str(fd, 5, off - 2) == std::string(2, '\0') + msg.substr(0, 3));
    CHECK(all_zero(pread_str(fd, 4096, 4 * GiB)));
    CHECK(all_zero(pread_str(fd, 4096, off - (4 * GiB))));  // where a truncated offset would land
    CHECK(all_zero(pread_str(fd, 4096, 123)));
    CHECK(SYS(lseek(fd, 0, SEEK_END)) == size);

    // A write straddling 4 GiB.
    const std::string straddle = "0123456789ABCDEF";
    pwrite_all(fd, straddle, 4 * GiB - 8);
    CHECK(pread_str(fd, 16, 4 * GiB - 8) == straddle);
    CHECK(all_zero(pread_str(fd, 16, 0)));

    // Sequential I/O via the file offset past 4 GiB.
    CHECK(SYS(lseek(fd, off, SEEK_SET)) == off);
    char buf[64];
    CHECK(SYS(::read(fd, buf, sizeof buf)) == ssize_t(msg.size()));
    CHECK(std::string(buf, msg.size()) == msg);
    write_all(fd, "+tail");
    CHECK(fstat_fd(fd).st_size == size + 5);

    SYS(ftruncate(fd, 4 * GiB + 1));
    CHECK(fstat_fd(fd).st_size == 4 * GiB + 1);
    CHECK(pread_str(fd, 16, 4 * GiB - 8) == straddle.substr(0, 9));
    SYS(ftruncate(fd, 6 * GiB));
    CHECK(stat_at(s.dfd, "big").st_size == 6 * GiB);
    CHECK(all_zero(pread_str(fd, 4096, off)));
}

TEST_CASE("data not yet synced counts: SEEK_DATA, SEEK_HOLE and st_blocks see it") {
    // Tools that copy sparse files (cp, tar) trust these; a file system that
    // caches writes must not report holes where unsynced data is.
    Scratch s;
    Fd fd{SYS(openat(s.dfd, "unsynced", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644))};
    const std::string data(65536, 'd');
    pwrite_all(fd, data, MiB);
    CHECK(fstat_fd(fd).st_size == MiB + 65536);
    const off_t d = SYS(lseek(fd, 0, SEEK_DATA));
    CHECK(d >= 0);
    CHECK(d <= MiB);
    CHECK(SYS(lseek(fd, MiB, SEEK_HOLE)) == MiB + 65536);
    CHECK(pread_str(fd, 65536, MiB) == data);
    fd.reset();
    // After close, du sees the space.
    CHECK(stat_at(s.dfd, "unsynced").st_blocks * 512 >= 65536);
}

TEST_CASE("fallocate allocates space, honours KEEP_SIZE and punches holes") {
    Scratch s;
    auto fallocate_or_fail = [](int fd, int mode, off_t off, off_t len, const char* what) {
        errno = 0;
        int r = fallocate(fd, mode, off, len);
        int e = errno;
        if (r != 0 && e == EOPNOTSUPP) FAIL("fallocate(" << what << ") is not supported here (EOPNOTSUPP); ext4 supports it");
        INFO("fallocate(" << what << ") failed with " << errname(e));
        REQUIRE(r == 0);
    };
    Fd fd{SYS(openat(s.dfd, "alloc", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644))};
    fallocate_or_fail(fd, 0, 0, MiB, "mode 0");
    SYS(fsync(fd));
    struct stat st = fstat_fd(fd);
    CHECK(st.st_size == MiB);
    CHECK(st.st_blocks * 512 >= MiB);
    CHECK(all_zero(pread_str(fd, size_t(MiB), 0)));

    fallocate_or_fail(fd, FALLOC_FL_KEEP_SIZE, MiB, MiB, "FALLOC_FL_KEEP_SIZE");
    SYS(fsync(fd));
    st = fstat_fd(fd);
    CHECK(st.st_size == MiB);
    CHECK(st.st_blocks * 512 >= 2 * MiB);
    CHECK(pread_str(fd, 100, MiB).empty());  // still EOF

    // Mode 0 beyond EOF extends the file with zeros.
    fallocate_or_fail(fd, 0, 3 * MiB, 4096, "mode 0 beyond EOF");
    CHECK(fstat_fd(fd).st_size == 3 * MiB + 4096);
    CHECK(all_zero(pread_str(fd, size_t(2 * MiB + 4096), MiB)));
    // Data written into the preallocated range reads back.
    pwrite_all(fd, "prealloc", 100);
    CHECK(pread_str(fd, 8, 100) == "prealloc");

    // Punch a hole into real data.
    Fd p{SYS(openat(s.dfd, "punch", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644))};
    std::string data(size_t(3 * MiB), '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = char('a' + i % 23);
    pwrite_all(p, data, 0);
    SYS(fsync(p));
    const blkcnt_t before = fstat_fd(p).st_blocks;
    fallocate_or_fail(p, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MiB, MiB, "PUNCH_HOLE|KEEP_SIZE");
    SYS(fsync(p));
    st = fstat_fd(p);
    CHECK(st.st_size == 3 * MiB);
    INFO("st_blocks before punch " << before << ", after " << st.st_blocks);
    CHECK(st.st_blocks < before);
    std::string back = pread_str(p, data.size(), 0);
    REQUIRE(back.size() == data.size());
    CHECK(back.compare(0, size_t(MiB), data, 0, size_t(MiB)) == 0);
    CHECK(all_zero(std::string_view(back).substr(size_t(MiB), size_t(MiB))));
    CHECK(back.compare(size_t(2 * MiB), size_t(MiB), data, size_t(2 * MiB), size_t(MiB)) == 0);
    const off_t h = SYS(lseek(p, 0, SEEK_HOLE));
    CHECK((h == MiB || h == 3 * MiB));
    const off_t d = SYS(lseek(p, MiB, SEEK_DATA));
    CHECK((d == MiB || d == 2 * MiB));

    // An unaligned punch zeroes exactly the range.
    fallocate_or_fail(p, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 5000, "unaligned PUNCH_HOLE");
    back = pread_str(p, 8192, 0);
    CHECK(back.compare(0, 100, data, 0, 100) == 0);
    CHECK(all_zero(std::string_view(back).substr(100, 5000)));
    CHECK(back.compare(5100, 8192 - 5100, data, 5100, 8192 - 5100) == 0);
    CHECK(fstat_fd(p).st_size == 3 * MiB);

    REQUIRE_ERRNO(fallocate(p, FALLOC_FL_PUNCH_HOLE, 0, 4096), EOPNOTSUPP);  // needs KEEP_SIZE
    REQUIRE_ERRNO(fallocate(p, 0, 0, 0), EINVAL);
    Fd ro{SYS(openat(s.dfd, "punch", O_RDONLY | O_CLOEXEC))};
    REQUIRE_ERRNO(fallocate(ro, 0, 0, 4096), EBADF);
}

TEST_CASE("O_TMPFILE either makes an anonymous file that linkat publishes or fails with EOPNOTSUPP or EISDIR") {
    Scratch s;
    REQUIRE_ERRNO(openat(s.dfd, ".", O_TMPFILE | O_RDONLY | O_CLOEXEC, 0600), EINVAL);
    errno = 0;
    int raw = openat(s.dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (raw < 0) {
        const int e = errno;
        INFO("O_TMPFILE failed with " << errname(e));
        REQUIRE((e == EOPNOTSUPP || e == EISDIR));
        WARN("O_TMPFILE is not supported here (" << errname(e) << "); accepted as a clean failure");
        CHECK(names_at(s.dfd, ".") == with_dots({}));
        return;
    }
    Fd fd{raw};
    struct stat st = fstat_fd(fd);
    CHECK(S_ISREG(st.st_mode));
    CHECK(st.st_nlink == 0);
    CHECK((st.st_mode & 07777) == 0600);
    write_all(fd, "anonymous data");
    CHECK(pread_str(fd, 100, 0) == "anonymous data");
    CHECK(names_at(s.dfd, ".") == with_dots({}));

    const std::string proc = "/proc/self/fd/" + std::to_string(raw);
    SYS(linkat(AT_FDCWD, proc.c_str(), s.dfd, "published", AT_SYMLINK_FOLLOW));
    CHECK(names_at(s.dfd, ".") == with_dots({"published"}));
    struct stat pub = lstat_at(s.dfd, "published");
    CHECK(pub.st_ino == st.st_ino);
    CHECK(pub.st_nlink == 1);
    CHECK(fstat_fd(fd).st_nlink == 1);
    CHECK(read_file_at(s.dfd, "published") == "anonymous data");
    write_all(fd, "+more");
    CHECK(read_file_at(s.dfd, "published") == "anonymous data+more");

    // O_EXCL forbids linking it in later.
    Fd ex{SYS(openat(s.dfd, ".", O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0600))};
    const std::string proc2 = "/proc/self/fd/" + std::to_string(int(ex));
    REQUIRE_ERRNO(linkat(AT_FDCWD, proc2.c_str(), s.dfd, "never", AT_SYMLINK_FOLLOW), ENOENT);
    CHECK(names_at(s.dfd, ".") == with_dots({"published"}));
}

// =============================================================== xattrs ====

TEST_CASE("user xattrs can be set, listed, read and removed, with exact errno on misuse") {
    Scratch s;
    make_file_at(s.dfd, "f", "x");
    const std::string f = s / "f";
    errno = 0;
    if (setxattr(f.c_str(), "user.test", "value1", 6, 0) != 0) {
        const int e = errno;
        if (e == EOPNOTSUPP) FAIL("user.* xattrs are not supported here (EOPNOTSUPP); ext4 supports them");
        FAIL("setxattr user.test failed with " << errname(e));
    }
    char buf[512];
    CHECK(SYS(getxattr(f.c_str(), "user.test", nullptr, 0)) == 6);
    ssize_t n = SYS(getxattr(f.c_str(), "user.test", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "value1");
    REQUIRE_ERRNO(getxattr(f.c_str(), "user.test", buf, 3), ERANGE);
    std::vector<std::string> names = xattr_names(f);
    CHECK(count_of(names, std::string("user.test")) == 1);
    REQUIRE_ERRNO(listxattr(f.c_str(), buf, 1), ERANGE);

    REQUIRE_ERRNO(setxattr(f.c_str(), "user.test", "other", 5, XATTR_CREATE), EEXIST);
    n = SYS(getxattr(f.c_str(), "user.test", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "value1");
    SYS(setxattr(f.c_str(), "user.test", "value-two", 9, XATTR_REPLACE));
    n = SYS(getxattr(f.c_str(), "user.test", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "value-two");
    SYS(setxattr(f.c_str(), "user.test", "v3", 2, 0));  // plain set replaces too
    n = SYS(getxattr(f.c_str(), "user.test", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "v3");

    REQUIRE_ERRNO(setxattr(f.c_str(), "user.missing", "x", 1, XATTR_REPLACE), ENODATA);
    REQUIRE_ERRNO(getxattr(f.c_str(), "user.missing", buf, sizeof buf), ENODATA);
    REQUIRE_ERRNO(getxattr(f.c_str(), "user.missing", nullptr, 0), ENODATA);
    REQUIRE_ERRNO(removexattr(f.c_str(), "user.missing"), ENODATA);
    REQUIRE_ERRNO(setxattr(f.c_str(), "nonamespace", "x", 1, 0), EOPNOTSUPP);
    REQUIRE_ERRNO(getxattr((s / "missing").c_str(), "user.test", buf, sizeof buf), ENOENT);

    // Binary values (with NULs) and empty values round-trip.
    std::string bin(256, '\0');
    for (int i = 0; i < 256; ++i) bin[size_t(i)] = char(i);
    SYS(setxattr(f.c_str(), "user.binary", bin.data(), bin.size(), XATTR_CREATE));
    n = SYS(getxattr(f.c_str(), "user.binary", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == bin);
    SYS(setxattr(f.c_str(), "user.empty", "", 0, 0));
    CHECK(SYS(getxattr(f.c_str(), "user.empty", buf, sizeof buf)) == 0);
    const std::string big(2000, 'V');
    SYS(setxattr(f.c_str(), "user.big", big.data(), big.size(), 0));
    std::vector<char> bigbuf(4096);
    n = SYS(getxattr(f.c_str(), "user.big", bigbuf.data(), bigbuf.size()));
    CHECK(std::string(bigbuf.data(), size_t(n)) == big);

    names = xattr_names(f);
    for (const char* want : {"user.test", "user.binary", "user.empty", "user.big"}) {
        INFO("looking for " << want);
        CHECK(count_of(names, std::string(want)) == 1);
    }

    SYS(removexattr(f.c_str(), "user.test"));
    REQUIRE_ERRNO(getxattr(f.c_str(), "user.test", buf, sizeof buf), ENODATA);
    REQUIRE_ERRNO(removexattr(f.c_str(), "user.test"), ENODATA);
    names = xattr_names(f);
    CHECK(count_of(names, std::string("user.test")) == 0);
    CHECK(count_of(names, std::string("user.binary")) == 1);

    // Descriptor variants, through a read-only descriptor (owner may write xattrs).
    Fd ro{SYS(openat(s.dfd, "f", O_RDONLY | O_CLOEXEC))};
    SYS(fsetxattr(ro, "user.viafd", "fd", 2, XATTR_CREATE));
    n = SYS(fgetxattr(ro, "user.viafd", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "fd");
    n = SYS(getxattr(f.c_str(), "user.viafd", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "fd");
    n = SYS(flistxattr(ro, buf, sizeof buf));
    CHECK(count_of(split_xattr_list(buf, n), std::string("user.viafd")) == 1);
    SYS(fremovexattr(ro, "user.viafd"));
    REQUIRE_ERRNO(fgetxattr(ro, "user.viafd", buf, sizeof buf), ENODATA);

    // Directories carry user xattrs; symlinks refuse them.
    SYS(mkdirat(s.dfd, "d", 0755));
    SYS(setxattr((s / "d").c_str(), "user.dir", "D", 1, 0));
    n = SYS(getxattr((s / "d").c_str(), "user.dir", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "D");
    SYS(symlinkat("f", s.dfd, "link"));
    REQUIRE_ERRNO(lsetxattr((s / "link").c_str(), "user.x", "x", 1, 0), EPERM);
    REQUIRE_ERRNO(lgetxattr((s / "link").c_str(), "user.x", buf, sizeof buf), ENODATA);
    // Through the symlink, the target's attributes are seen.
    n = SYS(getxattr((s / "link").c_str(), "user.binary", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == bin);
}

TEST_CASE("a file capability set on a written new file reads back") {
    // The kernel asks for security.capability before the first write of a
    // file; an answer cached from then must not hide one set afterwards.
    Scratch s;
    Fd fd{SYS(openat(s.dfd, "capfile", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0755))};
    pwrite_all(fd, "x", 0);
    const uint32_t cap[5] = {0x02000000, 1u << 10, 0, 0, 0};  // VFS_CAP_REVISION_2: CAP_NET_BIND_SERVICE
    if (fsetxattr(fd, "security.capability", cap, sizeof cap, 0) != 0) {
        INFO("setting it failed: " << std::strerror(errno));
        CHECK((errno == EPERM || errno == EOPNOTSUPP));  // not privileged to, here
        return;
    }
    char buf[64];
    CHECK(fgetxattr(fd, "security.capability", buf, sizeof buf) > 0);
    CHECK(getxattr((s.path + "/capfile").c_str(), "security.capability", buf, sizeof buf) > 0);
}

TEST_CASE("xattrs belong to the inode and follow it across rename and hard links") {
    Scratch s;
    make_file_at(s.dfd, "f", "x");
    SYS(setxattr((s / "f").c_str(), "user.test", "hello", 5, 0));
    SYS(linkat(s.dfd, "f", s.dfd, "g", 0));
    char buf[64];
    ssize_t n = SYS(getxattr((s / "g").c_str(), "user.test", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "hello");
    SYS(renameat(s.dfd, "g", s.dfd, "h"));
    n = SYS(getxattr((s / "h").c_str(), "user.test", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "hello");
    SYS(setxattr((s / "h").c_str(), "user.test", "changed", 7, XATTR_REPLACE));
    n = SYS(getxattr((s / "f").c_str(), "user.test", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "changed");
    SYS(unlinkat(s.dfd, "f", 0));
    n = SYS(getxattr((s / "h").c_str(), "user.test", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "changed");
    // Writing data and changing mode do not drop user xattrs.
    {
        Fd fd{SYS(openat(s.dfd, "h", O_WRONLY | O_TRUNC | O_CLOEXEC))};
        write_all(fd, "new data");
    }
    SYS(fchmodat(s.dfd, "h", 0600, 0));
    n = SYS(getxattr((s / "h").c_str(), "user.test", buf, sizeof buf));
    CHECK(std::string(buf, size_t(n)) == "changed");
    // A replacement file under the same name starts without xattrs.
    make_file_at(s.dfd, "f", "fresh");
    REQUIRE_ERRNO(getxattr((s / "f").c_str(), "user.test", buf, sizeof buf), ENODATA);
}

// ========================================================= times, modes ====

TEST_CASE("utimensat sets explicit times with nanosecond precision and honours UTIME_NOW and UTIME_OMIT") {
    Scratch s;
    make_file_at(s.dfd, "f", "x");
    const timespec ts[2] = {{1000000000, 123456789}, {1500000000, 987654321}};
    SYS(utimensat(s.dfd, "f", ts, 0));
    struct stat st = lstat_at(s.dfd, "f");
    INFO("atime " << ts_str(st.st_atim) << " mtime " << ts_str(st.st_mtim));
    CHECK(ts_eq(st.st_atim, ts[0]));
    CHECK(ts_eq(st.st_mtim, ts[1]));

    const timespec omit_atime[2] = {{0, UTIME_OMIT}, {1600000000, 1}};
    SYS(utimensat(s.dfd, "f", omit_atime, 0));
    st = lstat_at(s.dfd, "f");
    CHECK(ts_eq(st.st_atim, ts[0]));
    CHECK(ts_eq(st.st_mtim, omit_atime[1]));

    const time_t before = now_sec();
    const timespec now_mtime[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    SYS(utimensat(s.dfd, "f", now_mtime, 0));
    const time_t after = now_sec();
    st = lstat_at(s.dfd, "f");
    CHECK(ts_eq(st.st_atim, ts[0]));
    CHECK(st.st_mtim.tv_sec >= before - 2);
    CHECK(st.st_mtim.tv_sec <= after + 2);
    CHECK(st.st_ctim.tv_sec >= before - 2);

    SYS(utimensat(s.dfd, "f", nullptr, 0));
    st = lstat_at(s.dfd, "f");
    CHECK(st.st_atim.tv_sec >= before - 2);
    CHECK(st.st_atim.tv_sec <= now_sec() + 2);

    // Both omitted: nothing changes.
    const timespec both_omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    SYS(utimensat(s.dfd, "f", ts, 0));
    SYS(utimensat(s.dfd, "f", both_omit, 0));
    st = lstat_at(s.dfd, "f");
    CHECK(ts_eq(st.st_atim, ts[0]));
    CHECK(ts_eq(st.st_mtim, ts[1]));

    // Through a descriptor, and past 2038.
    Fd fd{SYS(openat(s.dfd, "f", O_RDONLY | O_CLOEXEC))};
    const timespec future[2] = {{2147483648LL, 5}, {4102444800LL, 999999999}};
    SYS(futimens(fd, future));
    st = fstat_fd(fd);
    INFO("future atime " << ts_str(st.st_atim) << " mtime " << ts_str(st.st_mtim));
    CHECK(ts_eq(st.st_atim, future[0]));
    CHECK(ts_eq(st.st_mtim, future[1]));
    CHECK(ts_eq(lstat_at(s.dfd, "f").st_mtim, future[1]));

    // AT_SYMLINK_NOFOLLOW changes the link, not its target.
    SYS(symlinkat("f", s.dfd, "link"));
    const timespec lt[2] = {{1100000000, 42}, {1200000000, 43}};
    SYS(utimensat(s.dfd, "link", lt, AT_SYMLINK_NOFOLLOW));
    st = lstat_at(s.dfd, "link");
    CHECK(ts_eq(st.st_atim, lt[0]));
    CHECK(ts_eq(st.st_mtim, lt[1]));
    CHECK(ts_eq(lstat_at(s.dfd, "f").st_mtim, future[1]));
    // Without it, the target changes.
    SYS(utimensat(s.dfd, "link", ts, 0));
    CHECK(ts_eq(lstat_at(s.dfd, "f").st_mtim, ts[1]));
    CHECK(ts_eq(lstat_at(s.dfd, "link").st_mtim, lt[1]));

    // Directories too.
    SYS(mkdirat(s.dfd, "d", 0755));
    SYS(utimensat(s.dfd, "d", ts, 0));
    CHECK(ts_eq(lstat_at(s.dfd, "d").st_mtim, ts[1]));

    const timespec bad[2] = {{0, 1000000000}, {0, 0}};
    REQUIRE_ERRNO(utimensat(s.dfd, "f", bad, 0), EINVAL);
    REQUIRE_ERRNO(utimensat(s.dfd, "missing", ts, 0), ENOENT);
}

TEST_CASE("data and metadata changes update mtime and ctime") {
    Scratch s;
    make_file_at(s.dfd, "f", "x");
    const timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    Fd fd{SYS(openat(s.dfd, "f", O_RDWR | O_CLOEXEC))};

    SYS(futimens(fd, old));
    timespec c0 = fstat_fd(fd).st_ctim;
    tick();
    write_all(fd, "data");
    struct stat st = fstat_fd(fd);
    CHECK(st.st_mtim.tv_sec > 1000000000 + 1000);
    CHECK(ts_gt(st.st_ctim, c0));
    CHECK(lstat_at(s.dfd, "f").st_mtim.tv_sec > 1000000000 + 1000);

    SYS(futimens(fd, old));
    c0 = fstat_fd(fd).st_ctim;
    tick();
    SYS(ftruncate(fd, 100));
    st = fstat_fd(fd);
    CHECK(st.st_mtim.tv_sec > 1000000000 + 1000);
    CHECK(ts_gt(st.st_ctim, c0));

    SYS(futimens(fd, old));
    c0 = fstat_fd(fd).st_ctim;
    tick();
    SYS(fchmodat(s.dfd, "f", 0640, 0));
    st = lstat_at(s.dfd, "f");
    CHECK(ts_eq(st.st_mtim, old[1]));  // chmod leaves mtime alone
    CHECK(ts_gt(st.st_ctim, c0));

    c0 = st.st_ctim;
    tick();
    SYS(linkat(s.dfd, "f", s.dfd, "g", 0));
    st = lstat_at(s.dfd, "f");
    CHECK(ts_gt(st.st_ctim, c0));
    CHECK(ts_eq(st.st_mtim, old[1]));

    c0 = st.st_ctim;
    tick();
    SYS(unlinkat(s.dfd, "g", 0));
    CHECK(ts_gt(lstat_at(s.dfd, "f").st_ctim, c0));

    c0 = lstat_at(s.dfd, "f").st_ctim;
    tick();
    SYS(setxattr((s / "f").c_str(), "user.t", "1", 1, 0));
    CHECK(ts_gt(lstat_at(s.dfd, "f").st_ctim, c0));

    // Directory mtime/ctime change when entries are added, removed or renamed.
    SYS(mkdirat(s.dfd, "d", 0755));
    auto reset_dir = [&] {
        SYS(utimensat(s.dfd, "d", old, 0));
        return lstat_at(s.dfd, "d").st_ctim;
    };
    c0 = reset_dir();
    tick();
    make_file_at(s.dfd, "d/new", "");
    st = lstat_at(s.dfd, "d");
    CHECK(st.st_mtim.tv_sec > 1000000000 + 1000);
    CHECK(ts_gt(st.st_ctim, c0));
    c0 = reset_dir();
    tick();
    SYS(renameat(s.dfd, "d/new", s.dfd, "d/renamed"));
    st = lstat_at(s.dfd, "d");
    CHECK(st.st_mtim.tv_sec > 1000000000 + 1000);
    CHECK(ts_gt(st.st_ctim, c0));
    c0 = reset_dir();
    tick();
    SYS(unlinkat(s.dfd, "d/renamed", 0));
    st = lstat_at(s.dfd, "d");
    CHECK(st.st_mtim.tv_sec > 1000000000 + 1000);
    CHECK(ts_gt(st.st_ctim, c0));
    c0 = reset_dir();
    tick();
    SYS(mkdirat(s.dfd, "d/sub", 0755));
    st = lstat_at(s.dfd, "d");
    CHECK(st.st_mtim.tv_sec > 1000000000 + 1000);
    CHECK(ts_gt(st.st_ctim, c0));
}

TEST_CASE("chmod sets permission bits including setuid, setgid and sticky on own files") {
    Scratch s;
    Fd fd{SYS(openat(s.dfd, "f", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644))};
    SYS(fchown(fd, geteuid(), getegid()));  // make sure the group is ours, so setgid may stay
    for (mode_t m : {0600, 0644, 0755, 0400, 0000, 0777, 04755, 02755, 01755, 06755, 07777, 04000, 0640}) {
        INFO("mode " << std::oct << m);
        SYS(fchmodat(s.dfd, "f", m, 0));
        CHECK((lstat_at(s.dfd, "f").st_mode & 07777) == m);
        CHECK((fstat_fd(fd).st_mode & 07777) == m);
        SYS(fchmod(fd, m ^ 0011));
        CHECK((lstat_at(s.dfd, "f").st_mode & 07777) == (m ^ 0011));
        CHECK(S_ISREG(lstat_at(s.dfd, "f").st_mode));
    }
    SYS(mkdirat(s.dfd, "d", 0755));
    SYS(fchownat(s.dfd, "d", geteuid(), getegid(), 0));
    for (mode_t m : {01777, 02755, 0700, 0755}) {
        INFO("dir mode " << std::oct << m);
        SYS(chmod((s / "d").c_str(), m));
        struct stat st = lstat_at(s.dfd, "d");
        CHECK(S_ISDIR(st.st_mode));
        CHECK((st.st_mode & 07777) == m);
    }
    // chmod through a symlink changes the target only.
    SYS(symlinkat("f", s.dfd, "link"));
    const mode_t link_mode = lstat_at(s.dfd, "link").st_mode;
    SYS(fchmodat(s.dfd, "link", 0604, 0));
    CHECK((lstat_at(s.dfd, "f").st_mode & 07777) == 0604);
    CHECK(lstat_at(s.dfd, "link").st_mode == link_mode);
    REQUIRE_ERRNO(fchmodat(s.dfd, "missing", 0644, 0), ENOENT);
}

TEST_CASE("fchown to own uid and gid succeeds and chown clears setuid and setgid on files") {
    Scratch s;
    const uid_t uid = geteuid();
    const gid_t gid = getegid();
    Fd fd{SYS(openat(s.dfd, "f", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644))};
    SYS(fchown(fd, uid, gid));
    struct stat st = fstat_fd(fd);
    CHECK(st.st_uid == uid);
    CHECK(st.st_gid == gid);
    SYS(fchown(fd, uid_t(-1), gid_t(-1)));
    SYS(fchownat(s.dfd, "f", uid, gid_t(-1), 0));
    SYS(fchownat(s.dfd, "f", uid_t(-1), gid, 0));
    st = lstat_at(s.dfd, "f");
    CHECK(st.st_uid == uid);
    CHECK(st.st_gid == gid);

    // Linux clears setuid, and setgid with group-exec, on chown of a regular file.
    SYS(fchmod(fd, 06755));
    REQUIRE((fstat_fd(fd).st_mode & 07777) == 06755);
    SYS(fchown(fd, uid, gid));
    CHECK((fstat_fd(fd).st_mode & 07777) == 0755);
    CHECK((lstat_at(s.dfd, "f").st_mode & 07777) == 0755);

    SYS(symlinkat("f", s.dfd, "link"));
    SYS(fchownat(s.dfd, "link", uid, gid, AT_SYMLINK_NOFOLLOW));
    st = lstat_at(s.dfd, "link");
    CHECK(S_ISLNK(st.st_mode));
    CHECK(st.st_uid == uid);
    CHECK(st.st_gid == gid);
    SYS(mkdirat(s.dfd, "d", 0755));
    SYS(fchownat(s.dfd, "d", uid, gid, 0));
    CHECK(lstat_at(s.dfd, "d").st_uid == uid);
    REQUIRE_ERRNO(fchownat(s.dfd, "missing", uid, gid, 0), ENOENT);
}

TEST_CASE("a setgid directory passes its group and the setgid bit to new entries") {
    Scratch s;
    SYS(mkdirat(s.dfd, "sg", 0755));
    // Prefer a group different from our effective one, so inheritance is observable.
    gid_t group = getegid();
    std::vector<gid_t> candidates;
    int ng = getgroups(0, nullptr);
    if (ng > 0) {
        std::vector<gid_t> groups(static_cast<size_t>(ng));
        ng = getgroups(ng, groups.data());
        for (int i = 0; i < ng; ++i)
            if (groups[size_t(i)] != getegid()) candidates.push_back(groups[size_t(i)]);
    }
    if (geteuid() == 0) candidates.push_back(4242);
    for (gid_t g : candidates)
        if (fchownat(s.dfd, "sg", uid_t(-1), g, 0) == 0) {
            group = g;
            break;
        }
    SYS(fchownat(s.dfd, "sg", uid_t(-1), group, 0));
    SYS(fchmodat(s.dfd, "sg", 02775, 0));
    REQUIRE((lstat_at(s.dfd, "sg").st_mode & 07777) == 02775);
    INFO("directory group " << group << ", our egid " << getegid());

    SYS(mkdirat(s.dfd, "sg/sub", 0755));
    struct stat st = lstat_at(s.dfd, "sg/sub");
    CHECK((st.st_mode & S_ISGID) != 0);
    CHECK((st.st_mode & 0777) == 0755);
    CHECK(st.st_gid == group);
    make_file_at(s.dfd, "sg/file", "f", 0644);
    st = lstat_at(s.dfd, "sg/file");
    CHECK(st.st_gid == group);
    CHECK((st.st_mode & 07777) == 0644);
    make_file_at(s.dfd, "sg/sub/deeper", "g", 0644);
    CHECK(lstat_at(s.dfd, "sg/sub/deeper").st_gid == group);
    // A non-setgid directory gives our own group.
    SYS(mkdirat(s.dfd, "plain", 0755));
    SYS(fchownat(s.dfd, "plain", uid_t(-1), getegid(), 0));
    make_file_at(s.dfd, "plain/file", "p");
    CHECK(lstat_at(s.dfd, "plain/file").st_gid == getegid());
}

TEST_CASE("permissions are checked at open time, not on later I/O through the descriptor") {
    Scratch s;
    // Creating with a read-only mode still yields a writable descriptor.
    Fd fd{SYS(openat(s.dfd, "ro", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0444))};
    CHECK((fstat_fd(fd).st_mode & 07777) == 0444);
    write_all(fd, "written through a 0444 file");
    SYS(ftruncate(fd, 7));
    SYS(fsync(fd));
    SYS(fchmod(fd, 0));
    pwrite_all(fd, "!", 7);
    CHECK(pread_str(fd, 100, 0) == "written!");
    SYS(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096));
    // ...but user xattrs are checked against the inode's mode, not the descriptor.
    if (geteuid() != 0) REQUIRE_ERRNO(fsetxattr(fd, "user.x", "1", 1, 0), EACCES);
    const timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
    SYS(futimens(fd, ts));  // owner may set explicit times
    CHECK(fstat_fd(fd).st_mtim.tv_sec == 1000000000);
    if (geteuid() != 0) {
        REQUIRE_ERRNO(openat(s.dfd, "ro", O_RDONLY | O_CLOEXEC), EACCES);
        REQUIRE_ERRNO(openat(s.dfd, "ro", O_WRONLY | O_CLOEXEC), EACCES);
    }
    SYS(fchmod(fd, 0644));
    CHECK(read_file_at(s.dfd, "ro") == "written!");
}

TEST_CASE("access reports existence and permissions of own files") {
    Scratch s;
    make_file_at(s.dfd, "f", "x", 0600);
    SYS(access((s / "f").c_str(), F_OK));
    SYS(access((s / "f").c_str(), R_OK));
    SYS(access((s / "f").c_str(), W_OK));
    SYS(faccessat(s.dfd, "f", R_OK | W_OK, 0));
    REQUIRE_ERRNO(access((s / "f").c_str(), X_OK), EACCES);  // no x bit at all: EACCES even for root
    SYS(fchmodat(s.dfd, "f", 0700, 0));
    SYS(access((s / "f").c_str(), X_OK));
    SYS(fchmodat(s.dfd, "f", 0601, 0));
    if (geteuid() != 0) REQUIRE_ERRNO(faccessat(s.dfd, "f", X_OK, 0), EACCES);
    REQUIRE_ERRNO(access((s / "missing").c_str(), F_OK), ENOENT);
    REQUIRE_ERRNO(access((s / "f/x").c_str(), F_OK), ENOTDIR);
    SYS(symlinkat("nowhere", s.dfd, "dangling"));
    REQUIRE_ERRNO(faccessat(s.dfd, "dangling", F_OK, 0), ENOENT);
    SYS(faccessat(s.dfd, "dangling", F_OK, AT_SYMLINK_NOFOLLOW));

    SYS(mkdirat(s.dfd, "d", 0755));
    make_file_at(s.dfd, "d/inner", "i", 0644);
    SYS(faccessat(s.dfd, "d", R_OK | W_OK | X_OK, 0));
    if (geteuid() != 0) {
        SYS(fchmodat(s.dfd, "f", 0400, 0));
        REQUIRE_ERRNO(faccessat(s.dfd, "f", W_OK, 0), EACCES);
        SYS(faccessat(s.dfd, "f", R_OK, 0));
        SYS(fchmodat(s.dfd, "f", 0200, 0));
        REQUIRE_ERRNO(faccessat(s.dfd, "f", R_OK, 0), EACCES);
        REQUIRE_ERRNO(openat(s.dfd, "f", O_RDONLY | O_CLOEXEC), EACCES);
        // A directory without search permission hides its entries.
        SYS(fchmodat(s.dfd, "d", 0600, 0));
        struct stat st{};
        REQUIRE_ERRNO(fstatat(s.dfd, "d/inner", &st, 0), EACCES);
        REQUIRE_ERRNO(faccessat(s.dfd, "d/inner", F_OK, 0), EACCES);
        SYS(fchmodat(s.dfd, "d", 0500, 0));  // no write: cannot create
        REQUIRE_ERRNO(openat(s.dfd, "d/new", O_CREAT | O_WRONLY | O_CLOEXEC, 0644), EACCES);
        REQUIRE_ERRNO(unlinkat(s.dfd, "d/inner", 0), EACCES);
        SYS(fchmodat(s.dfd, "d", 0755, 0));
    }
    CHECK(read_file_at(s.dfd, "d/inner") == "i");
}

// ================================================================= mmap ====

TEST_CASE("writes through a shared writable mapping reach the file and other mappings") {
    Scratch s;
    const size_t ps = size_t(sysconf(_SC_PAGESIZE));
    const size_t len = 3 * ps + 100;
    Fd fd{SYS(openat(s.dfd, "m", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644))};
    SYS(ftruncate(fd, off_t(len)));
    void* p1 = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    INFO("mmap failed with " << errname(errno));
    REQUIRE(p1 != MAP_FAILED);
    Mapping m1(p1, len);
    std::string expect(len, '\0');
    for (size_t i = 0; i < len; ++i) expect[i] = char((i * 7 + 3) & 0xff);
    memcpy(m1.p, expect.data(), len);
    SYS(msync(m1.p, len, MS_SYNC));
    CHECK(pread_str(fd, len + 10, 0) == expect);
    CHECK(fstat_fd(fd).st_size == off_t(len));

    // A second mapping through another open file description sees it.
    Fd fd2{SYS(openat(s.dfd, "m", O_RDWR | O_CLOEXEC))};
    void* p2 = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
    REQUIRE(p2 != MAP_FAILED);
    Mapping m2(p2, len);
    CHECK(memcmp(m2.p, expect.data(), len) == 0);
    // Stores through one mapping are visible in the other at once, and in read().
    m2.bytes()[ps + 5] = 'Q';
    expect[ps + 5] = 'Q';
    CHECK(m1.bytes()[ps + 5] == 'Q');
    CHECK(pread_str(fd, 1, off_t(ps + 5)) == "Q");
    // write() is visible through the mappings.
    pwrite_all(fd, "WRITE", off_t(2 * ps));
    expect.replace(2 * ps, 5, "WRITE");
    CHECK(memcmp(m1.bytes() + 2 * ps, "WRITE", 5) == 0);
    CHECK(memcmp(m2.bytes() + 2 * ps, "WRITE", 5) == 0);

    // A private mapping's stores never reach the file.
    void* p3 = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    REQUIRE(p3 != MAP_FAILED);
    {
        Mapping m3(p3, len);
        memset(m3.p, 'P', ps);
        CHECK(m1.bytes()[0] == static_cast<unsigned char>(expect[0]));
    }
    SYS(msync(m2.p, len, MS_SYNC));
    CHECK(pread_str(fd, len, 0) == expect);

    // PROT_WRITE shared mapping of a read-only descriptor is refused.
    Fd ro{SYS(openat(s.dfd, "m", O_RDONLY | O_CLOEXEC))};
    errno = 0;
    void* bad = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0);
    const int e = errno;
    if (bad != MAP_FAILED) munmap(bad, len);
    CHECK(bad == MAP_FAILED);
    CHECK(e == EACCES);

    // After unmapping and closing, a fresh open reads the mapped writes.
    SYS(munmap(m1.p, len));
    m1.p = MAP_FAILED;
    SYS(munmap(m2.p, len));
    m2.p = MAP_FAILED;
    fd.reset();
    fd2.reset();
    CHECK(read_file_at(s.dfd, "m") == expect);
}

// =============================================================== statfs ====

TEST_CASE("statfs, fstatfs and statvfs succeed with sane and consistent values") {
    Scratch s;
    struct statfs a{}, b{};
    SYS(statfs(s.path.c_str(), &a));
    SYS(fstatfs(s.dfd, &b));
    INFO("f_type " << std::hex << a.f_type << std::dec << " bsize " << a.f_bsize << " blocks " << a.f_blocks
                   << " bfree " << a.f_bfree << " bavail " << a.f_bavail << " files " << a.f_files << " ffree "
                   << a.f_ffree << " namelen " << a.f_namelen);
    CHECK(a.f_bsize > 0);
    CHECK(a.f_blocks > 0);
    CHECK(a.f_bfree <= a.f_blocks);
    CHECK(a.f_bavail <= a.f_blocks);
    CHECK(a.f_bavail > 0);  // we are able to write here
    CHECK((a.f_files == 0 || a.f_ffree <= a.f_files));
    CHECK(a.f_namelen >= 255);
    CHECK(a.f_type == b.f_type);
    CHECK(a.f_bsize == b.f_bsize);
    CHECK(a.f_blocks == b.f_blocks);
    CHECK(a.f_namelen == b.f_namelen);
    struct statvfs v{};
    SYS(statvfs(s.path.c_str(), &v));
    CHECK(v.f_blocks == a.f_blocks);
    CHECK(v.f_namemax == static_cast<unsigned long>(a.f_namelen));
    CHECK((v.f_flag & ST_RDONLY) == 0);
    make_file_at(s.dfd, "f", "x");
    SYS(statfs((s / "f").c_str(), &b));
    CHECK(a.f_type == b.f_type);
    REQUIRE_ERRNO(statfs((s / "missing").c_str(), &b), ENOENT);
}

// ======================================================== bulk / trees =====

TEST_CASE("a 24 MiB file written in chunks reads back with the same checksum") {
    Scratch s;
    constexpr size_t kChunk = 1 << 20;
    constexpr int kChunks = 24;
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    uint64_t want = kFnvInit;
    {
        Fd fd{SYS(openat(s.dfd, "big", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644))};
        std::vector<unsigned char> buf(kChunk);
        for (int i = 0; i < kChunks; ++i) {
            fill_pattern(buf, state);
            want = fnv1a(want, buf.data(), buf.size());
            write_all(fd, buf.data(), buf.size());
        }
        SYS(fsync(fd));
    }
    CHECK(stat_at(s.dfd, "big").st_size == off_t(kChunk) * kChunks);
    // Read back with an odd buffer size through a fresh descriptor.
    Fd fd{SYS(openat(s.dfd, "big", O_RDONLY | O_CLOEXEC))};
    std::vector<unsigned char> buf(100003);
    uint64_t got = kFnvInit;
    size_t total = 0;
    for (;;) {
        ssize_t n = SYS(::read(fd, buf.data(), buf.size()));
        if (n == 0) break;
        got = fnv1a(got, buf.data(), size_t(n));
        total += size_t(n);
    }
    CHECK(total == kChunk * kChunks);
    CHECK(got == want);
    // Spot-check random access against the generator.
    uint64_t st2 = 0x9E3779B97F4A7C15ULL;
    std::vector<unsigned char> chunk(kChunk);
    for (int i = 0; i <= 17; ++i) fill_pattern(chunk, st2);
    std::string mid = pread_str(fd, 4096, off_t(17 * kChunk + 12345));
    CHECK(memcmp(mid.data(), chunk.data() + 12345, 4096) == 0);

    // copy_file_range duplicates it exactly.
    Fd out{SYS(openat(s.dfd, "copy", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644))};
    SYS(lseek(fd, 0, SEEK_SET));
    size_t copied = 0;
    while (copied < kChunk * kChunks) {
        ssize_t n = SYS(copy_file_range(fd, nullptr, out, nullptr, kChunk * kChunks - copied, 0));
        REQUIRE(n > 0);
        copied += size_t(n);
    }
    out.reset();
    Fd cp{SYS(openat(s.dfd, "copy", O_RDONLY | O_CLOEXEC))};
    uint64_t got2 = kFnvInit;
    for (;;) {
        ssize_t n = SYS(::read(cp, buf.data(), buf.size()));
        if (n == 0) break;
        got2 = fnv1a(got2, buf.data(), size_t(n));
    }
    CHECK(got2 == want);
    // With explicit offsets.
    Fd part{SYS(openat(s.dfd, "part", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644))};
    loff_t in_off = 17 * kChunk + 12345, out_off = 5000;
    CHECK(SYS(copy_file_range(fd, &in_off, part, &out_off, 4096, 0)) == 4096);
    CHECK(in_off == off_t(17 * kChunk + 12345 + 4096));
    CHECK(fstat_fd(part).st_size == 5000 + 4096);
    CHECK(all_zero(pread_str(part, 5000, 0)));
    CHECK(pread_str(part, 4096, 5000) == mid);
}

TEST_CASE("1000 small files can be created, stat'ed, read and deleted") {
    Scratch s;
    constexpr int N = 1000;
    SYS(mkdirat(s.dfd, "many", 0755));
    Fd dir{SYS(openat(s.dfd, "many", O_RDONLY | O_DIRECTORY | O_CLOEXEC))};
    auto name = [](int i) { return "small-" + std::to_string(i); };
    auto content = [](int i) { return "small file #" + std::to_string(i) + "\n" + std::string(size_t(i % 97), '.'); };
    for (int i = 0; i < N; ++i) make_file_at(dir, name(i), content(i), 0640);
    std::set<ino_t> inos;
    int bad = 0;
    for (int i = 0; i < N; ++i) {
        struct stat st = lstat_at(dir, name(i));
        inos.insert(st.st_ino);
        if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != 0640 || st.st_size != off_t(content(i).size()) ||
            st.st_nlink != 1)
            ++bad;
    }
    CHECK(bad == 0);
    CHECK(inos.size() == size_t(N));  // distinct inode numbers
    int wrong = 0;
    for (int i = 0; i < N; ++i)
        if (read_file_at(dir, name(i)) != content(i)) ++wrong;
    CHECK(wrong == 0);
    CHECK(list_dir_fd(dir).size() == size_t(N + 2));
    for (int i = 0; i < N; ++i) SYS(unlinkat(dir, name(i).c_str(), 0));
    CHECK(names_of(list_dir_fd(dir)) == with_dots({}));
    for (int i = 0; i < N; i += 100) CHECK_FALSE(exists_at(dir, name(i)));
    SYS(unlinkat(s.dfd, "many", AT_REMOVEDIR));
}

TEST_CASE("50-level deep directory nesting works and recursive unlinkat removes it") {
    Scratch s;
    constexpr int Depth = 50;
    std::vector<Fd> fds;
    std::string rel;
    int cur = s.dfd;
    for (int i = 0; i < Depth; ++i) {
        char name[16];
        snprintf(name, sizeof name, "level-%02d", i);
        SYS(mkdirat(cur, name, 0755));
        make_file_at(cur, std::string("file-") + name, name);
        fds.emplace_back(SYS(openat(cur, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)));
        cur = fds.back();
        rel += std::string(name) + "/";
    }
    make_file_at(cur, "bottom.txt", "deep");
    CHECK(read_file_at(s.dfd, rel + "bottom.txt") == "deep");
    CHECK(lstat_at(s.dfd, rel).st_ino == fstat_fd(cur).st_ino);
    CHECK(read_file_at(s.dfd, rel + "../file-level-49") == "level-49");

    // Walking up through ".." from the bottom reaches the scratch directory.
    auto walk_up = [&](int from) {
        int up = SYS(fcntl(from, F_DUPFD_CLOEXEC, 0));
        for (int i = 0; i < Depth; ++i) {
            int p = openat(up, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            ::close(up);
            REQUIRE(p >= 0);
            up = p;
        }
        struct stat st = fstat_fd(up);
        ::close(up);
        return st;
    };
    struct stat top = walk_up(cur);
    CHECK(top.st_ino == fstat_fd(s.dfd).st_ino);
    CHECK(top.st_dev == fstat_fd(s.dfd).st_dev);

    // Renaming the top keeps the held descriptors and the whole tree working.
    SYS(renameat(s.dfd, "level-00", s.dfd, "renamed-top"));
    CHECK(read_file_at(cur, "bottom.txt") == "deep");
    CHECK(read_file_at(s.dfd, "renamed-top/" + rel.substr(9) + "bottom.txt") == "deep");
    CHECK(walk_up(cur).st_ino == fstat_fd(s.dfd).st_ino);

    fds.clear();
    std::string why;
    INFO("removal failure: " << why);
    CHECK(remove_tree_at(s.dfd, "renamed-top", &why));
    CHECK(why.empty());
    CHECK_FALSE(exists_at(s.dfd, "renamed-top"));
    CHECK(names_at(s.dfd, ".") == with_dots({"file-level-00"}));
}

namespace {
std::vector<std::pair<std::string, int>> g_nftw_visits;
int g_nftw_remove_failures = 0;

int nftw_record(const char* path, const struct stat*, int type, struct FTW*) {
    g_nftw_visits.emplace_back(path, type);
    return 0;
}
int nftw_remove(const char* path, const struct stat*, int type, struct FTW*) {
    g_nftw_visits.emplace_back(path, type);
    const int r = type == FTW_DP ? rmdir(path) : unlink(path);
    if (r != 0) ++g_nftw_remove_failures;
    return 0;
}
}  // namespace

TEST_CASE("nftw walks a mixed tree in the right order and removes it depth first") {
    Scratch s;
    SYS(mkdirat(s.dfd, "tree", 0755));
    SYS(mkdirat(s.dfd, "tree/a", 0755));
    SYS(mkdirat(s.dfd, "tree/a/b", 0755));
    SYS(mkdirat(s.dfd, "tree/a/b/c", 0700));
    SYS(mkdirat(s.dfd, "tree/empty", 0755));
    make_file_at(s.dfd, "tree/f0", "0");
    make_file_at(s.dfd, "tree/a/f1", "1");
    make_file_at(s.dfd, "tree/a/b/f2", "2");
    make_file_at(s.dfd, "tree/a/b/c/f3", "3");
    SYS(symlinkat("f1", s.dfd, "tree/a/l1"));
    SYS(symlinkat("nowhere", s.dfd, "tree/dangling"));
    SYS(symlinkat("../..", s.dfd, "tree/a/b/up"));  // would loop without FTW_PHYS
    SYS(mkfifoat(s.dfd, "tree/a/b/pipe", 0644));
    const std::string root = s / "tree";

    auto check_order = [&](bool depth_first) {
        std::set<std::string> paths;
        for (const auto& v : g_nftw_visits) paths.insert(v.first);
        CHECK(paths.size() == g_nftw_visits.size());  // nothing visited twice
        for (size_t i = 0; i < g_nftw_visits.size(); ++i) {
            const auto& [dir, type] = g_nftw_visits[i];
            if (type != FTW_D && type != FTW_DP) continue;
            for (size_t j = 0; j < g_nftw_visits.size(); ++j) {
                const auto& p = g_nftw_visits[j].first;
                if (p.size() > dir.size() && p.compare(0, dir.size() + 1, dir + "/") == 0) {
                    INFO(dir << " vs " << p);
                    CHECK((depth_first ? j < i : j > i));
                }
            }
        }
    };
    auto count_type = [&](int t) {
        return std::count_if(g_nftw_visits.begin(), g_nftw_visits.end(), [t](const auto& v) { return v.second == t; });
    };

    g_nftw_visits.clear();
    SYS(nftw(root.c_str(), nftw_record, 8, FTW_PHYS));
    CHECK(g_nftw_visits.size() == 13);
    CHECK(count_type(FTW_D) == 5);
    CHECK(count_type(FTW_F) == 5);  // four files and the FIFO
    CHECK(count_type(FTW_SL) == 3);
    CHECK(count_type(FTW_DNR) == 0);
    CHECK(count_type(FTW_NS) == 0);
    check_order(false);

    g_nftw_visits.clear();
    g_nftw_remove_failures = 0;
    SYS(nftw(root.c_str(), nftw_remove, 8, FTW_DEPTH | FTW_PHYS));
    CHECK(g_nftw_remove_failures == 0);
    CHECK(g_nftw_visits.size() == 13);
    CHECK(count_type(FTW_DP) == 5);
    CHECK(count_type(FTW_F) == 5);
    CHECK(count_type(FTW_SL) == 3);
    check_order(true);
    CHECK_FALSE(exists_at(s.dfd, "tree"));
    CHECK(names_at(s.dfd, ".") == with_dots({}));
}

// ================================================================ misc =====

TEST_CASE("inode numbers and device stay stable across writes, renames and metadata changes") {
    Scratch s;
    make_file_at(s.dfd, "f", "x");
    SYS(mkdirat(s.dfd, "d", 0755));
    const struct stat f0 = lstat_at(s.dfd, "f");
    const struct stat d0 = lstat_at(s.dfd, "d");
    CHECK(f0.st_dev == fstat_fd(s.dfd).st_dev);
    CHECK(d0.st_dev == f0.st_dev);
    CHECK(f0.st_ino != d0.st_ino);
    auto same = [&](const std::string& name, const struct stat& ref) {
        struct stat st = lstat_at(s.dfd, name);
        INFO(name);
        CHECK(st.st_ino == ref.st_ino);
        CHECK(st.st_dev == ref.st_dev);
    };
    {
        Fd fd{SYS(openat(s.dfd, "f", O_WRONLY | O_APPEND | O_CLOEXEC))};
        CHECK(fstat_fd(fd).st_ino == f0.st_ino);
        write_all(fd, std::string(100000, 'y'));
    }
    same("f", f0);
    SYS(fchmodat(s.dfd, "f", 0600, 0));
    same("f", f0);
    SYS(utimensat(s.dfd, "f", nullptr, 0));
    SYS(setxattr((s / "f").c_str(), "user.a", "b", 1, 0));
    same("f", f0);
    SYS(truncate((s / "f").c_str(), 10));
    same("f", f0);
    SYS(renameat(s.dfd, "f", s.dfd, "d/moved"));
    same("d/moved", f0);
    SYS(linkat(s.dfd, "d/moved", s.dfd, "link", 0));
    SYS(unlinkat(s.dfd, "d/moved", 0));
    same("link", f0);
    make_file_at(s.dfd, "d/other", "o");
    SYS(renameat(s.dfd, "d", s.dfd, "d2"));
    same("d2", d0);
    SYS(fchmodat(s.dfd, "d2", 0700, 0));
    same("d2", d0);
    CHECK(lstat_at(s.dfd, "d2/other").st_ino != f0.st_ino);
}

TEST_CASE("flock and OFD locks conflict between open file descriptions, POSIX locks between processes") {
    Scratch s;
    make_file_at(s.dfd, "lock", std::string(100, 'l'));
    Fd a{SYS(openat(s.dfd, "lock", O_RDWR | O_CLOEXEC))};
    Fd b{SYS(openat(s.dfd, "lock", O_RDWR | O_CLOEXEC))};

    SYS(flock(a, LOCK_EX));
    REQUIRE_ERRNO(flock(b, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    REQUIRE_ERRNO(flock(b, LOCK_SH | LOCK_NB), EWOULDBLOCK);
    SYS(flock(a, LOCK_UN));
    SYS(flock(b, LOCK_SH | LOCK_NB));
    SYS(flock(a, LOCK_SH | LOCK_NB));
    REQUIRE_ERRNO(flock(a, LOCK_EX | LOCK_NB), EWOULDBLOCK);
    SYS(flock(a, LOCK_UN));
    SYS(flock(b, LOCK_UN));

    struct flock fl{};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 10;
    SYS(fcntl(a, F_OFD_SETLK, &fl));
    struct flock other{};
    other.l_type = F_WRLCK;
    other.l_whence = SEEK_SET;
    other.l_start = 5;
    other.l_len = 10;
    REQUIRE_ERRNO(fcntl(b, F_OFD_SETLK, &other), EAGAIN, EACCES);
    struct flock probe = other;
    SYS(fcntl(b, F_OFD_GETLK, &probe));
    CHECK(probe.l_type == F_WRLCK);
    CHECK(probe.l_start == 0);
    CHECK(probe.l_len == 10);
    CHECK(probe.l_pid == -1);
    other.l_start = 20;
    SYS(fcntl(b, F_OFD_SETLK, &other));  // no overlap
    fl.l_type = F_UNLCK;
    SYS(fcntl(a, F_OFD_SETLK, &fl));
    other.l_start = 0;
    SYS(fcntl(b, F_OFD_SETLK, &other));
    other.l_type = F_UNLCK;
    other.l_start = 0;
    other.l_len = 0;
    SYS(fcntl(b, F_OFD_SETLK, &other));

    // Classic POSIX record locks, checked from a child process.
    struct flock pl{};
    pl.l_type = F_WRLCK;
    pl.l_whence = SEEK_SET;
    pl.l_start = 0;
    pl.l_len = 50;
    SYS(fcntl(a, F_SETLK, &pl));
    fflush(nullptr);
    pid_t child = SYS(fork());
    if (child == 0) {
        int fd = openat(s.dfd, "lock", O_RDWR | O_CLOEXEC);
        if (fd < 0) _exit(10);
        struct flock c{};
        c.l_type = F_WRLCK;
        c.l_whence = SEEK_SET;
        c.l_start = 10;
        c.l_len = 5;
        if (fcntl(fd, F_SETLK, &c) == 0) _exit(11);
        if (errno != EAGAIN && errno != EACCES) _exit(12);
        struct flock q = c;
        if (fcntl(fd, F_GETLK, &q) != 0) _exit(13);
        if (q.l_type != F_WRLCK || q.l_pid != getppid()) _exit(14);
        c.l_start = 60;
        if (fcntl(fd, F_SETLK, &c) != 0) _exit(15);
        _exit(0);
    }
    int status = 0;
    SYS(waitpid(child, &status, 0));
    INFO("child exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

// ================================================================= main =====

int main(int argc, char** argv) {
    bool listing = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-h" || a == "-?" || a == "--help" || a.rfind("--list", 0) == 0 || a == "-l" || a == "-t")
            listing = true;
    }
    const char* dir = getenv("MBX_FS_DIR");
    if (!listing) {
        if (!dir || !*dir) {
            fprintf(stderr,
                    "fs-semantics: MBX_FS_DIR is not set.\n"
                    "Set it to the directory to test (a plain ext4 directory, or a directory inside mbx's "
                    "merged view).\n");
            return 2;
        }
        struct stat st{};
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "fs-semantics: MBX_FS_DIR=%s is not a directory (%s)\n", dir, strerror(errno));
            return 2;
        }
        if (access(dir, W_OK | X_OK) != 0) {
            fprintf(stderr, "fs-semantics: MBX_FS_DIR=%s is not writable (%s)\n", dir, strerror(errno));
            return 2;
        }
        g_root = dir;
        while (g_root.size() > 1 && g_root.back() == '/') g_root.pop_back();
    }
    umask(022);
    signal(SIGPIPE, SIG_IGN);
    int rc = Catch::Session().run(argc, argv);
    if (g_cleanup_failures > 0) {
        fprintf(stderr, "fs-semantics: %d scratch director%s could not be removed\n", g_cleanup_failures,
                g_cleanup_failures == 1 ? "y" : "ies");
        if (rc == 0) rc = 1;
    }
    return rc;
}
