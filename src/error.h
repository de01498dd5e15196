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

// "call(path): strerror" — the call, the quoted path, the errno text.
inline std::string sys_error(const std::string& call, const std::string& path, int err = errno) {
    return call + "(\"" + path + "\"): " + std::strerror(err);
}

}  // namespace mbx
