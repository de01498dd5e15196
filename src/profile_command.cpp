#include "src/profile_command.h"

#include <cctype>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "src/error.h"
#include "src/log_command.h"
#include "src/profile.h"
#include "src/profile_generate.h"

namespace mbx {

namespace {

// arg as a shell would need it typed, on one line (a comment of the profile).
std::string shell_word(const std::string& arg) {
    bool plain = !arg.empty(), control = false;
    for (unsigned char c : arg) {
        control |= c < 0x20 || c == 0x7f;
        plain &= std::isalnum(c) || std::strchr("_./=:,+-@%", c) != nullptr;
    }
    if (control) return quote_path(arg);  // "..." with escapes: no newline in the comment
    if (plain) return arg;
    std::string out = "'";
    for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

}  // namespace

int cmd_profile(SessionStore& store, const ProfileArgs& a) {
    if (a.generate) {
        GenerateSource from;
        from.session = a.session ? *a.session : store.resolve(std::nullopt);
        auto lines = read_log_lines(store, from.session);
        for (auto& m : store.list())
            if (m.name == from.session && !m.runs.empty())
                for (auto& arg : m.runs.back().argv) from.command += (from.command.empty() ? "" : " ") + shell_word(arg);
        std::fputs(generate_profile(lines, from).c_str(), stdout);
        return 0;
    }
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
