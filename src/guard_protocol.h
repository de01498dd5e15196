// mbx-guardd's protocol: a SOCK_SEQPACKET unix socket; the client sends one
// request with its sandbox's pidfd attached (SCM_RIGHTS), the daemon answers
// "ok" or "error MESSAGE", then sends "E JSON" per audit record or denial of
// that sandbox and "X" when the sandbox has ended. A request is text:
//
//   mbx-guard 1
//   enroll
//   dev ST_DEV             (repeatable: a whole writable file system)
//   file ST_DEV ST_INO     (repeatable: a single writable file)
//   bind ST_DEV ST_INO     (repeatable: a --bind root)
//   net SPEC               (as --net)
//   listen LO-HI           (repeatable: ports it may bind, a profile's net.listen)
//   exec-allow HEX-PATH    (repeatable)
//   exec-deny HEX-PATH     (repeatable)
//   exec-interpreter HEX-PATH  (repeatable: may not run on a socket; the
//                          reverse-shell rule, kept when the lists change)
//   complain               (optional: log would-be denials, enforce none)
//   monitor                (optional: also record every connect, bind and sendto it may make)
//
// A running sandbox's policy is changed by its user with (pidfd: its first
// process, as for enroll; the lines given replace the current ones):
//
//   mbx-guard 1
//   policy
//   net SPEC               (optional)
//   exec-allow HEX-PATH    (any number; with exec-reset, replaces the lists)
//   exec-deny HEX-PATH
//   exec-reset             (the exec lists are replaced, also by none)
//
// and read with "mbx-guard 1\nshow\n": the answer is "ok\n" and the policy
// as in an enroll request.
//
// Nothing in it is trusted: the daemon decodes it strictly, and a policy can
// only deny (it never lets a process do what its user could not).
#pragma once

#include <optional>
#include <string>

#include "src/guard.h"

namespace mbx {

constexpr size_t kGuardMaxRequest = 65536;
constexpr size_t kGuardMaxBinds = 64;   // per sandbox
constexpr size_t kGuardMaxExec = 512;   // per sandbox (exec rules and interpreters)

// /run/mbx/guard.sock, or $MBX_GUARD_SOCKET.
std::string guard_socket_path();

std::string encode_enroll(const GuardPolicy& policy);
// Throws UserError saying what is wrong (the daemon sends it back).
GuardPolicy decode_enroll(const std::string& request);

// The first two lines' verb: "enroll", "policy" or "show" (throws otherwise).
std::string request_verb(const std::string& request);

struct PolicyChange {
    std::optional<NetPolicy> net;
    std::optional<ExecPolicy> exec;  // when the exec lists are replaced
};
std::string encode_policy_change(const PolicyChange& c);
PolicyChange decode_policy_change(const std::string& request);

}  // namespace mbx
