// UserError: a failure the CLI reports as one line ("mbx: ...") with exit 125.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace mbx {

struct UserError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A path or name as a one-line message or terminal should show it: as is
// when printable, else C-quoted in double quotes like git.
std::string quote_path(const std::string& p);

// "call(path): strerror" — the call, the quoted path, the errno text.
inline std::string sys_error(const std::string& call, const std::string& path, int err = errno) {
    std::string q = quote_path(path);
    if (q.empty() || q[0] != '"') q = "\"" + q + "\"";
    return call + "(" + q + "): " + std::strerror(err);
}

}  // namespace mbx
