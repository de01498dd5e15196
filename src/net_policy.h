// --net: which addresses a sandbox may connect to, bind and send to.
#pragma once

#include <string>
#include <vector>

#include "bpf/guard.h"

namespace mbx {

struct NetPolicy {
    std::string spec = "host";  // as given to --net
    mbx_guard_net_mode mode = MBX_NET_HOST;
    std::vector<mbx_guard_net_rule> rules;  // for MBX_NET_ALLOW
    // Does it need the guard to be enforced? (none also works with a network
    // namespace alone.)
    bool needs_guard() const { return mode == MBX_NET_LOOPBACK || mode == MBX_NET_ALLOW; }
};

// "host", "none", "loopback" or "allow=RULE,RULE...", where RULE is
// ADDRESS[/PREFIX][:PORT[-PORT]] and an IPv6 address with a port is written
// in brackets: 10.0.0.0/8:443, 127.0.0.1:5432, [2001:db8::]/32:80-89, ::1.
// Throws UserError saying what is wrong.
NetPolicy parse_net(const std::string& value);

}  // namespace mbx
