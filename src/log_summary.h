// mbx log --summary: a session's record folded the way MBOX summarised a run:
// the programs it ran, the network peers it used, and what the guard refused
// (or, under --guard complain, would have), each with counts.
#pragma once

#include <string>
#include <vector>

namespace mbx {

// The summary of the log's JSON lines (mbx-log(1)); lines that are not
// records are counted, not trusted.
std::string summarize_log(const std::vector<std::string>& lines);

}  // namespace mbx
