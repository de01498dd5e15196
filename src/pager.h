// Paging output on a terminal the way git does: $PAGER (default "less" with
// LESS=FRX), only when stdout is a terminal, until the Pager is destroyed.
#pragma once

#include <sys/types.h>

namespace mbx {

class Pager {
public:
    explicit Pager(bool enabled);
    ~Pager();
    Pager(const Pager&) = delete;
    Pager& operator=(const Pager&) = delete;

private:
    pid_t pid_ = -1;
};

}  // namespace mbx
