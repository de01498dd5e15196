// Internal to the overlay library: the state shared by every FUSE operation.
// filesystem.cpp resolves names and presents attributes, copy_up.cpp moves
// host objects into the layer, dir_merge.cpp merges directory listings,
// operations.cpp maps each FUSE request onto these.
#pragma once

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "overlay/fd_cache.h"
#include "overlay/inode_table.h"
#include "overlay/overlay.h"
#include "overlay/sys/result.h"

namespace mbx::overlay {

// What a name in a merged directory resolves to.
struct Resolved {
    bool upper_exists = false;      // a non-whiteout upper entry
    bool whiteout = false;          // an upper whiteout hides the lower entry
    struct stat upper_st {};
    bool lower_exists = false;      // a visible lower entry (not hidden, not whited out)
    struct stat lower_st {};
    bool exists() const { return upper_exists || lower_exists; }
};

// One entry of a merged listing.
struct MergedEntry {
    std::string name;
    uint64_t ino;
    unsigned char type;
    // Its readdir offset: a hash of the name, so that an offset names the
    // same place whatever was added or removed since (1 and 2 are "." and "..").
    uint64_t cookie;
};

// A directory's merged listing, sorted by cookie.
struct Listing {
    std::vector<MergedEntry> entries;
};

class Filesystem {
public:
    explicit Filesystem(Config cfg);
    ~Filesystem();

    Inode* inode(uint64_t nodeid) const;
    std::shared_ptr<Inode> shared(uint64_t nodeid) const;

    // --- handles (filesystem.cpp)
    // The Inode's upper and lower handles, re-opened from its parent if evicted.
    Result<Fds> fds(Inode& in);
    // The entry now exists in the layer (in.mu held).
    void set_upper(Inode& in, UniqueFd fd);
    // The path of `in` inside the view ("/" for the root).
    std::string path_of(Inode& in);
    // The name of `in` is going away while the kernel may still use it.
    void pin(Inode& in);
    // Pins the Inode currently backing parent-upper/name, if the kernel knows it.
    void pin_upper_entry(int upper_dir, const char* name);
    // Pins the Inode of a host entry about to be hidden (r: its resolution
    // beneath parent), if the kernel knows it: a file still open must stay
    // readable through it.
    void pin_lower_entry(const Inode& parent, const char* name, const Resolved& r);
    // Do the kernel's opens reach the server (OPEN, and a handle per open),
    // or do reads and writes go through a descriptor per Inode? Per Inode
    // unless the run is monitored (opens are recorded) or the writeback
    // cache is on (its opens need other flags).
    bool per_inode_io() const { return !cfg_.writeback && !cfg_.access_log && !cfg_.open_handles; }
    // The per-Inode descriptor (see Inode::data); for_write: on the layer's
    // copy, made now if needed.
    Result<FdRef> data_fd(const std::shared_ptr<Inode>& in, bool for_write);
    // fd (read-write, on the layer's file) becomes in's data descriptor.
    void set_data(Inode& in, UniqueFd fd);
    // A host file whose name left the view while the kernel still uses it
    // (Inode::detached): nothing of it may reach the layer by name any more.
    // Its data, size and times live in its private copy (data_fd makes it),
    // its owner and mode in the Inode (ovr).
    bool detached(Inode& in);

    // --- names (filesystem.cpp)
    // under_file: also look for a host entry beneath a layer non-directory,
    // which the layer's entry hides; removing or renaming the name must then
    // leave a whiteout. (A lookup needs no such stat.)
    Result<Resolved> resolve(Inode& parent, const char* name, bool under_file = false);
    // Looks name up and returns its Inode with one more kernel reference, and
    // its attributes as presented (from the stat the resolution made: a lookup
    // opens no descriptor).
    struct Looked {
        std::shared_ptr<Inode> inode;
        struct stat attr;
    };
    Result<Looked> lookup(const std::shared_ptr<Inode>& parent, const char* name);
    // The Inode of an entry this server just made in the layer (st: its
    // attributes, record: its owner record, handle: an O_PATH of it or none),
    // with one more kernel reference: what lookup() would find, without the
    // system calls.
    Result<Looked> adopt(const std::shared_ptr<Inode>& parent, const char* name, const struct stat& st,
                         const std::optional<layer::Override>& record, bool opaque, UniqueFd handle);
    Result<struct stat> attr(Inode& in);
    // Did the host change a file only it backs since the kernel was last
    // shown its attributes (st, as presented)? The kernel keeps a file's
    // cached data across opens and drops it itself only when the size
    // changes; the caller then drops it with forget_cached_data.
    bool host_data_changed(Inode& in, const struct stat& st);
    // Tells the kernel to drop the data and attributes it caches of ino. Not
    // while the kernel waits for the reply to a GETATTR, READ or WRITE of ino
    // (it may hold what the invalidation needs); a LOOKUP or READDIRPLUS of
    // its directory is fine.
    void forget_cached_data(uint64_t ino);
    // A merged directory's mtime: st's, or other's (the host side) when the
    // host changed it after the server started and later than st.
    void take_later_mtime(struct stat& st, const struct stat& other) const;
    // The attributes shown inside for backing object st (from the layer if
    // from_upper, else from the host).
    struct stat present(Inode& in, struct stat st, bool from_upper, bool merged_dir);
    bool hidden(const struct stat& st) const;
    // Could an entry of this name be hidden? (No stat needed when not.)
    bool maybe_hidden(const std::string& name) const;
    uint64_t present_ino(dev_t dev, ino_t ino);

    // --- copy-up (copy_up.cpp)
    // Makes sure `in` has an upper entry; for regular files the data is copied
    // unless with_data is false (open with O_TRUNC, truncate to 0).
    Result<void> copy_up(const std::shared_ptr<Inode>& in, bool with_data = true);
    // Copies everything of a directory's lower part into its upper part and
    // marks it opaque, so it can be renamed as a unit.
    Result<void> copy_up_tree(const std::shared_ptr<Inode>& dir);
    // A fresh name in the work directory.
    std::string temp_name();
    // Moves work/tmp to parent-upper/name: over a whiteout (exchanged, then
    // removed) or where nothing is (RENAME_NOREPLACE).
    Result<void> install(const char* tmp, int upper_dir, const char* name, bool over_whiteout);
    // Creates a whiteout named `name` in upper_dir, recording origin. If an
    // entry is there it is replaced atomically (and returned in work as tmp_out).
    Result<void> put_whiteout(int upper_dir, const char* name, const layer::Origin& origin,
                              bool replace_existing);
    Result<void> write_override(Inode& in, int upper_fd, const layer::Override& o);  // in.mu held

    // --- directories (dir_merge.cpp)
    Result<Listing> list(Inode& dir);
    // ENOTEMPTY unless the merged directory has no visible entry.
    Result<void> check_empty(int upper_dir, int lower_dir, bool opaque);
    // Removes the whiteouts left in an upper directory that is empty in the merged view.
    Result<void> clear_whiteouts(int upper_dir);

    const Config& cfg() const { return cfg_; }
    // Whether close() must reach the layer's file system (network file
    // systems report write errors there); elsewhere FUSE_FLUSH is skipped.
    bool flush_on_close() const { return flush_on_close_; }
    // The FUSE session, for invalidations the kernel did not ask for.
    struct fuse_session* session = nullptr;
    InodeTable& table() { return table_; }
    int work() const { return cfg_.work_dir.get(); }
    std::shared_ptr<Inode> root() const { return root_; }

    layer::Override override_for_new(uid_t uid, gid_t gid, mode_t mode, dev_t rdev,
                                     const Inode& parent);
    std::optional<layer::Override> read_override(int upper_fd, mode_t real_mode);

private:
    Config cfg_;
    InodeTable table_;
    FdCache fd_cache_;
    std::shared_ptr<Inode> root_;
    std::atomic<uint64_t> tmp_counter_{0};
    bool flush_on_close_ = false;
    struct timespec started_ {};  // when the server started (CLOCK_REALTIME)
    // fd becomes in's data descriptor (in.mu held; see Inode::data).
    void put_data(Inode& in, FdRef fd, bool upper, bool private_copy);
    // Host filesystems seen, dev+1 per slot (0 = free); the slot index goes
    // into st_ino's top byte, see present_ino. Append-only and lock-free.
    std::array<std::atomic<uint64_t>, 128> devs_{};
};

}  // namespace mbx::overlay
