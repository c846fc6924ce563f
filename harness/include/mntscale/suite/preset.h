// A preset: a fixed, versioned run configuration (scenarios with their axis
// values, timing, repetitions, profile), so results from different nights or
// machines compare like with like. Files live in presets/NAME-vN.json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace mntscale {

struct PresetScenario {
  std::string scenario;
  std::vector<std::pair<std::string, std::string>> set;  // axis -> "v1,v2"
  // Placements each point runs under ("spread", "socket:0", "spread,smt-off");
  // empty = the run's --placement. A point a placement cannot host (more
  // workers than its PUs) is dropped from the plan with a note.
  std::vector<std::string> placements;
  // A profile of its own ("netflix-50-layer-idmap"): its shape fills the
  // scenario's layers, binds and (storm) strategy, and its points carry it.
  std::string profile;
};

struct Preset {
  std::string name;  // "nightly"
  int version = 0;   // bumped whenever what is measured changes
  std::string description;
  std::string profile;  // "" = the default profile
  std::string placement = "spread";
  std::string mode = "thread";
  double warmup_s = 0.3;
  double window_s = 0.5;
  int windows = 5;
  int repetitions = 3;
  // Independent invocations of the whole preset that a comparison needs per
  // side (ci/nightly runs it this many times). Repetitions inside one
  // invocation share its drift (farm layout, caches, host load), so they
  // are not independent samples; see docs/reports.md. The binary itself
  // runs one invocation; `plan` multiplies by this.
  int invocations = 1;
  // For `plan`: the estimated build time of one container, in seconds.
  double build_s_per_container = 0.002;
  // The run time one invocation should take, in seconds (0 = none). `plan`
  // prints the estimate against it; a plan over 10x it is refused.
  double budget_s = 0;
  std::vector<PresetScenario> scenarios;
  std::string origin;  // the file it came from

  std::string Id() const { return name + "-v" + std::to_string(version); }
  nlohmann::json ToJson() const;
  // Unknown keys, wrong types and impossible values are UsageErrors naming
  // the field. Scenario and axis names are checked by the caller, which
  // knows the registry.
  static Preset FromJson(const nlohmann::json& j, const std::string& origin);
  // A name in presets/ (with or without .json) or a path; a bare name
  // without its version ("procurement") is its newest presets/NAME-vN.json.
  static Preset Load(const std::string& spec);
};

}  // namespace mntscale
