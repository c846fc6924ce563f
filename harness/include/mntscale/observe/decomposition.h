// The time decomposition (issue 21): where each traced task's wall time went
// over the traced window: user, on-CPU kernel by bucket, blocked by bucket,
// preempted, off-CPU unknown and the residual, per task and summed by role.
// Pure arithmetic over typed inputs. The session calls it once every
// observer has reported (PointObservers::Report), so it no longer depends on
// the order the observers run in; tests call it with made-up figures. What
// each field means is in docs/results-schema.md, "time_decomposition".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mntscale {

// One task the wait tracer followed, in its task order (the runner's
// workers first, then observed actors).
struct TracedTask {
  pid_t tid = 0;
  std::optional<double> sched_on_cpu_s;  // schedstat's sum_exec_runtime over the window
  double traced_on_cpu_s = 0;            // from switch records
  // Off-CPU seconds by label: "preempted", "unknown", or the bucket of the
  // blocked stack ("other_sleep" outside the buckets).
  std::map<std::string, double> off_cpu_s;
  uint64_t switches_out = 0;
};

// What the wait tracer hands over after its measurement.
struct WaitTimes {
  double wall_s = 0;
  std::vector<TracedTask> tasks;
  std::string offcpu_unsupported;  // non-empty: why off-CPU time could not be traced
  std::function<bool(const std::string&)> is_mount_bucket;
};

// The runner's clocks for one worker.
struct RunnerClocks {
  double cpu_s = 0, user_s = 0, sys_s = 0;
};

struct DecompositionInput {
  const WaitTimes* waits = nullptr;
  std::vector<std::string> roles;  // per task ("worker" when unnamed)
  // Per task, when the runner ran every traced task (not for event actors).
  std::optional<std::vector<RunnerClocks>> runner;
  // cpu-clock samples per task by bucket ("user" included), when sampled.
  std::optional<std::vector<std::map<std::string, uint64_t>>> bucket_samples;
  std::string kernel_split_unsupported;  // why there are no samples
};

// |residual| allowed: 5% of wall + 2 ms per task + 20 us per traced switch.
inline constexpr double kDecompositionTolerance = 0.05;
inline constexpr double kDecompositionToleranceAbsS = 0.002;
inline constexpr double kDecompositionTolerancePerSwitchS = 20e-6;
bool WithinTolerance(double residual_s, double wall_s, int tasks, double switches);

nlohmann::json Decompose(const DecompositionInput& in);

// The typed input from a point's entry once every observer has reported:
// roles and runner clocks from "workers", samples from
// "attribution.worker_bucket_samples".
DecompositionInput DecompositionInputFrom(const nlohmann::json& entry, const WaitTimes& waits);

}  // namespace mntscale
