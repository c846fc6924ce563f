// mntscale: the command line. Google Benchmark drives the points; mntscale's
// own sink writes the results (Google Benchmark-shaped JSON with context).
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <memory>

#include "mntscale/counters.h"
#include "mntscale/profile.h"
#include "mntscale/sandbox.h"
#include "mntscale/session.h"
#include "mntscale/sys.h"

namespace mntscale {
namespace {

// Google Benchmark's console output would interleave with ours; results go
// through the ResultSink.
class NullReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

struct RunOptions {
  std::vector<std::string> scenarios{"path_walk"};
  std::string containers, layers, workers, op, binds;
  std::vector<std::string> sets;
  std::string profile;
  std::string mode = "thread";
  std::string events;
  SessionConfig cfg;
};

std::vector<int> ParseCounts(const std::string& what, const std::string& list, int lo, int hi) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(start, end - start);
    char* stop = nullptr;
    long v = std::strtol(item.c_str(), &stop, 10);
    if (item.empty() || *stop) {
      throw UsageError(what + " must be whole numbers, got '" + item + "'");
    }
    if (v < lo || v > hi) {
      throw UsageError(what + " = " + item + " is impossible: allowed " + std::to_string(lo) +
                       ".." + std::to_string(hi));
    }
    out.push_back(static_cast<int>(v));
    start = end + 1;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Overrides(const RunOptions& o) {
  std::vector<std::pair<std::string, std::string>> ov;
  if (!o.containers.empty()) ov.emplace_back("containers", o.containers);
  if (!o.layers.empty()) ov.emplace_back("layers", o.layers);
  if (!o.workers.empty()) ov.emplace_back("workers", o.workers);
  if (!o.op.empty()) ov.emplace_back("op", o.op);
  if (!o.binds.empty()) ov.emplace_back("binds", o.binds);
  for (const std::string& s : o.sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw UsageError("--set wants axis=v1,v2; got '" + s + "'");
    }
    ov.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  return ov;
}

// Everything a bad command line can get wrong is found here, before the
// sandbox exists or anything is mounted.
struct Plan {
  std::vector<std::pair<const ScenarioInfo*, std::vector<Point>>> points;
  int max_containers = 0;
};

Plan Validate(RunOptions& o, const Topology& topo) {
  Plan plan;
  auto ov = Overrides(o);
  if (!o.containers.empty()) ParseCounts("--containers", o.containers, 1, 1000000);
  if (!o.layers.empty()) ParseCounts("--layers", o.layers, 1, kMaxLayers);
  if (!o.workers.empty()) ParseCounts("--workers", o.workers, 1, 1 << 20);
  if (!o.binds.empty()) ParseCounts("--binds", o.binds, 0, 1000);
  PlacementSpec::Parse(o.cfg.placement);
  for (const std::string& name : o.scenarios) {
    const ScenarioInfo* s = FindScenario(name);
    if (!s) {
      std::string known;
      for (auto* x : AllScenarios()) known += std::string(known.empty() ? "" : ", ") + x->name;
      throw UsageError("unknown scenario '" + name + "' (known: " + known + ")");
    }
    for (const std::string& set : o.sets) {
      std::string axis = set.substr(0, set.find('='));
      bool found = false;
      for (const Axis& a : s->axes) found |= a.name == axis;
      if (!found) throw UsageError("scenario " + name + " has no axis '" + axis + "'");
    }
    std::vector<Point> pts = ExpandPoints(*s, ov);
    for (const Point& p : pts) {
      if (p.Has("op") && !FindOp(p.Str("op"))) {
        throw UsageError("unknown op '" + p.Str("op") + "' (known: " + OpNames() + ")");
      }
      if (p.Has("containers")) {
        int n = p.Int("containers");
        if (n < 1) throw UsageError("containers = " + std::to_string(n) + " is impossible: at least 1");
        plan.max_containers = std::max(plan.max_containers, n);
      }
      if (p.Has("layers")) {
        int l = p.Int("layers");
        if (l < 1 || l > kMaxLayers) {
          throw UsageError("layers = " + std::to_string(l) + " is impossible: allowed 1.." +
                           std::to_string(kMaxLayers));
        }
      }
      if (p.Has("workers")) {
        std::string pl = p.Has("placement") ? p.Str("placement") : o.cfg.placement;
        PlanPlacement(topo, PlacementSpec::Parse(pl), p.Int("workers"));
      }
    }
    plan.points.emplace_back(s, std::move(pts));
  }
  if (!o.cfg.out.empty()) CheckWritable(o.cfg.out);
  return plan;
}

// Pre-flight: would the largest farm pass a kernel or process limit?
void PreflightLimits(const Plan& plan, const Profile& profile) {
  const long n = plan.max_containers;
  if (n == 0) return;
  const long per = profile.MountsPerContainer();
  long mount_max = ReadSysctl("fs.mount-max");
  long ns_max = ReadSysctl("user.max_mnt_namespaces");
  long in_one_ns = profile.ns_mode == "shared" ? n * per : per;
  if (mount_max > 0 && in_one_ns > mount_max) {
    throw UsageError(std::to_string(n) + " containers x " + std::to_string(per) +
                     " mounts in one namespace would pass fs.mount-max = " +
                     std::to_string(mount_max));
  }
  if (ns_max >= 0 && profile.ns_mode != "shared" && n + 64 > ns_max) {
    throw UsageError(std::to_string(n) + " container namespaces would pass user.max_mnt_namespaces = " +
                     std::to_string(ns_max));
  }
  // One fd per namespace, plus slack for workers, counters and the process.
  rlim_t want = static_cast<rlim_t>(n + 1024);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < want) {
    struct rlimit up = rl;
    up.rlim_cur = std::min(want > rl.rlim_max ? want : rl.rlim_max, std::max(want, rl.rlim_cur));
    if (up.rlim_max < want) up.rlim_max = want;  // root may raise the hard limit
    if (setrlimit(RLIMIT_NOFILE, &up) != 0) {
      throw UsageError(std::to_string(n) + " containers need " + std::to_string(want) +
                       " file descriptors but RLIMIT_NOFILE is " + std::to_string(rl.rlim_cur) +
                       " (hard " + std::to_string(rl.rlim_max) + ") and cannot be raised: " +
                       ErrnoName(errno));
    }
  }
  long avail_kb = 0;
  std::string meminfo;
  if (TryReadFile("/proc/meminfo", &meminfo)) {
    auto pos = meminfo.find("MemAvailable:");
    if (pos != std::string::npos) avail_kb = std::strtol(meminfo.c_str() + pos + 13, nullptr, 10);
  }
  // About 64 KiB of kernel and tmpfs memory per container, measured loosely.
  if (avail_kb > 0 && n * 64 > avail_kb) {
    throw UsageError(std::to_string(n) + " containers need about " + std::to_string(n * 64 / 1024) +
                     " MiB but only " + std::to_string(avail_kb / 1024) + " MiB is available");
  }
}

int CmdRun(RunOptions& o) {
  o.cfg.mode = ParseMode(o.mode);
  if (!o.profile.empty()) o.cfg.profile = Profile::Load(o.profile);
  if (!o.events.empty()) {
    o.cfg.counters = true;
    size_t start = 0;
    while (start <= o.events.size()) {
      size_t end = o.events.find(',', start);
      if (end == std::string::npos) end = o.events.size();
      if (end > start) o.cfg.events.push_back(o.events.substr(start, end - start));
      start = end + 1;
    }
    if (o.cfg.events.size() == 1 && o.cfg.events[0] == "default") o.cfg.events.clear();
  }
  Topology topo = Topology::Load(o.cfg.topology);
  if (!topo.is_host()) {
    throw UsageError("run pins workers on this machine, so --topology must be 'host' (got '" +
                     o.cfg.topology + "'); use `mntscale plan` for other machines");
  }
  Plan plan = Validate(o, topo);
  PreflightLimits(plan, o.cfg.profile);

  Sandbox& sandbox = Sandbox::Enter();
  InstallInterruptHandler();
  int status = 0;
  {
    Session session(o.cfg, topo);
    int total = 0;
    for (auto& [s, pts] : plan.points) total += static_cast<int>(pts.size()) * o.cfg.repetitions;
    int done = 0;
    for (auto& [s, pts] : plan.points) {
      for (const Point& p : pts) {
        auto rep = std::make_shared<int>(0);
        const ScenarioInfo* sc = s;
        benchmark::RegisterBenchmark(p.Name(s->name).c_str(),
                                     [&session, sc, p, rep, &o, &done, total](benchmark::State& st) {
                                       for (auto _ : st) {
                                         auto t0 = std::chrono::steady_clock::now();
                                         session.RunPoint(*sc, p, (*rep)++, o.cfg.repetitions);
                                         ++done;
                                         st.SetIterationTime(std::max(
                                             1e-9, std::chrono::duration<double>(
                                                       std::chrono::steady_clock::now() - t0)
                                                       .count()));
                                       }
                                       if (session.interrupted().load()) st.SkipWithError("interrupted");
                                     })
            ->Iterations(1)
            ->Repetitions(o.cfg.repetitions)
            ->UseManualTime();
      }
    }
    NullReporter null;
    benchmark::RunSpecifiedBenchmarks(&null);
    benchmark::ClearRegisteredBenchmarks();
    session.Finish();
    if (session.interrupted().load()) {
      fprintf(stderr, "mntscale: interrupted; %d finished points written to %s, marked incomplete\n",
              static_cast<int>(session.sink().entries().size()), o.cfg.out.c_str());
      status = 130;
    } else if (!o.cfg.quiet && !o.cfg.out.empty()) {
      fprintf(stderr, "mntscale: wrote %s\n", o.cfg.out.c_str());
    }
  }
  sandbox.Leave();
  return status;
}

int CmdList() {
  for (const ScenarioInfo* s : AllScenarios()) {
    printf("%-22s %s\n", s->name, s->mechanism);
    printf("%-22s expect: %s\n", "", s->expect);
    std::string axes;
    for (const Axis& a : s->axes) axes += (axes.empty() ? "" : "  ") + a.name + "=" + a.defaults;
    printf("%-22s axes: %s\n", "", axes.c_str());
    if (s->unsupported && s->unsupported()) {
      printf("%-22s skipped: unsupported: %s\n", "", s->unsupported());
    }
  }
  printf("\nops: %s\n", OpNames().c_str());
  return 0;
}

int CmdPlan(const std::string& topology, const std::string& placement, int workers) {
  Topology topo = Topology::Load(topology);
  PlacementSpec spec = PlacementSpec::Parse(placement);
  std::vector<Slot> plan = PlanPlacement(topo, spec, workers);
  printf("%s", FormatPlan(topo, spec, plan).c_str());
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{"mntscale: mount-namespace scalability benchmarks for Linux kernels and machines"};
  app.require_subcommand(1);
  app.set_version_flag("--version", MNTSCALE_VERSION);

  RunOptions o;
  CLI::App* run = app.add_subcommand("run", "Build containers and run scenarios; write JSON results");
  run->add_option("--scenario", o.scenarios, "Scenarios to run (see `mntscale list`)")
      ->delimiter(',')
      ->capture_default_str();
  run->add_option("--containers", o.containers, "Container counts to sweep, e.g. 1,10,100,300");
  run->add_option("--layers", o.layers, "Overlay lower layers per container (1..500), sweepable");
  run->add_option("--binds", o.binds, "Bind mounts per container, sweepable");
  run->add_option("--workers", o.workers, "Worker counts to sweep, e.g. 1,2");
  run->add_option("--op", o.op, "Operations to sweep: " + OpNames());
  run->add_option("--placement", o.cfg.placement,
                  "compact | spread | socket:N, optionally ',smt-off' and ',share'")
      ->capture_default_str();
  run->add_option("--topology", o.cfg.topology, "Must be 'host' for run")->capture_default_str();
  run->add_option("--profile", o.profile, "Container profile: a name in profiles/ or a JSON file");
  run->add_option("--mode", o.mode, "Workers as 'thread' or 'process'")->capture_default_str();
  run->add_option("--set", o.sets, "Scenario axis values: axis=v1,v2 (repeatable)");
  run->add_option("--out", o.cfg.out, "Result file (written atomically after every point)");
  run->add_option("--repetitions", o.cfg.repetitions, "Repetitions of each point")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  run->add_option("--warmup", o.cfg.warmup_s, "Warm-up seconds per point")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  run->add_option("--window", o.cfg.window_s, "Measurement window seconds")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  run->add_option("--windows", o.cfg.windows, "Measurement windows per point")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  run->add_flag("--latency", o.cfg.latency, "Time every op (p50/p99/p999/max)");
  run->add_option("--events", o.events,
                  "Count perf events: 'default', or names comma-separated ('list' to show them)");
  run->add_flag("--attribute", o.cfg.attribute, "Sample kernel stacks and attribute kernel time");
  run->add_option("--sample-hz", o.cfg.sample_hz, "Kernel stack sampling rate per worker")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  run->add_flag("--quiet", o.cfg.quiet, "No progress on stderr");

  CLI::App* list = app.add_subcommand("list", "Scenarios, the mechanism each isolates, and ops");
  (void)list;

  std::string plan_topo = "host", plan_place = "spread";
  int plan_workers = 0;
  CLI::App* plan = app.add_subcommand("plan", "Show where workers would run; runs nothing");
  plan->add_option("--topology", plan_topo,
                   "host | a name in topologies/ | hwloc synthetic string | XML file")
      ->capture_default_str();
  plan->add_option("--placement", plan_place, "compact | spread | socket:N [,smt-off] [,share]")
      ->capture_default_str();
  plan->add_option("--workers", plan_workers, "Workers to place (default: one per PU of the plan)");

  CLI11_PARSE(app, argc, argv);

  if (*run) {
    if (o.events == "list") {
      printf("%s", ListEvents().c_str());
      return 0;
    }
    nlohmann::json cli = nlohmann::json::object();
    for (const CLI::Option* opt : run->get_options()) {
      if (opt->count() && !opt->get_lnames().empty()) {
        cli[opt->get_lnames()[0]] = opt->as<std::vector<std::string>>();
      }
    }
    o.cfg.cli = {{"argv", std::vector<std::string>(argv, argv + argc)}, {"options", cli}};
    return CmdRun(o);
  }
  if (*list) return CmdList();
  if (*plan) {
    if (plan_workers <= 0) {
      Topology t = Topology::Load(plan_topo);
      plan_workers = static_cast<int>(
          PlanPlacement(t, PlacementSpec::Parse(plan_place + ",share"), 1).size());
      PlacementSpec sp = PlacementSpec::Parse(plan_place);
      int n = 0;
      for (const Pu& pu : t.pus()) {
        if ((sp.kind != PlacementSpec::kSocket || pu.package == sp.socket) &&
            (!sp.smt_off || pu.smt_rank == 0)) {
          ++n;
        }
      }
      plan_workers = n;
    }
    return CmdPlan(plan_topo, plan_place, plan_workers);
  }
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
