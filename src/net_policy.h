// --net: which addresses a sandbox may connect to, bind and send to.
#pragma once

#include <string>
#include <vector>

#include "bpf/guard.h"

namespace mbx {

struct NetPolicy {
    std::string spec = "host";  // as given to --net
    mbx_guard_net_mode mode = MBX_NET_HOST;
    // For MBX_NET_ALLOW; also, in any mode, the ports it may bind
    // (family MBX_NET_LISTEN_FAMILY: a profile's net.listen).
    std::vector<mbx_guard_net_rule> rules;
    bool has_listen() const;
    // Does it need the guard to be enforced? (none also works with a network
    // namespace alone.)
    bool needs_guard() const { return mode == MBX_NET_LOOPBACK || mode == MBX_NET_ALLOW || has_listen(); }
};

// Adds net.listen entries ("8080", "9000-9010") as listen rules. Throws
// UserError when they do not fit beside the address rules.
void add_listen_rules(NetPolicy& net, const std::vector<std::string>& ports);

// "host", "none", "loopback" or "allow=RULE,RULE...", where RULE is
// ADDRESS[/PREFIX][:PORT[-PORT]] and an IPv6 address with a port is written
// in brackets: 10.0.0.0/8:443, 127.0.0.1:5432, [2001:db8::]/32:80-89, ::1.
// Throws UserError saying what is wrong.
NetPolicy parse_net(const std::string& value);

}  // namespace mbx
