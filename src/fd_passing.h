// Passing a file descriptor and a short message over a unix socket (SCM_RIGHTS).
#pragma once

#include <string>

#include "overlay/sys/unique_fd.h"

namespace mbx {

// Sends msg (non-empty) and, if fd >= 0, the descriptor. Returns false on error.
bool send_msg(int sock, const std::string& msg, int fd = -1);
// Receives one message of at most max bytes; fd_out gets a descriptor if one
// came. Returns false on error, end of stream, or a longer message (EMSGSIZE).
bool recv_msg(int sock, std::string& msg, UniqueFd* fd_out = nullptr, size_t max = 4096);

}  // namespace mbx
