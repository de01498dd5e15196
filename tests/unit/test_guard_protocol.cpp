// mbx-guardd's request format: what mbx run sends decodes to the same policy;
// anything else is refused with a reason, never half-read.
#include <catch2/catch.hpp>
#include <string>

#include "src/error.h"
#include "src/guard_protocol.h"

using namespace mbx;

TEST_CASE("an enroll request round-trips its policy") {
    GuardPolicy p;
    p.writable_devs = {64768, 40};
    p.writable_files = {{1, 2}};
    p.bind_roots = {{64768, 1234567}};
    p.net = parse_net("allow=10.0.0.0/8:443,[::1]:80-89");
    add_listen_rules(p.net, {"8080", "9000-9010"});
    p.exec.allow = {"/usr/bin/make", "/usr/bin/odd name\nwith newline"};
    p.exec.deny = {"/usr/bin/nc", "/opt/tools/**"};
    p.exec.interpreters = {"/usr/bin/dash", "/usr/bin/python3.11"};
    GuardPolicy q = decode_enroll(encode_enroll(p));
    CHECK(q.writable_devs == p.writable_devs);
    REQUIRE(q.writable_files.size() == 1);
    CHECK(q.writable_files[0].ino == 2);
    REQUIRE(q.bind_roots.size() == 1);
    CHECK(q.bind_roots[0].ino == 1234567);
    CHECK(q.net.mode == MBX_NET_ALLOW);
    REQUIRE(q.net.rules.size() == 4);
    CHECK(q.net.has_listen());
    CHECK(q.net.rules[3].family == MBX_NET_LISTEN_FAMILY);
    CHECK(q.net.rules[3].port_lo == 9000);
    CHECK(q.net.rules[3].port_hi == 9010);
    CHECK(q.exec.allow == p.exec.allow);
    CHECK(q.exec.deny == p.exec.deny);
    CHECK(q.exec.interpreters == p.exec.interpreters);
}

TEST_CASE("malformed requests are refused with a reason") {
    const std::string head = "mbx-guard 1\nenroll\n";
    auto refused = [](const std::string& r) {
        try {
            decode_enroll(r);
        } catch (const UserError& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(refused("") == "not an mbx-guard 1 request");
    CHECK(refused("GET / HTTP/1.0\r\n\r\n") == "not an mbx-guard 1 request");
    CHECK(refused("mbx-guard 1\nsudo\n") == "unknown request (want enroll, policy or show)");
    CHECK(refused("mbx-guard 1\npolicy\n") == "not an enroll request");
    CHECK(refused(head) == "no net line");
    CHECK(refused(head + "net host\nnet none\n") == "two net lines");
    CHECK(refused(head + "net host\ndev -1\n") == "bad number '-1'");
    CHECK(refused(head + "net host\ndev 1x\n") == "bad number '1x'");
    CHECK(refused(head + "net host\nbind 1\n") == "bind: want DEV INO");
    CHECK(refused(head + "net host\nexec-allow 2f7\n") == "bad hex path");
    CHECK(refused(head + "net host\nexec-allow 7573\n") == "bad exec path");  // relative
    CHECK(refused(head + "net host\nexec-allow 2f00\n") == "bad exec path");  // a NUL
    CHECK(refused(head + "net host\nsudo yes\n") == "unknown line 'sudo'");
    CHECK(refused(head + "net bogus\n").starts_with("--net bogus"));
    std::string many = head + "net host\n";
    for (int i = 0; i < 17; ++i) many += "dev 1\n";
    CHECK(refused(many) == "too many dev lines");
    CHECK(refused(std::string(kGuardMaxRequest + 1, 'x')) == "request too large");
}

TEST_CASE("a policy change round-trips, and stray exec lines are refused") {
    PolicyChange c;
    c.net = parse_net("none");
    c.exec = ExecPolicy{{"/usr/bin/make"}, {"/usr/bin/nc"}, {}};
    PolicyChange d = decode_policy_change(encode_policy_change(c));
    REQUIRE(d.net);
    CHECK(d.net->mode == MBX_NET_NONE);
    REQUIRE(d.exec);
    CHECK(d.exec->allow == c.exec->allow);
    CHECK(d.exec->deny == c.exec->deny);
    PolicyChange only_net = decode_policy_change("mbx-guard 1\npolicy\nnet host\n");
    CHECK(!only_net.exec);
    CHECK_THROWS_AS(decode_policy_change("mbx-guard 1\npolicy\nexec-allow 2f62696e2f7368\n"), UserError);
    CHECK(decode_policy_change("mbx-guard 1\npolicy\nexec-reset\n").exec->allow.empty());
    CHECK_THROWS_AS(decode_policy_change("mbx-guard 1\nenroll\nnet host\n"), UserError);
}
