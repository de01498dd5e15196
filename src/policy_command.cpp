#include "src/policy_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "src/error.h"
#include "src/exec_policy.h"
#include "src/guard_client.h"
#include "src/guard_protocol.h"
#include "src/net_policy.h"
#include "src/pidfd.h"

namespace mbx {

int cmd_policy(SessionStore& store, const PolicyArgs& a) {
    std::string name = a.session ? *a.session : store.resolve(std::nullopt);
    SessionStore::check_name(name);
    std::string dir = store.home() + "/" + name;
    if (::access(dir.c_str(), F_OK) != 0) throw UserError("no session '" + name + "': see 'mbx list'");
    bool change = a.net || !a.exec_allow.empty() || !a.exec_deny.empty() || a.exec_none;
    if (change == a.show)
        throw UserError("say what to do: mbx policy [SESSION] --show, or --net MODE / --exec-allow / --exec-deny / --exec-any");
    PolicyChange c;
    if (a.net) c.net = parse_net(*a.net);
    if (!a.exec_allow.empty() || !a.exec_deny.empty() || a.exec_none) {
        if (a.exec_none && (!a.exec_allow.empty() || !a.exec_deny.empty()))
            throw UserError("--exec-any drops the exec lists: give it alone");
        c.exec = parse_exec_policy(a.exec_allow, a.exec_deny);
    }

    std::ifstream in(dir + "/" + kSandboxFile);
    pid_t pid = 0;
    std::string kind;
    if (!(in >> pid >> kind))
        throw UserError("session " + name + " is not running: mbx policy changes a running sandbox");
    if (kind != "daemon")
        throw UserError("session " + name + "'s guard was loaded by mbx run itself (as root): live policy changes "
                        "need mbx-guardd (run it as a user, or with mbx-guardd running)");
    UniqueFd pidfd = open_pidfd(pid);
    if (!pidfd) throw UserError("session " + name + " is not running: mbx policy changes a running sandbox");
    auto client = GuardClient::connect(guard_socket_path());
    if (a.show) {
        std::string reply = client->request("mbx-guard 1\nshow\n", pidfd.get());
        GuardPolicy p = decode_enroll(reply.substr(3));
        std::printf("net %s\n", p.net.spec.c_str());
        for (auto& x : p.exec.allow) std::printf("exec-allow %s\n", x.c_str());
        for (auto& x : p.exec.deny) std::printf("exec-deny %s\n", x.c_str());
        return 0;
    }
    client->request(encode_policy_change(c), pidfd.get());
    return 0;
}

}  // namespace mbx
