// The wait tracer's set-up: tracefs (mounted only inside the harness's
// private namespace), the tracepoints' ids and formats, and which parts
// (lock waits, off-CPU time) work on this kernel, decided once up front.
#pragma once

#include <linux/perf_event.h>

#include <cstdint>
#include <optional>
#include <string>

#include "waits_internal.h"

namespace mntscale::waits {

inline constexpr int kMaxStack = 64;

struct Tracepoint {
  uint64_t id = 0;
  std::string format;
};

// Which parts work here.
struct Plan {
  std::string tracefs;
  std::optional<Tracepoint> begin, end, sched;
  Field lock_addr, lock_flags, end_lock_addr, prev_state;
  std::string locks_unsupported, offcpu_unsupported;
};

// Throws Unsupported with the reason when neither part can work (rootless,
// no tracefs, perf_event_paranoid).
Plan Probe();

// A tracepoint sampling event: every hit with its kernel chain, raw data and
// CLOCK_MONOTONIC time; with switch records when context_switches.
perf_event_attr TraceAttr(uint64_t id, bool context_switches);

// Why perf_event_open of a tracepoint failed with err.
std::string OpenHint(int err);

}  // namespace mntscale::waits
