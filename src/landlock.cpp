#include "src/landlock.h"

#include <elf.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "overlay/sys/unique_fd.h"

namespace mbx {

namespace {

// Rights and structures of ABIs newer than Debian 12's headers (Linux 6.1).
constexpr uint64_t kTruncate = 1ULL << 14;   // ABI 3
constexpr uint64_t kIoctlDev = 1ULL << 15;   // ABI 5
constexpr uint64_t kScopeAbstractUnix = 1ULL << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ULL << 1;        // ABI 6
constexpr uint64_t kNetBindTcp = 1ULL << 0;         // ABI 4
constexpr uint64_t kNetConnectTcp = 1ULL << 1;      // ABI 4
constexpr int kRuleNetPort = 2;

struct NetPortAttr {
    uint64_t allowed_access;
    uint64_t port;
};

struct RulesetAttr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;  // ABI 4
    uint64_t scoped;              // ABI 6
};

constexpr uint64_t kWriteRights =
    LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
    LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
    LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
    LANDLOCK_ACCESS_FS_MAKE_SYM;

std::string failed(const std::string& what, const std::string& path = "") {
    return what + (path.empty() ? "" : " " + path) + ": " + std::strerror(errno);
}

}  // namespace

int landlock_abi() {
    long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return abi > 0 ? static_cast<int>(abi) : 0;
}

std::string elf_interpreter(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    Elf64_Ehdr eh;
    if (!fd || ::pread(fd.get(), &eh, sizeof eh, 0) != sizeof eh || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr))
        return "";
    for (unsigned i = 0; i < eh.e_phnum && i < 64; ++i) {
        Elf64_Phdr ph;
        if (::pread(fd.get(), &ph, sizeof ph, off_t(eh.e_phoff + i * sizeof ph)) != sizeof ph) return "";
        if (ph.p_type != PT_INTERP || ph.p_filesz == 0 || ph.p_filesz > 4096) continue;
        std::string interp(ph.p_filesz, '\0');
        if (::pread(fd.get(), interp.data(), interp.size(), off_t(ph.p_offset)) != ssize_t(interp.size())) return "";
        interp.resize(std::strlen(interp.c_str()));
        return interp;
    }
    return "";
}

std::string restrict_with_landlock(const LandlockRules& rules) {
    int abi = landlock_abi();
    if (abi < 1) return "Landlock is not available";
    uint64_t fs = kWriteRights;
    if (abi >= 2) fs |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3) fs |= kTruncate;
    if (abi >= 5) fs |= kIoctlDev;
    uint64_t write_rights = fs;
    bool exec_listed = !rules.exec_allow.empty();
    if (exec_listed) fs |= LANDLOCK_ACCESS_FS_EXECUTE;

    RulesetAttr attr{fs, 0, 0};
    size_t size = sizeof attr.handled_access_fs;
    if (rules.restrict_tcp || rules.bind_ports) {
        if (abi < 4) return "TCP port rules need Landlock ABI 4 (this kernel has " + std::to_string(abi) + ")";
        attr.handled_access_net = (rules.restrict_tcp ? kNetConnectTcp : 0) | kNetBindTcp;
        size = offsetof(RulesetAttr, scoped);
    }
    if (abi >= 6) {
        attr.scoped = kScopeSignal | (rules.scope_abstract_unix ? kScopeAbstractUnix : 0);
        size = sizeof attr;
    }
    UniqueFd ruleset(static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, size, 0)));
    if (!ruleset) return failed("landlock_create_ruleset");

    auto allow = [&](const std::string& path, uint64_t access) -> std::string {
        UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
        if (!fd) return failed("open", path);
        struct landlock_path_beneath_attr pb {};
        pb.allowed_access = access;
        pb.parent_fd = fd.get();
        if (::syscall(SYS_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
            return failed("landlock_add_rule", path);
        return "";
    };
    // Everything mounted in the view is beneath its root: one rule.
    if (auto e = allow("/", write_rights); !e.empty()) return e;
    for (auto& rule : rules.exec_allow) {
        // DIR/* and DIR/**: Landlock's rules cover a whole tree, so DIR/* also
        // admits the files of DIR's subdirectories here (mbx-run(1)).
        std::string p = rule;
        bool dir = false;
        for (const char* g : {"/**", "/*"})
            if (!dir && p.ends_with(g)) {
                p.resize(p.size() - std::strlen(g));
                if (p.empty()) p = "/";
                dir = true;
            }
        if (auto e = allow(p, LANDLOCK_ACCESS_FS_EXECUTE); !e.empty()) return e;
        // The kernel opens a program's loader for execution as well (for a
        // directory: the system's, that of /bin/sh).
        if (std::string interp = elf_interpreter(dir ? "/bin/sh" : p); !interp.empty()) {
            char real[4096];
            if (::realpath(interp.c_str(), real))
                if (auto e = allow(real, LANDLOCK_ACCESS_FS_EXECUTE); !e.empty()) return e;
        }
    }
    auto allow_port = [&](uint64_t access, uint16_t port) -> std::string {
        NetPortAttr np{access, port};
        if (::syscall(SYS_landlock_add_rule, ruleset.get(), kRuleNetPort, &np, 0) < 0)
            return failed("landlock_add_rule", "port " + std::to_string(port));
        return "";
    };
    // The allowed ports may be connected to, and bound unless net.listen says which.
    for (uint16_t port : rules.tcp_ports)
        if (auto e = allow_port(kNetConnectTcp | (rules.bind_ports ? 0 : kNetBindTcp), port); !e.empty()) return e;
    if (rules.bind_ports)
        for (uint16_t port : *rules.bind_ports)
            if (auto e = allow_port(kNetBindTcp, port); !e.empty()) return e;
    // Needed without CAP_SYS_ADMIN; the view is nosuid anyway.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return failed("prctl(PR_SET_NO_NEW_PRIVS)");
    if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0) < 0) return failed("landlock_restrict_self");
    return "";
}

}  // namespace mbx
