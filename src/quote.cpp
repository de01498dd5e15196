#include <cstdio>
#include <string>

#include "src/error.h"

namespace mbx {

std::string quote_path(const std::string& p) {
    bool plain = true;
    for (unsigned char c : p)
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') plain = false;
    if (plain) return p;
    std::string out = "\"";
    for (unsigned char c : p) {
        switch (c) {
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char b[8];
                    std::snprintf(b, sizeof b, "\\%03o", c);
                    out += b;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

}  // namespace mbx
