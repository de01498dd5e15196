#include "src/guard_protocol.h"

#include <charconv>
#include <cstdlib>
#include <sstream>

#include "src/error.h"

namespace mbx {

namespace {

std::string hex(const std::string& s) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string unhex(const std::string& s) {
    if (s.size() % 2) throw UserError("bad hex path");
    std::string out;
    for (size_t i = 0; i < s.size(); i += 2) {
        unsigned v = 0;
        auto [end, ec] = std::from_chars(s.data() + i, s.data() + i + 2, v, 16);
        if (ec != std::errc() || end != s.data() + i + 2) throw UserError("bad hex path");
        out += static_cast<char>(v);
    }
    return out;
}

uint64_t number(const std::string& s) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) throw UserError("bad number '" + s + "'");
    return v;
}

std::string exec_path(const std::string& h) {
    std::string p = unhex(h);
    if (p.empty() || p[0] != '/' || p.size() >= MBX_GUARD_PATH_LEN || p.find('\0') != std::string::npos)
        throw UserError("bad exec path");
    return p;
}

// An exec-allow, exec-deny or exec-interpreter line into exec (bounded);
// false for other keys.
bool exec_line(const std::string& key, const std::string& rest, ExecPolicy& exec) {
    auto* list = key == "exec-allow"         ? &exec.allow
                 : key == "exec-deny"        ? &exec.deny
                 : key == "exec-interpreter" ? &exec.interpreters
                                             : nullptr;
    if (!list) return false;
    if (exec.allow.size() + exec.deny.size() + exec.interpreters.size() >= kGuardMaxExec)
        throw UserError("too many exec lines");
    list->push_back(exec_path(rest));
    return true;
}

}  // namespace

namespace {

// Checks the request's verb, then calls line_fn(key, rest) for each line after it.
template <class F>
void for_each_line(const std::string& request, const std::string& verb, F line_fn) {
    if (request_verb(request) != verb) throw UserError("not " + std::string(verb == "enroll" ? "an " : "a ") + verb + " request");
    std::istringstream in(request);
    std::string line;
    std::getline(in, line);
    std::getline(in, line);
    while (std::getline(in, line)) {
        auto sp = line.find(' ');
        line_fn(line.substr(0, sp), sp == std::string::npos ? std::string() : line.substr(sp + 1));
    }
}

}  // namespace

std::string guard_socket_path() {
    const char* env = std::getenv("MBX_GUARD_SOCKET");
    return env && *env ? env : "/run/mbx/guard.sock";
}

std::string encode_enroll(const GuardPolicy& p) {
    std::string r = "mbx-guard 1\nenroll\n";
    for (auto d : p.writable_devs) r += "dev " + std::to_string(d) + "\n";
    for (auto& f : p.writable_files) r += "file " + std::to_string(f.dev) + " " + std::to_string(f.ino) + "\n";
    for (auto& b : p.bind_roots) r += "bind " + std::to_string(b.dev) + " " + std::to_string(b.ino) + "\n";
    r += "net " + p.net.spec + "\n";
    for (auto& n : p.net.rules)
        if (n.family == MBX_NET_LISTEN_FAMILY)
            r += "listen " + std::to_string(n.port_lo) + "-" + std::to_string(n.port_hi) + "\n";
    for (auto& a : p.exec.allow) r += "exec-allow " + hex(a) + "\n";
    for (auto& d : p.exec.deny) r += "exec-deny " + hex(d) + "\n";
    for (auto& i : p.exec.interpreters) r += "exec-interpreter " + hex(i) + "\n";
    if (p.complain) r += "complain\n";
    if (p.monitor) r += "monitor\n";
    return r;
}

std::string request_verb(const std::string& request) {
    if (request.size() > kGuardMaxRequest) throw UserError("request too large");
    std::istringstream in(request);
    std::string line;
    if (!std::getline(in, line) || line != "mbx-guard 1") throw UserError("not an mbx-guard 1 request");
    if (!std::getline(in, line) || (line != "enroll" && line != "policy" && line != "show"))
        throw UserError("unknown request (want enroll, policy or show)");
    return line;
}

std::string encode_policy_change(const PolicyChange& c) {
    std::string r = "mbx-guard 1\npolicy\n";
    if (c.net) r += "net " + c.net->spec + "\n";
    if (c.exec) {
        r += "exec-reset\n";
        for (auto& a : c.exec->allow) r += "exec-allow " + hex(a) + "\n";
        for (auto& d : c.exec->deny) r += "exec-deny " + hex(d) + "\n";
    }
    return r;
}

PolicyChange decode_policy_change(const std::string& request) {
    PolicyChange c;
    ExecPolicy exec;
    bool reset = false;
    for_each_line(request, "policy", [&](const std::string& key, const std::string& rest) {
        if (key == "net") {
            if (c.net) throw UserError("two net lines");
            c.net = parse_net(rest);
        } else if (key == "exec-reset" && rest.empty()) {
            reset = true;
        } else if (!exec_line(key, rest, exec)) {
            throw UserError("unknown line '" + key.substr(0, 32) + "'");
        }
    });
    if (!exec.allow.empty() || !exec.deny.empty() || reset) {
        if (!reset) throw UserError("exec lines without exec-reset");
        c.exec = std::move(exec);
    }
    return c;
}

GuardPolicy decode_enroll(const std::string& request) {
    GuardPolicy p;
    bool have_net = false;
    std::vector<std::string> listen;
    for_each_line(request, "enroll", [&](const std::string& key, const std::string& rest) {
        auto pair = [&]() {
            auto s2 = rest.find(' ');
            if (s2 == std::string::npos) throw UserError(key + ": want DEV INO");
            return GuardPolicy::FileId{number(rest.substr(0, s2)), number(rest.substr(s2 + 1))};
        };
        if (key == "dev") {
            if (p.writable_devs.size() >= MBX_GUARD_MAX_DEVS) throw UserError("too many dev lines");
            p.writable_devs.push_back(number(rest));
        } else if (key == "file") {
            if (p.writable_files.size() >= MBX_GUARD_MAX_FILES) throw UserError("too many file lines");
            p.writable_files.push_back(pair());
        } else if (key == "bind") {
            if (p.bind_roots.size() >= kGuardMaxBinds) throw UserError("too many bind lines");
            p.bind_roots.push_back(pair());
        } else if (key == "net") {
            if (have_net) throw UserError("two net lines");
            p.net = parse_net(rest);
            have_net = true;
        } else if (key == "complain" && rest.empty()) {
            p.complain = true;
        } else if (key == "monitor" && rest.empty()) {
            p.monitor = true;
        } else if (key == "listen") {
            if (listen.size() >= MBX_GUARD_MAX_NET_RULES) throw UserError("too many listen lines");
            listen.push_back(rest);
        } else if (!exec_line(key, rest, p.exec)) {
            throw UserError("unknown line '" + key.substr(0, 32) + "'");
        }
    });
    if (!have_net) throw UserError("no net line");
    add_listen_rules(p.net, listen);
    return p;
}

}  // namespace mbx
