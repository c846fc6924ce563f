// mntscale: the command line. It turns flags into a plan (harness/include/mntscale/suite/plan.h)
// and hands it to the harness; mntscale has its own runner and writes Google
// Benchmark's JSON format with a richer context.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <memory>

#include "mntscale/observe/counters.h"
#include "mntscale/suite/plan.h"
#include "mntscale/suite/plan_text.h"
#include "mntscale/suite/results.h"
#include "mntscale/suite/measured_command.h"
#include "mntscale/suite/session.h"
#include "command.h"
#include "capacity_cmd.h"  // `capacity`
#include "observe_cmd.h"   // `observe`
#include "profile_cmd.h"  // `profile capture`
#include "mntscale/model/sandbox.h"
#include "mntscale/sys/sys.h"
#include "mntscale/model/userns.h"

namespace mntscale {
namespace {

// Whether the command line gave an option (preset values fill the rest).
std::function<bool(const char*)> Given(const CLI::App& cmd) {
  return [&cmd](const char* opt) {
    const CLI::Option* o = cmd.get_option_no_throw(opt);
    return o && o->count() > 0;
  };
}

// An option given with an empty value ("--containers ''") is an error, never
// "not given".
void RejectEmptyValues(const CLI::App& cmd) {
  for (const CLI::Option* opt : cmd.get_options()) {
    if (!opt->count() || opt->get_expected_min() == 0) continue;  // flags take no value
    for (const std::string& v : opt->results()) {
      if (v.empty()) throw UsageError(opt->get_name() + " has an empty value");
    }
  }
}

int CmdRun(RunRequest& req, const Preset* preset, bool wait) {
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
  MeasuredCommand command(&req.cfg.out, wait, req.cfg.quiet);
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
  // A run that measured nothing (every point unsupported, skipped or failed)
  // says so in its exit code.
  if (!MeasuredAnything(session.sink().entries())) {
    fprintf(stderr, "mntscale: nothing could be measured: every point was skipped or failed\n");
    status = kExitNothingMeasured;
  }
  return status;
}

// Options `run` and `plan` share, so a plan costs exactly what run would do.
void AddPlanOptions(CLI::App* c, RunRequest* r, std::vector<std::string>* shorthands) {
  const char* names[][2] = {{"containers", "Container counts to sweep, e.g. 1,10,100,300"},
                            {"layers", "Overlay lower layers per container, sweepable"},
                            {"binds", "Bind mounts per container, sweepable"},
                            {"workers", "Worker counts to sweep, e.g. 1,2"},
                            {"op", "Operations to sweep (see `mntscale list`)"}};
  shorthands->resize(5);
  for (int i = 0; i < 5; ++i) {
    c->add_option(std::string("--") + names[i][0], (*shorthands)[i], names[i][1]);
  }
  c->add_option("--scenario", r->scenarios, "Scenarios to run (see `mntscale list`)")
      ->delimiter(',')
      ->capture_default_str();
  c->add_option("--set", r->sets, "Scenario axis values: axis=v1,v2 (repeatable)");
  c->add_option("--placement", r->cfg.placement,
                "compact | spread | socket:N, optionally ',smt-off' and ',share'")
      ->capture_default_str();
  c->add_option("--profile", r->profile, "Container profile: a name in profiles/ or a JSON file");
  c->add_option("--mode", r->mode, "Workers as 'thread' or 'process'")->capture_default_str();
  c->add_option("--repetitions", r->cfg.repetitions, "Repetitions of each point")
      ->check(CLI::Range(1, 1000));
  c->add_option("--warmup", r->cfg.warmup_s, "Warm-up seconds per point")
      ->check(CLI::Range(0.0, 3600.0));
  c->add_option("--window", r->cfg.window_s, "Measurement window seconds")
      ->check(CLI::Range(0.001, 3600.0));
  c->add_option("--windows", r->cfg.windows, "Measurement windows per point")
      ->check(CLI::Range(1, 100000));
}

void TakeShorthands(const std::vector<std::string>& v, const CLI::App& c, RunRequest* r) {
  const char* axes[] = {"containers", "layers", "binds", "workers", "op"};
  for (int i = 0; i < 5; ++i) {
    if (c.get_option(std::string("--") + axes[i])->count()) r->axis_options.emplace_back(axes[i], v[i]);
  }
}

int Main(int argc, char** argv) {
  CLI::App app{"mntscale: mount-namespace scalability benchmarks for Linux kernels and machines"};
  app.require_subcommand(1);
  app.set_version_flag("--version", MNTSCALE_VERSION);

  RunRequest req;
  std::vector<std::string> shorthands;
  std::string preset_name;
  bool userns = false;
  CLI::App* run = app.add_subcommand("run", "Build containers and run scenarios; write JSON results");
  AddPlanOptions(run, &req, &shorthands);
  run->add_option("--topology", req.cfg.topology, "Must be 'host' for run")->capture_default_str();
  run->add_option("--farm", req.cfg.farm, "builtin | runc | crun | containerd: who creates the containers")
      ->capture_default_str();
  run->add_option("--preset", preset_name,
                  "A versioned preset in presets/ (or a JSON file); options given here override it");
  run->add_flag("--userns", userns, "Run in a new user namespace even as root");
  run->add_option("--out", req.cfg.out, "Result file (written atomically after every point)");
  run->add_option(
      "--machine", req.cfg.machine,
      "Name of this machine in the result's context (machine.name), e.g. m7i-48xl-smt-off; "
      "wins over $MNTSCALE_MACHINE, which wins over the hostname");
  run->add_flag("--latency", req.cfg.latency, "Time every op (p50/p99/p999/max)");
  run->add_option("--events", req.events,
                  "Count perf events: 'default', or names comma-separated ('list' to show them)");
  run->add_flag("--attribute", req.cfg.attribute, "Sample kernel stacks and attribute kernel time");
  run->add_flag("--waits", req.cfg.waits,
                "Also trace lock waits and off-CPU time and decompose each worker's wall time "
                "(implies --attribute)");
  run->add_option("--sample-hz", req.cfg.sample_hz, "Kernel stack sampling rate per worker")
      ->check(CLI::Range(1, 100000));
  run->add_flag("--quiet", req.cfg.quiet, "No progress on stderr");
  bool wait = false;
  run->add_flag("--wait", wait,
                "When another run holds the machine's run lock, wait for it instead of exiting 2");

  bool list_json = false;
  CLI::App* list = app.add_subcommand("list", "Scenarios, their typed axes and claims, and ops");
  list->add_flag("--json", list_json, "Machine-readable: scenarios, axes, types, defaults, claims");

  RunRequest preq;
  std::vector<std::string> pshort;
  std::string plan_topo = "host", plan_preset;
  CLI::App* plan = app.add_subcommand("plan", "Show where workers would run and what a run costs");
  AddPlanOptions(plan, &preq, &pshort);
  plan->add_option("--topology", plan_topo,
                   "host | a name in topologies/ | hwloc synthetic string | XML file")
      ->capture_default_str();
  plan->add_option("--preset", plan_preset, "Plan a preset: its points, placements, run time");

  ProfileCommand profile_cmd(&app);  // `profile capture --runtime runc|crun|containerd`
  CapacityCommand capacity_cmd(&app);
  ObserveCommand observe_cmd(&app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // --help and --version exit 0; every bad command line exits 2
    return rc == 0 ? 0 : 2;
  }

  if (profile_cmd.parsed()) {
    RejectEmptyValues(*app.get_subcommand("profile")->get_subcommand("capture"));
    return profile_cmd.Run();
  }
  if (observe_cmd.parsed()) {
    RejectEmptyValues(*app.get_subcommand("observe"));
    return observe_cmd.Run();
  }
  if (capacity_cmd.parsed()) {
    RejectEmptyValues(*app.get_subcommand("capacity"));
    return capacity_cmd.Run(argc, argv);
  }
  if (*list) {
    printf("%s", list_json ? (ListJson().dump(2) + "\n").c_str() : ListText().c_str());
    return 0;
  }
  if (*run) {
    RejectEmptyValues(*run);
    if (req.events == "list") {
      printf("%s", ListEvents().c_str());
      return 0;
    }
    TakeShorthands(shorthands, *run, &req);
    req.cfg.cli = CommandLineRecord(*run, argc, argv);
    // First, while the process has one thread: a user namespace of our own
    // when we are not root.
    EnterUserNamespaceIfNeeded(userns);
    std::unique_ptr<Preset> preset;
    if (!preset_name.empty()) {
      preset = std::make_unique<Preset>(Preset::Load(preset_name));
      ApplyPreset(*preset, Given(*run), &req);
      req.cfg.cli["preset"] = preset->ToJson();
    }
    return CmdRun(req, preset.get(), wait);
  }
  // plan: a preset, an ad-hoc run (any run option besides --workers N), or
  // where N workers (default: one per PU) go under the placements.
  TakeShorthands(pshort, *plan, &preq);
  const bool placement_given = plan->get_option("--placement")->count() > 0;
  std::unique_ptr<Preset> preset;
  if (!plan_preset.empty()) {
    preset = std::make_unique<Preset>(Preset::Load(plan_preset));
    ApplyPreset(*preset, Given(*plan), &preq);
  }
  const bool adhoc = plan->get_option("--scenario")->count() > 0;
  printf("%s", PlanCommand(preset.get(), preq, Topology::Load(plan_topo), placement_given, adhoc)
                   .c_str());
  return 0;
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
