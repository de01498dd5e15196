#include "overlay/fd_cache.h"

namespace mbx::overlay {

void FdCache::added(Inode& in, size_t n) {
    held_.fetch_add(n, std::memory_order_relaxed);
    if (in.in_cache || in.pinned) return;
    in.in_cache = true;
    std::lock_guard lock(mu_);
    ring_.push_back(in.weak_from_this());
}

void FdCache::trim() {
    if (held_.load(std::memory_order_relaxed) <= budget_) return;
    std::lock_guard lock(mu_);
    // Evict down to 90% so that trimming is not needed on every miss.
    size_t target = budget_ - budget_ / 10;
    size_t passes = ring_.size() * 2;
    while (held_.load(std::memory_order_relaxed) > target && !ring_.empty() && passes--) {
        std::shared_ptr<Inode> in = ring_.front().lock();
        ring_.pop_front();
        if (!in) continue;
        // Never wait for an Inode while holding the ring (callers of added()
        // hold their Inode's lock and then take the ring's).
        std::unique_lock ilock(in->mu, std::try_to_lock);
        if (!ilock) {
            ring_.push_back(in);
            continue;
        }
        if (in->pinned) {
            in->in_cache = false;
            continue;
        }
        if (in->referenced.exchange(false, std::memory_order_relaxed)) {
            ring_.push_back(in);
            continue;
        }
        size_t n = (in->upper ? 1 : 0) + (in->lower ? 1 : 0) + (in->data ? 1 : 0);
        in->upper.reset();
        in->lower.reset();
        in->data.reset();
        in->in_cache = false;
        held_.fetch_sub(n, std::memory_order_relaxed);
    }
}

}  // namespace mbx::overlay
