// Readers that run until stopped, for scenarios driven by events (a start
// storm, a teardown, a burst of unshares) whose length the runner's fixed
// windows cannot know in advance. Every op is timed into the histogram of the
// phase the scenario has set, so "during the storm" and "idle" come from the
// same threads in the same run.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mntscale/histogram.h"
#include "mntscale/runner.h"

namespace mntscale {

class BackgroundReaders {
 public:
  static constexpr int kPhases = 4;

  // Starts one thread per plan: pinned to its slot, inside its container,
  // its setup run. Returns once all are looping in phase 0; throws what a
  // reader's setup threw. Threads only: these readers run beside the
  // scenario's own event threads in this process.
  explicit BackgroundReaders(std::vector<WorkerPlan> plans);
  ~BackgroundReaders();
  BackgroundReaders(const BackgroundReaders&) = delete;
  BackgroundReaders& operator=(const BackgroundReaders&) = delete;

  void SetPhase(int phase);
  // Kernel thread ids of the readers, in plan order: what a RunObserver
  // (counters, sampler, wait tracer) attaches to through OnWorkersReady.
  std::vector<pid_t> tids() const;
  // Joins the readers; idempotent. Throws the first op failure.
  void Stop();

  // Merged over the readers of `role` in `phase`.
  Histogram Latency(const std::string& role, int phase) const;
  double OpsPerSec(const std::string& role, int phase) const;
  double PhaseSeconds(int phase) const { return phase_s_[phase]; }

 private:
  struct alignas(256) Slot {
    Histogram hist[kPhases];
    uint64_t ops[kPhases] = {};
    std::atomic<int> state{0};  // 0 starting, 1 ready, 2 failed, 3 op failed
    pid_t tid = 0;
    std::string msg;
  };
  void Loop(int i);

  std::vector<WorkerPlan> plans_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::thread> threads_;
  alignas(64) std::atomic<int> phase_{0};
  std::atomic<bool> stop_{false};
  double phase_s_[kPhases] = {};
  uint64_t phase_t0_ns_ = 0;
  bool stopped_ = false;
};

}  // namespace mntscale
