#include "src/session_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "overlay/sys/sys.h"
#include "src/error.h"
#include "src/json_text.h"

namespace mbx {

namespace {

// Milliseconds, so that sessions used within one second still order; strictly
// increasing within this process, so that two uses never tie.
int64_t now() {
    static std::atomic<int64_t> last{0};
    struct timespec ts;
    ::clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t = int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
    int64_t prev = last.load();
    while (!last.compare_exchange_weak(prev, std::max(t, prev + 1))) {
    }
    return std::max(t, prev + 1);
}

void mkdir_p(const std::string& path, mode_t mode) {
    std::string cur;
    std::stringstream ss(path);
    std::string part;
    if (path.starts_with('/')) cur = "";
    while (std::getline(ss, part, '/')) {
        if (part.empty()) continue;
        cur += "/" + part;
        if (::mkdir(cur.c_str(), mode) < 0 && errno != EEXIST) throw UserError(sys_error("mkdir", cur));
    }
}

nlohmann::json to_json(const SessionMeta& m) {
    nlohmann::json runs = nlohmann::json::array();
    for (auto& r : m.runs)
        runs.push_back({{"argv", r.argv}, {"started", r.started}, {"ended", r.ended}, {"exit_status", r.exit_status},
                        {"server_peak_rss_kb", r.server_peak_rss_kb}});
    return {{"version", SessionMeta::kVersion}, {"name", m.name}, {"created", m.created},
            {"last_used", m.last_used}, {"owner_uid", m.owner_uid}, {"inside_uid", m.inside_uid},
            {"inside_gid", m.inside_gid}, {"runs", runs}};
}

std::optional<SessionMeta> from_json(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    try {
        if (j.at("version").get<int>() != SessionMeta::kVersion) return std::nullopt;
        SessionMeta m;
        m.name = j.at("name").get<std::string>();
        m.created = j.at("created").get<int64_t>();
        m.last_used = j.at("last_used").get<int64_t>();
        m.owner_uid = j.value("owner_uid", 0u);
        m.inside_uid = j.value("inside_uid", 0u);
        m.inside_gid = j.value("inside_gid", 0u);
        for (auto& r : j.at("runs")) {
            RunRecord rr;
            rr.argv = r.at("argv").get<std::vector<std::string>>();
            rr.started = r.at("started").get<int64_t>();
            rr.ended = r.at("ended").get<int64_t>();
            rr.exit_status = r.at("exit_status").get<int>();
            rr.server_peak_rss_kb = r.value("server_peak_rss_kb", int64_t{0});
            m.runs.push_back(std::move(rr));
        }
        return m;
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
}

bool is_number(const std::string& s) {
    return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), ::isdigit);
}

}  // namespace

Session::Session(std::string name, std::string path, UniqueFd dir, SessionMeta meta, bool created)
    : name_(std::move(name)), path_(std::move(path)), dir_(std::move(dir)), meta_(std::move(meta)), created_(created) {}

void Session::save_meta() {
    std::string text = json_text(to_json(meta_)) + "\n";
    auto fd = sys::open_at(dir_.get(), "meta.tmp", O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (!fd) throw UserError(sys_error("open", path_ + "/meta.tmp", fd.error()));
    if (::write(fd->get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::fsync(fd->get()) < 0) {
        int e = errno ? errno : ENOSPC;
        ::unlinkat(dir_.get(), "meta.tmp", 0);
        throw UserError(sys_error("write", path_ + "/meta", e));
    }
    // Root (sudo mbx commit) writing in a user's session leaves it theirs.
    if (::geteuid() == 0)
        if (auto st = sys::stat_fd(dir_.get()); st && st->st_uid != 0) (void)::fchown(fd->get(), st->st_uid, st->st_gid);
    if (::renameat(dir_.get(), "meta.tmp", dir_.get(), "meta") < 0)
        throw UserError(sys_error("rename", path_ + "/meta"));
    ::fsync(dir_.get());
}

void Session::clear_work() {
    auto work = sys::open_at(dir_.get(), "work", O_RDONLY | O_DIRECTORY);
    if (!work) throw UserError(sys_error("open", path_ + "/work", work.error()));
    auto entries = sys::read_dir(work->get());
    if (!entries) throw UserError(sys_error("readdir", path_ + "/work", entries.error()));
    for (auto& e : *entries)
        if (auto r = sys::remove_tree_at(work->get(), e.name.c_str()); !r)
            throw UserError(sys_error("remove", path_ + "/work/" + e.name, r.error()));
}

SessionStore::SessionStore(std::string home) : home_(std::move(home)) {}

namespace {
// The session directory, open and exclusively locked.
UniqueFd lock_dir(const std::string& name, const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw UserError(sys_error("open", path));
    UniqueFd dir(fd);
    if (::flock(dir.get(), LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            throw UserError("session " + name + " is in use by another mbx; wait for it to finish");
        throw UserError(sys_error("flock", path));
    }
    return dir;
}
}  // namespace

Session SessionStore::open_for_removal(const std::string& name) {
    check_name(name);
    std::string path = home_ + "/" + name;
    UniqueFd dir = lock_dir(name, path);
    return Session(name, path, std::move(dir), read_meta(name).value_or(SessionMeta{}), false);
}

std::string SessionStore::default_home() {
    if (const char* h = std::getenv("MBX_HOME"); h && *h) return h;
    // "sudo mbx commit" addresses the sessions of the user who typed it.
    if (const char* su = std::getenv("SUDO_UID"); su && *su && ::geteuid() == 0) {
        char* end = nullptr;
        unsigned long uid = std::strtoul(su, &end, 10);
        if (end && *end == 0 && uid != 0)
            if (struct passwd* pw = ::getpwuid(uid_t(uid))) return std::string(pw->pw_dir) + "/.local/share/mbx";
    }
    if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/mbx";
    const char* home = std::getenv("HOME");
    std::string h;
    if (home && *home) {
        h = home;
    } else if (struct passwd* pw = ::getpwuid(::getuid())) {
        h = pw->pw_dir;
    } else {
        throw UserError("cannot find your home directory: set MBX_HOME");
    }
    return h + "/.local/share/mbx";
}

void SessionStore::check_name(const std::string& name) {
    bool ok = !name.empty() && name.size() <= 64 && name[0] != '.' && name[0] != '-' &&
              std::all_of(name.begin(), name.end(), [](char c) {
                  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
              });
    if (!ok)
        throw UserError("invalid session name " + quote_path("'" + name + "'") +
                        ": use letters, digits, '-', '_' and '.', at most 64 characters");
}

bool SessionStore::exists(const std::string& name) const {
    struct stat st;
    return ::stat((home_ + "/" + name + "/meta").c_str(), &st) == 0;
}

std::optional<SessionMeta> SessionStore::read_meta(const std::string& name) const {
    std::ifstream in(home_ + "/" + name + "/meta");
    if (!in) return std::nullopt;
    std::stringstream ss;
    ss << in.rdbuf();
    return from_json(ss.str());
}

Session SessionStore::open(const std::optional<std::string>& name, bool create) {
    mkdir_p(home_, 0700);
    std::string n;
    bool fresh = false;
    if (name) {
        check_name(*name);
        n = *name;
        if (!exists(n)) {
            if (!create) throw UserError("no session '" + n + "': see 'mbx list'");
            if (::mkdir((home_ + "/" + n).c_str(), 0700) < 0 && errno != EEXIST)
                throw UserError(sys_error("mkdir", home_ + "/" + n));
            fresh = true;
        }
    } else {
        // Next free number; mkdir is the atomic claim.
        int next = 1;
        for (auto& m : list())
            if (is_number(m.name)) next = std::max(next, std::stoi(m.name) + 1);
        for (auto& r : retired())  // mbx revert NAME must stay unambiguous
            if (is_number(r)) next = std::max(next, std::stoi(r) + 1);
        for (;; ++next) {
            n = std::to_string(next);
            if (::mkdir((home_ + "/" + n).c_str(), 0700) == 0) break;
            if (errno != EEXIST) throw UserError(sys_error("mkdir", home_ + "/" + n));
        }
        fresh = true;
    }
    std::string path = home_ + "/" + n;
    UniqueFd dir = lock_dir(n, path);
    for (const char* sub : {"layer", "work"})
        if (::mkdirat(dir.get(), sub, 0700) < 0 && errno != EEXIST)
            throw UserError(sys_error("mkdir", path + "/" + sub));
    SessionMeta meta;
    if (auto m = read_meta(n); m && !fresh) {
        meta = std::move(*m);
    } else if (!fresh && exists(n)) {
        check_readable(n);
    } else {
        meta.name = n;
        meta.created = now();
        meta.owner_uid = ::getuid();
    }
    meta.last_used = now();
    Session s(n, path, std::move(dir), std::move(meta), fresh);
    if (fresh) {
        s.save_meta();  // the metadata is what makes it a session
    } else {
        // Only last_used changes: on a full disk the session must stay usable
        // (the run may be what frees the space).
        try {
            s.save_meta();
        } catch (const UserError& e) {
            spdlog::warn("{}", e.what());
        }
    }
    s.clear_work();
    return s;
}

std::vector<std::string> SessionStore::session_dirs() const {
    std::vector<std::string> out;
    int fd = ::open(home_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return out;
    UniqueFd dir(fd);
    if (auto entries = sys::read_dir(dir.get()))
        for (auto& e : *entries)
            if (!e.name.starts_with(".") && e.type == DT_DIR) out.push_back(e.name);
    return out;
}

std::vector<SessionMeta> SessionStore::list() const {
    std::vector<SessionMeta> out;
    for (auto& name : session_dirs())
        if (auto m = read_meta(name)) out.push_back(std::move(*m));
    // Numbered sessions first, by number; then named ones, by name.
    std::sort(out.begin(), out.end(), [](const SessionMeta& a, const SessionMeta& b) {
        bool an = is_number(a.name), bn = is_number(b.name);
        if (an != bn) return an;
        if (an) return std::stol(a.name) < std::stol(b.name);
        return a.name < b.name;
    });
    return out;
}

SessionMeta SessionStore::read(const std::string& name) const {
    auto m = read_meta(name);
    if (!m)
        throw UserError("session " + name + " has unreadable metadata (" + home_ + "/" + name +
                        "/meta); remove it with 'mbx discard " + name + "'");
    return *m;
}

std::vector<std::string> SessionStore::broken() const {
    std::vector<std::string> out;
    for (auto& name : session_dirs())
        if (!read_meta(name)) out.push_back(name);
    std::sort(out.begin(), out.end());
    return out;
}

std::string SessionStore::resolve(const std::optional<std::string>& name) const {
    if (name) {
        check_name(*name);
        if (!exists(*name)) throw UserError("no session '" + *name + "': see 'mbx list'");
        return *name;
    }
    auto all = list();
    if (all.empty()) throw UserError("no sessions yet: start one with 'mbx run -- CMD'");
    auto it = std::max_element(all.begin(), all.end(), [](const SessionMeta& a, const SessionMeta& b) {
        return a.last_used < b.last_used;
    });
    return it->name;
}

void SessionStore::remove(const std::string& name) {
    remove(open_for_removal(name));  // takes the lock: refuses a session in use
}

void SessionStore::remove(Session&& s) {
    const std::string name = s.name();
    int home = ::open(home_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (home < 0) throw UserError(sys_error("open", home_));
    UniqueFd h(home);
    // Rename first so a half-removed session never looks like a session.
    std::string trash = "." + name + ".removing";
    if (::renameat(h.get(), name.c_str(), h.get(), trash.c_str()) < 0)
        throw UserError(sys_error("rename", home_ + "/" + name));
    if (auto r = sys::remove_tree_at(h.get(), trash.c_str()); !r)
        throw UserError(sys_error("remove", home_ + "/" + trash, r.error()));
    // Leftovers of removals that were interrupted (they are never sessions).
    if (auto entries = sys::read_dir(h.get()))
        for (auto& e : *entries)
            if (e.name.starts_with(".") && e.name.ends_with(".removing"))
                (void)sys::remove_tree_at(h.get(), e.name.c_str());
}

void SessionStore::retire(Session&& s) {
    int home = ::open(home_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (home < 0) throw UserError(sys_error("open", home_));
    UniqueFd h(home);
    if (::mkdirat(h.get(), kRetiredDir, 0700) == 0 && ::geteuid() == 0)
        if (auto st = sys::stat_fd(s.dir_fd())) (void)::fchownat(h.get(), kRetiredDir, st->st_uid, st->st_gid, 0);
    auto r = sys::open_at(h.get(), kRetiredDir, O_PATH | O_DIRECTORY);
    if (!r) throw UserError(sys_error("open", home_ + "/" + kRetiredDir, r.error()));
    (void)sys::remove_tree_at(r->get(), s.name().c_str());
    if (::renameat(h.get(), s.name().c_str(), r->get(), s.name().c_str()) < 0)
        throw UserError(sys_error("rename", home_ + "/" + s.name()));
    // The oldest go.
    std::vector<std::pair<int64_t, std::string>> all;
    for (auto& n : retired())
        if (auto st = sys::stat_at(r->get(), n.c_str()))
            all.push_back({sys::to_ns(st->st_ctim), n});
    std::sort(all.begin(), all.end(), std::greater<>());
    for (size_t i = kRetired; i < all.size(); ++i) (void)sys::remove_tree_at(r->get(), all[i].second.c_str());
}

Session SessionStore::open_retired(const std::string& name) {
    check_name(name);
    std::string path = retired_path(name);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) throw UserError("no session '" + name + "' with a commit to revert: see 'mbx list'");
    UniqueFd dir = lock_dir(name, path);
    return Session(name, path, std::move(dir), read_meta(std::string(kRetiredDir) + "/" + name).value_or(SessionMeta{}), false);
}

void SessionStore::remove_retired(Session&& s) {
    std::string dir = home_ + "/" + kRetiredDir;
    int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw UserError(sys_error("open", dir));
    UniqueFd d(fd);
    if (auto r = sys::remove_tree_at(d.get(), s.name().c_str()); !r)
        throw UserError(sys_error("remove", s.path(), r.error()));
}

std::vector<std::string> SessionStore::retired() const {
    std::vector<std::string> out;
    int fd = ::open((home_ + "/" + kRetiredDir).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return out;
    UniqueFd dir(fd);
    if (auto entries = sys::read_dir(dir.get()))
        for (auto& e : *entries)
            if (e.type == DT_DIR) out.push_back(e.name);
    return out;
}

}  // namespace mbx
