#include "commit/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "overlay/sys/sys.h"

namespace mbx::commit {

namespace {

[[noreturn]] void fail(const std::string& what, int err) {
    throw std::runtime_error(what + ": " + std::strerror(err));
}

void write_all(int fd, const std::string& s, const char* what) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail(what, n < 0 ? errno : ENOSPC);
        off += size_t(n);
    }
}

std::string read_all(int fd) {
    std::string s;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("read journal", errno);
        }
        s.append(buf, size_t(n));
    }
    return s;
}

std::string record_line(size_t step, const StepOutcome& o) {
    char buf[128];
    if (o.err)
        std::snprintf(buf, sizeof buf, "%zu err %d\n", step, o.err);
    else
        std::snprintf(buf, sizeof buf, "%zu ok %llu %lld %lld\n", step, (unsigned long long)o.ino,
                      (long long)o.mtime_ns, (long long)o.size);
    return buf;
}

}  // namespace

void Journal::own(int fd) const {
    if (::geteuid() == 0 && (uid_ != 0 || gid_ != 0)) (void)::fchown(fd, uid_, gid_);
}

Journal Journal::create(int session_dir, const std::string& name, const Plan& plan, uid_t owner_uid,
                        gid_t owner_gid) {
    struct stat st;
    if (::fstatat(session_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
        throw std::runtime_error(name + " exists: an interrupted commit must be finished first");
    std::string tmp = name + ".tmp";
    (void)sys::remove_tree_at(session_dir, tmp.c_str());
    if (::mkdirat(session_dir, tmp.c_str(), 0700) < 0) fail("mkdir " + tmp, errno);
    auto dir = sys::open_at(session_dir, tmp.c_str(), O_RDONLY | O_DIRECTORY);
    if (!dir) fail("open " + tmp, dir.error());
    Journal j(plan, std::move(*dir), UniqueFd(), UniqueFd(), owner_uid, owner_gid);
    j.own(j.dir_.get());
    if (::mkdirat(j.dir_.get(), "backup", 0700) < 0) fail("mkdir backup", errno);
    auto backup = sys::open_at(j.dir_.get(), "backup", O_RDONLY | O_DIRECTORY);
    if (!backup) fail("open backup", backup.error());
    j.own(backup->get());
    j.backup_ = std::move(*backup);
    auto pf = sys::open_at(j.dir_.get(), "plan.json", O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (!pf) fail("create plan.json", pf.error());
    j.own(pf->get());
    write_all(pf->get(), plan_to_text(plan), "write plan.json");
    if (::fsync(pf->get()) < 0) fail("fsync plan.json", errno);
    auto done = sys::open_at(j.dir_.get(), "done", O_CREAT | O_EXCL | O_WRONLY | O_APPEND, 0600);
    if (!done) fail("create done", done.error());
    j.own(done->get());
    j.done_ = std::move(*done);
    if (::fsync(j.dir_.get()) < 0) fail("fsync journal", errno);
    // The rename makes the journal exist all at once, complete.
    if (::renameat(session_dir, tmp.c_str(), session_dir, name.c_str()) < 0) fail("rename journal", errno);
    if (::fsync(session_dir) < 0) fail("fsync session", errno);
    return j;
}

std::optional<Journal> Journal::open(int session_dir, const std::string& name) {
    auto dir = sys::open_at(session_dir, name.c_str(), O_RDONLY | O_DIRECTORY);
    if (!dir) {
        if (dir.error() == ENOENT) return std::nullopt;
        fail("open " + name, dir.error());
    }
    auto pf = sys::open_at(dir->get(), "plan.json", O_RDONLY);
    if (!pf) fail("open " + name + "/plan.json", pf.error());
    auto plan = plan_from_text(read_all(pf->get()));
    if (!plan) throw std::runtime_error(name + "/plan.json is not a plan of this version");
    auto backup = sys::open_at(dir->get(), "backup", O_RDONLY | O_DIRECTORY);
    if (!backup) fail("open " + name + "/backup", backup.error());
    auto done = sys::open_at(dir->get(), "done", O_RDWR | O_APPEND);
    if (!done) fail("open " + name + "/done", done.error());
    auto st = sys::stat_fd(dir->get());
    Journal j(std::move(*plan), std::move(*dir), std::move(*backup), UniqueFd(), st ? st->st_uid : 0,
              st ? st->st_gid : 0);
    std::istringstream in(read_all(done->get()));
    j.done_ = std::move(*done);
    j.resumed_ = true;
    // A line cut short by a crash has no newline at its end: ignored (the step is redone).
    std::string line;
    while (std::getline(in, line)) {
        if (in.eof()) break;
        if (line == "end") {
            j.host_done_ = true;
            continue;
        }
        std::istringstream l(line);
        size_t n;
        std::string what;
        StepOutcome o;
        if (!(l >> n >> what) || n >= j.plan_.steps.size()) continue;
        if (what == "ok") l >> o.ino >> o.mtime_ns >> o.size;
        else if (what == "err") l >> o.err;
        else continue;
        j.outcomes_[n] = o;
    }
    return j;
}

// Not fsynced per step: every step is idempotent, so a record lost to a
// power cut only means the step is done again.
void Journal::record(size_t step, const StepOutcome& o) {
    write_all(done_.get(), record_line(step, o), "write journal");
    outcomes_[step] = o;
}

void Journal::record(const std::vector<std::pair<size_t, StepOutcome>>& outcomes) {
    std::string lines;
    for (auto& [step, o] : outcomes) lines += record_line(step, o);
    write_all(done_.get(), lines, "write journal");
    for (auto& [step, o] : outcomes) outcomes_[step] = o;
}

void Journal::mark_host_done() {
    if (::fdatasync(done_.get()) < 0) fail("fsync journal", errno);
    write_all(done_.get(), "end\n", "write journal");
    if (::fdatasync(done_.get()) < 0) fail("fsync journal", errno);
    host_done_ = true;
}

void promote_journal(int session_dir) {
    (void)sys::remove_tree_at(session_dir, "revert.old");
    if (::renameat(session_dir, kRevertDir, session_dir, "revert.old") < 0 && errno != ENOENT)
        fail("rename revert", errno);
    if (::renameat(session_dir, kJournalDir, session_dir, kRevertDir) < 0) fail("rename journal", errno);
    ::fsync(session_dir);
    (void)sys::remove_tree_at(session_dir, "revert.old");
}

}  // namespace mbx::commit
