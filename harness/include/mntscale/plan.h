// Planning: a run request (command line or preset) becomes the exact list of
// points to run, checked against the scenarios' typed axes, the topology and
// the kernel's limits, with a time estimate. Nothing here builds or mounts
// anything, so every refusal happens before the sandbox exists.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "mntscale/preset.h"
#include "mntscale/profile.h"
#include "mntscale/scenario.h"
#include "mntscale/session.h"
#include "mntscale/topology.h"

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
  SessionConfig cfg;
};

struct PlannedScenario {
  const ScenarioInfo* scenario;
  std::vector<Point> points;
};

struct Plan {
  std::vector<PlannedScenario> scenarios;
  int max_containers = 0;
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

// A stand-in preset for `plan` of a command-line run (no scenarios of its own).
Preset AdHocPreset();
// PUs a placement may use: its default worker count.
int PusOf(const Topology& topo, const PlacementSpec& spec);

// Human previews for `mntscale plan`.
std::string FormatPlacements(const Topology& topo, int workers);  // every placement
std::string FormatPresetPlan(const Preset& preset, const Plan& plan, const RunRequest& req,
                             const Topology& topo);

// `mntscale plan`: a preset's or an ad-hoc run's points, placements and time
// (when a preset, --scenario, --set or an axis other than --workers is
// given), else where --workers N (default: one per PU) go under the
// placement given, or under every placement.
std::string PlanCommand(const Preset* preset, RunRequest req, const Topology& topo,
                        bool placement_given, bool scenario_given);

// Runs every point of the plan in a session, repetition-major per point.
// Returns 130 when interrupted, 0 otherwise.
int RunPlan(const Plan& plan, Session& session);

}  // namespace mntscale
