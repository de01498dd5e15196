// The effective policy of mbx run: a profile (--profile) with the command
// line's flags laid over it, made concrete for the launcher (paths expanded,
// host names resolved, ownership of direct paths checked).
#pragma once

#include "src/launcher.h"
#include "src/profile.h"

namespace mbx {

// Which of run's flags the command line gave (the others keep the profile's value).
struct FlagsGiven {
    bool net = false, guard = false;
};

// The policy flags of opt (as CLI11 filled them) as a profile. Checks what
// only the flags promise: a --hide path must exist.
Profile flags_profile(const RunOptions& opt, FlagsGiven given);

// p's paths made absolute (~, $HOME, $CWD) and normalised; throws UserError.
Profile expand_paths(const Profile& p);

// A profile's [net] as a --net spec: host names resolved now, with dns the
// name servers of /etc/resolv.conf; throws UserError.
std::string net_spec(const Profile::Net& n);

// Sets opt's policy fields (hide, bind, writable, readonly, net, exec_*,
// keep_user, keep_tmp, guard, limits, ...) from the expanded profile p.
void apply_policy(const Profile& p, RunOptions& opt);

}  // namespace mbx
