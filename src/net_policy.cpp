#include "src/net_policy.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "src/error.h"

namespace mbx {

namespace {

unsigned number(const std::string& s, unsigned max, const std::string& what, const std::string& rule) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > max)
        throw UserError("--net allow=" + rule + ": bad " + what + " '" + s + "'");
    return v;
}

mbx_guard_net_rule parse_rule(const std::string& rule) {
    mbx_guard_net_rule r{};
    std::string addr = rule, ports;
    if (rule.starts_with("[")) {
        auto close = rule.find(']');
        if (close == std::string::npos) throw UserError("--net allow=" + rule + ": missing ']'");
        addr = rule.substr(1, close - 1);
        std::string rest = rule.substr(close + 1);
        if (rest.starts_with("/")) {
            auto colon = rest.find(':');
            addr += rest.substr(0, colon);
            if (colon != std::string::npos) ports = rest.substr(colon + 1);
        } else if (rest.starts_with(":")) {
            ports = rest.substr(1);
        } else if (!rest.empty()) {
            throw UserError("--net allow=" + rule + ": unexpected '" + rest + "'");
        }
    } else if (std::count(rule.begin(), rule.end(), ':') == 1) {  // IPv4 with a port
        addr = rule.substr(0, rule.find(':'));
        ports = rule.substr(rule.find(':') + 1);
    }
    std::string prefix;
    if (auto slash = addr.find('/'); slash != std::string::npos) {
        prefix = addr.substr(slash + 1);
        addr = addr.substr(0, slash);
    }
    if (::inet_pton(AF_INET, addr.c_str(), r.addr) == 1) {
        r.family = AF_INET;
        r.prefix = prefix.empty() ? 32 : number(prefix, 32, "prefix length", rule);
    } else if (::inet_pton(AF_INET6, addr.c_str(), r.addr) == 1) {
        r.family = AF_INET6;
        r.prefix = prefix.empty() ? 128 : number(prefix, 128, "prefix length", rule);
    } else {
        throw UserError("--net allow=" + rule + ": '" + addr +
                        "' is not an IP address (host names are not resolved yet: give addresses)");
    }
    r.port_lo = 0;
    r.port_hi = 65535;
    if (!ports.empty()) {
        auto dash = ports.find('-');
        r.port_lo = number(ports.substr(0, dash), 65535, "port", rule);
        r.port_hi = dash == std::string::npos ? r.port_lo : number(ports.substr(dash + 1), 65535, "port", rule);
        if (r.port_hi < r.port_lo) throw UserError("--net allow=" + rule + ": the port range is backwards");
    }
    return r;
}

}  // namespace

bool NetPolicy::has_listen() const {
    return std::any_of(rules.begin(), rules.end(), [](auto& r) { return r.family == MBX_NET_LISTEN_FAMILY; });
}

void add_listen_rules(NetPolicy& net, const std::vector<std::string>& ports) {
    for (auto& p : ports) {
        if (net.rules.size() == MBX_GUARD_MAX_NET_RULES)
            throw UserError("net.allow and net.listen: at most " + std::to_string(MBX_GUARD_MAX_NET_RULES) +
                            " rules together");
        mbx_guard_net_rule r{};
        r.family = MBX_NET_LISTEN_FAMILY;
        auto dash = p.find('-');
        r.port_lo = number(p.substr(0, dash), 65535, "port", p);
        r.port_hi = dash == std::string::npos ? r.port_lo : number(p.substr(dash + 1), 65535, "port", p);
        if (r.port_hi < r.port_lo) throw UserError("net.listen " + p + ": the port range is backwards");
        net.rules.push_back(r);
    }
}

NetPolicy parse_net(const std::string& value) {
    NetPolicy p;
    p.spec = value;
    if (value == "host") return p;
    if (value == "none") {
        p.mode = MBX_NET_NONE;
        return p;
    }
    if (value == "loopback") {
        p.mode = MBX_NET_LOOPBACK;
        return p;
    }
    if (!value.starts_with("allow=") || value.size() == 6)
        throw UserError("--net " + value + ": use host, none, loopback or allow=ADDRESS[/PREFIX][:PORT[-PORT]],...");
    p.mode = MBX_NET_ALLOW;
    std::string list = value.substr(6);
    size_t start = 0;
    while (start <= list.size()) {
        size_t comma = list.find(',', start);
        std::string rule = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (rule.empty()) throw UserError("--net " + value + ": an empty rule");
        if (p.rules.size() == MBX_GUARD_MAX_NET_RULES)
            throw UserError("--net " + value + ": at most " + std::to_string(MBX_GUARD_MAX_NET_RULES) + " rules");
        p.rules.push_back(parse_rule(rule));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return p;
}

}  // namespace mbx
