// mbx profile: list the profiles found, show one as the policy it makes; see mbx-profile(1).
#pragma once

#include <optional>
#include <string>

#include "src/session_store.h"

namespace mbx {

struct ProfileArgs {
    bool json = false;
    std::string show;  // NAME or FILE
    bool generate = false;
    std::optional<std::string> session;  // generate's (default: the most recent)
};

int cmd_profile(SessionStore& store, const ProfileArgs& a);

}  // namespace mbx
