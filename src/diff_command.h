// mbx diff: the changes of a session against the host, as lines, a stat, patches or JSON.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "commit/change_scan.h"
#include "src/session_scan.h"
#include "src/session_store.h"

namespace mbx {

struct DiffArgs {
    std::vector<std::string> args;  // [SESSION] [PATH...]
    bool stat = false;
    bool patch = false;
    bool json = false;
    bool no_pager = false;
    bool times = false;
    std::string color = "auto";
};

int cmd_diff(SessionStore& store, const DiffArgs& a);
// One entry as mbx diff prints it (with its patch if asked), on stdout.
void print_change(const SessionScan& s, const commit::Change& c, bool patch, bool color);

}  // namespace mbx
