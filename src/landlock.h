// The fallback guard's file system part (where BPF LSM cannot be used):
// Landlock, applied by the sandboxed command to itself just before it runs.
// Writes are allowed beneath the sandbox's root only (its view, and what is
// mounted in it: its tmpfs, its device nodes, its --bind paths); anything
// reached otherwise (a host directory behind a passed descriptor) is refused
// with EACCES. With an exec allow list, only those files (and the dynamic
// loaders they name) may be executed. From ABI 6, signals to processes
// outside the sandbox, and optionally connects to abstract UNIX sockets made
// outside it, are refused too; ptrace of them always is (Landlock's scoping).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mbx {

// The Landlock ABI version of this kernel (0: none).
int landlock_abi();

struct LandlockRules {
    std::vector<std::string> exec_allow;  // resolved paths; empty: exec is not restricted
    bool scope_abstract_unix = false;     // refuse abstract UNIX sockets made outside
    // TCP connect and bind only to these ports (ABI 4); else not restricted.
    bool restrict_tcp = false;
    std::vector<uint16_t> tcp_ports;
    // If set, TCP bind only to these ports instead (net.listen).
    std::optional<std::vector<uint16_t>> bind_ports;
};

// Restricts the calling process (and everything it runs from now on).
// Returns "" or what failed.
std::string restrict_with_landlock(const LandlockRules& rules);

// The program interpreter (PT_INTERP) an ELF executable names, or "".
std::string elf_interpreter(const std::string& path);

}  // namespace mbx
