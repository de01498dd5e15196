#include "src/exec_policy.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "bpf/guard.h"
#include "src/error.h"

namespace mbx {

namespace {

void add_paths(const std::vector<std::string>& values, const char* option, std::vector<std::string>& out) {
    for (auto& value : values) {
        std::stringstream ss(value);
        for (std::string p; std::getline(ss, p, ',');) {
            if (p.empty() || p[0] != '/') throw UserError(std::string(option) + " " + p + ": give an absolute path");
            char resolved[PATH_MAX];
            if (!::realpath(p.c_str(), resolved))
                throw UserError(std::string(option) + " " + p + ": " + std::strerror(errno));
            struct stat st;
            if (::stat(resolved, &st) < 0 || !S_ISREG(st.st_mode))
                throw UserError(std::string(option) + " " + p + ": not a regular file");
            if (std::strlen(resolved) >= MBX_GUARD_PATH_LEN)
                throw UserError(std::string(option) + " " + p + ": the guard takes paths shorter than " +
                                std::to_string(MBX_GUARD_PATH_LEN) + " bytes");
            out.emplace_back(resolved);
        }
    }
}

}  // namespace

ExecPolicy parse_exec_policy(const std::vector<std::string>& allow, const std::vector<std::string>& deny) {
    ExecPolicy p;
    add_paths(allow, "--exec-allow", p.allow);
    add_paths(deny, "--exec-deny", p.deny);
    return p;
}

}  // namespace mbx
