// A record of how quiet the machine was while a point was measured: what
// else ran on the worker CPUs, steal time, load average. A point measured
// beside another run reports about half its throughput as if it were the
// kernel's; the record says so in the result.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "mntscale/observe/observer.h"

namespace mntscale {

// A point is "noisy" when other tasks took more than this share of the
// worker CPUs' time while it was measured ...
inline constexpr double kNoisyOtherShare = 0.10;
// ... or the hypervisor stole more than this share of it ...
inline constexpr double kNoisyStealShare = 0.05;
// ... or other tasks took more than this share of the whole machine. On a
// 2-vCPU VM a CPU-bound loop pinned to the vCPU the workers did not use
// turned a 3% slowdown into "better by +16%": the vCPUs share a host core or
// the harness's own unpinned threads, so the worker CPUs alone miss it.
inline constexpr double kNoisyMachineShare = 0.20;

// What counts as "own" (not noise): the workers, this process's threads and
// every descendant process (background readers, churn actors, runtimes forked
// in --mode process) -- the scenario's own actors are part of what it
// measures -- except the actors named `foreign` (capacity's churn and health
// readers): their time on a worker CPU is another task's, since it takes the
// CPU from the workers all the same (a health reader spinning on PU 1 once hid
// a neighbour taking half of PU 0). Machine-wide they are the run's, not noise.
// Time the hypervisor steals always counts as noise.

struct Quietness {
  double seconds = 0;         // wall time measured
  int cpus = 0;               // distinct worker CPUs
  double busy_s = 0;          // all non-idle time on those CPUs (/proc/stat)
  double own_s = 0;           // run time of our own tasks (schedstat)
  double actors_s = 0;        // the harness's other actors' run time, anywhere (never own)
  double steal_s = 0;         // steal time on those CPUs
  int machine_cpus = 0;       // online CPUs in /proc/stat
  double machine_busy_s = 0;  // non-idle time of all of them
  double load_1m = 0;         // /proc/loadavg at the end
  int cpus_online = 0;
  double OtherShare() const;  // max(0, busy - own) / (cpus * seconds)
  double StealShare() const;  // steal / (cpus * seconds)
  // max(0, machine_busy - own - actors) / (machine_cpus * seconds)
  double MachineOtherShare() const;
  bool Noisy() const;
  nlohmann::json ToJson() const;
};

// Adds "quietness": {figures} to each entry it reports on and, when the
// point was measured on a busy machine, "noisy": {figures, reason}.
void ReportQuietness(const Quietness& q, nlohmann::json* entry);

// Watches the given CPUs and their SMT siblings (a busy sibling slows the
// worker's core) between OnMeasureStart and OnMeasureEnd, and the machine as
// a whole; our own tasks are the workers (from OnWorkersReady), this
// process's threads and its descendants, except `foreign`.
std::unique_ptr<RunObserver> MakeQuietnessObserver(std::vector<int> cpus,
                                                   std::vector<pid_t> foreign = {});

// The CPUs sharing a core with `cpu` (itself included), from sysfs; {cpu}
// when the kernel does not say.
std::vector<int> SmtSiblings(int cpu);

}  // namespace mntscale
