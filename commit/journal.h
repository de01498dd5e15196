// The commit journal in a session directory (see mbx-layer(5)):
//   journal/plan.json   the plan, written and fsynced before the first host change
//   journal/done        one line per finished step, then "end" when the host is done
//   journal/backup/N    the host entry step N replaced or removed
// When the commit is complete the journal becomes revert/ (what mbx revert reads).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commit/plan.h"
#include "overlay/sys/unique_fd.h"

namespace mbx::commit {

inline constexpr const char* kJournalDir = "journal";
inline constexpr const char* kRevertDir = "revert";

struct StepOutcome {
    int err = 0;            // 0: done
    uint64_t ino = 0;       // the host entry it left (0: none)
    int64_t mtime_ns = 0;
    int64_t size = 0;
};

class Journal {
public:
    // Writes dir/journal (or, for revert data, any directory name) with the
    // plan, durably. owner: who the files belong to (root writing in a
    // user's session under sudo gives them to the user).
    static Journal create(int session_dir, const std::string& name, const Plan& plan, uid_t owner_uid,
                          gid_t owner_gid);
    // An existing journal (interrupted commit) or revert data; nullopt if absent.
    // Throws std::runtime_error if it is unreadable.
    static std::optional<Journal> open(int session_dir, const std::string& name);

    const Plan& plan() const { return plan_; }
    int backups() const { return backup_.get(); }
    const std::map<size_t, StepOutcome>& outcomes() const { return outcomes_; }
    bool host_done() const { return host_done_; }
    // Opened from disk: an earlier attempt may have begun any step.
    bool resumed() const { return resumed_; }

    void record(size_t step, const StepOutcome& o);
    void record(const std::vector<std::pair<size_t, StepOutcome>>& outcomes);  // in one write
    // Every host step is done: fsyncs the record, so the layer may change now.
    void mark_host_done();
    // Gives a file or directory the journal's owner.
    void own(int fd) const;

private:
    Journal(Plan plan, UniqueFd dir, UniqueFd backup, UniqueFd done, uid_t uid, gid_t gid)
        : plan_(std::move(plan)), dir_(std::move(dir)), backup_(std::move(backup)), done_(std::move(done)),
          uid_(uid), gid_(gid) {}
    Plan plan_;
    UniqueFd dir_, backup_, done_;
    uid_t uid_;
    gid_t gid_;
    std::map<size_t, StepOutcome> outcomes_;
    bool host_done_ = false;
    bool resumed_ = false;
};

// journal/ becomes revert/ (replacing the previous commit's), durably.
void promote_journal(int session_dir);

}  // namespace mbx::commit
