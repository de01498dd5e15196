#include "src/commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "overlay/sys/sys.h"
#include "src/error.h"
#include "src/json_text.h"
#include "src/summary.h"

namespace mbx {

namespace {

int64_t now_ms() {
    struct timespec ts;
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string age(int64_t ms) {
    int64_t s = (now_ms() - ms) / 1000;
    if (s < 60) return std::to_string(std::max<int64_t>(s, 0)) + "s";
    if (s < 3600) return std::to_string(s / 60) + "m";
    if (s < 86400) return std::to_string(s / 3600) + "h";
    return std::to_string(s / 86400) + "d";
}

// Bytes the layer takes on disk.
uint64_t disk_usage(int dirfd) {
    uint64_t total = 0;
    auto entries = sys::read_dir(dirfd);
    if (!entries) return 0;
    for (auto& e : *entries) {
        auto st = sys::stat_at(dirfd, e.name.c_str());
        if (!st) continue;
        total += uint64_t(st->st_blocks) * 512;
        if (S_ISDIR(st->st_mode))
            if (auto sub = sys::open_at(dirfd, e.name.c_str(), O_RDONLY | O_DIRECTORY)) total += disk_usage(sub->get());
    }
    return total;
}

std::string human_size(uint64_t b) {
    const char* units[] = {"B", "K", "M", "G", "T"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.1f%s", v, units[u]);
    return buf;
}

std::string join_argv(const std::vector<std::string>& argv) {
    std::string s;
    for (auto& a : argv) {
        if (!s.empty()) s += ' ';
        s += a;
    }
    return s;
}

}  // namespace

int cmd_list(SessionStore& store, const SessionArgs& a) {
    nlohmann::json arr = nlohmann::json::array();
    auto sessions = store.list();
    if (!a.json && (!sessions.empty() || !store.broken().empty()))
        std::printf("%-12s %6s %8s %6s %6s %6s  %s\n", "SESSION", "AGE", "SIZE", "ADDED", "MOD", "DEL", "LAST COMMAND");
    for (auto& m : sessions) {
        std::string path = store.home() + "/" + m.name;
        int dir = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir < 0) continue;
        UniqueFd d(dir);
        ChangeCounts c;
        uint64_t size = 0;
        try {
            c = count_changes(session_changes(d.get(), path));
            if (auto l = sys::open_at(d.get(), "layer", O_RDONLY | O_DIRECTORY)) size = disk_usage(l->get());
        } catch (const UserError&) {
        }
        std::string last = m.runs.empty() ? "" : join_argv(m.runs.back().argv);
        if (a.json) {
            arr.push_back({{"name", m.name}, {"created", m.created}, {"last_used", m.last_used},
                           {"size_bytes", size}, {"added", c.added}, {"modified", c.modified},
                           {"deleted", c.deleted}, {"last_command", m.runs.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.runs.back().argv)},
                           {"runs", m.runs.size()}});
        } else {
            std::printf("%-12s %6s %8s %6d %6d %6d  %s\n", m.name.c_str(), age(m.last_used).c_str(),
                        human_size(size).c_str(), c.added, c.modified, c.deleted, quote_path(last).c_str());
        }
    }
    for (auto& name : store.broken()) {
        if (a.json)
            arr.push_back({{"name", name}, {"broken", true}});
        else
            std::printf("%-12s (metadata unreadable: remove with 'mbx discard %s')\n", name.c_str(), name.c_str());
    }
    if (a.json) std::printf("%s\n", json_text(arr).c_str());
    return 0;
}

int cmd_status(SessionStore& store, const SessionArgs& a) {
    std::string name = store.resolve(a.session);
    store.check_readable(name);
    std::string path = store.home() + "/" + name;
    int dir = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0) throw UserError(sys_error("open", path));
    UniqueFd d(dir);
    auto changes = session_changes(d.get(), path);
    if (a.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (auto& c : changes)
            arr.push_back({{"kind", std::string(1, commit::effect_letter(c))}, {"path", c.path}, {"mode", c.mode}});
        auto c = count_changes(changes);
        nlohmann::json out = {{"session", name}, {"added", c.added}, {"modified", c.modified},
                              {"deleted", c.deleted}, {"changes", arr}};
        std::printf("%s\n", json_text(out).c_str());
        return 0;
    }
    for (auto& c : changes) std::printf("%c %s\n", commit::effect_letter(c), quote_path(c.path).c_str());
    return 0;
}

int cmd_discard(SessionStore& store, const SessionArgs& a) {
    std::string name = store.resolve(a.session);
    store.remove(name);
    std::fprintf(stderr, "mbx: session %s discarded\n", name.c_str());
    return 0;
}

}  // namespace mbx
