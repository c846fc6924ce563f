#include "capacity_cmd.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "command.h"
#include "mntscale/model/limits.h"
#include "mntscale/run/runner.h"
#include "mntscale/suite/measured_command.h"
#include "mntscale/suite/results.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

constexpr const char* kHelp =
    "Find the largest container count N* at which this host still meets the objectives, by "
    "measurement. At each density the farm holds N containers of --profile, a churn starts and "
    "stops containers at --churn-rate per second with --idmap, health readers stat a file in "
    "existing containers, a path-walk worker runs, and the runtime's namespace (one rootfs "
    "mount per container) has its mountinfo read once. Densities grow by --growth from --start "
    "until the fitted curve of an objective crosses its bound, or a kernel limit, "
    "--max-containers or --budget ends the search. N* comes from all densities at once: each "
    "objective's metric is fitted monotone in N over every invocation, N* is where the fit "
    "crosses the bound, and its 95% interval [N_lo, N_hi] comes from a bootstrap over "
    "invocations; densities and invocations are added where they narrow the interval, until it "
    "is within --precision of N*. Schedule by N_lo. Quantile metrics pool every sample of a "
    "density; too few for the quantile leaves it undecided, never guessed. Metrics: start_p50_s, "
    "start_p99_s, health_stat_p99_ms, path_walk_per_worker, path_walk_per_cpu_s (per on-CPU "
    "second), "
    "path_walk_ratio and path_walk_per_cpu_ratio (to the lowest density), "
    "mountinfo_read_s. Output: one JSON document (docs/capacity.md), rewritten after every "
    "density; a summary ending in the answer on stderr.";

}  // namespace

CapacityCommand::CapacityCommand(CLI::App* app) {
  cmd_ = app->add_subcommand("capacity", kHelp);
  cmd_->add_option("--profile", profile_, "Container profile: a name in profiles/ or a JSON file")
      ->capture_default_str();
  cmd_->add_option("--slo", slos_,
                   "Objectives, comma-separated METRIC<=NUMBER or METRIC>=NUMBER (repeatable), "
                   "e.g. start_p99_s<=5,health_stat_p99_ms<=50,path_walk_ratio>=0.9")
      ->required();
  cmd_->add_option("--churn-rate", churn_rate_, "Container starts (and stops) per second")
      ->capture_default_str();
  cmd_->add_option("--idmap", idmap_, "Churn idmap strategy: none | per-layer | parent")
      ->capture_default_str();
  cmd_->add_option("--max-containers", search_.max_containers, "Largest density to try")
      ->capture_default_str();
  cmd_->add_option("--budget", search_.budget_s, "Time budget of the search, seconds")
      ->capture_default_str();
  cmd_->add_option("--precision", search_.precision,
                   "Refine until N*'s 95% interval is within this fraction of N* either side")
      ->capture_default_str();
  cmd_->add_option("--start", search_.start, "First density")->capture_default_str();
  cmd_->add_option("--growth", search_.growth, "Factor between densities while growing")
      ->capture_default_str();
  cmd_->add_option("--invocations", search_.invocations, "Invocations per density at least")
      ->capture_default_str();
  cmd_->add_option("--max-invocations", search_.max_invocations, "Invocations per density at most")
      ->capture_default_str();
  cmd_->add_option("--window", window_s_, "Measured seconds per invocation")->capture_default_str();
  cmd_->add_option("--mode", mode_, "Workers as 'thread' or 'process'")->capture_default_str();
  cmd_->add_flag("--attribute", attribute_, "Attribute kernel time at each density");
  cmd_->add_flag("--waits", waits_,
                 "Also lock waits and off-CPU time at each density (implies --attribute)");
  cmd_->add_option("--machine", machine_,
                   "Name of this machine in the output's context (machine.name); wins over "
                   "$MNTSCALE_MACHINE, which wins over the hostname");
  cmd_->add_option("--out", out_, "Output JSON (written atomically after every density)");
  cmd_->add_flag("--quiet", quiet_, "No progress on stderr (the summary still prints)");
  cmd_->add_flag("--wait", wait_,
                 "When another run holds the machine's run lock, wait for it instead of exiting 2");
}

void CapacityCommand::Check() {
  // Every input checked before anything is built (main.cc has refused empty values).
  slos_parsed_ = ParseSlos(slos_);
  ValidateSearchConfig(search_);
  idmap_strategy_ = ParseIdmapStrategy(idmap_, "--idmap");
  if (!std::isfinite(churn_rate_) || churn_rate_ < 0 || churn_rate_ > 1000)
    throw UsageError("--churn-rate must be between 0 and 1000 starts per second, got " +
                     std::to_string(churn_rate_));
  if (!std::isfinite(window_s_) || window_s_ < 0.05 || window_s_ > 3600)
    throw UsageError("--window must be between 0.05 and 3600 seconds, got " +
                     std::to_string(window_s_));
  CheckMachineName(machine_);
  const ProbeConfig defaults;  // the workers the probe runs
  CheckSlosMeaningful(slos_parsed_, churn_rate_, defaults.path_walk_workers,
                      defaults.health_workers);
  profile_loaded_ = Profile::Load(profile_);
  const double one = EstimateDensitySeconds(search_.start, search_.invocations, window_s_);
  if (search_.budget_s < one) {
    char buf[256];
    snprintf(buf, sizeof buf,
             "--budget %g s is too small for one density: %d invocations of %g s at %d "
             "containers take about %.1f s",
             search_.budget_s, search_.invocations, window_s_, search_.start, one);
    throw UsageError(buf);
  }
  // The first density must fit the kernel's limits, or there is nothing to search.
  if (auto lim = CheckLimits(DemandAt(search_.start))) throw UsageError("--start: " + lim->Message());
}

Demand CapacityCommand::DemandAt(int n) const {
  // The churn's namespaces and the runtime's, besides the farm's.
  const long extra = std::lround(churn_rate_) + 64;
  return {n, profile_loaded_.MountsPerContainer(), profile_loaded_.ns_mode == NsMode::kShared, extra};
}

SessionConfig CapacityCommand::SessionSettings(int argc, char** argv) const {
  SessionConfig cfg;
  cfg.machine = machine_;  // the context's machine.name, as for run
  cfg.mode = ParseMode(mode_);
  cfg.profile = profile_loaded_;
  cfg.window_s = window_s_ / 2;
  cfg.windows = 2;
  cfg.warmup_s = 0.1;
  cfg.quiet = true;  // the search prints its own progress
  cfg.attribute = attribute_ || waits_;
  cfg.waits = waits_;
  cfg.cli = CommandLineRecord(*cmd_, argc, argv);
  return cfg;
}

SearchHooks CapacityCommand::Hooks(CapacityProbe& probe, std::function<double()> elapsed,
                                   std::function<void(const SearchResult&)> write) const {
  SearchHooks hooks;
  hooks.measure = [this, &probe](int n, int i) {
    if (!quiet_) fprintf(stderr, "capacity: %d containers, invocation %d ...\n", n, i + 1);
    try {
      return probe.Measure(n, i);
    } catch (const SysError& e) {
      if (auto lim = LimitOfError(e.call(), e.err(), n)) {
        if (!quiet_) fprintf(stderr, "capacity: %d containers: %s\n", n, e.what());
        throw LimitReached(*lim);
      }
      throw;
    }
  };
  hooks.limit = [this](int n) { return CheckLimits(DemandAt(n)); };
  hooks.elapsed_s = std::move(elapsed);
  hooks.on_density = [this, write = std::move(write)](const SearchResult& r) {
    const Density& d = r.densities.back();
    if (!quiet_) {
      std::string line;
      for (const auto& [k, v] : d.verdicts) line += " " + k + "=" + VerdictName(v);
      fprintf(stderr, "capacity: %d containers: %s (%zu invocations, %.1f s):%s\n", d.containers,
              VerdictName(d.verdict), d.invocations.size(), d.seconds, line.c_str());
    }
    write(r);
  };
  return hooks;
}

int CapacityCommand::Run(int argc, char** argv) {
  Check();
  MeasuredCommand command(&out_, wait_, quiet_);
  const SessionConfig cfg = SessionSettings(argc, argv);
  command.Enter();
  Failpoint("capacity-after-sandbox");
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [t0] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  Session session(cfg, Topology::Load("host"));
  const nlohmann::json context = session.sink().Document(false, "")["context"];
  ProbeConfig pc;
  pc.churn_rate = churn_rate_;
  pc.idmap = idmap_strategy_;
  std::unique_ptr<CapacityProbe> probe;
  try {
    probe = std::make_unique<CapacityProbe>(session, pc);
  } catch (const Unsupported& u) {
    fprintf(stderr, "mntscale: %s\n", u.what());
    return 3;  // the sandbox is left by `command`
  }
  const CapacityRun run{cfg.profile.name, cfg.profile.MountsPerContainer(), churn_rate_,
                        idmap_strategy_, probe->layers(), pc.path_walk_workers,
                        pc.health_workers, CapacityPlacementJson(probe->placement()),
                        slos_parsed_, search_, window_s_};
  auto write = [&](const SearchResult& r, bool complete) {
    RefuseNonRegularOutput(command.out());
    WriteFileAtomic(command.out(),
                    nlohmann::json{{"context", context},
                                   {"capacity", CapacityDocument(run, r, complete, elapsed())}}
                            .dump(2) +
                        "\n");
  };
  const SearchResult r = RunCapacitySearch(
      search_, slos_parsed_,
      Hooks(*probe, elapsed, [&write](const SearchResult& so_far) { write(so_far, false); }));
  const bool complete = r.ended_by != "interrupted";
  write(r, complete);
  fprintf(stderr, "mntscale capacity: %s\n", CapacitySummary(run, r, elapsed(), command.out()).c_str());
  return complete ? 0 : 130;
}

std::unique_ptr<Command> MakeCapacityCommand(CLI::App* root) {
  return std::make_unique<CapacityCommand>(root);
}

}  // namespace mntscale
