// User and group id maps of the sandbox's user namespace.
//
// Fake root (the default for a non-root caller): inside uid 0 is the caller;
// with a subordinate range in /etc/subuid (and newuidmap from package uidmap)
// ids 1..65535 map onto it so host owners display faithfully and chown works.
// Without a range only 0 is mapped, and every host owner is presented as 0
// (see overlay::IdPolicy). --user keeps the caller's own ids inside.
// A root caller maps every id onto itself: real root, inside a user namespace.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mbx {

struct IdRange {
    uint32_t inside;
    uint32_t outside;
    uint32_t count;
};

struct SubRange {
    uint32_t start;
    uint32_t count;
};

struct IdMaps {
    std::vector<IdRange> uids;
    std::vector<IdRange> gids;
    bool via_helpers = false;  // written by newuidmap/newgidmap (setuid root)
    bool single = false;       // only one id mapped
    uint32_t inside_uid = 0;   // who the command runs as inside
    uint32_t inside_gid = 0;
};

// The first range of /etc/subuid or /etc/subgid (path) for this user.
std::optional<SubRange> find_subrange(const std::string& path, const std::string& user, uint32_t id);

IdMaps plan_id_maps(uid_t uid, gid_t gid, bool keep_user, std::optional<SubRange> subuid,
                    std::optional<SubRange> subgid);

// Writes the maps of process pid (the parent of a new user namespace does this).
// Throws UserError on failure.
void apply_id_maps(pid_t pid, const IdMaps& maps);

std::string format_map(const std::vector<IdRange>& m);

}  // namespace mbx
