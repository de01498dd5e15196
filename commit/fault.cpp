#include "commit/fault.h"

#include <signal.h>

#include <atomic>
#include <cstdlib>

namespace mbx::commit {

void fault_point() {
    static const long at = [] {
        const char* v = std::getenv("MBX_FAULT_AT");
        return v ? std::strtol(v, nullptr, 10) : 0L;
    }();
    static std::atomic<long> passed{0};
    if (at > 0 && ++passed == at) ::raise(SIGKILL);
}

}  // namespace mbx::commit
