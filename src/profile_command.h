// mbx profile: list the profiles found, show one as the policy it makes; see mbx-profile(1).
#pragma once

#include <string>

namespace mbx {

struct ProfileArgs {
    bool json = false;
    std::string show;  // NAME or FILE
};

int cmd_profile(const ProfileArgs& a);

}  // namespace mbx
