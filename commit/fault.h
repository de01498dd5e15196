// Test-only crash injection: with MBX_FAULT_AT=N in the environment, the
// N-th fault point a commit passes kills the process with SIGKILL, as a crash
// or `kill -9` at that moment would. Fault points sit between the host
// operations that matter (backup kept, file written, renamed, step recorded,
// layer entry removed).
#pragma once

namespace mbx::commit {

void fault_point();

}  // namespace mbx::commit
