#include "src/commit_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>

#include "commit/apply.h"
#include "commit/fault.h"
#include "commit/journal.h"
#include "commit/layer_edit.h"
#include "commit/plan.h"
#include "commit/revert.h"
#include "overlay/sys/sys.h"
#include "src/diff_command.h"
#include "src/error.h"
#include "src/session_scan.h"

namespace mbx {

namespace {

UniqueFd open_sub(const Session& s, const char* sub) {
    auto fd = sys::open_at(s.dir_fd(), sub, O_RDONLY | O_DIRECTORY);
    if (!fd) throw UserError(sys_error("open", s.path() + "/" + sub, fd.error()));
    return std::move(*fd);
}

UniqueFd open_host_root() {
    int fd = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw UserError(sys_error("open", "/"));
    return UniqueFd(fd);
}

std::string plural(size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string why(int err) {
    if (err == ELOOP || err == EXDEV || err == ENOTDIR)
        return "a symlink is on the way (in the layer or on the host) and was not followed";
    if (err == EEXIST || err == EISDIR) return "the host changed it during the commit";
    return std::strerror(err);
}

struct Finished {
    size_t committed = 0;
    std::vector<std::pair<std::string, int>> failed;
    std::vector<std::string> needs_root;
    bool retired = false;
};

// Carries a journalled commit to its end: the host steps not yet done, then
// the layer, then the journal becomes the revert data. Idempotent throughout.
Finished complete(SessionStore& store, Session&& s, commit::Journal& j) {
    UniqueFd layer = open_sub(s, "layer"), work = open_sub(s, "work"), host = open_host_root();
    try {
        if (!j.host_done()) commit::apply_plan(j, {host.get(), layer.get()});
    } catch (const std::exception& e) {
        throw UserError(std::string("commit of session ") + s.name() + " stopped: " + e.what() +
                        "; it is finished by the next mbx command (or 'mbx commit --resume " + s.name() + "')");
    }
    const auto& plan = j.plan();
    auto done = commit::committed_entries(j);
    Finished f;
    std::vector<commit::PlanEntry> drop, keep = plan.pending;
    for (size_t e = 0; e < plan.entries.size(); ++e) (done.count(e) ? drop : keep).push_back(plan.entries[e]);
    f.committed = drop.size();
    bool root = ::geteuid() == 0;
    std::set<size_t> reported;
    for (size_t n = 0; n < plan.steps.size(); ++n) {
        auto o = j.outcomes().find(n);
        size_t e = plan.steps[n].entry;
        if (o == j.outcomes().end() || !o->second.err || reported.count(e)) continue;
        reported.insert(e);
        int err = o->second.err;
        if (!root && (err == EPERM || err == EACCES)) f.needs_root.push_back(plan.entries[e].path);
        else f.failed.push_back({plan.entries[e].path, err});
    }
    commit::drop_entries({layer.get(), work.get(), host.get()}, drop, keep, true);
    commit::fault_point();
    commit::promote_journal(s.dir_fd());
    commit::fault_point();
    if (commit::layer_empty(layer.get())) {
        store.retire(std::move(s));
        f.retired = true;
    }
    return f;
}

// The review of mbx commit -i: y/n/d/a/q per entry within the filters, on the terminal.
std::set<std::string> review(const SessionScan& scan, const std::vector<std::string>& filters) {
    int fd = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) throw UserError("-i needs a terminal to ask on: run it from one, or commit without -i");
    FILE* tty = ::fdopen(fd, "r+");
    if (!tty) {
        ::close(fd);
        throw UserError("cannot use the terminal: " + std::string(std::strerror(errno)));
    }
    std::set<std::string> yes;
    bool all = false;
    for (auto& c : scan.changes) {
        if (!path_selected(c.path, filters)) continue;
        if (all) {
            yes.insert(c.path);
            continue;
        }
        for (;;) {
            char letter = c.conflict != commit::Conflict::None ? 'C' : commit::kind_letter(c.kind);
            std::fprintf(tty, "%c %s  commit? [y]es [n]o [d]iff [a]ll [q]uit: ", letter, quote_path(c.path).c_str());
            std::fflush(tty);
            char line[64];
            if (!std::fgets(line, sizeof line, tty)) {
                std::fputc('\n', tty);
                std::fclose(tty);
                return yes;  // end of input: stop asking
            }
            char k = line[0];
            if (k == 'y') yes.insert(c.path);
            else if (k == 'a') yes.insert(c.path), all = true;
            else if (k == 'q') {
                std::fclose(tty);
                return yes;
            } else if (k == 'd') {
                std::fflush(stdout);
                print_change(scan, c, true, ::isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR"));
                std::fflush(stdout);
                continue;
            } else if (k != 'n') {
                std::fprintf(tty, "answer y, n, d, a or q\n");
                continue;
            }
            break;
        }
    }
    std::fclose(tty);
    return yes;
}

int report(const std::string& name, const Finished& f, const std::vector<commit::Skipped>& skipped, bool resumed) {
    std::vector<const commit::Change*> conflicts;
    std::vector<std::string> root = f.needs_root;
    for (auto& s : skipped) {
        if (s.reason == commit::SkipReason::Conflict) conflicts.push_back(&s.change);
        else root.push_back(s.change.path);
    }
    std::fprintf(stderr, "mbx: session %s: %s %s\n", name.c_str(), resumed ? "finished an interrupted commit," : "committed",
                 plural(f.committed, "entry", "entries").c_str());
    for (auto& [path, err] : f.failed)
        std::fprintf(stderr, "mbx: %s: not committed: %s\n", quote_path(path).c_str(), why(err).c_str());
    if (!conflicts.empty()) {
        for (auto* c : conflicts)
            std::fprintf(stderr, "  C %s (%s)\n", quote_path(c->path).c_str(),
                         c->conflict == commit::Conflict::None ? "below a conflict" : commit::conflict_name(c->conflict));
        std::fprintf(stderr,
                     "mbx: %s skipped: the host changed %s since the run; see 'mbx diff %s', "
                     "apply anyway with 'mbx commit --force %s'\n",
                     plural(conflicts.size(), "conflict", "conflicts").c_str(), conflicts.size() == 1 ? "it" : "them",
                     name.c_str(), name.c_str());
    }
    if (!root.empty()) {
        for (auto& p : root) std::fprintf(stderr, "  %s\n", quote_path(p).c_str());
        std::fprintf(stderr, "mbx: %s root: sudo mbx commit %s\n",
                     plural(root.size(), "entry needs", "entries need").c_str(), name.c_str());
    }
    if (f.retired)
        std::fprintf(stderr, "mbx: session %s is fully committed (undo with 'mbx revert %s')\n", name.c_str(),
                     name.c_str());
    if (!f.failed.empty()) return 1;
    if (!conflicts.empty()) return 3;
    if (!root.empty()) return 4;
    return 0;
}

bool has_journal(int session_dir) {
    struct stat st;
    return ::fstatat(session_dir, commit::kJournalDir, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

std::optional<commit::Journal> open_journal(const Session& s, const char* name) {
    try {
        return commit::Journal::open(s.dir_fd(), name);
    } catch (const std::exception& e) {
        throw UserError("session " + s.name() + ": " + e.what() + " (look at " + s.path() + "/" + name + ")");
    }
}

}  // namespace

void finish_interrupted_commits(SessionStore& store) {
    for (auto& m : store.list()) {
        std::string path = store.home() + "/" + m.name + "/" + commit::kJournalDir;
        if (::access(path.c_str(), F_OK) != 0) continue;
        try {
            Session s = store.open_for_removal(m.name);  // locked: a commit still running is left alone
            auto j = open_journal(s, commit::kJournalDir);
            if (!j) continue;
            std::string name = s.name();
            report(name, complete(store, std::move(s), *j), {}, true);
        } catch (const UserError& e) {
            if (std::string(e.what()).find("in use") == std::string::npos) std::fprintf(stderr, "mbx: %s\n", e.what());
        }
    }
}

int cmd_commit(SessionStore& store, const CommitArgs& a) {
    SessionPaths args = parse_session_paths(a.args);
    std::string name = store.resolve(args.session);
    store.check_readable(name);
    Session s = store.open_for_removal(name);
    if (auto j = open_journal(s, commit::kJournalDir)) {
        return report(name, complete(store, std::move(s), *j), {}, true);
    }
    if (a.resume) {
        std::fprintf(stderr, "mbx: session %s: no interrupted commit to resume\n", name.c_str());
        return 0;
    }
    SessionScan scan = scan_session(s.path(), s.meta());
    for (auto& p : args.paths) {
        bool any = false;
        for (auto& c : scan.changes) any = any || path_selected(c.path, {p});
        if (!any) throw UserError("nothing to commit at " + quote_path(p) + " in session " + name + ": see 'mbx diff " + name + "'");
    }
    commit::PlanInput in;
    in.force = a.force;
    in.who = commit::Committer::current();
    in.host_root = scan.host.get();
    std::vector<std::string> filters = args.paths;
    if (a.interactive) {
        if (scan.changes.empty()) {
            std::fprintf(stderr, "mbx: session %s: nothing to commit\n", name.c_str());
            return 0;
        }
        std::set<std::string> yes = review(scan, filters);
        in.selected = [yes](const commit::Change& c) { return yes.count(c.path) > 0; };
    } else if (!filters.empty()) {
        in.selected = [filters](const commit::Change& c) { return path_selected(c.path, filters); };
    }
    in.scan_is_fresh = !a.interactive;
    in.changes = std::move(scan.changes);
    commit::PlanResult planned = commit::make_plan(in);
    if (a.dry_run) {
        for (auto& e : planned.plan.entries) std::printf("%c %s\n", e.kind, quote_path(e.path).c_str());
        for (auto& k : planned.skipped)
            std::printf("%c %s (%s)\n", commit::kind_letter(k.change.kind), quote_path(k.change.path).c_str(),
                        k.reason == commit::SkipReason::Conflict ? "conflict skipped"
                                                                    : "needs root");
        return 0;
    }
    if (planned.plan.entries.empty() && planned.skipped.empty()) {
        std::fprintf(stderr, "mbx: session %s: nothing to commit\n", name.c_str());
        return 0;
    }
    auto st = sys::stat_fd(s.dir_fd());
    commit::Journal j = [&] {
        try {
            return commit::Journal::create(s.dir_fd(), commit::kJournalDir, planned.plan, st ? st->st_uid : 0,
                                           st ? st->st_gid : 0);
        } catch (const std::exception& e) {
            throw UserError("session " + name + ": cannot write the commit journal (nothing was changed): " + e.what());
        }
    }();
    return report(name, complete(store, std::move(s), j), planned.skipped, false);
}

int cmd_revert(SessionStore& store, const RevertArgs& a) {
    // The session named, else the one committed last.
    std::string name;
    bool retired = false;
    if (a.session) {
        name = *a.session;
        SessionStore::check_name(name);
        std::string live = store.home() + "/" + name + "/" + commit::kRevertDir;
        retired = ::access(live.c_str(), F_OK) != 0;
    } else {
        int64_t best = -1;
        auto consider = [&](const std::string& n, bool ret) {
            std::string p = (ret ? store.retired_path(n) : store.home() + "/" + n) + "/" + commit::kRevertDir +
                            "/plan.json";
            struct stat st;
            if (::stat(p.c_str(), &st) != 0) return;
            int64_t t = sys::to_ns(st.st_mtim);
            if (t > best) best = t, name = n, retired = ret;
        };
        for (auto& m : store.list()) consider(m.name, false);
        for (auto& n : store.retired()) consider(n, true);
        if (best < 0) throw UserError("no commit to revert: see 'mbx list'");
    }
    Session s = retired ? store.open_retired(name) : store.open_for_removal(name);
    auto data = open_journal(s, commit::kRevertDir);
    if (!data) throw UserError("session " + name + " has no commit to revert");
    UniqueFd host = open_host_root();
    auto r = commit::revert_commit(*data, host.get(), a.force);
    if (!r.changed.empty()) {
        for (auto& p : r.changed) std::fprintf(stderr, "  %s\n", quote_path(p).c_str());
        if (!a.force) {
            std::fprintf(stderr,
                         "mbx: the host changed %s since the commit: nothing reverted "
                         "(revert the rest with 'mbx revert --force %s')\n",
                         plural(r.changed.size(), "path", "paths").c_str(), name.c_str());
            return 3;
        }
        std::fprintf(stderr, "mbx: left as they are (the host changed them since the commit)\n");
    }
    for (auto& [p, err] : r.failed) std::fprintf(stderr, "mbx: %s: not reverted: %s\n", quote_path(p).c_str(), std::strerror(err));
    (void)sys::remove_tree_at(s.dir_fd(), commit::kRevertDir);
    if (retired) store.remove_retired(std::move(s));  // nothing left in it
    std::fprintf(stderr, "mbx: session %s: reverted the last commit (%s)\n", name.c_str(),
                 plural(r.restored, "step", "steps").c_str());
    return r.failed.empty() ? (r.changed.empty() ? 0 : 3) : 1;
}

int cmd_discard_paths(SessionStore& store, const std::string& name, const std::vector<std::string>& paths) {
    store.check_readable(name);
    Session s = store.open_for_removal(name);
    if (has_journal(s.dir_fd()))
        throw UserError("session " + name + " has an interrupted commit: finish it with 'mbx commit --resume " + name + "'");
    SessionScan scan = scan_session(s.path(), s.meta());
    std::vector<commit::PlanEntry> drop, keep;
    for (auto& p : paths) {
        bool any = false;
        for (auto& c : scan.changes) any = any || path_selected(c.path, {p});
        if (!any) throw UserError("nothing to discard at " + quote_path(p) + " in session " + name + ": see 'mbx diff " + name + "'");
    }
    for (auto& c : scan.changes)
        (path_selected(c.path, paths) ? drop : keep)
            .push_back({c.path, commit::kind_letter(c.kind), S_ISDIR(c.mode) && c.kind != commit::ChangeKind::Deleted});
    UniqueFd work = open_sub(s, "work");
    commit::drop_entries({scan.layer.get(), work.get(), scan.host.get()}, drop, keep, false);
    std::fprintf(stderr, "mbx: session %s: discarded %s\n", name.c_str(), plural(drop.size(), "entry", "entries").c_str());
    return 0;
}

}  // namespace mbx
