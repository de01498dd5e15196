// The session commands other than run: list, status, discard.
#pragma once

#include <optional>
#include <string>

#include "src/session_store.h"

namespace mbx {

struct SessionArgs {
    std::optional<std::string> session;
    bool json = false;
};

int cmd_list(SessionStore& store, const SessionArgs& a);
int cmd_status(SessionStore& store, const SessionArgs& a);
int cmd_discard(SessionStore& store, const SessionArgs& a);

}  // namespace mbx
