#include "src/log_summary.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "commit/plan.h"
#include "src/error.h"

namespace mbx {

namespace {

// name -> count, printed most frequent first (then by name).
struct Tally {
    std::map<std::string, long> counts;
    void add(const std::string& k) { ++counts[k]; }
    std::string print(const std::string& title) const {
        if (counts.empty()) return "";
        std::vector<std::pair<std::string, long>> v(counts.begin(), counts.end());
        std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
        long total = 0;
        for (auto& [k, n] : v) total += n;
        std::string out = title + " (" + std::to_string(v.size()) + ", " + std::to_string(total) + " in all):\n";
        for (auto& [k, n] : v) out += "  " + std::to_string(n) + "\t" + k + "\n";
        return out;
    }
};

// What a monitored run did in one directory of the view.
struct DirUse {
    long read = 0, written = 0, run = 0, missing = 0, failed = 0;
    long total() const { return read + written + run + missing + failed; }
};

std::string print_dirs(const std::map<std::string, DirUse>& dirs) {
    if (dirs.empty()) return "";
    std::vector<std::pair<std::string, DirUse>> v(dirs.begin(), dirs.end());
    std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second.total() > b.second.total(); });
    std::string out = "files, by directory (" + std::to_string(v.size()) + "):\n";
    for (size_t i = 0; i < v.size(); ++i) {
        const DirUse& u = v[i].second;
        std::string what;
        auto add = [&](long n, const char* label) {
            if (n) what += (what.empty() ? "" : ", ") + std::string(label) + " " + std::to_string(n);
        };
        add(u.read, "read");
        add(u.written, "written");
        add(u.run, "run");
        add(u.missing, "looked up, absent");
        add(u.failed, "failed");
        out += "  " + quote_path(v[i].first) + "\t" + what + "\n";
    }
    return out;
}

}  // namespace

std::string summarize_log(const std::vector<std::string>& lines) {
    Tally guards, programs, view_programs, peers, refused, would_refuse;
    std::map<std::string, DirUse> dirs;
    std::string monitored;
    long unreadable = 0;
    for (auto& line : lines) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
            ++unreadable;
            continue;
        }
        std::string hook = j.value("hook", "?");
        if (hook == "guard") {
            guards.add(j.value("mechanism", "?") + " (" + j.value("detail", "") + ")");
            continue;
        }
        if (hook == "monitor") {
            monitored = "monitored (--monitor); not recorded: " + j.value("not_recorded", std::string("-")) + "\n";
            continue;
        }
        if (j.value("source", "") == "view") {  // --monitor's records of the view
            std::string path = j.value("path", "");
            DirUse& u = dirs[commit::parent_of(path)];
            std::string access = j.value("access", "");
            if (hook == "lookup") ++u.missing;
            else if (j.value("result", "ok") != "ok") ++u.failed;
            else if (hook == "open" && access == "x") {
                ++u.run;
                view_programs.add(quote_path(path));
            } else if (hook == "open" && access == "r") ++u.read;
            else ++u.written;
            continue;
        }
        bool denied = j.value("denied", false);
        std::string object = j.contains("address") ? j.value("address", "")
                             : j.contains("path")  ? quote_path(j.value("path", ""))
                                                   : "";
        if (hook == "exec" && !denied) {
            // The file run (as execve was given it), else what it called itself.
            std::string prog = j.value("path", "");
            if (prog.empty() && j.contains("argv") && j["argv"].is_array() && !j["argv"].empty() &&
                j["argv"][0].is_string())
                prog = j["argv"][0].get<std::string>();
            programs.add(quote_path(prog.empty() ? "?" : prog));
            continue;
        }
        bool complain = j.value("complain", false);
        if (j.contains("address"))
            peers.add(hook + " " + object + (!denied ? "" : complain ? " (would be refused)" : " (refused)"));
        if (denied) {
            std::string what = hook + (object.empty() ? "" : " " + object);
            if (j.contains("target_pid")) what += " pid " + std::to_string(j.value("target_pid", 0));
            (complain ? would_refuse : refused).add(what);
        }
    }
    std::string out;
    out += guards.print("runs, by guard");
    out += monitored;
    // Without the guard's exec records, the files the kernel opened to run them.
    out += programs.counts.empty() ? view_programs.print("programs run") : programs.print("programs run");
    out += print_dirs(dirs);
    out += peers.print("network peers");
    out += refused.print("refused");
    out += would_refuse.print("would have been refused (--guard complain)");
    if (out.empty()) out = "nothing recorded (a run without a guard records nothing; see mbx-log(1))\n";
    if (unreadable) out += std::to_string(unreadable) + " line(s) of the log are not records\n";
    return out;
}

}  // namespace mbx
