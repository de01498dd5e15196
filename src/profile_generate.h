// mbx profile generate: turns the log of a monitored run (mbx run --monitor,
// mbx-log(1)) into the tightest profile (mbx-profile(5)) that would have let
// that run do what it did: the directories it wrote in, the programs it ran,
// the addresses it used; with a comment on where each rule came from.
#pragma once

#include <string>
#include <vector>

namespace mbx {

struct GenerateSource {
    std::string session;  // for the comments
    std::string command;  // the run's command line, quoted
};

// The profile as TOML. Throws UserError when the log holds no monitored run.
std::string generate_profile(const std::vector<std::string>& log_lines, const GenerateSource& from);

}  // namespace mbx
