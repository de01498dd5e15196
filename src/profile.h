// Policy profiles (mbx-profile(5)): a TOML file naming what a sandboxed
// program may touch, written once and reviewed, instead of a line of flags.
// A Profile is also the effective policy of a run: the profile's values with
// mbx run's flags laid over them (mbx run --print-policy prints it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mbx {

constexpr int kProfileVersion = 1;

struct Profile {
    // The files that made it, includes first (for --print-policy).
    std::vector<std::string> sources;
    std::string description;
    struct Fs {
        // Non-empty: the view is read-only (EROFS) except beneath these.
        std::vector<std::string> writable;
        std::vector<std::string> hidden;    // ENOENT inside, absent from listings
        std::vector<std::string> readonly;  // never writable, even in the layer
        std::vector<std::string> direct;    // writes go to the host (paths the caller owns)
    } fs;
    struct Net {
        std::optional<std::string> mode;  // none, loopback, host or allow
        std::vector<std::string> allow;   // ADDR[/PREFIX][:PORTS] or NAME:PORTS
        std::vector<std::string> listen;  // "PORT" or "FIRST-LAST"
        std::optional<bool> dns;          // with mode allow: the resolvers of /etc/resolv.conf, port 53
    } net;
    struct Exec {
        std::vector<std::string> allow, deny;  // full paths; DIR/* for a directory's files
        std::optional<bool> deny_interpreters_on_sockets;
    } exec;
    struct Limits {
        std::optional<uint64_t> memory;  // bytes
        std::optional<uint64_t> pids;
        std::optional<double> cpus;      // cores' worth of CPU time
    } limits;
    struct Run {
        std::optional<bool> fake_root;  // false: keep the caller's identity (--user)
        std::optional<std::string> guard;
        std::optional<bool> keep_tmp;
    } run;

    // Lays later over this: lists are joined (without repeats), values set in
    // later replace these.
    void merge(const Profile& later);
};

// Where profiles named without a path are found, in order: $MBX_PROFILE_PATH
// (colon-separated), $XDG_CONFIG_HOME/mbx/profiles (~/.config/mbx/profiles),
// then the built-in ones (the data directory).
std::vector<std::string> profile_search_path();

// A profile by NAME (searched for NAME.toml) or by FILE (a path with a '/'
// or ending in .toml), with its includes. Throws UserError naming the file,
// line and key of anything malformed or unknown, and an include cycle.
Profile load_profile(const std::string& name_or_file);

// Parses TOML text as a profile (includes resolved relative to file's
// directory, then by name). Exposed for the tests.
Profile parse_profile(const std::string& text, const std::string& file);

// The profile as TOML, in the format load_profile reads (what
// mbx run --print-policy prints).
std::string profile_to_toml(const Profile& p);

// Paths as written in a profile, made absolute: ~ and ~/... (the caller's
// home), $HOME, $CWD (where mbx run started); other relative paths are
// refused. Throws UserError naming key and value.
std::string expand_profile_path(const std::string& value, const std::string& key, const std::string& home,
                                const std::string& cwd);

struct ProfileEntry {
    std::string name, file, description;
};
// Every profile found on the search path (the first of each name).
std::vector<ProfileEntry> list_profiles();

}  // namespace mbx
