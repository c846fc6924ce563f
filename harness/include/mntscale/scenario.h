// Scenarios: one small file each, registered with MNTSCALE_SCENARIO. The
// harness expands a scenario's axes into sweep points, runs each under Google
// Benchmark and writes one result entry per point and repetition.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "mntscale/runner.h"

namespace mntscale {

class Session;

// One sweep point: axis -> value, in the scenario's axis order.
class Point {
 public:
  std::vector<std::pair<std::string, std::string>> values;
  bool Has(const std::string& axis) const;
  const std::string& Str(const std::string& axis) const;  // throws if absent
  int Int(const std::string& axis) const;                 // throws UsageError if not a number
  double Double(const std::string& axis) const;
  std::string Name(const std::string& scenario) const;  // scenario/axis:value/...
  nlohmann::json Params() const;
};

// What a scenario fills for one point.
class Entry {
 public:
  // Throughput, per-worker counts, rusage and latency from a runner result.
  void FromRun(const RunResult& r, int workers);
  // For scenarios that time discrete events (builds, teardowns): n events in
  // `seconds` of wall time; latency from the histogram when it has samples.
  void FromEvents(uint64_t n, double seconds, const Histogram* latency = nullptr);
  // A scenario-specific number, kept under "extra".
  void Set(const std::string& key, nlohmann::json value) { extra_[key] = std::move(value); }
  nlohmann::json& json() { return j_; }
  nlohmann::json Finish() const;  // j_ with extra merged

 private:
  nlohmann::json j_ = nlohmann::json::object();
  nlohmann::json extra_ = nlohmann::json::object();
};

using ScenarioFn = void (*)(Session& s, const Point& p, Entry& e);

struct Axis {
  std::string name;
  std::string defaults;  // comma-separated
};

struct ScenarioInfo {
  const char* name;
  const char* mechanism;  // the kernel mechanism it isolates, one line
  const char* expect;     // the scaling it should show, one line
  std::vector<Axis> axes;
  ScenarioFn run;
  // nullptr, or a reason this kernel cannot run it at all (shown by `list`).
  const char* (*unsupported)() = nullptr;
};

void RegisterScenario(const ScenarioInfo& info);
const ScenarioInfo* FindScenario(const std::string& name);
std::vector<const ScenarioInfo*> AllScenarios();

struct ScenarioRegistrar {
  explicit ScenarioRegistrar(const ScenarioInfo& info) { RegisterScenario(info); }
};

#define MNTSCALE_SCENARIO(ident, ...)                             \
  static ::mntscale::ScenarioRegistrar mntscale_scenario_##ident( \
      ::mntscale::ScenarioInfo __VA_ARGS__)

// The numeric axes the harness knows (containers, layers, workers, binds,
// depth) against their ranges: UsageError naming the axis and the value as
// written ("workers = 0 is impossible: allowed 1..1048576").
void CheckAxisRanges(const Point& p);

// Expands axes x overrides into points (cartesian product, first axis
// outermost). overrides: axis -> comma list. Unknown axes in overrides are
// ignored here; the CLI rejects them.
std::vector<Point> ExpandPoints(const ScenarioInfo& s,
                                const std::vector<std::pair<std::string, std::string>>& overrides);

}  // namespace mntscale
