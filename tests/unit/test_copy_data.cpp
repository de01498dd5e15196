// Copy-up data path: every strategy yields identical bytes and the same xxh3-128.
#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <random>
#include <string>

#include "overlay/copy_data.h"

namespace {
std::string hex(XXH128_hash_t h) {
    char b[33];
    std::snprintf(b, sizeof b, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
    return b;
}

int temp_file(const char* dir) {
    int fd = ::open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    return fd;
}

std::string read_all(int fd) {
    std::string out;
    char buf[65536];
    off_t off = 0;
    for (ssize_t n; (n = ::pread(fd, buf, sizeof buf, off)) > 0; off += n) out.append(buf, n);
    return out;
}
}  // namespace

TEST_CASE("copy_file_data copies exactly and hashes the source") {
    // Sizes around the 1 MiB chunk, an empty file, and a multi-chunk file.
    for (size_t size : {size_t(0), size_t(1), size_t(4096), size_t(1 << 20), size_t((1 << 20) + 7), size_t(3 << 20)}) {
        std::string data(size, '\0');
        std::mt19937 rng(static_cast<unsigned>(size));
        for (auto& c : data) c = static_cast<char>(rng());
        // Same filesystem (copy_file_range, maybe reflink) and across filesystems.
        for (const char* dstdir : {"/var/tmp", "/dev/shm"}) {
            int src = temp_file("/var/tmp");
            REQUIRE(::write(src, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
            int dst = temp_file(dstdir);
            auto h = mbx::copyup::copy_file_data(src, dst, static_cast<off_t>(size));
            REQUIRE(h.ok());
            CHECK(*h == hex(XXH3_128bits(data.data(), data.size())));
            CHECK(read_all(dst) == data);
            auto h2 = mbx::copyup::hash_file(src);
            REQUIRE(h2.ok());
            CHECK(*h2 == *h);
            ::close(src);
            ::close(dst);
        }
    }
}
