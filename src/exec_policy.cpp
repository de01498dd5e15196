#include "src/exec_policy.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>

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
            // DIR/* and DIR/**: a directory's files, everything beneath it.
            std::string glob;
            for (const char* g : {"/**", "/*"})
                if (glob.empty() && p.ends_with(g)) glob = g;
            std::string target = p.size() == glob.size() ? "/" : p.substr(0, p.size() - glob.size());
            if (target.find('*') != std::string::npos)
                throw UserError(std::string(option) + " " + p + ": '*' only as DIR/* or DIR/**");
            char resolved[PATH_MAX];
            if (!::realpath(target.c_str(), resolved))
                throw UserError(std::string(option) + " " + p + ": " + std::strerror(errno));
            struct stat st;
            if (!glob.empty() && (::stat(resolved, &st) < 0 || !S_ISDIR(st.st_mode)))
                throw UserError(std::string(option) + " " + p + ": not a directory");
            if (glob.empty() && (::stat(resolved, &st) < 0 || !S_ISREG(st.st_mode)))
                throw UserError(std::string(option) + " " + p + ": not a regular file");
            std::string rule = std::string(resolved == std::string("/") ? "" : resolved) + glob;
            // The guard builds "DIR/**" keys in place behind the path: two bytes of room.
            if (rule.size() + 2 >= MBX_GUARD_PATH_LEN)
                throw UserError(std::string(option) + " " + p + ": the guard takes paths shorter than " +
                                std::to_string(MBX_GUARD_PATH_LEN - 2) + " bytes");
            out.push_back(rule);
        }
    }
}

}  // namespace

bool ExecPolicy::has_dir_rules() const {
    for (const auto* list : {&allow, &deny})
        for (auto& p : *list)
            if (p.ends_with("/*") || p.ends_with("/**")) return true;
    return false;
}

std::map<std::string, uint8_t> ExecPolicy::rule_bits() const {
    std::map<std::string, uint8_t> bits;
    for (auto& a : allow) bits[a] |= MBX_EXEC_ALLOW;
    for (auto& d : deny) bits[d] |= MBX_EXEC_DENY;
    for (auto& i : interpreters) bits[i] |= MBX_EXEC_INTERPRETER;
    return bits;
}

std::vector<std::string> installed_interpreters() {
    static const char* const names[] = {"sh", "dash", "bash", "rbash", "zsh", "ksh", "ksh93", "mksh", "yash",
                                        "fish", "csh", "tcsh", "busybox", "python", "python2", "python3",
                                        "perl", "ruby", "php", "node", "nodejs", "lua", "luajit", "tclsh",
                                        "wish", "guile", "gawk", "awk", "mawk", "expect", "pwsh", "socat"};
    std::vector<std::string> out;
    auto add = [&](const std::string& path) {
        char resolved[PATH_MAX];
        struct stat st;
        if (::realpath(path.c_str(), resolved) && ::stat(resolved, &st) == 0 && S_ISREG(st.st_mode) &&
            std::find(out.begin(), out.end(), resolved) == out.end())
            out.emplace_back(resolved);
    };
    for (const char* dir : {"/usr/local/bin", "/usr/bin", "/bin"}) {
        for (const char* n : names) add(std::string(dir) + "/" + n);
        // Versioned ones: python3.11, perl5.36.0, lua5.4, php8.2, tclsh8.6.
        if (DIR* d = ::opendir(dir)) {
            while (struct dirent* e = ::readdir(d)) {
                std::string n = e->d_name;
                for (const char* v : {"python", "perl", "lua", "php", "tclsh", "ruby"})
                    if (n.starts_with(v) && n.size() > std::strlen(v) && std::isdigit(n[std::strlen(v)]))
                        add(std::string(dir) + "/" + n);
            }
            ::closedir(d);
        }
    }
    return out;
}

ExecPolicy parse_exec_policy(const std::vector<std::string>& allow, const std::vector<std::string>& deny) {
    ExecPolicy p;
    add_paths(allow, "--exec-allow", p.allow);
    add_paths(deny, "--exec-deny", p.deny);
    return p;
}

}  // namespace mbx
