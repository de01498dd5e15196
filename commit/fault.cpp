#include "commit/fault.h"

#include <signal.h>

#include <atomic>
#include <cstdlib>

namespace mbx::commit {

namespace {

long env_number(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::strtol(v, nullptr, 10) : 0L;
}

}  // namespace

void fault_point() {
    static const long kill_at = env_number("MBX_FAULT_AT");
    static const long pause_at = env_number("MBX_PAUSE_AT");
    static std::atomic<long> passed{0};
    long n = ++passed;
    if (n == kill_at) ::raise(SIGKILL);
    if (n == pause_at) ::raise(SIGSTOP);
}

}  // namespace mbx::commit
