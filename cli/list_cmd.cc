// `mntscale list`: scenarios, their typed axes and claims, and ops.
#include <cstdio>

#include "command.h"
#include "mntscale/suite/scenario.h"

namespace mntscale {
namespace {

class ListCommand : public Command {
 public:
  explicit ListCommand(CLI::App* root) {
    cmd_ = root->add_subcommand("list", "Scenarios, their typed axes and claims, and ops");
    cmd_->add_flag("--json", json_, "Machine-readable: scenarios, axes, types, defaults, claims");
  }
  CLI::App* app() const override { return cmd_; }
  int Run(int, char**) override {
    printf("%s", json_ ? (ListJson().dump(2) + "\n").c_str() : ListText().c_str());
    return 0;
  }

 private:
  CLI::App* cmd_ = nullptr;
  bool json_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeListCommand(CLI::App* root) { return std::make_unique<ListCommand>(root); }

}  // namespace mntscale
