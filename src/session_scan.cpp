#include "src/session_scan.h"

#include <fcntl.h>

#include "src/error.h"

namespace mbx {

SessionPaths parse_session_paths(const std::vector<std::string>& args) {
    SessionPaths out;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& x = args[i];
        if (i == 0 && !x.starts_with("/")) {
            out.session = x;
            continue;
        }
        if (!x.starts_with("/"))
            throw UserError("path " + quote_path(x) + ": give an absolute path as seen inside the sandbox");
        std::string f = x;
        while (f.size() > 1 && f.back() == '/') f.pop_back();
        out.paths.push_back(f);
    }
    return out;
}

bool path_selected(const std::string& path, const std::vector<std::string>& filters) {
    if (filters.empty()) return true;
    for (auto& f : filters)
        if (f == "/" || path == f || (path.starts_with(f) && path[f.size()] == '/')) return true;
    return false;
}

SessionScan scan_session(const std::string& session_path, const SessionMeta& meta,
                         const std::vector<std::string>& filters, bool times) {
    SessionScan s;
    s.layer.reset(::open((session_path + "/layer").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!s.layer) throw UserError(sys_error("open", session_path + "/layer"));
    s.host.reset(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!s.host) throw UserError(sys_error("open", "/"));
    for (auto& c : commit::scan_layer(s.layer.get(), s.host.get(), meta.inside_uid, meta.inside_gid, times))
        if (path_selected(c.path, filters)) s.changes.push_back(std::move(c));
    return s;
}

}  // namespace mbx
