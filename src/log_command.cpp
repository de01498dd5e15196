#include "src/log_command.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include "src/error.h"
#include "src/guard_event.h"
#include "src/log_summary.h"

namespace mbx {

std::string session_log_path(const SessionStore& store, const std::string& name) {
    std::string live = store.home() + "/" + name;
    if (::access(live.c_str(), F_OK) == 0) return live + "/log";
    return store.retired_path(name) + "/log";
}

namespace {

// Is some mbx (a run) still writing to the session?
bool in_use(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    bool busy = ::flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return busy;
}

// The log of a session (default: the most recent) that exists, if only
// without a log yet.
std::string existing_log_path(const SessionStore& store, const std::optional<std::string>& session) {
    std::string name = session ? *session : store.resolve(std::nullopt);
    SessionStore::check_name(name);
    std::string path = session_log_path(store, name);
    std::string dir = path.substr(0, path.rfind('/'));
    if (::access(dir.c_str(), F_OK) != 0) throw UserError("no session '" + name + "': see 'mbx list'");
    return path;
}

}  // namespace

std::vector<std::string> read_log_lines(const SessionStore& store, const std::optional<std::string>& session) {
    std::string path = existing_log_path(store, session);
    std::vector<std::string> lines;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) throw UserError(sys_error("open", path));
        return lines;
    }
    std::string all;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) all.append(buf, size_t(n));
    ::close(fd);
    for (size_t start = 0, nl; (nl = all.find('\n', start)) != std::string::npos; start = nl + 1)
        lines.push_back(all.substr(start, nl - start));
    return lines;
}

int cmd_log(SessionStore& store, const LogArgs& a) {
    if (a.summary) {
        std::fputs(summarize_log(read_log_lines(store, a.session)).c_str(), stdout);
        return 0;
    }
    std::string path = existing_log_path(store, a.session);
    std::string dir = path.substr(0, path.rfind('/'));
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT) throw UserError(sys_error("open", path));
    std::string pending;
    auto drain = [&] {
        if (fd < 0) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        char buf[65536];
        for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) pending.append(buf, size_t(n));
        size_t start = 0;
        for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
            std::string line = pending.substr(start, nl - start);
            std::printf("%s\n", a.json ? line.c_str() : event_text(line).c_str());
        }
        pending.erase(0, start);
        std::fflush(stdout);
    };
    drain();
    // --follow: until the run writing it ends.
    while (a.follow && in_use(dir)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        drain();
    }
    if (a.follow) drain();
    if (fd >= 0) ::close(fd);
    return 0;
}

}  // namespace mbx
