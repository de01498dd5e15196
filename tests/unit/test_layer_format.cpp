// The layer's on-disk records: owner records (override_stat) and origins.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <catch2/catch.hpp>

#include "overlay/layer_format.h"

using namespace mbx::layer;

TEST_CASE("owner records round-trip every file type") {
    // Directories are layer directories; every other type lives in a layer file.
    for (mode_t type : {S_IFREG, S_IFDIR, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK}) {
        Override o{123, 456, type | 04755, (type == S_IFCHR || type == S_IFBLK) ? makedev(8, 1) : 0};
        auto back = parse_override(format_override(o), type == S_IFDIR ? S_IFDIR : S_IFREG);
        REQUIRE(back);
        CHECK(back->uid == 123);
        CHECK(back->gid == 456);
        CHECK(back->mode == (type | 04755));
        CHECK(back->rdev == o.rdev);
    }
}

TEST_CASE("owner records read fuse-overlayfs values") {
    auto o = parse_override("0:6:666:char1:3", S_IFREG);
    REQUIRE(o);
    CHECK(o->mode == (S_IFCHR | 0666));
    CHECK(major(o->rdev) == 1);
    CHECK(minor(o->rdev) == 3);
    auto plain = parse_override("1000:1000:755", S_IFDIR);
    REQUIRE(plain);
    CHECK(plain->mode == (S_IFDIR | 0755));
}

TEST_CASE("owner records cannot change a directory into a file or back") {
    CHECK_FALSE(parse_override("0:0:755:file", S_IFDIR));
    CHECK_FALSE(parse_override("0:0:644:char1:3", S_IFDIR));
    CHECK_FALSE(parse_override("0:0:644:dir", S_IFREG));
    CHECK_FALSE(parse_override("0:0:777:symlink", S_IFREG));
    CHECK(parse_override("0:0:644:char1:3", S_IFREG));
}

TEST_CASE("malformed owner records are rejected, not guessed") {
    for (const char* bad : {"", "1:2", "a:0:644", "0:0:99999", "0:0:644:bogus", "0:0:644:char1", "-1:0:644"})
        CHECK_FALSE(parse_override(bad, S_IFREG));
}

TEST_CASE("origins round-trip and reject garbage") {
    Origin o;
    o.dev = 2049;
    o.ino = 1234567;
    o.size = 5;
    o.mtime_ns = 1700000000123456789;
    o.mode = S_IFREG | 0644;
    o.uid = 0;
    o.gid = 50;
    o.xxh3 = "0123456789abcdef0123456789abcdef";
    auto back = parse_origin(format_origin(o));
    REQUIRE(back);
    CHECK(back->ino == o.ino);
    CHECK(back->mtime_ns == o.mtime_ns);
    CHECK(back->xxh3 == o.xxh3);
    CHECK_FALSE(parse_origin("{"));
    CHECK_FALSE(parse_origin("{\"v\":2}"));
    CHECK_FALSE(parse_origin("[]"));
}

TEST_CASE("the layer's own xattrs are internal, the sandbox's are not") {
    CHECK(is_internal_xattr("user.overlay.whiteout"));
    CHECK(is_internal_xattr("user.mbx.origin"));
    CHECK(is_internal_xattr("user.containers.override_stat"));
    CHECK_FALSE(is_internal_xattr("user.mime_type"));
    CHECK_FALSE(is_internal_xattr("security.capability"));
}
