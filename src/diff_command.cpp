#include "src/diff_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "commit/change_scan.h"
#include "overlay/sys/sys.h"
#include "overlay/sys/unique_fd.h"
#include "src/error.h"
#include "src/json_text.h"
#include "src/pager.h"

namespace mbx {

namespace {

constexpr const char* kReset = "\033[m";
constexpr const char* kGreen = "\033[32m";
constexpr const char* kRed = "\033[31m";
constexpr const char* kYellow = "\033[33m";
constexpr const char* kBoldRed = "\033[1;31m";

UniqueFd open_beneath(int root, const std::string& rel) {
    auto fd = sys::open_beneath(root, rel, O_RDONLY);
    return fd ? std::move(*fd) : UniqueFd();
}

// diff -u of two descriptors (-1: empty side, /dev/null), labelled like git.
std::string unified_diff(int old_fd, int new_fd, const std::string& path, bool color) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) < 0) return {};
    std::fflush(stdout);
    pid_t pid = ::fork();
    if (pid == 0) {
        // fds 3 and 4 for the two sides, without close-on-exec.
        int a = old_fd >= 0 ? ::fcntl(old_fd, F_DUPFD, 10) : -1;
        int b = new_fd >= 0 ? ::fcntl(new_fd, F_DUPFD, 10) : -1;
        ::dup2(out[1], STDOUT_FILENO);
        std::string old_label = old_fd >= 0 ? "a" + path : "/dev/null";
        std::string new_label = new_fd >= 0 ? "b" + path : "/dev/null";
        std::string old_file = a >= 0 ? "/dev/fd/" + std::to_string(a) : "/dev/null";
        std::string new_file = b >= 0 ? "/dev/fd/" + std::to_string(b) : "/dev/null";
        ::execlp("diff", "diff", "-u", color ? "--color=always" : "--color=never", "--label", old_label.c_str(),
                 "--label", new_label.c_str(), old_file.c_str(), new_file.c_str(), static_cast<char*>(nullptr));
        ::_exit(2);
    }
    ::close(out[1]);
    std::string text;
    char buf[65536];
    for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) != 0;) {
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        text.append(buf, n);
    }
    ::close(out[0]);
    int status;
    while (pid > 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return text;
}

struct Counts {
    int added = 0, removed = 0;
    bool binary = false;
};

Counts count(const std::string& diff) {
    Counts c;
    size_t pos = 0;
    while (pos < diff.size()) {
        size_t end = diff.find('\n', pos);
        if (end == std::string::npos) end = diff.size();
        std::string_view line(diff.data() + pos, end - pos);
        if (line.starts_with("Binary files ")) c.binary = true;
        else if (line.starts_with("+") && !line.starts_with("+++ ")) c.added++;
        else if (line.starts_with("-") && !line.starts_with("--- ")) c.removed++;
        pos = end + 1;
    }
    return c;
}

std::string octal(mode_t m) {
    char b[16];
    std::snprintf(b, sizeof b, "%04o", m & 07777);
    return b;
}

// The content diff of one entry: host side if the host has a regular file
// (and the entry is not new), layer side if the layer has one (and it is not a deletion).
std::string content_diff(const SessionScan& s, const commit::Change& c, bool color) {
    std::string rel = c.path.substr(1);
    bool host_reg = S_ISREG(c.host_mode) && c.kind != commit::ChangeKind::Added;
    bool layer_reg = c.kind != commit::ChangeKind::Deleted && S_ISREG(c.mode);
    if (!host_reg && !layer_reg) return {};
    UniqueFd h = host_reg ? open_beneath(s.host.get(), rel) : UniqueFd();
    UniqueFd l = layer_reg ? open_beneath(s.layer.get(), rel) : UniqueFd();
    if ((host_reg && !h) || (layer_reg && !l)) return {};
    return unified_diff(h.get(), l.get(), c.path, color);
}

}  // namespace

void print_change(const SessionScan& s, const commit::Change& c, bool patch, bool color) {
    char letter = c.conflict != commit::Conflict::None ? 'C' : commit::kind_letter(c.kind);
    const char* col = "";
    if (color) {
        switch (letter) {
            case 'A': col = kGreen; break;
            case 'D': col = kRed; break;
            case 'C': col = kBoldRed; break;
            default: col = kYellow; break;
        }
    }
    std::printf("%s%c %s%s\n", col, letter, quote_path(c.path).c_str(), color ? kReset : "");
    if (!patch) return;
    if (c.host_mode && c.mode && (c.host_mode & S_IFMT) == (c.mode & S_IFMT) &&
        (c.host_mode & 07777) != (c.mode & 07777))
        std::printf("old mode %06o\nnew mode %06o\n", c.host_mode, c.mode);
    if (S_ISLNK(c.mode) && c.kind != commit::ChangeKind::Deleted) std::printf("symlink -> %s\n", c.target.c_str());
    std::string d = content_diff(s, c, color);
    std::fwrite(d.data(), 1, d.size(), stdout);
}

int cmd_diff(SessionStore& store, const DiffArgs& a) {
    SessionPaths args = parse_session_paths(a.args);
    if (a.color != "auto" && a.color != "always" && a.color != "never")
        throw UserError("--color=" + a.color + ": use always, never or auto");
    std::string name = store.resolve(args.session);
    SessionScan s = scan_session(store.home() + "/" + name, store.read(name), args.paths, a.times);

    if (a.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (auto& c : s.changes) {
            nlohmann::json j = {{"path", c.path}, {"kind", std::string(1, commit::kind_letter(c.kind))}};
            const char* conflict = commit::conflict_name(c.conflict);
            j["conflict"] = conflict ? nlohmann::json(conflict) : nlohmann::json(nullptr);
            if (c.kind == commit::ChangeKind::Deleted) {
                j["type"] = commit::type_name(c.host_mode);
            } else {
                j["type"] = commit::type_name(c.mode);
                j["mode"] = octal(c.mode);
                j["uid"] = c.uid;
                j["gid"] = c.gid;
                if (S_ISLNK(c.mode)) j["target"] = c.target;
            }
            arr.push_back(std::move(j));
        }
        std::printf("%s\n", json_text({{"session", name}, {"changes", arr}}).c_str());
        return 0;
    }

    bool color = a.color == "always" || (a.color == "auto" && ::isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR"));
    Pager pager(!a.no_pager);

    if (a.stat) {
        size_t width = 0;
        for (auto& c : s.changes) width = std::max(width, quote_path(c.path).size());
        int files = 0, ins = 0, del = 0;
        for (auto& c : s.changes) {
            Counts n = count(content_diff(s, c, false));
            std::string p = quote_path(c.path);
            std::printf(" %-*s | ", static_cast<int>(width), p.c_str());
            if (n.binary) {
                std::printf("Bin\n");
            } else {
                int total = n.added + n.removed;
                int scale = std::max(1, (total + 39) / 40);
                std::printf("%d %s%s%s%s%s%s\n", total, color ? kGreen : "", std::string(n.added / scale, '+').c_str(),
                            color ? kReset : "", color ? kRed : "", std::string(n.removed / scale, '-').c_str(),
                            color ? kReset : "");
            }
            ++files;
            ins += n.added;
            del += n.removed;
        }
        std::printf(" %d file%s changed, %d insertion%s(+), %d deletion%s(-)\n", files, files == 1 ? "" : "s", ins,
                    ins == 1 ? "" : "s", del, del == 1 ? "" : "s");
        return 0;
    }

    for (auto& c : s.changes) print_change(s, c, a.patch, color);
    return 0;
}

}  // namespace mbx
