// Planning: a run request (command line or preset) becomes the exact list of
// points to run, checked against the scenarios' typed axes, the topology and
// the kernel's limits (model/limits.h, which may raise RLIMIT_NOFILE), with a
// time estimate. Nothing here builds or mounts anything, so every refusal
// happens before the sandbox exists. The `plan` command's text is
// plan_text.h; running a plan is the session's (RunPlan).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "mntscale/suite/preset.h"
#include "mntscale/model/profile.h"
#include "mntscale/suite/scenario.h"
#include "mntscale/suite/session.h"
#include "mntscale/run/topology.h"

namespace mntscale {

// What the user asked for, before it is checked.
struct RunRequest {
  std::vector<std::string> scenarios{"path_walk"};
  // Shorthands for the common axes (--containers, ...); "" = not given.
  std::vector<std::pair<std::string, std::string>> axis_options;
  std::vector<std::string> sets;  // --set axis=v1,v2
  std::string profile;            // name or path; "" = the default profile
  std::string mode = "thread";
  std::string events;  // --events: "" off, "default", or names
  std::string farm = "builtin";  // --farm, parsed into cfg.farm
  bool placement_given = false;  // --placement overrides a preset's placement lists
  // `plan`: a point a placement cannot host shows as "too many" instead of
  // refusing the plan (a topology-sized scenario still drops it, as run does).
  bool preview = false;
  SessionConfig cfg;
};

// A topology token: an item of an integer axis's value list that stands for
// counts taken from the machine, so one preset sizes itself to any machine
// (the host for `run`, --topology for `plan`).
//   @pow2       1, 2, 4, ... up to all PUs, and all PUs
//   @linear:N   N evenly spaced counts up to all PUs (PUs*i/N, i = 1..N)
//   @pus        all PUs
//   @socket     the PUs of one full socket (socket 0)
//   @cores      one PU per core (each SMT sibling set taken once)
// @pus, @socket and @cores take "/D" or "*M" ("@cores/2", "@cores*8");
// every count is at least 1.
struct TopologyToken {
  enum Kind { kPow2, kLinear, kPus, kSocket, kCores } kind = kPus;
  int steps = 0;  // kLinear
  int divide = 1, multiply = 1;
  static bool Is(const std::string& item) { return !item.empty() && item[0] == '@'; }
  static TopologyToken Parse(const std::string& item);  // UsageError naming the item
  std::vector<long> Expand(const Topology& topo) const;
};

// `list` with its tokens expanded on topo, the whole list then deduplicated
// and sorted; unchanged when it has no token. *had_token says which.
std::string ExpandTopologyTokens(const std::string& axis, const std::string& list,
                                 const Topology& topo, bool* had_token);

struct PlannedScenario {
  const ScenarioInfo* scenario;
  std::vector<Point> points;
};

struct Plan {
  std::vector<PlannedScenario> scenarios;
  int max_containers = 0;
  // One line per group of points a placement could not host (dropped from
  // a topology-sized preset rather than refused).
  std::vector<std::string> notes;
  int PointCount() const;
};

// Fills from the preset what the command line did not give (given("--window")).
void ApplyPreset(const Preset& preset, const std::function<bool(const char*)>& given,
                 RunRequest* req);

// Loads the profile, parses mode and events into req->cfg (a UsageError for
// an unknown event or mode).
void ResolveRequest(RunRequest* req);

// Checks and expands a request (no preset). Throws UsageError naming the
// value for an unknown scenario or axis, an empty or out-of-range value, a
// shorthand no chosen scenario has, or more workers than the placement has
// PUs.
Plan MakePlan(const RunRequest& req, const Topology& topo);

// A preset's scenarios with their own axis values; the request's axis
// options and --set apply on top, to the scenarios that have the axis.
Plan MakePresetPlan(const Preset& preset, const RunRequest& req, const Topology& topo);

// Would the largest farm pass fs.mount-max, user.max_mnt_namespaces,
// RLIMIT_NOFILE (raised when it can be) or free memory? UsageError if so.
void PreflightLimits(const Plan& plan, const Profile& profile);

// The time a plan takes, from the same farm-reuse rule as Session.
struct Estimate {
  int points = 0;
  double measure_s = 0;    // warm-up + windows of every measurement
  long containers_built = 0;
  double build_s = 0;
  double overhead_s = 0;   // per-point set-up and teardown
  double total_s() const { return measure_s + build_s + overhead_s; }
};
Estimate EstimatePlan(const Plan& plan, const SessionConfig& cfg, double build_s_per_container);

// UsageError when a preset with a budget would take more than 10x it.
void CheckBudget(const Preset& preset, const Plan& plan, const SessionConfig& cfg,
                 const Topology& topo);

// A stand-in preset for `plan` of a command-line run (no scenarios of its own).
Preset AdHocPreset();
// PUs a placement may use: its default worker count.
int PusOf(const Topology& topo, const PlacementSpec& spec);

// Runs every point (defined in session.cc) of the plan in a session, repetition-major per point.
// Returns 130 when interrupted, 0 otherwise.
int RunPlan(const Plan& plan, Session& session);

}  // namespace mntscale
