#include "src/profile_generate.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "commit/plan.h"
#include "src/error.h"
#include "src/profile.h"

namespace mbx {

namespace {

bool exists_on_host(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

// A TOML basic string ("...", the form profiles are written in).
std::string toml_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += char(c);
        }
    }
    return out + "\"";
}

// Where a rule came from: what was seen, how often, first example.
struct Seen {
    std::map<std::string, long> what;  // "create" -> 3
    void add(const std::string& w) { ++what[w]; }
    std::string comment() const {
        std::string c;
        for (auto& [w, n] : what) c += (c.empty() ? "" : ", ") + w + (n > 1 ? " x" + std::to_string(n) : "");
        return c;
    }
};

// A list of rules with their comments, as a TOML array.
std::string toml_list(const std::string& key, const std::map<std::string, Seen>& rules,
                      const std::string& cwd) {
    std::string out = key + " = [\n";
    for (auto& [rule, seen] : rules) {
        std::string r = rule;
        if (!cwd.empty() && cwd != "/" && commit::is_below(rule, cwd)) r = "$CWD" + rule.substr(cwd.size());
        out += "  " + toml_string(r) + ",  # " + seen.comment() + "\n";
    }
    return out + "]\n";
}

// The nearest directory at or above dir that the run did not make and that
// exists on the host: a rule must name what is there when the next run starts.
std::string existing_dir(std::string dir, const std::set<std::string>& made) {
    while (dir != "/" && (made.count(dir) || !exists_on_host(dir))) dir = commit::parent_of(dir);
    return dir;
}

}  // namespace

std::string generate_profile(const std::vector<std::string>& lines, const GenerateSource& from) {
    bool monitored = false, net_recorded = false;
    std::string cwd;
    std::set<std::string> made;  // directories the run made
    std::vector<std::pair<std::string, std::string>> writes;  // (path, what)
    std::map<std::string, Seen> programs, peers;
    std::map<unsigned, Seen> listen;
    long records = 0;
    for (auto& line : lines) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) continue;
        std::string hook = j.value("hook", "");
        if (hook == "monitor") {
            monitored = true;
            cwd = j.value("cwd", "");
            if (j.contains("recorded") && j["recorded"].is_array())
                for (auto& r : j["recorded"]) net_recorded |= r.is_string() && r.get<std::string>() == "network";
            continue;
        }
        ++records;
        bool denied = j.value("denied", false), complain = j.value("complain", false);
        if (denied && !complain) continue;  // refused: the run did not do it
        std::string path = j.value("path", "");
        if (j.value("source", "") == "view") {
            if (j.value("result", "ok") != "ok" || path.empty() || hook == "lookup") continue;
            std::string access = j.value("access", "");
            if (hook == "open" && access == "x") {
                programs[path].add("run");
            } else if (hook != "open" || access != "r") {
                if (hook == "mkdir") made.insert(path);
                writes.emplace_back(path, hook == "open" ? "open " + access : hook);
            }
            continue;
        }
        if (hook == "exec" && !path.empty() && path[0] == '/') {
            programs[path].add("exec");
        } else if ((hook == "connect" || hook == "sendmsg") && j.contains("address")) {
            peers[j.value("address", "")].add(hook);
        } else if (hook == "bind" && j.contains("address")) {
            std::string a = j.value("address", "");
            unsigned port = unsigned(std::strtoul(a.substr(a.rfind(':') + 1).c_str(), nullptr, 10));
            if (port) listen[port].add("bind " + a);
        }
    }
    if (!monitored)
        throw UserError("session " + from.session + " has no monitored run: run the command with 'mbx run --monitor' first");

    // Writes: the directory each one happened in, or the nearest one above it
    // that the next run will find (the private /tmp is always writable).
    std::map<std::string, Seen> writable;
    writable["/tmp"].add("the private /tmp: its writes are not recorded");
    for (auto& [path, what] : writes) {
        std::string dir = existing_dir(commit::parent_of(path), made);
        if (!commit::is_below(dir, "/tmp")) writable[dir].add(what);
    }
    // A rule beneath another one adds nothing: its counts go to the outer one.
    for (auto it = writable.begin(); it != writable.end();) {
        auto outer = std::find_if(writable.begin(), writable.end(), [&](auto& o) {
            return o.first != it->first && commit::is_below(it->first, o.first);
        });
        if (outer == writable.end()) {
            ++it;
            continue;
        }
        for (auto& [w, n] : it->second.what) outer->second.what[w] += n;
        it = writable.erase(it);
    }
    // Programs the run made cannot be named before they exist: the files of
    // their directory may run, or everything beneath the nearest one that
    // exists before the run.
    std::map<std::string, Seen> exec_rules;
    for (auto& [path, seen] : programs) {
        std::string dir = commit::parent_of(path);
        std::string there = existing_dir(dir, made);
        bool made_here = !exists_on_host(path) || there != dir;
        std::string base = there == "/" ? "" : there;
        std::string rule = !made_here ? path : there == dir ? base + "/*" : base + "/**";
        for (auto& [w, n] : seen.what) exec_rules[rule].what[made_here ? w + " (made by the run)" : w] += n;
    }

    std::string out;
    out += "# Generated by mbx profile generate from session " + from.session + " (" + std::to_string(records) +
           " records)\n";
    if (!from.command.empty()) out += "# of: mbx run --monitor -- " + from.command + "\n";
    out += "# The tightest policy that let that run do what it did. Review it before use:\n"
           "# every rule below says what it was seen doing.\n";
    out += "version = " + std::to_string(kProfileVersion) + "\n";
    out += "description = " + toml_string("learned from session " + from.session) + "\n\n";
    out += "[fs]\n# Directories it made, changed or removed entries in; everything else is read-only.\n";
    out += toml_list("writable", writable, cwd);
    out += "\n[net]\n";
    if (!net_recorded) {
        out += "# Not recorded (the network needs BPF: root, or mbx-guardd): left as mbx run's default.\n";
    } else if (peers.empty()) {
        out += "# It used no network address.\nmode = \"none\"\n";
    } else {
        out += "# The addresses it connected or sent to; no other.\nmode = \"allow\"\n";
        out += toml_list("allow", peers, "");
    }
    if (net_recorded && !listen.empty()) {
        out += "listen = [\n";
        for (auto& [port, seen] : listen) out += "  " + std::to_string(port) + ",  # " + seen.comment() + "\n";
        out += "]\n";
    }
    out += "\n[exec]\n";
    if (exec_rules.empty()) {
        out += "# No program run was recorded: exec rules left out.\n";
    } else {
        out += "# The programs it ran (and their loaders); no other may run.\n";
        out += toml_list("allow", exec_rules, cwd);
    }
    return out;
}

}  // namespace mbx
