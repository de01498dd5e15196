// A commit plan: the change set of a session turned into ordered host steps.
// Built before the first host change and kept in the journal (see journal.h),
// so that an interrupted commit can be completed step by step.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "commit/change_scan.h"

namespace mbx::commit {

enum class StepKind {
    Remove,        // take the host entry away (file or whole tree), keeping it as a backup
    MakeDir,       // create a directory (mode and times come with DirMeta)
    PlaceFile,     // write a regular file: temporary file, fsync, rename over the target
    PlaceSymlink,  // same for a symlink
    PlaceNode,     // same for a fifo, socket or device node
    PlaceLink,     // a hard link to an entry placed earlier in the same commit
    SetMeta,       // mode, owner and times of an existing non-directory, in place
    DirMeta,       // mode, owner and times of a directory, after everything below it
};
const char* step_name(StepKind k);

// The host entry at a step's path when the plan was made (what revert restores).
struct HostState {
    bool exists = false;
    mode_t mode = 0;
    uint32_t uid = 0, gid = 0;
    int64_t size = 0;
    int64_t atime_ns = 0, mtime_ns = 0;
    uint64_t dev = 0, ino = 0;
};
HostState host_state(const struct stat& st);

struct Step {
    StepKind kind = StepKind::Remove;
    std::string path;        // absolute, as seen inside the sandbox
    size_t entry = 0;        // index into Plan::entries
    mode_t mode = 0;         // type and permission bits to give
    dev_t rdev = 0;
    std::string target;      // symlink target; for PlaceLink the path of the first name
    int64_t uid = -1;        // owner to give; -1: the committer's, as the entry is created
    int64_t gid = -1;
    int64_t atime_ns = -1;   // times to give (-1: leave)
    int64_t mtime_ns = -1;
    bool backup = false;     // keep the host entry it replaces or removes (for revert)
    HostState before;
};

// One change of the session that the plan commits.
struct PlanEntry {
    std::string path;
    char kind = 'A';         // kind_letter of the change
    bool dir = false;        // the layer has a directory there
};

struct Plan {
    static constexpr int kVersion = 1;
    std::string id;          // random, names the temporary files in host directories
    std::vector<PlanEntry> entries;
    std::vector<Step> steps;
    // Changes of the session left out of this commit (they stay in the layer).
    std::vector<PlanEntry> pending;
};

// Why a change is left out; what lies below a directory left out shares its reason.
enum class SkipReason { Conflict, NeedsRoot };

struct Skipped {
    Change change;
    SkipReason reason;
};

// Who commits: root applies owners and device nodes; others what they may.
struct Committer {
    uid_t uid;
    gid_t gid;
    std::vector<gid_t> groups;
    bool root() const { return uid == 0; }
    bool in_group(gid_t g) const;
    static Committer current();
};

struct PlanInput {
    std::vector<Change> changes;                 // the whole change set, sorted by path
    std::function<bool(const Change&)> selected; // null: everything
    bool force = false;                          // apply conflicts too
    Committer who;
    int host_root = -1;                          // "/" of the host
    // The changes were scanned just now (no review since): where the scan
    // found no host entry, the plan does not look again.
    bool scan_is_fresh = false;
};

struct PlanResult {
    Plan plan;
    std::vector<Skipped> skipped;
};

PlanResult make_plan(const PlanInput& in);

// The journal form (JSON; paths as hex so that any byte string survives).
std::string plan_to_text(const Plan& p);
std::optional<Plan> plan_from_text(const std::string& text);

// "/a/b" -> {"a", "b"} helpers shared by the steps.
std::string parent_of(const std::string& path);   // "/a" for "/a/b", "/" for "/a"
std::string base_of(const std::string& path);     // "b"
bool is_below(const std::string& path, const std::string& dir);  // path == dir or under it

}  // namespace mbx::commit
