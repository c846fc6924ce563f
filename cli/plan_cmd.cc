// `mntscale plan`: a preset, an ad-hoc run (any run option besides --workers
// N), or where N workers (default: one per PU) go under the placements; on
// this machine or any topology. Builds nothing.
#include <cstdio>
#include <memory>

#include "command.h"
#include "mntscale/suite/plan_text.h"
#include "mntscale/suite/preset.h"
#include "plan_options.h"

namespace mntscale {
namespace {

class PlanCmd : public Command {
 public:
  explicit PlanCmd(CLI::App* root) {
    cmd_ = root->add_subcommand("plan", "Show where workers would run and what a run costs");
    AddPlanOptions(cmd_, &req_, &shorthands_);
    cmd_->add_option("--topology", topology_,
                     "host | a name in topologies/ | hwloc synthetic string | XML file")
        ->capture_default_str();
    cmd_->add_option("--preset", preset_, "Plan a preset: its points, placements, run time");
  }
  CLI::App* app() const override { return cmd_; }
  int Run(int, char**) override {
    TakeShorthands(shorthands_, *cmd_, &req_);
    const bool placement_given = cmd_->get_option("--placement")->count() > 0;
    std::unique_ptr<Preset> preset;
    if (!preset_.empty()) {
      preset = std::make_unique<Preset>(Preset::Load(preset_));
      ApplyPreset(*preset, Given(*cmd_), &req_);
    }
    const bool adhoc = cmd_->get_option("--scenario")->count() > 0;
    printf("%s", PlanCommand(preset.get(), req_, Topology::Load(topology_), placement_given, adhoc)
                     .c_str());
    return 0;
  }

 private:
  CLI::App* cmd_ = nullptr;
  RunRequest req_;
  std::vector<std::string> shorthands_;
  std::string topology_ = "host", preset_;
};

}  // namespace

std::unique_ptr<Command> MakePlanCommand(CLI::App* root) { return std::make_unique<PlanCmd>(root); }

}  // namespace mntscale
