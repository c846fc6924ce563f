// What the commands share on the command-line side. Each command is a small
// class registered in cli/main.cc's table, as perf registers its builtin-*
// commands: it adds its subcommand and options to the root app, and runs when
// that subcommand was parsed.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mntscale {

class Command {
 public:
  virtual ~Command() = default;
  // The (sub)subcommand whose options this command reads: parsed() says it
  // was asked for, and its empty values are refused before Run.
  virtual CLI::App* app() const = 0;
  // The exit code: 0 done, 2 bad input, 3 unsupported here, 130 interrupted,
  // as each command documents.
  virtual int Run(int argc, char** argv) = 0;
};

// The command line as a result's context records it: argv, and each option
// given, by its long name, with its values.
nlohmann::json CommandLineRecord(const CLI::App& cmd, int argc, char** argv);

// An option given with an empty value ("--containers ''") is an error, never
// "not given".
void RejectEmptyValues(const CLI::App& cmd);

// Whether the command line gave an option (preset values fill the rest).
std::function<bool(const char*)> Given(const CLI::App& cmd);

// The commands, one file each.
std::unique_ptr<Command> MakeRunCommand(CLI::App* root);
std::unique_ptr<Command> MakeListCommand(CLI::App* root);
std::unique_ptr<Command> MakePlanCommand(CLI::App* root);
std::unique_ptr<Command> MakeCapacityCommand(CLI::App* root);
std::unique_ptr<Command> MakeProfileCommand(CLI::App* root);
std::unique_ptr<Command> MakeObserveCommand(CLI::App* root);

}  // namespace mntscale
