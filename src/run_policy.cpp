#include "src/run_policy.h"

#include <arpa/inet.h>
#include <limits.h>
#include <dirent.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "src/error.h"

namespace mbx {

namespace {

std::string caller_home() {
    if (struct passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir && pw->pw_dir[0] == '/') return pw->pw_dir;
    if (const char* h = std::getenv("HOME"); h && *h == '/') return h;
    return "/";
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string part; std::getline(ss, part, sep);)
        if (!part.empty()) out.push_back(part);
    return out;
}

bool is_ip(const std::string& a) {
    unsigned char buf[16];
    std::string addr = a.substr(0, a.find('/'));
    return ::inet_pton(AF_INET, addr.c_str(), buf) == 1 || ::inet_pton(AF_INET6, addr.c_str(), buf) == 1;
}

// The host part of a net.allow entry if it is a name, else "" (an address:
// IPv6 bracketed or bare, IPv4 with or without a port).
std::string host_name_of(const std::string& rule) {
    if (rule.starts_with("[") || is_ip(rule)) return "";
    std::string host = rule.substr(0, rule.rfind(':'));
    return is_ip(host) ? "" : host;
}

// One net.allow entry as --net allow= rules: host names resolved now.
std::vector<std::string> resolve_rule(const std::string& rule) {
    std::string host = host_name_of(rule);
    if (host.empty()) return {rule};
    std::string ports = rule.substr(host.size());
    struct addrinfo hints {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo* res = nullptr;
    if (int e = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); e != 0)
        throw UserError("net.allow \"" + rule + "\": cannot resolve " + host + ": " + ::gai_strerror(e));
    std::vector<std::string> out;
    for (auto* ai = res; ai; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN] = "";
        if (ai->ai_family == AF_INET)
            ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, text, sizeof text);
        else if (ai->ai_family == AF_INET6)
            ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, text, sizeof text);
        else
            continue;
        std::string r = ai->ai_family == AF_INET6 ? "[" + std::string(text) + "]" + ports : text + ports;
        if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
    }
    ::freeaddrinfo(res);
    return out;
}

// The name servers of /etc/resolv.conf, port 53.
std::vector<std::string> resolvers() {
    std::vector<std::string> out;
    std::ifstream in("/etc/resolv.conf");
    for (std::string line; std::getline(in, line);) {
        std::istringstream ls(line);
        std::string word, addr;
        if (ls >> word >> addr && word == "nameserver" && is_ip(addr))
            out.push_back(addr.find(':') != std::string::npos ? "[" + addr + "]:53" : addr + ":53");
    }
    return out;
}

// Hiding a directory the run starts in (or above it) hides everything
// beneath it but the way down to the current directory.
std::vector<std::string> hidden_except_cwd(const std::string& hidden, const std::string& cwd) {
    if (cwd != hidden && !cwd.starts_with(hidden == "/" ? "/" : hidden + "/")) return {hidden};
    std::vector<std::string> out;
    std::string dir = hidden;
    for (auto& step : split(cwd.substr(hidden.size()), '/')) {
        DIR* d = ::opendir(dir.c_str());
        if (!d) break;
        while (struct dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name != "." && name != ".." && name != step) out.push_back((dir == "/" ? "" : dir) + "/" + name);
        }
        ::closedir(d);
        dir = (dir == "/" ? "" : dir) + "/" + step;
    }
    return out;
}

}  // namespace

std::string net_spec(const Profile::Net& n) {
    std::string mode = n.mode.value_or(n.allow.empty() ? "host" : "allow");
    if (n.dns.value_or(false) && mode != "allow")
        throw UserError("net.dns = true is for mode = \"allow\" (mode \"" + mode + "\" decides DNS by itself)");
    if (mode != "allow") return mode;
    std::vector<std::string> rules;
    for (auto& a : n.allow)
        for (auto& r : resolve_rule(a)) rules.push_back(r);
    if (n.dns.value_or(false)) {
        auto ns = resolvers();
        if (ns.empty()) throw UserError("net.dns = true: /etc/resolv.conf names no name server");
        rules.insert(rules.end(), ns.begin(), ns.end());
    }
    if (rules.empty()) throw UserError("net mode \"allow\" allows nothing: add net.allow entries, or use mode = \"none\"");
    std::string spec = "allow=";
    for (size_t i = 0; i < rules.size(); ++i) spec += (i ? "," : "") + rules[i];
    return spec;
}

Profile flags_profile(const RunOptions& opt, FlagsGiven given) {
    Profile p;
    p.sources = {"the command line"};
    for (auto& h : opt.hide) {
        struct stat st;
        if (!h.starts_with("/")) throw UserError("--hide " + h + ": give an absolute path");
        if (::stat(h.c_str(), &st) < 0) throw UserError("--hide " + h + ": " + std::strerror(errno));
    }
    p.fs.hidden = opt.hide;
    p.fs.direct = opt.bind;
    p.fs.writable = opt.writable;
    p.fs.readonly = opt.readonly;
    if (given.net) {
        if (opt.net.starts_with("allow=")) {
            p.net.mode = "allow";
            p.net.allow = split(opt.net.substr(6), ',');
        } else {
            p.net.mode = opt.net;
        }
    }
    for (auto& a : opt.exec_allow)
        for (auto& e : split(a, ',')) p.exec.allow.push_back(e);
    p.exec.deny = opt.exec_deny;
    // The flags' own wording for what expand_paths would refuse.
    for (auto* list : {&p.exec.allow, &p.exec.deny})
        for (auto& e : *list)
            if (!e.starts_with("/"))
                throw UserError((list == &p.exec.allow ? "--exec-allow " : "--exec-deny ") + e + ": give an absolute path");
    for (auto& b : opt.bind)
        if (!b.starts_with("/")) throw UserError("--bind " + b + ": give an absolute path");
    if (opt.keep_user) p.run.fake_root = false;
    if (opt.keep_tmp) p.run.keep_tmp = true;
    if (given.guard) p.run.guard = opt.guard;
    return p;
}

Profile expand_paths(const Profile& in) {
    Profile p = in;
    std::string home = caller_home(), cwd = current_dir();
    auto each = [&](std::vector<std::string>& v, const char* key) {
        for (auto& s : v) s = expand_profile_path(s, key, home, cwd);
    };
    each(p.fs.writable, "fs.writable");
    each(p.fs.hidden, "fs.hidden");
    each(p.fs.readonly, "fs.readonly");
    each(p.fs.direct, "fs.direct");
    each(p.exec.allow, "exec.allow");
    each(p.exec.deny, "exec.deny");
    return p;
}

void apply_policy(const Profile& p, RunOptions& opt) {
    std::string cwd = current_dir();
    opt.hide.clear();
    for (auto& h : p.fs.hidden) {
        // As getcwd() names the current directory: symlinks resolved.
        char real[PATH_MAX];
        if (!::realpath(h.c_str(), real)) continue;  // nothing there to hide
        for (auto& x : hidden_except_cwd(real, cwd)) opt.hide.push_back(x);
    }
    opt.bind.clear();
    for (auto& d : p.fs.direct) {
        struct stat st;
        if (::stat(d.c_str(), &st) < 0) throw UserError("--bind/direct " + d + ": " + std::strerror(errno));
        if (::getuid() != 0 && st.st_uid != ::getuid())
            throw UserError("--bind/direct " + d + ": owned by uid " + std::to_string(st.st_uid) +
                            ", not you: writes there reach the host, so only your own paths may be direct");
        opt.bind.push_back(d);
    }
    opt.writable = p.fs.writable;
    opt.readonly.clear();
    for (auto& r : p.fs.readonly) {
        struct stat st;
        if (::lstat(r.c_str(), &st) == 0) opt.readonly.push_back(r);  // absent: nothing to keep
    }
    opt.net = net_spec(p.net);
    // Host names are resolved again while the sandbox runs (net_refresh.h).
    opt.net_names.reset();
    if (opt.net.starts_with("allow="))
        for (auto& a : p.net.allow)
            if (!host_name_of(a).empty()) opt.net_names = p.net;
    opt.listen = p.net.listen;
    opt.exec_allow = p.exec.allow;
    opt.exec_deny = p.exec.deny;
    opt.deny_interpreters_on_sockets = p.exec.deny_interpreters_on_sockets.value_or(false);
    opt.keep_user = !p.run.fake_root.value_or(true);
    opt.keep_tmp = p.run.keep_tmp.value_or(false);
    opt.guard = p.run.guard.value_or("auto");
    opt.limits = p.limits;
}

}  // namespace mbx
