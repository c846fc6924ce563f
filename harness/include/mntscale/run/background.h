// Readers and writers that run until stopped, beside the actors of an event
// run (events.h): a start storm, a teardown, a burst of unshares, whose
// length the runner's fixed windows cannot know in advance. Every op is timed
// into the histogram of the phase the scenario has set, so "during the storm"
// and "idle" come from the same workers in the same run.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "mntscale/sys/histogram.h"
#include "mntscale/run/runner.h"

namespace mntscale {

class BackgroundReaders {
 public:
  static constexpr int kPhases = 4;

  // Starts one worker per plan, a thread or (process mode) a forked child:
  // pinned to its slot, inside its container, its setup run. Returns once
  // all are looping in phase 0; throws what a worker's setup threw.
  explicit BackgroundReaders(std::vector<WorkerPlan> plans, WorkerMode mode = WorkerMode::kThread);
  ~BackgroundReaders();
  BackgroundReaders(const BackgroundReaders&) = delete;
  BackgroundReaders& operator=(const BackgroundReaders&) = delete;

  // Moves the workers to `phase` and waits (up to a second) until each one
  // still running has begun an op in it, so a short phase (a teardown of a
  // millisecond) still holds a sample from every worker.
  void SetPhase(int phase);
  // Stops the workers and waits for them; idempotent. Throws the first op
  // failure.
  void Stop();

  // Merged over the workers of `role` in `phase`.
  Histogram Latency(const std::string& role, int phase) const;
  double OpsPerSec(const std::string& role, int phase) const;
  double PhaseSeconds(int phase) const { return phase_s_[phase]; }
  // Kernel thread ids of the workers (process mode: the children's pids).
  std::vector<pid_t> tids() const;

 private:
  // In shared memory (process-mode children write it), 256-byte aligned.
  struct alignas(256) ReaderState {
    Histogram hist[kPhases];
    uint64_t ops[kPhases];
    std::atomic<int> state;  // 0 starting, 1 ready, 2 failed, 3 op failed
    std::atomic<int> seen;   // the phase of the op it began last
    int tid;
    char msg[512];
  };
  struct alignas(64) Control {
    std::atomic<int> phase;
    std::atomic<int> stop;
  };
  void Loop(int i);

  std::vector<WorkerPlan> plans_;
  WorkerMode mode_;
  ReaderState* slots_ = nullptr;
  Control* ctl_ = nullptr;
  WorkerPool pool_;
  double phase_s_[kPhases] = {};
  uint64_t phase_t0_ns_ = 0;
  bool stopped_ = false;
};

}  // namespace mntscale
