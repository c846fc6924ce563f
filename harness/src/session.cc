#include "mntscale/session.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <set>

#include "mntscale/quietness.h"
#include "mntscale/sandbox.h"
#include "mntscale/sys.h"

namespace mntscale {
namespace {

std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }

// The axes a point may carry that change the containers' shape.
void ApplyProfileAxes(const Point& p, Profile* pr) {
  if (p.Has("layers")) pr->layers = p.Int("layers");
  if (p.Has("binds")) pr->binds = p.Int("binds");
  if (p.Has("depth")) pr->depth = p.Int("depth");
  if (p.Has("ns_mode")) pr->ns_mode = p.Str("ns_mode");
  if (p.Has("overlay_api")) pr->overlay_api = p.Str("overlay_api");
  if (p.Has("root_switch")) pr->root_switch = p.Str("root_switch");
}

std::string FarmKey(const Profile& p) {
  nlohmann::json j = p.ToJson();
  j.erase("name");
  return j.dump();
}

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

std::atomic<bool>& InterruptFlag() { return g_interrupted; }

void InstallInterruptHandler() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

long SystemMountCount() {
  // Every mount namespace some process is in, counted once, plus the ones the
  // harness holds only by fd (not reachable through /proc/<pid>).
  std::set<ino_t> seen;
  long total = 0;
  DIR* d = opendir("/proc");
  if (!d) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string base = std::string("/proc/") + e->d_name;
    struct stat st;
    if (stat((base + "/ns/mnt").c_str(), &st) != 0 || !seen.insert(st.st_ino).second) continue;
    try {
      total += CountMounts(base + "/mountinfo");
    } catch (const SysError&) {
      // The process exited meanwhile.
    }
  }
  closedir(d);
  return total;
}

Session::Session(SessionConfig config, const Topology& topo)
    : config_(std::move(config)), topo_(topo) {
  nlohmann::json extra = {{"placement", config_.placement},
                          {"profile", config_.profile.ToJson()},
                          {"worker_mode", ModeName(config_.mode)},
                          {"config", config_.cli}};
  mounts_before_ = SystemMountCount();
  slab_before_ = SlabMountObjects();
  nlohmann::json ctx = CollectContext(topo_, extra);
  ctx["mounts"] = {{"before", mounts_before_}, {"slab_before", slab_before_}};
  sink_ = std::make_unique<ResultSink>(config_.out, ctx);
}

Session::~Session() { DropFarms(); }

const std::atomic<bool>& Session::interrupted() const { return g_interrupted; }

Profile Session::ProfileFor(const Point& p) const {
  Profile pr = config_.profile;
  ApplyProfileAxes(p, &pr);
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
    farm = std::make_unique<Farm>(profile, GetImage(shape), 0);
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
  std::string pl = !placement.empty()   ? placement
                   : p.Has("placement") ? p.Str("placement")
                                        : config_.placement;
  std::vector<Slot> slots = PlanPlacement(topo_, PlacementSpec::Parse(pl), n);
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

RunResult Session::Measure(RunSpec spec, Entry* e) {
  spec.warmup_s = config_.warmup_s;
  spec.window_s = config_.window_s;
  spec.windows = config_.windows;
  spec.mode = config_.mode;
  spec.latency = spec.latency || config_.latency;
  spec.interrupt = &g_interrupted;
  std::vector<std::unique_ptr<RunObserver>> observers;
  if (config_.counters) {
    CounterConfig cc;
    cc.events = config_.events;
    observers.push_back(MakeCounterObserver(cc));
  }
  nlohmann::json attribution_skip;
  if (config_.attribute) {
    try {
      SamplerConfig sc;
      sc.frequency_hz = config_.sample_hz;
      observers.push_back(MakeKernelSampler(sc));
    } catch (const Unsupported& u) {
      attribution_skip = {{"unsupported", u.what()}};
    }
  }
  std::vector<int> cpus;
  for (const auto& w : spec.workers) cpus.push_back(w.slot.pu.os_index);
  observers.push_back(MakeQuietnessObserver(std::move(cpus)));
  for (auto& o : observers) spec.observers.push_back(o.get());
  RunResult r = Run(spec);
  int measured = 0;
  for (const auto& w : spec.workers) measured += w.measured;
  e->FromRun(r, measured);
  for (auto& o : observers) o->Report(&e->json());
  if (!attribution_skip.is_null()) e->json()["attribution"] = attribution_skip;
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
  DropFarms();
  sink_->SetContext("mounts", {{"before", mounts_before_},
                               {"after", SystemMountCount()},
                               {"slab_before", slab_before_},
                               {"slab_after", SlabMountObjects()}});
  bool complete = !g_interrupted.load();
  sink_->Finish(complete, complete ? "" : "interrupted by signal");
}

}  // namespace mntscale
