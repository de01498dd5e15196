#include "src/profile.h"

#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "src/error.h"

namespace mbx {

namespace {

// ---- reading the TOML

[[noreturn]] void fail(const std::string& file, const toml::source_region& where, const std::string& key,
                       const std::string& what) {
    std::string at = file;
    if (where.begin.line) at += ":" + std::to_string(where.begin.line);
    throw UserError(at + ": " + key + ": " + what);
}

struct Reader {
    const std::string& file;

    std::string string(const toml::node& n, const std::string& key) const {
        auto s = n.value<std::string>();
        if (!n.is_string() || !s) fail(file, n.source(), key, "expected a string");
        if (s->find('\0') != std::string::npos) fail(file, n.source(), key, "a NUL character is not allowed");
        return *s;
    }

    bool boolean(const toml::node& n, const std::string& key) const {
        if (!n.is_boolean()) fail(file, n.source(), key, "expected true or false");
        return *n.value<bool>();
    }

    std::vector<std::string> strings(const toml::node& n, const std::string& key) const {
        const toml::array* a = n.as_array();
        if (!a) fail(file, n.source(), key, "expected an array of strings, like [\"/usr/local\"]");
        std::vector<std::string> out;
        for (const toml::node& e : *a) {
            std::string s = string(e, key);
            if (s.empty()) fail(file, e.source(), key, "an empty string");
            out.push_back(std::move(s));
        }
        return out;
    }

    // listen: [8080, "9000-9010"], kept as "8080" and "9000-9010".
    std::vector<std::string> ports(const toml::node& n, const std::string& key) const {
        const toml::array* a = n.as_array();
        if (!a) fail(file, n.source(), key, "expected an array of ports, like [8080, \"9000-9010\"]");
        std::vector<std::string> out;
        for (const toml::node& e : *a) {
            std::string v = e.is_integer() ? std::to_string(*e.value<int64_t>()) : string(e, key);
            auto dash = v.find('-');
            std::string lo = v.substr(0, dash), hi = dash == std::string::npos ? lo : v.substr(dash + 1);
            unsigned a_ = 0, b_ = 0;
            auto ok = [](const std::string& s, unsigned& x) {
                auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
                return !s.empty() && ec == std::errc() && end == s.data() + s.size() && x >= 1 && x <= 65535;
            };
            if (!ok(lo, a_) || !ok(hi, b_) || a_ > b_)
                fail(file, e.source(), key, "'" + v + "' is not a port (1-65535) or a range FIRST-LAST");
            out.push_back(v);
        }
        return out;
    }

    uint64_t count(const toml::node& n, const std::string& key) const {
        if (!n.is_integer() || *n.value<int64_t>() < 1) fail(file, n.source(), key, "expected a whole number above 0");
        return static_cast<uint64_t>(*n.value<int64_t>());
    }

    // 536870912, "512M", "2G", "1.5G" (K, M, G, T: powers of 1024).
    uint64_t size(const toml::node& n, const std::string& key) const {
        if (n.is_integer()) return count(n, key);
        std::string s = string(n, key);
        double v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        std::string unit(end, static_cast<size_t>(s.data() + s.size() - end));
        static const std::map<std::string, double> units = {
            {"", 1}, {"K", 1024.0}, {"M", 1048576.0}, {"G", 1073741824.0}, {"T", 1099511627776.0}};
        auto u = units.find(unit);
        if (ec != std::errc() || u == units.end() || !(v > 0) || v * u->second > 1.8e19)
            fail(file, n.source(), key, "'" + s + "' is not a size (bytes, or a number with K, M, G or T)");
        return static_cast<uint64_t>(v * u->second);
    }

    // A table's keys, each known, else the error names it.
    void known(const toml::table& t, const std::string& section, std::initializer_list<const char*> keys) const {
        for (auto&& [k, v] : t) {
            if (std::find(keys.begin(), keys.end(), k.str()) == keys.end()) {
                std::string list;
                for (const char* x : keys) list += std::string(list.empty() ? "" : ", ") + x;
                fail(file, k.source(), section.empty() ? std::string(k.str()) : section + "." + std::string(k.str()),
                     "unknown key" + std::string(section.empty() ? "" : " in [" + section + "]") + " (known: " + list +
                         ")");
            }
        }
    }

    const toml::table& table(const toml::node& n, const std::string& key) const {
        if (!n.is_table()) fail(file, n.source(), key, "expected a table: [" + key + "]");
        return *n.as_table();
    }
};

void add_unique(std::vector<std::string>& to, const std::vector<std::string>& from) {
    for (auto& s : from)
        if (std::find(to.begin(), to.end(), s) == to.end()) to.push_back(s);
}

template <typename T>
void set_if(std::optional<T>& to, const std::optional<T>& from) {
    if (from) to = from;
}

// The profile of one file's own keys (not its includes), and the includes it names.
Profile read_table(const toml::table& t, const std::string& file, std::vector<std::string>& includes) {
    Reader r{file};
    r.known(t, "", {"version", "description", "include", "fs", "net", "exec", "limits", "run"});
    Profile p;
    if (auto* v = t.get("version")) {
        if (!v->is_integer()) fail(file, v->source(), "version", "expected a whole number");
        if (*v->value<int64_t>() != kProfileVersion)
            fail(file, v->source(), "version",
                 "profile format " + std::to_string(*v->value<int64_t>()) + " is not one this mbx reads (" +
                     std::to_string(kProfileVersion) + ")");
    }
    if (auto* v = t.get("description")) p.description = r.string(*v, "description");
    if (auto* v = t.get("include")) includes = v->is_string() ? std::vector{r.string(*v, "include")} : r.strings(*v, "include");

    if (auto* s = t.get("fs")) {
        const toml::table& fs = r.table(*s, "fs");
        r.known(fs, "fs", {"writable", "hidden", "readonly", "direct"});
        if (auto* v = fs.get("writable")) p.fs.writable = r.strings(*v, "fs.writable");
        if (auto* v = fs.get("hidden")) p.fs.hidden = r.strings(*v, "fs.hidden");
        if (auto* v = fs.get("readonly")) p.fs.readonly = r.strings(*v, "fs.readonly");
        if (auto* v = fs.get("direct")) p.fs.direct = r.strings(*v, "fs.direct");
    }
    if (auto* s = t.get("net")) {
        const toml::table& net = r.table(*s, "net");
        r.known(net, "net", {"mode", "allow", "listen", "dns"});
        if (auto* v = net.get("mode")) {
            std::string m = r.string(*v, "net.mode");
            if (m != "none" && m != "loopback" && m != "host" && m != "allow")
                fail(file, v->source(), "net.mode", "'" + m + "' is not one of none, loopback, host, allow");
            p.net.mode = m;
        }
        if (auto* v = net.get("allow")) p.net.allow = r.strings(*v, "net.allow");
        if (auto* v = net.get("listen")) p.net.listen = r.ports(*v, "net.listen");
        if (auto* v = net.get("dns")) p.net.dns = r.boolean(*v, "net.dns");
        if (!p.net.allow.empty() && p.net.mode && *p.net.mode != "allow")
            fail(file, net.get("allow")->source(), "net.allow", "only with mode = \"allow\"");
    }
    if (auto* s = t.get("exec")) {
        const toml::table& ex = r.table(*s, "exec");
        r.known(ex, "exec", {"allow", "deny", "deny_interpreters_on_sockets"});
        if (auto* v = ex.get("allow")) p.exec.allow = r.strings(*v, "exec.allow");
        if (auto* v = ex.get("deny")) p.exec.deny = r.strings(*v, "exec.deny");
        if (auto* v = ex.get("deny_interpreters_on_sockets"))
            p.exec.deny_interpreters_on_sockets = r.boolean(*v, "exec.deny_interpreters_on_sockets");
    }
    if (auto* s = t.get("limits")) {
        const toml::table& l = r.table(*s, "limits");
        r.known(l, "limits", {"memory", "pids", "cpus"});
        if (auto* v = l.get("memory")) p.limits.memory = r.size(*v, "limits.memory");
        if (auto* v = l.get("pids")) p.limits.pids = r.count(*v, "limits.pids");
        if (auto* v = l.get("cpus")) {
            auto c = v->value<double>();
            if (!(v->is_number()) || !c || !(*c > 0) || *c > 4096)
                fail(file, v->source(), "limits.cpus", "expected a number of cores above 0, like 1.5");
            p.limits.cpus = *c;
        }
    }
    if (auto* s = t.get("run")) {
        const toml::table& run = r.table(*s, "run");
        r.known(run, "run", {"fake_root", "guard", "keep_tmp"});
        if (auto* v = run.get("fake_root")) p.run.fake_root = r.boolean(*v, "run.fake_root");
        if (auto* v = run.get("keep_tmp")) p.run.keep_tmp = r.boolean(*v, "run.keep_tmp");
        if (auto* v = run.get("guard")) {
            std::string g = r.string(*v, "run.guard");
            if (g != "auto" && g != "bpf" && g != "landlock" && g != "off" && g != "complain")
                fail(file, v->source(), "run.guard", "'" + g + "' is not one of auto, bpf, landlock, off, complain");
            p.run.guard = g;
        }
    }
    return p;
}

bool names_a_file(const std::string& s) { return s.find('/') != std::string::npos || s.ends_with(".toml"); }

std::string builtin_dir() {
    // A build tree's binary uses the profiles its build copied (profiles/meson.build).
    char exe[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    std::string self = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "";
    if (self.starts_with(std::string(MBX_BUILD_ROOT) + "/")) return std::string(MBX_BUILD_ROOT) + "/profiles";
    return MBX_PROFILE_DIR;
}

struct Loader {
    std::vector<std::string> chain;  // the files being read, outermost first

    Profile file(const std::string& path) {
        std::error_code ec;
        std::string canon = std::filesystem::weakly_canonical(path, ec).string();
        if (ec) canon = path;
        if (std::find(chain.begin(), chain.end(), canon) != chain.end()) {
            std::string cycle;
            for (auto it = std::find(chain.begin(), chain.end(), canon); it != chain.end(); ++it) cycle += *it + " -> ";
            throw UserError("profile include cycle: " + cycle + canon);
        }
        std::ifstream in(path, std::ios::binary);
        if (!in) throw UserError("profile " + path + ": " + std::strerror(errno));
        std::stringstream text;
        text << in.rdbuf();
        chain.push_back(canon);
        Profile p = text_of(text.str(), path);
        chain.pop_back();
        return p;
    }

    Profile text_of(const std::string& text, const std::string& path) {
        toml::table t;
        try {
            t = toml::parse(text, path);
        } catch (const toml::parse_error& e) {
            throw UserError(path + ":" + std::to_string(e.source().begin.line) + ": not valid TOML: " +
                            std::string(e.description()));
        }
        std::vector<std::string> includes;
        Profile own = read_table(t, path, includes);
        Profile p;
        std::string dir = std::filesystem::path(path).parent_path().string();
        for (auto& inc : includes) {
            if (names_a_file(inc))
                p.merge(file(inc.starts_with("/") || dir.empty() ? inc : dir + "/" + inc));
            else
                p.merge(file(find(inc)));
        }
        own.sources = {path};
        p.merge(own);
        return p;
    }

    static std::string find(const std::string& name) {
        for (auto& dir : profile_search_path()) {
            std::string f = dir + "/" + name + ".toml";
            if (::access(f.c_str(), R_OK) == 0) return f;
        }
        throw UserError("no profile named '" + name + "' (see 'mbx profile list'; or give a file path)");
    }
};

// ---- writing it back

toml::array to_array(const std::vector<std::string>& v) {
    toml::array a;
    for (auto& s : v) a.push_back(s);
    return a;
}

}  // namespace

void Profile::merge(const Profile& later) {
    add_unique(sources, later.sources);
    if (!later.description.empty()) description = later.description;
    add_unique(fs.writable, later.fs.writable);
    add_unique(fs.hidden, later.fs.hidden);
    add_unique(fs.readonly, later.fs.readonly);
    add_unique(fs.direct, later.fs.direct);
    if (later.net.mode) net.allow.clear();  // a mode starts its allow list afresh
    set_if(net.mode, later.net.mode);
    add_unique(net.allow, later.net.allow);
    add_unique(net.listen, later.net.listen);
    set_if(net.dns, later.net.dns);
    add_unique(exec.allow, later.exec.allow);
    add_unique(exec.deny, later.exec.deny);
    set_if(exec.deny_interpreters_on_sockets, later.exec.deny_interpreters_on_sockets);
    set_if(limits.memory, later.limits.memory);
    set_if(limits.pids, later.limits.pids);
    set_if(limits.cpus, later.limits.cpus);
    set_if(run.fake_root, later.run.fake_root);
    set_if(run.guard, later.run.guard);
    set_if(run.keep_tmp, later.run.keep_tmp);
}

std::vector<std::string> profile_search_path() {
    std::vector<std::string> dirs;
    if (const char* p = std::getenv("MBX_PROFILE_PATH")) {
        std::stringstream ss(p);
        for (std::string d; std::getline(ss, d, ':');)
            if (!d.empty()) dirs.push_back(d);
    }
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x == '/')
        dirs.push_back(std::string(x) + "/mbx/profiles");
    else if (const char* h = std::getenv("HOME"); h && *h == '/')
        dirs.push_back(std::string(h) + "/.config/mbx/profiles");
    dirs.push_back(builtin_dir());
    return dirs;
}

Profile load_profile(const std::string& name_or_file) {
    Loader l;
    return l.file(names_a_file(name_or_file) ? name_or_file : Loader::find(name_or_file));
}

Profile parse_profile(const std::string& text, const std::string& file) {
    Loader l;
    return l.text_of(text, file);
}

std::string profile_to_toml(const Profile& p) {
    auto list = [](toml::table& t, const char* key, const std::vector<std::string>& v) {
        if (!v.empty()) t.insert(key, to_array(v));
    };
    toml::table t, fs, net, exec, limits, run;
    t.insert("version", kProfileVersion);
    if (!p.description.empty()) t.insert("description", p.description);
    list(fs, "writable", p.fs.writable);
    list(fs, "hidden", p.fs.hidden);
    list(fs, "readonly", p.fs.readonly);
    list(fs, "direct", p.fs.direct);
    net.insert("mode", p.net.mode.value_or(p.net.allow.empty() ? "host" : "allow"));
    list(net, "allow", p.net.allow);
    list(net, "listen", p.net.listen);
    if (p.net.dns) net.insert("dns", *p.net.dns);
    list(exec, "allow", p.exec.allow);
    list(exec, "deny", p.exec.deny);
    exec.insert("deny_interpreters_on_sockets", p.exec.deny_interpreters_on_sockets.value_or(false));
    if (p.limits.memory) limits.insert("memory", static_cast<int64_t>(*p.limits.memory));
    if (p.limits.pids) limits.insert("pids", static_cast<int64_t>(*p.limits.pids));
    if (p.limits.cpus) limits.insert("cpus", *p.limits.cpus);
    run.insert("fake_root", p.run.fake_root.value_or(true));
    run.insert("guard", p.run.guard.value_or("auto"));
    run.insert("keep_tmp", p.run.keep_tmp.value_or(false));
    t.insert("fs", std::move(fs));
    t.insert("net", std::move(net));
    t.insert("exec", std::move(exec));
    if (!limits.empty()) t.insert("limits", std::move(limits));
    t.insert("run", std::move(run));
    std::ostringstream out;
    for (auto& s : p.sources) out << "# from " << s << "\n";
    out << t << "\n";
    return out.str();
}

std::string expand_profile_path(const std::string& value, const std::string& key, const std::string& home,
                                const std::string& cwd) {
    std::string v = value;
    auto var = [&](const std::string& name, const std::string& to) {
        if (v == name || v.starts_with(name + "/")) v = to + v.substr(name.size());
    };
    var("~", home);
    var("$HOME", home);
    var("$CWD", cwd);
    if (!v.starts_with("/"))
        throw UserError(key + " \"" + value + "\": give an absolute path (or one starting with ~, $HOME or $CWD)");
    std::string out = std::filesystem::path(v).lexically_normal().string();
    if (out.size() > 1 && out.ends_with("/")) out.pop_back();
    return out;
}

std::vector<ProfileEntry> list_profiles() {
    std::vector<ProfileEntry> out;
    std::set<std::string> seen;
    for (auto& dir : profile_search_path()) {
        std::error_code ec;
        std::vector<std::filesystem::path> files;
        for (auto& e : std::filesystem::directory_iterator(dir, ec))
            if (e.path().extension() == ".toml") files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (auto& f : files) {
            std::string name = f.stem().string();
            if (!seen.insert(name).second) continue;
            ProfileEntry e{name, f.string(), ""};
            try {
                e.description = load_profile(f.string()).description;
            } catch (const UserError& err) {
                e.description = std::string("(broken: ") + err.what() + ")";
            }
            out.push_back(std::move(e));
        }
    }
    return out;
}

}  // namespace mbx
