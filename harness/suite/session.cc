#include "mntscale/suite/session.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <set>

#include "mntscale/model/sandbox.h"
#include "mntscale/observe/attribution.h"
#include "mntscale/observe/decomposition.h"
#include "mntscale/observe/quietness.h"
#include "mntscale/runtimes/real_runtime.h"
#include "mntscale/runtimes/runtime.h"
#include "mntscale/suite/plan.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }


std::string Human(double v) {
  char buf[32];
  if (v >= 1e6)
    snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3)
    snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else
    snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

}  // namespace

Profile ProfileForPoint(const Profile& base, const Point& p) {
  // A preset scenario's own profile (PresetScenario::profile) replaces the run's.
  Profile pr = p.Has("profile") ? Profile::Load(p.Str("profile")) : base;
  if (p.Has("layers")) pr.layers = p.Int("layers");
  if (p.Has("binds")) pr.binds = p.Int("binds");
  if (p.Has("depth")) pr.depth = p.Int("depth");
  if (p.Has("ns_mode")) pr.ns_mode = ParseEnum(kNsModes, p.Str("ns_mode"), "ns_mode");
  if (p.Has("overlay_api")) pr.overlay_api = ParseEnum(kOverlayApis, p.Str("overlay_api"), "overlay_api");
  if (p.Has("root_switch")) pr.root_switch = ParseEnum(kRootSwitches, p.Str("root_switch"), "root_switch");
  return pr;
}

std::string FarmKey(const Profile& p) {
  nlohmann::json j = p.ToJson();
  j.erase("name");
  j.erase("description");
  return j.dump();
}

std::atomic<bool>& InterruptFlag() { return g_interrupted; }

void InstallInterruptHandler() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

Session::Session(SessionConfig config, const Topology& topo)
    : config_(std::move(config)), topo_(topo) {
  CheckFarmBackend(config_.farm);
  nlohmann::json extra = {{"placement", config_.placement},
                          {"profile", config_.profile.ToJson()},
                          {"worker_mode", ModeName(config_.mode)},
                          {"config", config_.cli}};
  // The farms' base namespace lives as long as the process: made now, it is
  // in both censuses, and what they differ by is what the run left behind.
  // (A session outside the sandbox, as in unit tests, builds no farm.)
  if (Sandbox::Entered()) BaseNamespace();
  before_ = OwnNamespaceMounts();
  slab_before_ = SlabMountObjects();
  nlohmann::json ctx = CollectContext(topo_, extra);
  if (!config_.machine.empty()) {  // --machine wins over MNTSCALE_MACHINE
    ctx["machine"]["name"] = config_.machine;
    ctx["machine"]["name_from"] = "--machine";
  }
  ctx["mounts"] = {{"before", before_.mounts},
                   {"namespaces_before", before_.namespaces},
                   {"slab_before", slab_before_}};
  if (config_.farm) ctx["farm"] = Name(*config_.farm);
  sink_ = std::make_unique<ResultSink>(config_.out, ctx);
}

Session::~Session() {
  kept_.clear();
  DropFarms();
}

const std::atomic<bool>& Session::interrupted() const { return g_interrupted; }

Profile Session::ProfileFor(const Point& p) const {
  Profile pr = ProfileForPoint(config_.profile, p);
  pr.Validate();
  return pr;
}

Farm& Session::FarmFor(const Point& p) { return FarmFor(ProfileFor(p), p.Int("containers")); }

Farm& Session::FarmFor(const Profile& profile, int containers) {
  if (containers < 1)
    throw UsageError("containers must be at least 1, got " + std::to_string(containers));
  std::string key = FarmKey(profile);
  // One farm at a time: the container count is the system's state.
  for (auto it = farms_.begin(); it != farms_.end();) {
    it = it->first == key ? std::next(it) : farms_.erase(it);
  }
  auto& farm = farms_[key];
  if (!farm) {
    ImageShape shape{profile.layers, profile.depth, profile.files_per_dir, profile.binds};
    std::unique_ptr<RealRuntime> runtime;
    if (config_.farm) {
      runtime = OpenRealRuntime(*config_.farm, Sandbox::Current().workdir() + "/rt" +
                                                   std::to_string(farms_opened_++));
    }
    farm = std::make_unique<Farm>(profile, GetImage(shape), 0, std::move(runtime));
  }
  if (farm->size() > containers) farm->Shrink(containers);
  if (farm->size() < containers) {
    auto t0 = std::chrono::steady_clock::now();
    int from = farm->size();
    farm->Grow(containers, [&](int done, int total) {
      Progress("building containers " + std::to_string(from) + "->" + std::to_string(containers),
               done, total,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    });
  }
  return *farm;
}

void Session::DropFarms() { farms_.clear(); }

std::vector<WorkerPlan> Session::Workers(const Point& p, Farm* farm, const OpInfo* op,
                                         const std::string& path, int count,
                                         const std::string& placement) {
  int n = count >= 0 ? count : p.Int("workers");
  std::vector<Slot> slots = Slots(p, n, placement);
  std::vector<WorkerPlan> plans;
  for (int i = 0; i < n; ++i) {
    WorkerPlan w;
    w.slot = slots[i];
    if (farm && farm->size()) w.container = &farm->containers()[i % farm->size()];
    w.op = op;
    w.path = path;
    plans.push_back(std::move(w));
  }
  return plans;
}

std::vector<Slot> Session::Slots(const Point& p, int count, const std::string& placement,
                                 int after) {
  std::string pl = !placement.empty()   ? placement
                   : p.Has("placement") ? p.Str("placement")
                                        : config_.placement;
  // The plan checked every placement the user gave against this machine, so
  // one that cannot be met here (a scenario's own "socket:1" on one socket)
  // is the machine's limit: the point is unsupported, not bad input.
  auto place = [&](const PlacementSpec& spec, int n) {
    try {
      return PlanPlacement(topo_, spec, n);
    } catch (const UsageError& e) {
      throw Unsupported(std::string("placement: ") + e.what());
    }
  };
  PlacementSpec spec = PlacementSpec::Parse(pl);
  if (after <= 0) return place(spec, count);
  spec.allow_sharing = true;
  std::vector<Slot> plan = place(spec, after + count);
  std::set<int> taken;
  for (int i = 0; i < after; ++i) taken.insert(plan[i].pu.os_index);
  std::vector<Slot> free;
  for (size_t i = after; i < plan.size(); ++i) {
    if (!taken.count(plan[i].pu.os_index)) free.push_back(plan[i]);
  }
  if (free.empty()) free.assign(plan.begin() + after, plan.end());
  std::vector<Slot> out;
  for (int i = 0; i < count; ++i) {
    out.push_back(free[i % free.size()]);
    out.back().worker = i;
  }
  return out;
}

// The observers a point's measured interval gets, by the run's options:
// counters, the kernel sampler, the wait tracer and the quietness record. One that cannot
// work here is recorded as {"unsupported": why} in its place.
Session::PointObservers Session::MakePointObservers(std::vector<int> cpus,
                                                    std::vector<pid_t> foreign) const {
  PointObservers p;
  if (config_.counters) {
    CounterConfig cc;
    cc.events = config_.events;
    p.list.push_back(MakeCounterObserver(cc));
  }
  if (config_.attribute || config_.waits) {
    try {
      SamplerConfig sc;
      sc.frequency_hz = config_.sample_hz;
      p.list.push_back(MakeKernelSampler(sc));
    } catch (const Unsupported& u) {
      p.skipped["attribution"] = {{"unsupported", u.what()}};
    }
  }
  if (config_.waits) {
    try {
      p.list.push_back(MakeWaitTracer(WaitConfig{}));
    } catch (const Unsupported& u) {
      p.skipped["waits"] = {{"unsupported", u.what()}};
      p.skipped["time_decomposition"] = {{"unsupported", u.what()}};
    }
  }
  if (!cpus.empty()) p.list.push_back(MakeQuietnessObserver(std::move(cpus), std::move(foreign)));
  return p;
}

void Session::PointObservers::Report(nlohmann::json* entry) const {
  if (skipped.contains("attribution")) (*entry)["attribution"] = skipped["attribution"];
  for (const auto& o : list) o->Report(entry);
  // Every observer has reported: the decomposition reads the runner's clocks
  // and the sampler's buckets from the entry, whatever order they ran in.
  for (const auto& o : list) {
    if (const WaitTimes* w = o->wait_times())
      (*entry)["time_decomposition"] = Decompose(DecompositionInputFrom(*entry, *w));
  }
  for (const char* k : {"waits", "time_decomposition"}) {
    if (skipped.contains(k)) (*entry)[k] = skipped[k];
  }
}

EventResult Session::Events(EventSpec spec, Entry* e) {
  spec.mode = config_.mode;
  spec.interrupt = &g_interrupted;
  // The actors get the same counters, sampler and wait tracer as runner
  // workers; with several calls per point the entry keeps the last one's.
  PointObservers obs = MakePointObservers({});
  for (auto& o : obs.list) spec.observers.push_back(o.get());
  EventResult r = RunEvents(spec);
  if (!e) return r;
  obs.Report(&e->json());
  nlohmann::json& run = e->json()["event_run"];
  if (!run.is_object()) run = nlohmann::json::object();
  const double span = run.value("span_s", 0.0), sum = run.value("sum_s", 0.0);
  const int runs = run.value("runs", 0);
  nlohmann::json actors = nlohmann::json::array();
  for (const ActorResult& a : r.actors) {
    actors.push_back({{"pu", a.slot.pu.os_index},
                      {"tid", a.tid},
                      {"pid", a.pid},
                      {"events", a.events},
                      {"sum_s", a.sum_s}});
  }
  run = {{"mode", ModeName(spec.mode)}, {"caller_pid", getpid()}, {"runs", runs + 1},
         {"span_s", span + r.span_s},   {"sum_s", sum + r.sum_s}, {"actors", actors}};
  return r;
}

RunResult Session::Measure(RunSpec spec, Entry* e) {
  spec.warmup_s = config_.warmup_s;
  spec.window_s = config_.window_s;
  spec.windows = config_.windows;
  spec.mode = config_.mode;
  spec.latency = spec.latency || config_.latency;
  spec.interrupt = &g_interrupted;
  std::vector<int> cpus;
  for (const auto& w : spec.workers) cpus.push_back(w.slot.pu.os_index);
  PointObservers obs = MakePointObservers(std::move(cpus), spec.foreign_tids);
  for (auto& o : obs.list) spec.observers.push_back(o.get());
  // Read from the kernel while the point's namespaces are alive, so tests
  // check what a scenario built against the kernel (context.mounts holds the
  // same census from before the run), not against the scenario's arithmetic.
  const MountCensus census = OwnNamespaceMounts();
  e->Set("census", {{"namespaces", census.namespaces}, {"mounts", census.mounts}});
  RunResult r = Run(spec);
  int measured = 0;
  for (const auto& w : spec.workers) measured += w.measured;
  e->FromRun(r, measured);
  // The observed actors follow the workers in the observers' task lists:
  // they get an entry with their role, so the decomposition names them.
  for (const auto& [tid, role] : spec.observed_actors)
    e->json()["workers"].push_back({{"role", role},
                                    {"tid", tid},
                                    {"measured", false},
                                    {"cpu_s", 0},
                                    {"user_s", 0},
                                    {"sys_s", 0}});
  obs.Report(&e->json());
  if (!r.error.empty()) throw std::runtime_error(r.error);
  return r;
}

void Session::Progress(const std::string& what, int done, int total, double elapsed_s) {
  if (config_.quiet) return;
  static bool tty = isatty(STDERR_FILENO);
  double rate = elapsed_s > 0 ? done / elapsed_s : 0;
  double eta = rate > 0 ? (total - done) / rate : 0;
  char line[512];
  snprintf(line, sizeof line, "%s: %d/%d  %s/s  ETA %.1fs", what.c_str(), done, total,
           Human(rate).c_str(), eta);
  if (tty) {
    fprintf(stderr, "\r\033[K%s%s", line, done >= total ? "\n" : "");
  } else if (done >= total || done == 0) {
    fprintf(stderr, "%s\n", line);
  }
}

bool Session::RunPoint(const ScenarioInfo& s, const Point& p, int rep, int reps) {
  if (g_interrupted.load()) return false;
  if (kept_for_ != s.name) {
    kept_.clear();
    kept_for_ = s.name;
  }
  std::string name = p.Name(s.name);
  Entry e;
  nlohmann::json& j = e.json();
  j["name"] = name;
  j["run_name"] = name;
  j["run_type"] = "iteration";
  j["repetitions"] = reps;
  j["repetition_index"] = rep;
  j["threads"] = p.Has("workers") ? p.Int("workers") : 1;
  j["scenario"] = s.name;
  nlohmann::json params = p.Params();
  Profile pr = ProfileFor(p);
  for (const char* k : {"layers", "binds", "depth"}) {
    if (!params.contains(k)) params[k] = pr.ToJson()[k];
  }
  if (!params.contains("placement")) params["placement"] = config_.placement;
  params["mode"] = ModeName(config_.mode);
  params["profile"] = pr.name;
  j["params"] = params;
  auto t0 = std::chrono::steady_clock::now();
  try {
    if (s.unsupported && s.unsupported()) throw Unsupported(s.unsupported());
    s.run(*this, p, e);
  } catch (const Interrupted&) {
    return false;
  } catch (const Unsupported& u) {
    j["skipped"] = u.what();
    j["error_occurred"] = true;
    j["error_message"] = u.what();
  } catch (const UsageError&) {
    throw;
  } catch (const std::exception& ex) {
    j["error_occurred"] = true;
    j["error_message"] = ex.what();
    if (!config_.quiet) fprintf(stderr, "%s: error: %s\n", name.c_str(), ex.what());
  }
  if (g_interrupted.load()) return false;
  nlohmann::json out = e.Finish();
  sink_->Add(out);
  ++points_done_;
  if (!config_.quiet) {
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (out.contains("skipped")) {
      fprintf(stderr, "%s [rep %d]: %s\n", name.c_str(), rep,
              out["skipped"].get<std::string>().c_str());
    } else if (out.contains("items_per_second") && !out.contains("error_occurred")) {
      fprintf(stderr, "%s [rep %d]: %s ops/s (%.1fs)\n", name.c_str(), rep,
              Human(out["items_per_second"].get<double>()).c_str(), el);
    }
  }
  return true;
}

void Session::Finish() {
  kept_.clear();
  DropFarms();
  MountCensus after = OwnNamespaceMounts();
  sink_->SetContext("mounts", {{"before", before_.mounts},
                               {"after", after.mounts},
                               {"namespaces_before", before_.namespaces},
                               {"namespaces_after", after.namespaces},
                               {"slab_before", slab_before_},
                               {"slab_after", SlabMountObjects()}});
  bool complete = !g_interrupted.load();
  sink_->Finish(complete, complete ? "" : "interrupted by signal");
}

int RunPlan(const Plan& plan, Session& session) {
  const int reps = session.config().repetitions;
  for (const auto& ps : plan.scenarios) {
    for (const Point& p : ps.points) {
      for (int rep = 0; rep < reps; ++rep) {
        if (!session.RunPoint(*ps.scenario, p, rep, reps)) return 130;
      }
    }
  }
  return session.interrupted().load() ? 130 : 0;
}

}  // namespace mntscale
