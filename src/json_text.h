// Every JSON mbx writes goes through here: file names and command lines need
// not be UTF-8, and invalid bytes become U+FFFD instead of an exception.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mbx {

inline std::string json_text(const nlohmann::json& j, int indent = 2) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace mbx
