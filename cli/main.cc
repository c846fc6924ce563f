// mntscale: the command line. Each command is a small class in its own file
// (cli/*_cmd.cc), registered in the table below as perf registers its
// builtin-* commands; the harness does the work. mntscale has its own runner
// and writes Google Benchmark's JSON format with a richer context.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <vector>

#include "command.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

// In `mntscale --help` order.
constexpr std::unique_ptr<Command> (*kCommands[])(CLI::App*) = {
    MakeRunCommand,      MakeListCommand,    MakePlanCommand,
    MakeCapacityCommand, MakeProfileCommand, MakeObserveCommand,
};

int Main(int argc, char** argv) {
  CLI::App app{"mntscale: mount-namespace scalability benchmarks for Linux kernels and machines"};
  app.require_subcommand(1);
  app.set_version_flag("--version", MNTSCALE_VERSION);
  std::vector<std::unique_ptr<Command>> commands;
  for (auto make : kCommands) commands.push_back(make(&app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // --help and --version exit 0; every bad command line exits 2
    return rc == 0 ? 0 : 2;
  }
  for (const auto& c : commands) {
    if (!c->app()->parsed()) continue;
    RejectEmptyValues(*c->app());
    return c->Run(argc, argv);
  }
  return 2;  // require_subcommand(1) makes this unreachable
}

}  // namespace
}  // namespace mntscale

int main(int argc, char** argv) {
  try {
    return mntscale::Main(argc, argv);
  } catch (const mntscale::UsageError& e) {
    fprintf(stderr, "mntscale: error: %s\n", e.what());
    return 2;
  } catch (const mntscale::SysError& e) {
    fprintf(stderr, "mntscale: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fprintf(stderr, "mntscale: %s\n", e.what());
    return 1;
  }
}
