// `mntscale plan`: the human previews of a plan (plan.h builds the plan).
#pragma once

#include <string>

#include "mntscale/suite/plan.h"

namespace mntscale {

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

}  // namespace mntscale
