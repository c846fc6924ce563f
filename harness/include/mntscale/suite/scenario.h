// Scenarios: one small file each, registered with MNTSCALE_SCENARIO. The
// harness expands a scenario's axes into sweep points, runs each under Google
// Benchmark and writes one result entry per point and repetition.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "mntscale/run/runner.h"
#include "mntscale/sys/enum_names.h"

namespace mntscale {

class Session;

// One sweep point: axis -> value, in the scenario's axis order.
class Point {
 public:
  std::vector<std::pair<std::string, std::string>> values;
  bool Has(const std::string& axis) const;
  const std::string& Str(const std::string& axis) const;  // throws if absent
  int Int(const std::string& axis) const;  // values are checked before points run
  bool Bool(const std::string& axis) const;
  double Double(const std::string& axis) const;
  // The value of an axis registered with EnumAxis(name, defaults, names), as
  // the enum: a scenario compares types, not spellings.
  template <typename Names>
  EnumOf<Names> Enum(const Names& names, const std::string& axis) const {
    return ParseEnum(names, Str(axis), axis);
  }
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

// An axis is typed: the harness checks every value of every point before the
// sandbox exists, so a scenario never parses or range-checks its own axes.
enum class AxisType { kInt, kEnum, kBool, kDuration };

struct Axis {
  std::string name;
  AxisType type = AxisType::kInt;
  std::string defaults;  // comma-separated
  long long min = 0, max = 0;       // kInt (and kDuration, in milliseconds)
  std::vector<std::string> values;  // kEnum
  // kEnum whose values come from a registry (the ops); overrides `values`.
  std::vector<std::string> (*values_from)() = nullptr;
  std::string unit;
  // Whether the axis shapes the containers of the farm (a profile field or
  // the container count); two points that differ in it need another farm.
  bool farm = false;
  // Old names accepted in --set and presets for one preset version.
  std::vector<std::string> aliases;
  // Old value spellings -> the value they mean.
  std::vector<std::pair<std::string, std::string>> value_aliases;

  // The canonical spelling of v, or UsageError naming the axis and the range.
  std::string Check(const std::string& v) const;
  std::vector<std::string> Values() const;  // kEnum: the allowed values
  nlohmann::json ToJson() const;
  const char* TypeName() const;

  // Builders, so a registration reads as a table row.
  Axis& Farm() { farm = true; return *this; }
  Axis& Alias(std::string old) { aliases.push_back(std::move(old)); return *this; }
  Axis& ValueAlias(std::string old, std::string now) {
    value_aliases.emplace_back(std::move(old), std::move(now));
    return *this;
  }
};

// Integer axis in [min, max].
Axis IntAxis(std::string name, std::string defaults, long long min, long long max,
             std::string unit = "");
// One of `values`.
Axis EnumAxis(std::string name, std::string defaults, std::vector<std::string> values);
// One of the names in an enum's table (read back with Point::Enum), so the
// values are spelled once.
template <typename Names>
  requires requires(const Names& n) { std::begin(n)->name; }
Axis EnumAxis(std::string name, std::string defaults, const Names& names) {
  std::vector<std::string> values;
  for (const auto& n : names) values.emplace_back(n.name);
  return EnumAxis(std::move(name), std::move(defaults), std::move(values));
}
// 0 or 1 (also accepts false/true, no/yes, off/on; written as 0/1).
Axis BoolAxis(std::string name, std::string defaults);
// A duration, written with a unit (250ms, 2s); canonical form in ms ("250ms").
Axis DurationAxis(std::string name, std::string defaults, long long min_ms, long long max_ms);

// The axes many scenarios share, with one range each.
namespace axes {
Axis Containers(std::string defaults);  // 1..1,000,000, shapes the farm
Axis Layers(std::string defaults);      // 1..kMaxLayers, shapes the farm
Axis Binds(std::string defaults);       // 0..1000, shapes the farm
Axis Workers(std::string defaults);     // 1..1,048,576 (the topology caps it later)
Axis Op(std::string defaults);          // one of the registered ops
Axis Rounds(std::string defaults);      // 1..1000 alternations of a paired measurement
Axis Mounts(std::string defaults);      // 0..1,000,000 mounts in a namespace
}  // namespace axes

// An expectation a result can be checked against (issue: claims as data).
// kind: flat | linear | below | above | grows | ratio; `args` holds the
// kind's parameters as `mntscale list --json` gives them to the reports.
struct Claim {
  std::string id;
  std::string kind;
  std::string metric;
  std::string text;  // the prose form
  nlohmann::json args = nlohmann::json::object();
  nlohmann::json ToJson() const;
  // Restricts the claim to the points with these axis values.
  Claim& Where(const nlohmann::json& axis_values);
};

namespace claims {
// metric varies by at most within_pct % across `over` (other axes fixed).
Claim Flat(std::string metric, std::string over, double within_pct, std::string text);
// metric = a + b * in, with R^2 >= r2_min and b in [lo, hi] `unit` (slope unchecked if lo > hi).
Claim Linear(std::string metric, std::string in, double r2_min, double lo, double hi,
             std::string unit, std::string text);
Claim Below(std::string metric, double value, std::string text);
Claim Above(std::string metric, double value, std::string text);
// metric at the largest `with` / at the smallest >= min_ratio.
Claim Grows(std::string metric, std::string with, double min_ratio, std::string text);
// metric at the point `num` / at the point `den` in [lo, hi].
Claim Ratio(std::string metric, nlohmann::json num, nlohmann::json den, double lo, double hi,
            std::string text);
}  // namespace claims

// What one point costs, for `plan`'s time estimate.
struct PointCost {
  int measurements = 1;     // timed windows (warm-up + windows each)
  long own_containers = 0;  // containers it builds outside the session's farm
  bool session_farm = true; // whether it uses the session's farm at `containers`
};

struct ScenarioInfo {
  const char* name;
  const char* mechanism;  // the kernel mechanism it isolates, one line
  const char* expect;     // the scaling it should show, one line
  std::vector<Axis> axes;
  ScenarioFn run;
  // nullptr, or a reason this kernel cannot run it at all (shown by `list`).
  const char* (*unsupported)() = nullptr;
  std::vector<Claim> claims = {};
  // nullptr: one measurement, or two per round when the point has `rounds`.
  PointCost (*cost)(const Point& p) = nullptr;

  const Axis* FindAxis(const std::string& name_or_alias) const;
  nlohmann::json ToJson() const;  // list --json
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

// Expands axes x overrides into points (cartesian product, first axis
// outermost). overrides: axis (or alias) -> comma list, the last one of an
// axis winning. Every value is checked and made canonical; an empty list, a
// bad value or an axis the scenario lacks is a UsageError.
std::vector<Point> ExpandPoints(const ScenarioInfo& s,
                                const std::vector<std::pair<std::string, std::string>>& overrides);

// UsageError: scenario s has no axis (or alias) `axis`, naming the axes it has.
[[noreturn]] void ThrowNoAxis(const ScenarioInfo& s, const std::string& axis);

// The comma list, empty items refused ("1,,2" and "" are errors).
std::vector<std::string> SplitAxisList(const std::string& axis, const std::string& list);

// Every registered scenario as `list --json` gives it, and as `list` prints it.
nlohmann::json ListJson();
std::string ListText();

}  // namespace mntscale
