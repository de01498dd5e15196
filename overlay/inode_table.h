// Inodes of the merged view and the table that maps host identities to them.
//
// An Inode is keyed by the (st_dev, st_ino) of the object that currently backs
// it: the upper entry once it exists, else the lower one. Lower non-directories
// with several hard links get one Inode per name (tag = hash of parent+name),
// because copying one of them up must not change what the other names show —
// overlayfs without an index behaves the same way.
//
// Descriptors: an Inode knows whether it exists in the layer (has_upper)
// and on the host (has_lower), and caches O_PATH handles to both. The cache
// is bounded (fd_cache.h): an evicted handle is re-opened from the parent's
// handle and the Inode's name, so the server needs a bounded number of
// descriptors however many files a run touches. Handles are shared_ptrs, so
// eviction never closes a descriptor another thread is using. Inodes whose
// name is gone while the kernel still refers to them (unlinked while open)
// are pinned: their handles are never evicted.
//
// Lock order: Inode::mu (a child's before its parent's is never needed:
// each lock is released before the next is taken), then FdCache::mu_, then
// InodeTable::mu_.
#pragma once

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "overlay/layer_format.h"
#include "overlay/sys/unique_fd.h"

namespace mbx::overlay {

struct Listing;  // filesystem.h

struct InodeKey {
    dev_t dev = 0;
    ino_t ino = 0;
    uint64_t tag = 0;
    bool operator==(const InodeKey&) const = default;
};

struct InodeKeyHash {
    size_t operator()(const InodeKey& k) const {
        return std::hash<uint64_t>()(k.ino * 0x9e3779b97f4a7c15ULL ^ k.dev ^ (k.tag << 1));
    }
};

using FdRef = std::shared_ptr<const UniqueFd>;

struct Inode : std::enable_shared_from_this<Inode> {
    std::mutex mu;  // guards every field below except nlookup, key and referenced
    bool has_upper = false;  // an entry in the layer backs it
    bool has_lower = false;  // a host entry backs it (for directories: merged)
    FdRef upper;             // cached O_PATH handles, possibly evicted
    FdRef lower;
    // Without FUSE OPEN (the kernel opens files without asking): the one
    // descriptor every read and write of this file goes through, on the
    // layer's copy (read-write) once there is one, else on the host's
    // (read-only); possibly evicted like the others.
    FdRef data;
    bool data_upper = false;
    // Its name went (unlink, rename over) while it was only a host file: it
    // can no longer be copied up into the layer (copy_up refuses, so it never
    // gets an upper), and a write makes data a private copy (an unnamed file
    // in the work directory).
    bool detached = false;
    bool data_private = false;
    bool pinned = false;     // handles must stay: the name no longer leads here
    bool in_cache = false;   // listed in the FdCache ring
    // Where the entry lives in the merged tree; copy-up and re-opening need it.
    std::shared_ptr<Inode> parent;
    std::string name;
    mode_t type = 0;              // S_IFMT as presented
    bool opaque = false;          // directory whose lower part is hidden
    std::optional<layer::Override> ovr;  // presented owner/mode of the upper entry
    uint64_t ino = 0;             // st_ino presented inside, fixed for the Inode's life
    // Made by this server and no security.capability set since: the kernel
    // asks for it before the first write of every new file, and the answer
    // needs no system call. (Other xattrs a new file may carry from birth:
    // inherited ACLs, LSM labels.)
    bool no_file_caps = false;
    // A file only the host backs: the mtime and ctime (ns) last shown to the
    // kernel, to tell it when the host changed the data it may have cached
    // (Filesystem::host_data_changed).
    std::optional<std::array<int64_t, 2>> host_shown;
    std::atomic<bool> referenced{false};  // used since the cache last looked
    // A directory's merged listing while the kernel reads it (READDIR at
    // offset 0 makes it, the empty READDIR at its end drops it).
    std::shared_ptr<const Listing> listing;

    InodeKey key;                 // guarded by InodeTable::mu_
    uint64_t nlookup = 0;         // kernel references; guarded by InodeTable::mu_
};

// Both handles of an Inode, held for the duration of one operation.
struct Fds {
    FdRef upper;
    FdRef lower;
    int u() const { return upper ? upper->get() : -1; }
    int l() const { return lower ? lower->get() : -1; }
    // The object whose attributes and data the view shows.
    int top() const { return upper ? upper->get() : l(); }
};

class InodeTable {
public:
    // Returns the Inode for key with one more kernel reference, creating it
    // with make() if absent. make() runs under the table lock: keep it cheap.
    template <typename Make>
    std::shared_ptr<Inode> find_or_insert(const InodeKey& key, Make make) {
        std::lock_guard lock(mu_);
        auto it = index_.find(key);
        if (it != index_.end()) {
            it->second->nlookup++;
            return live_.at(it->second);
        }
        std::shared_ptr<Inode> in = make();
        if (!in) return nullptr;
        in->key = key;
        in->nlookup = 1;
        index_.emplace(key, in.get());
        live_.emplace(in.get(), in);
        return in;
    }

    std::shared_ptr<Inode> find(const InodeKey& key) {
        std::lock_guard lock(mu_);
        auto it = index_.find(key);
        return it == index_.end() ? nullptr : live_.at(it->second);
    }

    // The object backing `in` changed (copy-up): later lookups find it by the new key.
    void rekey(Inode* in, const InodeKey& key) {
        std::lock_guard lock(mu_);
        auto it = index_.find(in->key);
        if (it != index_.end() && it->second == in) index_.erase(it);
        in->key = key;
        if (live_.count(in)) index_.emplace(key, in);  // no-op if another Inode has the key
    }

    // The object behind `in` lost its name: a new object may reuse its inode
    // number, so lookups must no longer find `in` by it.
    void unhash(Inode* in) {
        std::lock_guard lock(mu_);
        auto it = index_.find(in->key);
        if (it != index_.end() && it->second == in) index_.erase(it);
    }

    void add_lookup(Inode* in) {
        std::lock_guard lock(mu_);
        in->nlookup++;
    }

    // Drops n kernel references; at zero the Inode leaves the table and dies
    // when the last child holding it as parent does.
    void forget(Inode* in, uint64_t n) {
        std::shared_ptr<Inode> doomed;  // destroyed outside the lock
        std::lock_guard lock(mu_);
        in->nlookup = n >= in->nlookup ? 0 : in->nlookup - n;
        if (in->nlookup) return;
        auto it = index_.find(in->key);
        if (it != index_.end() && it->second == in) index_.erase(it);
        auto l = live_.find(in);
        if (l != live_.end()) {
            doomed = std::move(l->second);
            live_.erase(l);
        }
    }

    size_t size() {
        std::lock_guard lock(mu_);
        return live_.size();
    }

private:
    std::mutex mu_;
    std::unordered_map<InodeKey, Inode*, InodeKeyHash> index_;  // by backing object
    std::unordered_map<Inode*, std::shared_ptr<Inode>> live_;   // owns every Inode the kernel knows
};

}  // namespace mbx::overlay
