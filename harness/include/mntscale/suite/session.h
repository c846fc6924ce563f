// A run of the suite: the configuration, the farms, the observers and the
// result file. Scenarios get their containers and workers from here.
#pragma once

#include <nlohmann/json.hpp>

#include <any>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mntscale/model/farm.h"
#include "mntscale/model/real_runtime.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/observe/counters.h"
#include "mntscale/run/events.h"
#include "mntscale/run/runner.h"
#include "mntscale/run/topology.h"
#include "mntscale/suite/results.h"
#include "mntscale/suite/scenario.h"

namespace mntscale {

struct SessionConfig {
  std::string topology = "host";
  std::string placement = "spread";
  Profile profile;
  // Who creates the containers: a real runtime, or mntscale (nullopt, --farm builtin).
  std::optional<RuntimeKind> farm;
  WorkerMode mode = WorkerMode::kThread;
  double warmup_s = 0.3;
  double window_s = 0.5;
  int windows = 5;
  int repetitions = 1;
  bool latency = false;
  bool quiet = false;
  std::string out;  // result file; empty: none
  // --machine: the context's machine name ("" = $MNTSCALE_MACHINE, else hostname).
  std::string machine;
  // Counters: empty events and !counters means off.
  bool counters = false;
  std::vector<std::string> events;
  bool attribute = false;
  bool waits = false;  // lock waits and off-CPU time (implies attribute)
  int sample_hz = 997;
  nlohmann::json cli;  // the exact command-line configuration, for the context
};

class Session {
 public:
  Session(SessionConfig config, const Topology& topo);
  ~Session();

  const SessionConfig& config() const { return config_; }
  const Topology& topology() const { return topo_; }
  // The profile for this point: the base profile with the point's axes
  // (layers, binds, depth, ns_mode, overlay_api, root_switch) applied.
  Profile ProfileFor(const Point& p) const;
  // A farm of exactly p's "containers" containers of ProfileFor(p), grown or
  // shrunk from the last one of the same shape.
  Farm& FarmFor(const Point& p);
  Farm& FarmFor(const Profile& profile, int containers);
  // Drops every cached farm (scenarios that need a clean system).
  void DropFarms();
  // Worker plans for p's "workers" (placement from p's "placement" or the
  // config): worker i in container i % size, running op on path.
  std::vector<WorkerPlan> Workers(const Point& p, Farm* farm, const OpInfo* op,
                                  const std::string& path, int count = -1,
                                  const std::string& placement = "");
  // `count` slots by `placement` (or p's "placement", or the config's), as
  // Workers places its workers. after > 0: the slots of the plan's first
  // `after` workers are left to them (readers planned with the same rule),
  // and the count wraps round the PUs that remain (all PUs when none does).
  // Unsupported("placement: ...") when this machine cannot meet it. Scenarios
  // get every placement here, never from PlanPlacement themselves.
  std::vector<Slot> Slots(const Point& p, int count, const std::string& placement = "",
                          int after = 0);
  // Runs spec with the session's timing, mode, counters and sampler.
  RunResult Measure(RunSpec spec, Entry* e);
  // Runs events with the session's worker mode and interrupt flag. With e,
  // adds the run to e's "event_run": mode, span and sum (added up over the
  // runs of a point), and the last run's actors (PU, tid, pid, events).
  EventResult Events(EventSpec spec, Entry* e = nullptr);

  // State a scenario carries from one point to the next (a baseline, a
  // background built once per axis value), owned by the session and dropped
  // when the next scenario starts. key names it within the scenario.
  template <typename T>
  T& Kept(const std::string& key) {
    std::any& a = kept_[key];
    if (!a.has_value()) a = std::make_shared<T>();
    return *std::any_cast<std::shared_ptr<T>&>(a);
  }
  // Progress for long work, on stderr (in place on a terminal).
  void Progress(const std::string& what, int done, int total, double elapsed_s);
  const std::atomic<bool>& interrupted() const;

  // Runs one point (one repetition): builds the entry, runs the scenario and
  // records it. Unsupported -> "skipped"; errors -> error_occurred. Returns
  // false when the run was interrupted.
  bool RunPoint(const ScenarioInfo& s, const Point& p, int rep, int reps);
  ResultSink& sink() { return *sink_; }
  void Finish();

 private:
  struct PointObservers {
    std::vector<std::unique_ptr<RunObserver>> list;
    nlohmann::json skipped = nlohmann::json::object();  // "attribution"/"waits": unsupported
    void Report(nlohmann::json* entry) const;
  };
  PointObservers MakePointObservers(std::vector<int> cpus, std::vector<pid_t> foreign = {}) const;

  SessionConfig config_;
  Topology topo_;
  std::unique_ptr<ResultSink> sink_;
  std::map<std::string, std::unique_ptr<Farm>> farms_;
  int farms_opened_ = 0;  // real-runtime farms, each with a directory of its own
  std::map<std::string, std::any> kept_;  // Kept(), for the scenario kept_for_
  std::string kept_for_;
  MountCensus before_;
  long slab_before_ = 0;
  int points_done_ = 0;
};

// The profile of a point: base with the point's shape axes (layers, binds,
// depth, ns_mode, overlay_api, root_switch) applied.
Profile ProfileForPoint(const Profile& base, const Point& p);
// Two profiles with the same key share a farm (the name does not count).
// Session and the plan's time estimate both use it.
std::string FarmKey(const Profile& p);

// Installs the SIGINT/SIGTERM handler that sets the interrupted flag.
void InstallInterruptHandler();
std::atomic<bool>& InterruptFlag();

}  // namespace mntscale
