// A record of how quiet the machine was while a point was measured: what
// else ran on the worker CPUs, steal time, load average. A point measured
// beside another run reports about half its throughput as if it were the
// kernel's; the record says so in the result.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "mntscale/observer.h"

namespace mntscale {

// A point is "noisy" when other tasks took more than this share of the
// worker CPUs' time while it was measured ...
inline constexpr double kNoisyOtherShare = 0.10;
// ... or the hypervisor stole more than this share of it.
inline constexpr double kNoisyStealShare = 0.05;

struct Quietness {
  double seconds = 0;         // wall time measured
  int cpus = 0;               // distinct worker CPUs
  double busy_s = 0;          // all non-idle time on those CPUs (/proc/stat)
  double own_s = 0;           // run time of our own tasks (schedstat)
  double actors_s = 0;        // the harness's other actors' run time, anywhere (never own)
  double steal_s = 0;         // steal time on those CPUs
  double load_1m = 0;         // /proc/loadavg at the end
  int cpus_online = 0;
  double OtherShare() const;  // max(0, busy - own) / (cpus * seconds)
  double StealShare() const;  // steal / (cpus * seconds)
  bool Noisy() const;
  nlohmann::json ToJson() const;
};

// Adds "quietness": {figures} to each entry it reports on and, when the
// point was measured on a busy machine, "noisy": {figures, reason}.
void ReportQuietness(const Quietness& q, nlohmann::json* entry);

// Watches the given CPUs between OnMeasureStart and OnMeasureEnd; our own
// tasks are the workers (from OnWorkersReady) and this process's threads,
// except `foreign` (the harness's other actors): what they ran on these CPUs
// counts as another task's.
std::unique_ptr<RunObserver> MakeQuietnessObserver(std::vector<int> cpus,
                                                   std::vector<pid_t> foreign = {});

}  // namespace mntscale
