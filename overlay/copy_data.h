// Copying a host file's bytes and extended attributes into the layer:
// FICLONE first, then copy_file_range, then a read/write loop; the xxh3-128
// content hash of the source is computed on the way.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

#include "overlay/sys/result.h"

namespace mbx::copyup {

// Copies `size` bytes of src to dst (both real fds positioned anywhere) and
// returns the xxh3-128 hash of the source as 32 hex digits.
Result<std::string> copy_file_data(int src, int dst, off_t size);
// xxh3-128 of a whole readable fd, as 32 hex digits.
Result<std::string> hash_file(int fd);
// Copies every extended attribute the sandbox can see (not the layer's own,
// see layer::is_internal_xattr) from src to dst; names the kernel refuses to
// the unprivileged server (trusted.*, security.*) are skipped.
Result<void> copy_xattrs(int src_fd, int dst_fd);
// The user.* extended attributes of an fd the sandbox can see (not the
// layer's own), by name: what mbx diff compares and mbx commit carries over.
std::map<std::string, std::string> user_xattrs(int fd);

}  // namespace mbx::copyup
