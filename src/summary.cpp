#include "src/summary.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "src/error.h"

namespace mbx {

ChangeCounts count_changes(const std::vector<commit::Change>& changes) {
    ChangeCounts c;
    for (auto& ch : changes) {
        switch (commit::effect_letter(ch)) {
            case 'A': c.added++; break;
            case 'D': c.deleted++; break;
            default: c.modified++; break;
        }
    }
    return c;
}

std::vector<commit::Change> session_changes(int session_dir, const std::string& session_path) {
    int layer = ::openat(session_dir, "layer", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (layer < 0) throw UserError(sys_error("open", session_path + "/layer"));
    UniqueFd l(layer);
    int host = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (host < 0) throw UserError(sys_error("open", "/"));
    UniqueFd h(host);
    return commit::scan_layer(l.get(), h.get());
}

void print_summary(Session& s) {
    auto c = count_changes(session_changes(s.dir_fd(), s.path()));
    std::fprintf(stderr,
                 "mbx: session %s: %d added, %d modified, %d deleted — review with 'mbx status %s', "
                 "discard with 'mbx discard %s'\n",
                 s.name().c_str(), c.added, c.modified, c.deleted, s.name().c_str(), s.name().c_str());
}

}  // namespace mbx
