// What the commands share on the command-line side.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mntscale {

// The command line as a result's context records it: argv, and each option
// given, by its long name, with its values.
inline nlohmann::json CommandLineRecord(const CLI::App& cmd, int argc, char** argv) {
  nlohmann::json opts = nlohmann::json::object();
  for (const CLI::Option* opt : cmd.get_options()) {
    if (opt->count() && !opt->get_lnames().empty())
      opts[opt->get_lnames()[0]] = opt->as<std::vector<std::string>>();
  }
  return {{"argv", std::vector<std::string>(argv, argv + argc)}, {"options", opts}};
}

}  // namespace mntscale
