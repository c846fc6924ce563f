// Attribution of worker time to the kernel's mount machinery: on-CPU kernel
// stacks (attribution.cc) and lock waits and off-CPU time (waits.cc), both
// classified by harness/data/attribution_buckets.json. Both are RunObservers.
#pragma once

#include <memory>
#include <string>

#include "mntscale/observe/observer.h"

namespace mntscale {

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
