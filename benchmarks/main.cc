// mntscale: the command line. Google Benchmark drives the points; mntscale's
// own sink writes the results (Google Benchmark-shaped JSON with context).
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

#include "mntscale/counters.h"
#include "mntscale/preset.h"
#include "mntscale/profile.h"
#include "mntscale/results.h"
#include "mntscale/runlock.h"
#include "mntscale/sandbox.h"
#include "mntscale/session.h"
#include "mntscale/sys.h"
#include "mntscale/userns.h"

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
  std::string preset;
  bool userns = false;
  bool wait = false;  // --wait: queue behind another run instead of exiting 2
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
  // A chosen profile's shape is the default of the axes that set it; the
  // command line and presets override it (the last override wins).
  if (!o.profile.empty()) {
    ov.emplace_back("layers", std::to_string(o.cfg.profile.layers));
    ov.emplace_back("binds", std::to_string(o.cfg.profile.binds));
  }
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
      CheckAxisRanges(p);  // issue 14: --set workers=0, binds=5000
      if (p.Has("op") && !FindOp(p.Str("op"))) {
        throw UsageError("unknown op '" + p.Str("op") + "' (known: " + OpNames() + ")");
      }
      if (p.Has("containers")) {
        int n = p.Int("containers");
        if (n < 1)
          throw UsageError("containers = " + std::to_string(n) + " is impossible: at least 1");
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
  // issue 14: an axis option none of the scenarios has is an error, not ignored.
  for (auto [axis, list] : {std::pair{"containers", &o.containers}, {"layers", &o.layers},
                            {"workers", &o.workers}, {"op", &o.op}, {"binds", &o.binds}}) {
    bool has = false;
    for (auto& [s, pts] : plan.points) {
      for (const Axis& a : s->axes) has |= a.name == axis;
    }
    if (!list->empty() && !has) {
      throw UsageError("--" + std::string(axis) + " " + *list +
                       ": no scenario asked for has the axis '" + axis + "'" +
                       (std::string(axis) == "binds" || std::string(axis) == "layers"
                            ? " (its farm takes it from --profile)"
                            : ""));
    }
  }
  return plan;
}

// A preset's scenarios, each with its own axis values; the command line's
// axis options apply on top, to the scenarios that have those axes.
Plan ValidatePreset(const Preset& preset, RunOptions& o, const Topology& topo) {
  std::vector<std::string> cli = o.sets;
  for (auto [axis, list] : {std::pair{"containers", &o.containers},
                            {"layers", &o.layers},
                            {"workers", &o.workers},
                            {"op", &o.op},
                            {"binds", &o.binds}}) {
    if (!list->empty()) cli.push_back(std::string(axis) + "=" + *list);
  }
  std::vector<bool> used(cli.size(), false);
  Plan plan;
  for (const PresetScenario& ps : preset.scenarios) {
    // --scenario picks some of the preset's scenarios (a rerun of one point).
    if (!o.scenarios.empty() &&
        std::find(o.scenarios.begin(), o.scenarios.end(), ps.scenario) == o.scenarios.end()) {
      continue;
    }
    RunOptions one = o;
    one.scenarios = {ps.scenario};
    one.containers = one.layers = one.workers = one.op = one.binds = "";
    one.sets.clear();
    for (const auto& [axis, list] : ps.set) one.sets.push_back(axis + "=" + list);
    const ScenarioInfo* s = FindScenario(ps.scenario);
    for (size_t i = 0; i < cli.size() && s; ++i) {
      for (const Axis& a : s->axes) {
        if (cli[i].substr(0, cli[i].find('=')) == a.name) {
          one.sets.push_back(cli[i]);
          used[i] = true;
        }
      }
    }
    try {
      Plan p = Validate(one, topo);
      plan.max_containers = std::max(plan.max_containers, p.max_containers);
      for (auto& x : p.points) plan.points.push_back(std::move(x));
    } catch (const UsageError& e) {
      throw UsageError(preset.origin + ": " + e.what());
    }
  }
  if (plan.points.empty())
    throw UsageError("preset " + preset.Id() + " has none of the scenarios asked for");
  for (size_t i = 0; i < cli.size(); ++i) {
    if (!used[i])
      throw UsageError("no scenario of preset " + preset.Id() + " has the axis in '" + cli[i] +
                       "'");
  }
  return plan;
}

// Preset values fill what the command line did not say.
void ApplyPreset(const Preset& p, const CLI::App& run, RunOptions* o) {
  auto given = [&](const char* opt) { return run.get_option(opt)->count() > 0; };
  if (!given("--scenario")) o->scenarios.clear();
  if (!given("--profile")) o->profile = p.profile;
  if (!given("--placement")) o->cfg.placement = p.placement;
  if (!given("--mode")) o->mode = p.mode;
  if (!given("--warmup")) o->cfg.warmup_s = p.warmup_s;
  if (!given("--window")) o->cfg.window_s = p.window_s;
  if (!given("--windows")) o->cfg.windows = p.windows;
  if (!given("--repetitions")) o->cfg.repetitions = p.repetitions;
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
    throw UsageError(
        std::to_string(n) + " containers x " + std::to_string(per) +
        " mounts in one namespace would pass fs.mount-max = " + std::to_string(mount_max));
  }
  if (ns_max >= 0 && profile.ns_mode != "shared" && n + 64 > ns_max) {
    throw UsageError(
        std::to_string(n) +
        " container namespaces would pass user.max_mnt_namespaces = " + std::to_string(ns_max));
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
                       " (hard " + std::to_string(rl.rlim_max) +
                       ") and cannot be raised: " + ErrnoName(errno));
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

// An option given with an empty value ("--containers ''") is an error, never
// "not given".
void RejectEmptyValues(const CLI::App& run) {
  for (const CLI::Option* opt : run.get_options()) {
    if (!opt->count() || opt->get_expected_min() == 0) continue;  // flags take no value
    for (const std::string& v : opt->results()) {
      if (v.empty()) throw UsageError(opt->get_name() + " has an empty value");
    }
  }
}

int CmdRun(RunOptions& o, const Preset* preset) {
  o.cfg.mode = ParseMode(o.mode);
  if (!o.profile.empty()) o.cfg.profile = Profile::Load(o.profile);
  if (!o.events.empty()) {
    o.cfg.counters = true;
    size_t start = 0;
    while (start <= o.events.size()) {
      size_t end = o.events.find(',', start);
      if (end == std::string::npos) end = o.events.size();
      o.cfg.events.push_back(o.events.substr(start, end - start));  // "" refused below
      start = end + 1;
    }
    if (o.cfg.events.size() == 1 && o.cfg.events[0] == "default") o.cfg.events.clear();
    ValidateEvents(o.cfg.events);  // issue 14: unknown names are usage errors
  }
  // issue 14: refused before hwloc builds it.
  if (o.cfg.topology != "host") {
    throw UsageError("run pins workers on this machine, so --topology must be 'host' (got '" +
                     o.cfg.topology + "'); use `mntscale plan` for other machines");
  }
  Topology topo = Topology::Load(o.cfg.topology);
  Plan plan = preset ? ValidatePreset(*preset, o, topo) : Validate(o, topo);
  PreflightLimits(plan, o.cfg.profile);
  // issue 14: output safety, then one run at a time; both before anything is built.
  const bool default_out = o.cfg.out.empty();
  if (default_out) o.cfg.out = DefaultOutputPath();
  CheckOutputPath(o.cfg.out);
  RunLock lock = RunLock::Acquire(RunLock::DefaultPath(), o.wait, o.cfg.quiet);
  if (default_out) fprintf(stderr, "mntscale: no --out given; results go to %s\n", o.cfg.out.c_str());

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
        benchmark::RegisterBenchmark(
            p.Name(s->name).c_str(),
            [&session, sc, p, rep, &o, &done, total](benchmark::State& st) {
              for (auto _ : st) {
                auto t0 = std::chrono::steady_clock::now();
                session.RunPoint(*sc, p, (*rep)++, o.cfg.repetitions);
                ++done;
                st.SetIterationTime(std::max(
                    1e-9,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
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
      fprintf(stderr,
              "mntscale: interrupted; %d finished points written to %s, marked incomplete\n",
              static_cast<int>(session.sink().entries().size()), o.cfg.out.c_str());
      status = 130;
    } else {
      if (!o.cfg.quiet) fprintf(stderr, "mntscale: wrote %s\n", o.cfg.out.c_str());
      // issue 14: a run that measured nothing (every point unsupported,
      // skipped or failed) says so in its exit code.
      if (!MeasuredAnything(session.sink().entries())) {
        fprintf(stderr, "mntscale: nothing could be measured: every point was skipped or failed\n");
        status = kExitNothingMeasured;
      }
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

// The placements `plan` compares when none is named (socket:N for each socket).
std::vector<std::string> PlacementsOf(const Topology& topo) {
  std::vector<std::string> out = {"compact", "spread"};
  for (int s = 0; s < topo.summary().packages; ++s) out.push_back("socket:" + std::to_string(s));
  out.push_back("smt-off");
  return out;
}

// PUs a placement may use: its default worker count.
int PusOf(const Topology& topo, const PlacementSpec& sp) {
  int n = 0;
  for (const Pu& pu : topo.pus()) {
    n += (sp.kind != PlacementSpec::kSocket || pu.package == sp.socket) &&
         (!sp.smt_off || pu.smt_rank == 0);
  }
  return n;
}

std::string PerSocket(const Topology& topo, const std::vector<Slot>& slots) {
  std::vector<int> n(std::max(topo.summary().packages, 1), 0);
  for (const Slot& s : slots) ++n[s.pu.package];
  std::string out;
  for (size_t i = 0; i < n.size(); ++i) out += (i ? "/" : "") + std::to_string(n[i]);
  return out;
}

// Every placement in a few lines each: per-socket and per-NUMA counts, how
// many workers share a core with a sibling, and where the first ones go.
int CmdPlanAll(const std::string& topology, int workers) {
  Topology topo = Topology::Load(topology);
  const TopologySummary& t = topo.summary();
  printf("%s: %d sockets, %d NUMA nodes, %d cores, %d PUs\n",
         t.name.empty() ? t.source.c_str() : t.name.c_str(), t.packages, t.numa_nodes, t.cores,
         t.pus);
  for (const std::string& pl : PlacementsOf(topo)) {
    PlacementSpec sp = PlacementSpec::Parse(pl);
    int n = workers > 0 ? workers : PusOf(topo, sp);
    std::vector<Slot> slots;
    try {
      slots = PlanPlacement(topo, sp, n);
    } catch (const UsageError& e) {
      printf("\n%-10s %d workers: impossible: %s\n", pl.c_str(), n, e.what());
      continue;
    }
    std::map<int, int> numa;
    std::map<int, int> per_core;
    for (const Slot& s : slots) {
      ++numa[s.pu.numa];
      ++per_core[s.pu.core];
    }
    int smt_shared = 0;
    for (auto& [core, k] : per_core) smt_shared += k > 1 ? k : 0;
    std::string numas;
    for (auto& [node, k] : numa)
      numas += (numas.empty() ? "" : " ") + std::to_string(node) + ":" + std::to_string(k);
    printf("\n%-10s %d workers  per socket %s  per NUMA node %s  cores %zu  on SMT siblings %d\n",
           pl.c_str(), n, PerSocket(topo, slots).c_str(), numas.c_str(), per_core.size(),
           smt_shared);
    std::string first;
    for (size_t i = 0; i < slots.size() && i < 8; ++i) {
      char buf[64];
      snprintf(buf, sizeof buf, " w%d:s%d/c%d/pu%d", slots[i].worker, slots[i].pu.package,
               slots[i].pu.core, slots[i].pu.os_index);
      first += buf;
    }
    printf("%-10s first:%s%s\n", "", first.c_str(), slots.size() > 8 ? " ..." : "");
  }
  return 0;
}

// A preset against a machine: its points, the workers each puts on every
// socket under each placement, and how long it would take.
int CmdPlanPreset(RunOptions& o, const Preset& preset, const std::string& topology) {
  Topology topo = Topology::Load(topology);
  if (!o.profile.empty()) o.cfg.profile = Profile::Load(o.profile);
  // Points that do not fit a placement show as "too many" below, not as an error.
  RunOptions v = o;
  v.cfg.placement = "spread,share";
  Plan plan = ValidatePreset(preset, v, topo);
  const TopologySummary& t = topo.summary();
  printf("preset %s (%s)\n  %s\n", preset.Id().c_str(), preset.origin.c_str(),
         preset.description.c_str());
  printf("machine %s: %d sockets, %d NUMA nodes, %d cores, %d PUs\n",
         t.name.empty() ? t.source.c_str() : t.name.c_str(), t.packages, t.numa_nodes, t.cores,
         t.pus);
  printf(
      "profile %s, mode %s, run placement %s; %d repetitions x (%.2g s warm-up + %d x %.2g s)\n\n",
      o.cfg.profile.name.c_str(), o.mode.c_str(), o.cfg.placement.c_str(), o.cfg.repetitions,
      o.cfg.warmup_s, o.cfg.windows, o.cfg.window_s);
  std::vector<std::string> placements = PlacementsOf(topo);
  size_t width = 5;
  for (auto& [s, pts] : plan.points) {
    for (const Point& p : pts) width = std::max(width, p.Name(s->name).size());
  }
  printf("%-*s  workers per socket under each placement\n%-*s ", static_cast<int>(width), "point",
         static_cast<int>(width), "");
  for (const auto& pl : placements) printf(" %12s", pl.c_str());
  printf("\n");
  int points = 0;
  long built = 0;
  std::string farm_key;
  int farm_size = 0;
  for (auto& [s, pts] : plan.points) {
    for (const Point& p : pts) {
      ++points;
      printf("%-*s ", static_cast<int>(width), p.Name(s->name).c_str());
      for (const auto& pl : placements) {
        std::string cell = "-";
        if (p.Has("workers")) {
          try {
            cell = PerSocket(topo, PlanPlacement(topo, PlacementSpec::Parse(pl), p.Int("workers")));
          } catch (const UsageError&) {
            cell = "too many";
          }
        }
        printf(" %12s", cell.c_str());
      }
      printf("\n");
      // The session keeps one farm and grows or shrinks it while the shape
      // stays the same; a new shape is built from nothing.
      if (p.Has("containers")) {
        Profile pr = o.cfg.profile;
        if (p.Has("layers")) pr.layers = p.Int("layers");
        if (p.Has("binds")) pr.binds = p.Int("binds");
        std::string key = pr.ToJson().dump() + s->name;
        int n = p.Int("containers");
        if (key != farm_key) {
          built += n;
        } else if (n > farm_size) {
          built += n - farm_size;
        }
        farm_key = key;
        farm_size = n;
      }
    }
  }
  const double per_measurement = o.cfg.warmup_s + o.cfg.windows * o.cfg.window_s;
  const double measure_s = points * o.cfg.repetitions * per_measurement;
  const double build_s = built * preset.build_s_per_container;
  const double total = measure_s + build_s;
  printf("\n%d points x %d repetitions x %.2f s (warm-up + windows) = %.0f s measuring\n", points,
         o.cfg.repetitions, per_measurement, measure_s);
  printf("%ld containers built x %.4f s (estimated per container) = %.0f s building\n", built,
         preset.build_s_per_container, build_s);
  printf("expected run time: about %.0f s (%dm%02ds) per invocation, plus teardown\n", total,
         static_cast<int>(total) / 60, static_cast<int>(total) % 60);
  if (preset.invocations > 1) {
    const double all = total * preset.invocations;
    printf("%d independent invocations (ci/nightly; compare's sampling unit): about %.0f s (%dm%02ds)\n",
           preset.invocations, all, static_cast<int>(all) / 60, static_cast<int>(all) % 60);
  }
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{"mntscale: mount-namespace scalability benchmarks for Linux kernels and machines"};
  app.require_subcommand(1);
  app.set_version_flag("--version", MNTSCALE_VERSION);

  RunOptions o;
  CLI::App* run =
      app.add_subcommand("run", "Build containers and run scenarios; write JSON results");
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
  run->add_option("--preset", o.preset,
                  "A versioned preset in presets/ (or a JSON file): scenarios, axes, timing; "
                  "options given here override it");
  run->add_flag("--userns", o.userns,
                "Run in a new user namespace even as root (without root it always does)");
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
  run->add_flag("--wait", o.wait,
                "When another run holds the machine's run lock, wait for it instead of exiting 2");

  CLI::App* list = app.add_subcommand("list", "Scenarios, the mechanism each isolates, and ops");
  (void)list;

  std::string plan_topo = "host", plan_place, plan_preset;
  int plan_workers = 0;
  CLI::App* plan = app.add_subcommand("plan", "Show where workers would run; runs nothing");
  plan->add_option("--topology", plan_topo,
                   "host | a name in topologies/ | hwloc synthetic string | XML file")
      ->capture_default_str();
  plan->add_option("--placement", plan_place,
                   "compact | spread | socket:N [,smt-off] [,share] (default: compare all)");
  plan->add_option("--preset", plan_preset,
                   "Plan a preset: its points, workers per socket, expected run time");
  plan->add_option("--workers", plan_workers, "Workers to place (default: one per PU of the plan)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every bad command line exits 2.
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (*run) {
    RejectEmptyValues(*run);  // issue 14: --containers "" is an error, not the default
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
    // First, while the process has one thread: a user namespace of our own
    // when we are not root.
    EnterUserNamespaceIfNeeded(o.userns);
    std::unique_ptr<Preset> preset;
    if (!o.preset.empty()) {
      preset = std::make_unique<Preset>(Preset::Load(o.preset));
      ApplyPreset(*preset, *run, &o);
      o.cfg.cli["preset"] = preset->ToJson();
    }
    return CmdRun(o, preset.get());
  }
  if (*list) return CmdList();
  if (*plan) {
    if (!plan_preset.empty()) {
      Preset preset = Preset::Load(plan_preset);
      ApplyPreset(preset, *run, &o);
      if (!plan_place.empty()) o.cfg.placement = plan_place;
      return CmdPlanPreset(o, preset, plan_topo);
    }
    if (plan_place.empty()) return CmdPlanAll(plan_topo, plan_workers);
    if (plan_workers <= 0) {
      Topology t = Topology::Load(plan_topo);
      plan_workers =
          static_cast<int>(PlanPlacement(t, PlacementSpec::Parse(plan_place + ",share"), 1).size());
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
