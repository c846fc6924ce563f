// Hardware and software counters (libpfm4 -> perf_event_open), per worker,
// split into user and kernel, plus kernel call-chain sampling attributed to
// the mount machinery. Both attach to workers through RunObserver.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mntscale/observe/observer.h"

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

}  // namespace mntscale
