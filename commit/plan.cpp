#include "commit/plan.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "overlay/sys/sys.h"

namespace mbx::commit {

const char* step_name(StepKind k) {
    switch (k) {
        case StepKind::Remove: return "remove";
        case StepKind::MakeDir: return "mkdir";
        case StepKind::PlaceFile: return "file";
        case StepKind::PlaceSymlink: return "symlink";
        case StepKind::PlaceNode: return "node";
        case StepKind::PlaceLink: return "link";
        case StepKind::SetMeta: return "meta";
        case StepKind::DirMeta: return "dirmeta";
    }
    return "?";
}

namespace {

std::optional<StepKind> step_kind(const std::string& s) {
    for (int k = 0; k <= int(StepKind::DirMeta); ++k)
        if (s == step_name(StepKind(k))) return StepKind(k);
    return std::nullopt;
}


std::string hex(const std::string& s) {
    static const char* d = "0123456789abcdef";
    std::string out;
    out.reserve(s.size() * 2);
    for (unsigned char c : s) {
        out += d[c >> 4];
        out += d[c & 15];
    }
    return out;
}

std::optional<std::string> unhex(const std::string& h) {
    if (h.size() % 2) return std::nullopt;
    std::string out;
    auto val = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    for (size_t i = 0; i < h.size(); i += 2) {
        int a = val(h[i]), b = val(h[i + 1]);
        if (a < 0 || b < 0) return std::nullopt;
        out += char(a << 4 | b);
    }
    return out;
}

std::string random_id() {
    std::random_device rd;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
    return buf;
}

std::optional<struct stat> stat_beneath(int root, const std::string& path) {
    auto fd = sys::open_beneath(root, path.substr(1), O_PATH);
    if (!fd) return std::nullopt;
    auto st = sys::stat_fd(fd->get());
    if (!st) return std::nullopt;
    return *st;
}

}  // namespace

HostState host_state(const struct stat& st) {
    HostState h;
    h.exists = true;
    h.mode = st.st_mode;
    h.uid = st.st_uid;
    h.gid = st.st_gid;
    h.size = st.st_size;
    h.atime_ns = sys::to_ns(st.st_atim);
    h.mtime_ns = sys::to_ns(st.st_mtim);
    h.dev = st.st_dev;
    h.ino = st.st_ino;
    return h;
}

std::string parent_of(const std::string& path) {
    auto i = path.rfind('/');
    return i == 0 || i == std::string::npos ? "/" : path.substr(0, i);
}

std::string base_of(const std::string& path) { return path.substr(path.rfind('/') + 1); }

bool is_below(const std::string& path, const std::string& dir) {
    if (dir == "/") return true;
    return path == dir || (path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/');
}

bool Committer::in_group(gid_t g) const {
    if (g == gid) return true;
    for (gid_t x : groups)
        if (x == g) return true;
    return false;
}

Committer Committer::current() {
    Committer c{::geteuid(), ::getegid(), {}};
    int n = ::getgroups(0, nullptr);
    if (n > 0) {
        c.groups.resize(n);
        n = ::getgroups(n, c.groups.data());
        c.groups.resize(n > 0 ? n : 0);
    }
    return c;
}

PlanResult make_plan(const PlanInput& in) {
    PlanResult r;
    Plan& plan = r.plan;
    plan.id = random_id();
    const auto& changes = in.changes;
    std::map<std::string, size_t> at;
    for (size_t i = 0; i < changes.size(); ++i) at[changes[i].path] = i;

    // What the selection asks for, with the directories it needs the sandbox to create first.
    std::vector<bool> take(changes.size());
    for (size_t i = 0; i < changes.size(); ++i) {
        if (in.selected && !in.selected(changes[i])) continue;
        take[i] = true;
        for (std::string p = parent_of(changes[i].path); p != "/"; p = parent_of(p)) {
            auto it = at.find(p);
            if (it == at.end()) continue;
            const Change& a = changes[it->second];
            if (S_ISDIR(a.mode) && (a.kind == ChangeKind::Added || a.kind == ChangeKind::TypeChanged))
                take[it->second] = true;
        }
    }

    // Conflicts and what needs root are left out, and with them whatever
    // lies below a directory that will not exist on the host.
    struct Taken {
        size_t change;
        HostState before;
        int64_t uid, gid;
    };
    std::vector<Taken> taken;
    std::vector<std::pair<std::string, SkipReason>> missing_dirs;  // and why they are missing
    for (size_t i = 0; i < changes.size(); ++i) {
        const Change& c = changes[i];
        if (!take[i]) {
            plan.pending.push_back({c.path, kind_letter(c.kind), S_ISDIR(c.mode)});
            continue;
        }
        HostState before;
        if (!(in.scan_is_fresh && c.host_mode == 0))
            if (auto st = stat_beneath(in.host_root, c.path)) before = host_state(*st);
        int64_t uid = -1, gid = -1;
        if (c.owner_set) {
            uid = c.uid;
            gid = c.gid;
        } else if (before.exists && c.kind != ChangeKind::Added) {
            uid = before.uid;  // a copy of a host entry keeps its owner
            gid = before.gid;
        }
        std::optional<SkipReason> skip;
        for (auto& [d, why] : missing_dirs)
            if (is_below(c.path, d)) skip = why;
        if (!skip && c.conflict != Conflict::None && !in.force) skip = SkipReason::Conflict;
        if (!skip && !in.who.root() && c.kind != ChangeKind::Deleted) {
            bool device = S_ISCHR(c.mode) || S_ISBLK(c.mode);
            if (device || (uid >= 0 && uid_t(uid) != in.who.uid) || (gid >= 0 && !in.who.in_group(gid_t(gid))))
                skip = SkipReason::NeedsRoot;
        }
        if (skip) {
            r.skipped.push_back({c, *skip});
            plan.pending.push_back({c.path, kind_letter(c.kind), S_ISDIR(c.mode)});
            if (S_ISDIR(c.mode) && !(before.exists && S_ISDIR(before.mode) && c.kind != ChangeKind::TypeChanged))
                missing_dirs.push_back({c.path, *skip});
            continue;
        }
        plan.entries.push_back({c.path, kind_letter(c.kind), S_ISDIR(c.mode) && c.kind != ChangeKind::Deleted});
        taken.push_back({i, before, uid, gid});
    }

    auto layer_times = [](Step& s, const Change& c) {
        s.atime_ns = c.layer_atime_ns;
        s.mtime_ns = c.layer_mtime_ns;
    };

    // 1. Removals: deletions, and what a type change or a forced entry replaces.
    std::vector<bool> removed(taken.size());
    for (size_t t = 0; t < taken.size(); ++t) {
        const Change& c = changes[taken[t].change];
        const HostState& b = taken[t].before;
        if (!b.exists) continue;
        bool replace = c.kind != ChangeKind::Deleted && c.kind != ChangeKind::MetadataOnly &&
                       ((b.mode & S_IFMT) != (c.mode & S_IFMT) || S_ISDIR(b.mode)) &&
                       !(S_ISDIR(b.mode) && S_ISDIR(c.mode));
        if (c.kind != ChangeKind::Deleted && !replace) continue;
        Step s;
        s.kind = StepKind::Remove;
        s.path = c.path;
        s.entry = t;
        s.backup = true;
        s.before = b;
        plan.steps.push_back(s);
        removed[t] = true;
    }

    // 2. Creations, parents first.
    std::map<ino_t, std::string> first_link;
    for (size_t t = 0; t < taken.size(); ++t) {
        const Change& c = changes[taken[t].change];
        if (c.kind == ChangeKind::Deleted) continue;
        const HostState& b = taken[t].before;
        bool host_there = b.exists && !removed[t];
        Step s;
        s.path = c.path;
        s.entry = t;
        s.mode = c.mode;
        s.rdev = c.rdev;
        s.uid = taken[t].uid;
        s.gid = taken[t].gid;
        s.before = b;
        if (S_ISDIR(c.mode)) {
            if (host_there) continue;  // an existing directory: DirMeta below
            s.kind = StepKind::MakeDir;
            s.before = {};
            plan.steps.push_back(s);
            continue;
        }
        layer_times(s, c);
        s.backup = host_there;
        if (!host_there) s.before = {};
        if (c.kind == ChangeKind::MetadataOnly) {
            s.kind = StepKind::SetMeta;
            s.backup = false;
        } else if (S_ISREG(c.mode)) {
            s.kind = StepKind::PlaceFile;
            if (c.layer_nlink > 1) {
                auto [it, fresh] = first_link.emplace(c.layer_ino, c.path);
                if (!fresh) {
                    s.kind = StepKind::PlaceLink;
                    s.target = it->second;
                }
            }
        } else if (S_ISLNK(c.mode)) {
            s.kind = StepKind::PlaceSymlink;
            s.target = c.target;
        } else {
            s.kind = StepKind::PlaceNode;
        }
        plan.steps.push_back(s);
    }

    // 3. Directory modes, owners and times, deepest first: a read-only
    // directory still receives its entries, and their creation does not
    // move its time afterwards.
    for (size_t t = taken.size(); t-- > 0;) {
        const Change& c = changes[taken[t].change];
        if (c.kind == ChangeKind::Deleted || !S_ISDIR(c.mode)) continue;
        Step s;
        s.kind = StepKind::DirMeta;
        s.path = c.path;
        s.entry = t;
        s.mode = c.mode;
        s.uid = taken[t].uid;
        s.gid = taken[t].gid;
        if (!removed[t]) s.before = taken[t].before;
        layer_times(s, c);
        plan.steps.push_back(s);
    }
    return r;
}

std::string plan_to_text(const Plan& p) {
    nlohmann::json steps = nlohmann::json::array();
    for (auto& s : p.steps) {
        nlohmann::json j = {{"kind", step_name(s.kind)}, {"path", hex(s.path)}, {"entry", s.entry},
                            {"mode", s.mode}, {"uid", s.uid}, {"gid", s.gid}, {"atime_ns", s.atime_ns},
                            {"mtime_ns", s.mtime_ns}, {"backup", s.backup}};
        if (s.rdev) j["rdev"] = uint64_t(s.rdev);
        if (!s.target.empty()) j["target"] = hex(s.target);
        if (s.before.exists)
            j["before"] = {{"mode", s.before.mode}, {"uid", s.before.uid}, {"gid", s.before.gid},
                           {"size", s.before.size}, {"atime_ns", s.before.atime_ns},
                           {"mtime_ns", s.before.mtime_ns}, {"dev", s.before.dev}, {"ino", s.before.ino}};
        steps.push_back(std::move(j));
    }
    auto entries = [](const std::vector<PlanEntry>& v) {
        nlohmann::json a = nlohmann::json::array();
        for (auto& e : v) a.push_back({{"path", hex(e.path)}, {"kind", std::string(1, e.kind)}, {"dir", e.dir}});
        return a;
    };
    nlohmann::json j = {{"version", Plan::kVersion}, {"id", p.id}, {"entries", entries(p.entries)},
                        {"steps", steps}, {"pending", entries(p.pending)}};
    return j.dump(1) + "\n";
}

std::optional<Plan> plan_from_text(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("version", 0) != Plan::kVersion) return std::nullopt;
    try {
        Plan p;
        p.id = j.at("id").get<std::string>();
        auto entries = [](const nlohmann::json& a, std::vector<PlanEntry>& v) {
            for (auto& e : a) {
                auto path = unhex(e.at("path").get<std::string>());
                auto kind = e.at("kind").get<std::string>();
                if (!path || kind.size() != 1) return false;
                v.push_back({*path, kind[0], e.at("dir").get<bool>()});
            }
            return true;
        };
        if (!entries(j.at("entries"), p.entries) || !entries(j.at("pending"), p.pending)) return std::nullopt;
        for (auto& x : j.at("steps")) {
            Step s;
            auto k = step_kind(x.at("kind").get<std::string>());
            auto path = unhex(x.at("path").get<std::string>());
            if (!k || !path) return std::nullopt;
            s.kind = *k;
            s.path = *path;
            s.entry = x.at("entry").get<size_t>();
            if (s.entry >= p.entries.size()) return std::nullopt;
            s.mode = x.at("mode").get<mode_t>();
            s.uid = x.at("uid").get<int64_t>();
            s.gid = x.at("gid").get<int64_t>();
            s.atime_ns = x.at("atime_ns").get<int64_t>();
            s.mtime_ns = x.at("mtime_ns").get<int64_t>();
            s.backup = x.at("backup").get<bool>();
            s.rdev = dev_t(x.value("rdev", uint64_t(0)));
            if (x.contains("target")) {
                auto t = unhex(x["target"].get<std::string>());
                if (!t) return std::nullopt;
                s.target = *t;
            }
            if (x.contains("before")) {
                auto& b = x["before"];
                s.before.exists = true;
                s.before.mode = b.at("mode").get<mode_t>();
                s.before.uid = b.at("uid").get<uint32_t>();
                s.before.gid = b.at("gid").get<uint32_t>();
                s.before.size = b.at("size").get<int64_t>();
                s.before.atime_ns = b.at("atime_ns").get<int64_t>();
                s.before.mtime_ns = b.at("mtime_ns").get<int64_t>();
                s.before.dev = b.at("dev").get<uint64_t>();
                s.before.ino = b.at("ino").get<uint64_t>();
            }
            p.steps.push_back(std::move(s));
        }
        return p;
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
}

}  // namespace mbx::commit
