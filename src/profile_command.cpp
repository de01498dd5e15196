#include "src/profile_command.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "src/profile.h"

namespace mbx {

int cmd_profile(const ProfileArgs& a) {
    if (!a.show.empty()) {
        std::fputs(profile_to_toml(load_profile(a.show)).c_str(), stdout);
        return 0;
    }
    auto all = list_profiles();
    if (a.json) {
        nlohmann::json j = nlohmann::json::array();
        for (auto& p : all) j.push_back({{"name", p.name}, {"file", p.file}, {"description", p.description}});
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    size_t w = 4;
    for (auto& p : all) w = std::max(w, p.name.size());
    for (auto& p : all) std::printf("%-*s  %s\n    %s\n", int(w), p.name.c_str(), p.description.c_str(), p.file.c_str());
    return 0;
}

}  // namespace mbx
