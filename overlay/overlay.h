// The copy-on-write filesystem served over FUSE: a merged view of a read-only
// lower tree (the host's "/") and a writable upper tree (the session layer).
// Public entry point of the overlay library; the FUSE operations live in
// overlay.cpp, the inode table in inode_table.h, copy-up in copy_up.cpp.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "overlay/access_log.h"
#include "overlay/sys/unique_fd.h"

struct fuse_session;  // libfuse's, at global scope

namespace mbx::overlay {

// How host owners are presented inside the sandbox (ids of the FUSE mount's
// user namespace). Layer entries carry their own presented owner (override_stat).
struct IdPolicy {
    // With a single id mapped into the sandbox (no subuid range), the kernel
    // would deny fake root on files of unmapped owners, so every host owner is
    // presented as 0 there: fake root may write anywhere in the view.
    bool all_as_root = false;
    // Owner shown for layer entries that cannot carry an owner record
    // (symlinks): the identity the command runs as.
    uint32_t layer_uid = 0;
    uint32_t layer_gid = 0;

    uint32_t uid(uint32_t host) const { return all_as_root ? 0 : host; }
    uint32_t gid(uint32_t host) const { return all_as_root ? 0 : host; }
};

struct Config {
    UniqueFd lower_root;  // O_PATH of the host "/"
    UniqueFd upper_root;  // O_PATH of the session's layer/
    UniqueFd work_dir;    // O_PATH of the session's work/ (same filesystem as layer/)
    IdPolicy ids;
    // Host objects that do not exist inside: --hide paths, $MBX_HOME. Matched
    // by identity; the name lets listings skip a stat for every other entry.
    struct Hidden {
        dev_t dev;
        ino_t ino;
        std::string name;  // last component of the host path
    };
    std::vector<Hidden> hidden;
    // Seconds the kernel may cache names (also absent ones), attributes and,
    // until they change, file data and listings: the longest a change made on
    // the host, outside the sandbox, can go unseen inside.
    double entry_timeout = 1.0;
    // The kernel keeps written data and sends it in big writes, at the latest
    // when the file is closed (FUSE writeback cache). Off by default: the
    // kernel then owns the size and mtime of every file and would never see
    // a host file change under it.
    bool writeback = false;
    // A FUSE OPEN and a handle per open(2), as before per-Inode I/O (for
    // measuring; the monitor and the writeback cache always have them).
    bool open_handles = false;
    unsigned max_threads = 8;
    // O_PATH handles the Inodes may keep open; the rest are re-opened on use.
    size_t fd_budget = 4096;
    // mbx run --monitor: every request that reached the server, reported
    // here (empty: nothing is reported, and nothing is paid for it).
    AccessLog access_log;
};

class Filesystem;

// Serves one mounted FUSE connection until the mount goes away.
class Server {
public:
    explicit Server(Config cfg);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Serves requests arriving on fuse_fd (an already-mounted /dev/fuse
    // descriptor; ownership passes to the server). Returns 0 when the
    // connection ended normally, else an errno.
    int serve(UniqueFd fuse_fd);
    // Makes serve() return soon (from another thread).
    void stop();

private:
    std::unique_ptr<Filesystem> fs_;
    struct fuse_session* se_ = nullptr;
};

}  // namespace mbx::overlay
