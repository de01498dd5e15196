#include "overlay/copy_data.h"

#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstdio>
#include <memory>

#include "overlay/layer_format.h"
#include "overlay/sys/sys.h"

namespace mbx::copyup {

namespace {
constexpr size_t kChunk = 1 << 20;

std::string hex128(XXH128_hash_t h) {
    char buf[33];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                  static_cast<unsigned long long>(h.low64));
    return buf;
}

struct StateDeleter {
    void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};
using HashState = std::unique_ptr<XXH3_state_t, StateDeleter>;

HashState new_state() {
    HashState s(XXH3_createState());
    if (s) XXH3_128bits_reset(s.get());
    return s;
}

// Reads src from offset 0, feeding the hash and, if dst >= 0, writing the bytes.
Result<std::string> read_loop(int src, int dst, off_t limit) {
    HashState st = new_state();
    if (!st) return Errno{ENOMEM};
    std::unique_ptr<char[]> buf(new char[kChunk]);
    off_t off = 0;
    while (limit < 0 || off < limit) {
        ssize_t n = ::pread(src, buf.get(), kChunk, off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return last_errno();
        }
        if (n == 0) break;
        XXH3_128bits_update(st.get(), buf.get(), n);
        if (dst >= 0) {
            for (ssize_t w = 0; w < n;) {
                ssize_t m = ::pwrite(dst, buf.get() + w, n - w, off + w);
                if (m < 0) {
                    if (errno == EINTR) continue;
                    return last_errno();
                }
                w += m;
            }
        }
        off += n;
    }
    return hex128(XXH3_128bits_digest(st.get()));
}
}  // namespace

Result<std::string> hash_file(int fd) { return read_loop(fd, -1, -1); }

Result<std::string> copy_file_data(int src, int dst, off_t size) {
    if (size == 0) return hash_file(src);
    if (::ioctl(dst, FICLONE, src) == 0) return hash_file(src);
    // copy_file_range keeps the bytes in the kernel (and reflinks where it can);
    // the hash then reads the source again, from the page cache.
    loff_t in = 0, out = 0;
    bool kernel_copy = true;
    while (in < size) {
        ssize_t n = ::copy_file_range(src, &in, dst, &out, size - in, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (in == 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                            errno == EOPNOTSUPP || errno == EBADF)) {
                kernel_copy = false;
                break;
            }
            return last_errno();
        }
        if (n == 0) break;  // source shrank under us
    }
    // The hash reads the source again (from the page cache) after a kernel
    // copy; a file that grew meanwhile is copied again the portable way.
    struct stat st;
    if (kernel_copy && !(::fstat(src, &st) == 0 && st.st_size > in)) return hash_file(src);
    return read_loop(src, dst, -1);
}

Result<void> copy_xattrs(int src_fd, int dst_fd) {
    auto names = sys::list_xattr(src_fd);
    if (!names) {
        // Filesystems without xattrs, or symlinks: nothing to copy.
        if (names.error() == ENOTSUP || names.error() == EPERM) return {};
        return Errno{names.error()};
    }
    for (const auto& name : *names) {
        if (layer::is_internal_xattr(name)) continue;
        auto v = sys::get_xattr(src_fd, name.c_str());
        if (!v) {
            if (v.error() == ENODATA || v.error() == EACCES || v.error() == EPERM) continue;
            return Errno{v.error()};
        }
        auto r = sys::set_xattr(dst_fd, name.c_str(), *v);
        if (!r && r.error() != EPERM && r.error() != ENOTSUP && r.error() != EACCES)
            return r;
    }
    return {};
}

std::map<std::string, std::string> user_xattrs(int fd) {
    std::map<std::string, std::string> out;
    auto names = sys::list_xattr(fd);
    if (!names) return out;
    for (const auto& name : *names) {
        if (!name.starts_with("user.") || layer::is_internal_xattr(name)) continue;
        if (auto v = sys::get_xattr(fd, name.c_str())) out[name] = *v;
    }
    return out;
}

}  // namespace mbx::copyup
