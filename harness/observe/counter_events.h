// Event names to perf_event_attr: through libpfm4 when the build has it,
// else perf's software events only; the PMUs and cross-socket events libpfm4
// knows here; opening one counter. Used by the counter observer and by
// `--events list` and --events validation.
#pragma once

#include <linux/perf_event.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "mntscale/sys/sys.h"

namespace mntscale::counters {

// Which privilege levels an encoding counts.
enum class Plm { kBoth, kUser, kKernel };

// An encoded event, or why it cannot be encoded.
struct Encoding {
  perf_event_attr attr;
  std::string error;
  bool unknown = false;  // no encoder knows the name (a typo), not "cannot count here"
};

Encoding Encode(const std::string& name, Plm plm);

// The software events every default run counts.
inline constexpr const char* kSoftwareEvents[] = {"context-switches", "cpu-migrations",
                                                  "page-faults", "task-clock"};

// Cross-socket cache-line events of this machine's core PMU; empty when
// libpfm4 knows none (or the build has no libpfm4).
std::vector<std::string> CrossSocketEvents();
// The `--events list` lines about the PMUs libpfm4 sees.
std::string PmuSummary();

// Why a user/kernel split would be fake for this event, or "" if it is real.
std::string SplitCaveat(const perf_event_attr& a);

// Opens one counter on `tid`; returns the fd or throws SysError with a hint.
Fd OpenCounter(const std::string& name, perf_event_attr attr, pid_t tid);

}  // namespace mntscale::counters
