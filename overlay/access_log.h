// What the sandbox did through the view, for mbx run --monitor: the server
// reports each request that reached it (the kernel answers repeated lookups
// and attribute reads from its cache, so a name is reported about once per
// cache period, not once per system call). Paths are as seen inside.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

namespace mbx::overlay {

enum class Access {
    Read,       // an open for reading
    Write,      // an open for writing (or O_TRUNC)
    ReadWrite,  // an open for both
    Exec,       // the kernel opened it to run it (execve, or an ELF interpreter)
    Missing,    // a name looked up that does not exist
    Create,     // a file made by open(O_CREAT)
    Mkdir,
    Mknod,
    Symlink,
    Link,
    Unlink,
    Rmdir,
    RenameFrom,
    RenameTo,
    Setattr,    // mode, owner, size or times changed
    Xattr,      // an extended attribute set or removed
};

// error: 0, or the errno the request was answered with. pid: the caller, as
// the PID namespace of whoever mounted the view numbers it (the sandbox's).
// Called from any FUSE thread.
using AccessLog = std::function<void(Access, const std::string& path, int error, pid_t pid)>;

// Does the access change the view (the entry or its directory)?
inline bool is_write(Access a) {
    return a != Access::Read && a != Access::Exec && a != Access::Missing;
}

}  // namespace mbx::overlay
