// `mntscale run`: flags or a preset become a plan (suite/plan.h), checked
// before anything is built, then measured in the sandbox (MeasuredCommand).
#include <cstdio>
#include <memory>

#include "command.h"
#include "mntscale/model/userns.h"
#include "mntscale/observe/counters.h"
#include "mntscale/suite/measured_command.h"
#include "mntscale/suite/plan.h"
#include "mntscale/suite/preset.h"
#include "mntscale/suite/results.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"
#include "plan_options.h"

namespace mntscale {
namespace {

class RunCommand : public Command {
 public:
  explicit RunCommand(CLI::App* root) {
    cmd_ = root->add_subcommand("run", "Build containers and run scenarios; write JSON results");
    AddPlanOptions(cmd_, &req_, &shorthands_);
    cmd_->add_option("--topology", req_.cfg.topology, "Must be 'host' for run")->capture_default_str();
    cmd_->add_option("--farm", req_.farm,
                     "builtin | runc | crun | containerd: who creates the containers")
        ->capture_default_str();
    cmd_->add_option("--preset", preset_name_,
                     "A versioned preset in presets/ (or a JSON file); options given here override it");
    cmd_->add_flag("--userns", userns_, "Run in a new user namespace even as root");
    cmd_->add_option("--out", req_.cfg.out, "Result file (written atomically after every point)");
    cmd_->add_option(
        "--machine", req_.cfg.machine,
        "Name of this machine in the result's context (machine.name), e.g. m7i-48xl-smt-off; "
        "wins over $MNTSCALE_MACHINE, which wins over the hostname");
    cmd_->add_flag("--latency", req_.cfg.latency, "Time every op (p50/p99/p999/max)");
    cmd_->add_option("--events", req_.events,
                     "Count perf events: 'default', or names comma-separated ('list' to show them)");
    cmd_->add_flag("--attribute", req_.cfg.attribute, "Sample kernel stacks and attribute kernel time");
    cmd_->add_flag("--waits", req_.cfg.waits,
                   "Also trace lock waits and off-CPU time and decompose each worker's wall time "
                   "(implies --attribute)");
    cmd_->add_option("--sample-hz", req_.cfg.sample_hz, "Kernel stack sampling rate per worker")
        ->check(CLI::Range(1, 100000));
    cmd_->add_flag("--quiet", req_.cfg.quiet, "No progress on stderr");
    cmd_->add_flag("--wait", wait_,
                   "When another run holds the machine's run lock, wait for it instead of exiting 2");
  }
  CLI::App* app() const override { return cmd_; }

  int Run(int argc, char** argv) override {
    if (req_.events == "list") {
      printf("%s", ListEvents().c_str());
      return 0;
    }
    TakeShorthands(shorthands_, *cmd_, &req_);
    req_.cfg.cli = CommandLineRecord(*cmd_, argc, argv);
    // First, while the process has one thread: a user namespace of our own
    // when we are not root.
    EnterUserNamespaceIfNeeded(userns_);
    std::unique_ptr<Preset> preset;
    if (!preset_name_.empty()) {
      preset = std::make_unique<Preset>(Preset::Load(preset_name_));
      ApplyPreset(*preset, Given(*cmd_), &req_);
      req_.cfg.cli["preset"] = preset->ToJson();
    }
    return Measure(preset.get());
  }

 private:
  // Everything is checked before the sandbox exists; then the points run.
  int Measure(const Preset* preset) {
    RunRequest& req = req_;
    ResolveRequest(&req);
    CheckMachineName(req.cfg.machine);
    if (req.cfg.topology != "host") {  // refused before hwloc builds it
      throw UsageError("run pins workers on this machine, so --topology must be 'host' (got '" +
                       req.cfg.topology + "'); use `mntscale plan` for other machines");
    }
    Topology topo = Topology::Load(req.cfg.topology);
    Plan plan = preset ? MakePresetPlan(*preset, req, topo) : MakePlan(req, topo);
    if (preset) CheckBudget(*preset, plan, req.cfg, topo);
    for (const std::string& n : plan.notes) fprintf(stderr, "mntscale: note: %s\n", n.c_str());
    PreflightLimits(plan, req.cfg.profile);
    // Output safety, then one run at a time: both before anything is built.
    MeasuredCommand command(&req.cfg.out, wait_, req.cfg.quiet);
    command.Enter();
    Session session(req.cfg, topo);
    int status = RunPlan(plan, session);
    session.Finish();
    if (status == 130) {
      fprintf(stderr, "mntscale: interrupted; %d finished points written to %s, marked incomplete\n",
              static_cast<int>(session.sink().entries().size()), req.cfg.out.c_str());
      return status;
    }
    if (!req.cfg.quiet) fprintf(stderr, "mntscale: wrote %s\n", req.cfg.out.c_str());
    // A run that measured nothing (every point unsupported, skipped or
    // failed) says so in its exit code.
    if (!MeasuredAnything(session.sink().entries())) {
      fprintf(stderr, "mntscale: nothing could be measured: every point was skipped or failed\n");
      status = kExitNothingMeasured;
    }
    return status;
  }

  CLI::App* cmd_ = nullptr;
  RunRequest req_;
  std::vector<std::string> shorthands_;
  std::string preset_name_;
  bool userns_ = false, wait_ = false;
};

}  // namespace

std::unique_ptr<Command> MakeRunCommand(CLI::App* root) { return std::make_unique<RunCommand>(root); }

}  // namespace mntscale
