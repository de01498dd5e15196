// A bound on the O_PATH handles Inodes keep open (see inode_table.h).
// Second-chance eviction: a ring of Inodes holding handles; an Inode used
// since the last pass is skipped once, others give their handles up. Hits
// only set an atomic flag; the ring's lock is taken when handles are added.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

#include "overlay/inode_table.h"

namespace mbx::overlay {

class FdCache {
public:
    explicit FdCache(size_t budget) : budget_(budget) {}

    // `in` now holds n more handles (in.mu held by the caller).
    void added(Inode& in, size_t n);
    // Evicts until the handles held are within budget. Call with no lock held.
    void trim();
    size_t held() const { return held_.load(std::memory_order_relaxed); }

    // Trims when it goes out of scope: declared before an Inode's lock_guard,
    // after that lock is released.
    struct TrimOnExit {
        FdCache& cache;
        ~TrimOnExit() { cache.trim(); }
    };

private:
    std::mutex mu_;
    std::deque<std::weak_ptr<Inode>> ring_;
    std::atomic<size_t> held_{0};
    size_t budget_;
};

}  // namespace mbx::overlay
