// Test-only hooks at the fault points of a commit, the moments between the
// host operations that matter (backup kept, file written, renamed, step
// recorded, layer entry removed):
//   MBX_FAULT_AT=N  the N-th fault point kills the process with SIGKILL, as a
//                   crash or `kill -9` at that moment would;
//   MBX_PAUSE_AT=N  the N-th fault point stops the process (SIGSTOP), so a
//                   test can change the host or the layer before SIGCONT.
#pragma once

namespace mbx::commit {

void fault_point();

}  // namespace mbx::commit
