// Hooks the runner calls around a measurement, so counters and kernel-stack
// sampling attach to workers without the runner knowing about them.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <vector>

namespace mntscale {

struct WaitTimes;  // decomposition.h

class RunObserver {
 public:
  virtual ~RunObserver() = default;
  // Workers are started, pinned and inside their containers, but not yet
  // released. tids are kernel thread ids (process mode: the children's pids).
  virtual void OnWorkersReady(const std::vector<pid_t>& tids) = 0;
  virtual void OnMeasureStart() = 0;         // after warm-up
  virtual void OnWindowEnd(int window) = 0;  // outside the hot loop
  virtual void OnMeasureEnd() = 0;           // before workers are stopped
  // Adds this observer's findings to the point's JSON entry.
  virtual void Report(nlohmann::json* entry) = 0;
  // The wait tracer's typed times after Report, for the time decomposition
  // the session computes once every observer has reported; nullptr otherwise.
  virtual const WaitTimes* wait_times() const { return nullptr; }
};

}  // namespace mntscale
