// Hardware and software counters (libpfm4 -> perf_event_open), per worker,
// split into user and kernel, plus kernel call-chain sampling attributed to
// the mount machinery. Both attach to workers through RunObserver.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mntscale/observer.h"

namespace mntscale {

struct CounterConfig {
  // Event names as libpfm4 (or perf) spells them: "cycles", "instructions",
  // "PERF_COUNT_SW_CONTEXT_SWITCHES", "task-clock", ... Empty: the default set
  // for this CPU's vendor and model.
  std::vector<std::string> events;
  bool split_user_kernel = true;  // count each event as :u and :k
};

// One line per event this machine offers (`mntscale --events list`), each
// with "supported" or "unsupported: reason".
std::string ListEvents();

// The default event names for this machine's PMU (vendor/model aware).
std::vector<std::string> DefaultEvents();

// Resolves each name now, before anything is built (libpfm4, or the software
// events without it): a name no encoder knows is a UsageError naming it. A
// known event this machine cannot count passes here and is reported
// "unsupported" in the result.
void ValidateEvents(const std::vector<std::string>& names);

// Counts events on each worker. An event that cannot be opened is reported as
// {"unsupported": reason} and the run goes on; never as 0.
std::unique_ptr<RunObserver> MakeCounterObserver(const CounterConfig& config);

struct SamplerConfig {
  int frequency_hz = 997;    // cpu-clock sampling rate per worker
  std::string buckets_file;  // empty: the built-in data file path
};

// Samples kernel call chains on each worker (cpu-clock, PERF_SAMPLE_CALLCHAIN),
// resolves them through /proc/kallsyms and classifies each sample by the
// deepest frame that matches a bucket. Throws Unsupported when sampling cannot
// work here (e.g. perf_event_paranoid, kptr_restrict).
std::unique_ptr<RunObserver> MakeKernelSampler(const SamplerConfig& config);

struct WaitConfig {
  std::string buckets_file;  // empty: the built-in data file path
};

// Traces each task's lock waits (lock:contention_begin/end) and off-CPU time
// (sched:sched_switch and switch records) with kernel call chains, naming
// both by the bucket file. Attach it like any RunObserver: OnWorkersReady
// with the kernel tids (or pids) to trace, OnMeasureStart/OnMeasureEnd around
// the measured interval, OnWindowEnd now and then (at least every ~0.5 s
// under heavy churn) to drain the rings, then Report, which writes "waits"
// and "time_decomposition" into the entry. Report it after the sampler: the
// decomposition splits kernel time by the sampler's per-worker buckets.
// tracefs is mounted only inside the sandbox's mount namespace. Throws
// Unsupported when nothing can be traced here (no tracefs, rootless,
// perf_event_paranoid); a part that alone cannot work (a tracepoint absent)
// reports {"unsupported": why} in its place.
std::unique_ptr<RunObserver> MakeWaitTracer(const WaitConfig& config);

}  // namespace mntscale
