// Sessions: one private layer plus its metadata, one directory each under
// $MBX_HOME (see mbx-layer(5)). A session is opened under an exclusive flock
// on its directory: one writer (run, discard, commit) at a time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "overlay/sys/unique_fd.h"

namespace mbx {

struct RunRecord {
    std::vector<std::string> argv;
    int64_t started = 0;  // unix milliseconds
    int64_t ended = 0;
    int exit_status = -1;
    // Peak resident memory of the mbx process (the FUSE server) over the run, KiB.
    int64_t server_peak_rss_kb = 0;
};

struct SessionMeta {
    static constexpr int kVersion = 1;
    std::string name;
    int64_t created = 0;
    int64_t last_used = 0;
    uint32_t owner_uid = 0;
    // The identity commands ran as inside (last run): layer entries without an
    // owner record (symlinks) are shown as owned by it.
    uint32_t inside_uid = 0;
    uint32_t inside_gid = 0;
    std::vector<RunRecord> runs;
};

class Session {
public:
    Session(std::string name, std::string path, UniqueFd dir, SessionMeta meta, bool created);
    const std::string& name() const { return name_; }
    // Did this open create the session?
    bool created() const { return created_; }
    const std::string& path() const { return path_; }
    int dir_fd() const { return dir_.get(); }
    SessionMeta& meta() { return meta_; }
    // Writes meta atomically (temporary file, fsync, rename).
    void save_meta();
    // Empties work/ (an interrupted copy-up leaves its staging files there).
    void clear_work();

private:
    std::string name_;
    std::string path_;
    UniqueFd dir_;  // holds the flock
    SessionMeta meta_;
    bool created_;
};

class SessionStore {
public:
    explicit SessionStore(std::string home);
    // $MBX_HOME, else (root under sudo) the sudo user's, else
    // $XDG_DATA_HOME/mbx, else ~/.local/share/mbx.
    static std::string default_home();
    const std::string& home() const { return home_; }

    // Opens (locked) the named session, creating it if create is true and it
    // does not exist; without a name, creates a new automatically named one.
    Session open(const std::optional<std::string>& name, bool create);
    // Opens (locked) a session for removal: its metadata may be unreadable.
    Session open_for_removal(const std::string& name);
    // The name given, or the most recently used session; throws if there is none.
    std::string resolve(const std::optional<std::string>& name) const;
    std::vector<SessionMeta> list() const;
    // Session directories whose metadata cannot be read (mbx discard removes them).
    std::vector<std::string> broken() const;
    bool exists(const std::string& name) const;
    // Removes a session (it must not be in use).
    void remove(const std::string& name);
    // Removes a session this process holds open.
    void remove(Session&& s);
    // A session whose changes are all committed leaves the list: it moves to
    // $MBX_HOME/.committed/NAME with its revert data (the newest kRetired kept).
    void retire(Session&& s);
    static constexpr int kRetired = 10;
    static constexpr const char* kRetiredDir = ".committed";
    // Opens (locked) a retired session, for mbx revert.
    Session open_retired(const std::string& name);
    void remove_retired(Session&& s);
    // The directory a retired session moved to.
    std::string retired_path(const std::string& name) const { return home_ + "/" + kRetiredDir + "/" + name; }
    // Names of the retired sessions.
    std::vector<std::string> retired() const;

    static void check_name(const std::string& name);
    // The session's metadata, read without the lock (for reading commands);
    // throws, saying how to remove it, if it is unreadable.
    SessionMeta read(const std::string& name) const;
    void check_readable(const std::string& name) const { (void)read(name); }

private:
    std::optional<SessionMeta> read_meta(const std::string& name) const;
    // Names of the directories in $MBX_HOME that may be sessions.
    std::vector<std::string> session_dirs() const;
    std::string home_;
};

}  // namespace mbx
