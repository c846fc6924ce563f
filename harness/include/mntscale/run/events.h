// The event runner: N actors doing discrete events (a container start, a
// namespace teardown, an unshare, an exec), for scenarios whose measure is
// how long each event took rather than how many ops fit in a window. Every
// event is timed in the actor that did it; nothing polls a clock. Actors are
// pinned to planned PUs, run as threads or forked processes, and start
// together behind a barrier. Background readers and writers that run beside
// them are BackgroundReaders (background.h).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mntscale/model/farm.h"
#include "mntscale/sys/histogram.h"
#include "mntscale/observe/observer.h"
#include "mntscale/run/runner.h"
#include "mntscale/sys/sys.h"
#include "mntscale/run/topology.h"

namespace mntscale {

class EventContext {
 public:
  int actor = 0;   // 0..actors-1
  int event = -1;  // the event's number, during prepare and event
  // A count the events add to (mount-table writes made), summed over the
  // actors into EventResult::ops. Shared memory in process mode.
  std::atomic<long>* ops = nullptr;

  // For an event whose work ran in a process it forked (unshare of a user
  // namespace needs a single-threaded caller): that work's own start and end
  // on CLOCK_MONOTONIC, which replace the runner's timestamps around event.
  void SetSpan(uint64_t start_ns, uint64_t end_ns) {
    span_start_ = start_ns;
    span_end_ = end_ns;
  }
  // Hands an fd the event made (a container's namespace) to the caller,
  // which gets it in EventResult::kept; in process mode it travels over a
  // unix socket (SCM_RIGHTS), so it outlives the actor. Takes ownership.
  void Keep(int fd);

 private:
  friend struct EventRunnerAccess;
  uint64_t span_start_ = 0, span_end_ = 0;
  std::function<void(int)> keep_;
};

struct EventSpec {
  // Where each actor runs, one slot per actor (Session::Slots). Actors get
  // their own fs_struct (unshare(CLONE_FS)), so setns and chdir stay theirs.
  std::vector<Slot> actors;
  // Entered before setup, per actor (nullptr or absent: the sandbox's).
  std::vector<const Container*> containers;
  WorkerMode mode = WorkerMode::kThread;
  // Events are numbered 0..events-1. Shared: each actor takes the next
  // number free (a start storm). Otherwise event k belongs to actor
  // k % actors (one teardown per actor, each of its own namespace).
  int events = 0;
  bool shared = true;
  // When > 0: once min_events are done and budget_s has passed since the
  // barrier, no further event starts (as many as fit, at least min_events).
  double budget_s = 0;
  int min_events = 0;

  // In the actor, pinned and inside its container, before the barrier.
  std::function<void(EventContext&)> setup;
  // Before each event, untimed (entering the namespace the event works in).
  std::function<void(EventContext&)> prepare;
  // The event, timed from just before to just after the call in the actor.
  std::function<void(EventContext&)> event;
  // After the actor's last event (and after a failure), untimed.
  std::function<void(EventContext&)> cleanup;
  // In the caller once every actor is ready, before the barrier opens (a
  // quiet stretch for the readers' baseline, a phase change).
  std::function<void()> on_ready;

  std::vector<RunObserver*> observers;  // OnWorkersReady(actor tids), OnMeasureStart/End
  const std::atomic<bool>* interrupt = nullptr;
  bool bind_memory = true;
};

struct EventTime {
  int actor = 0;
  uint64_t start_ns = 0, end_ns = 0;  // CLOCK_MONOTONIC, taken by the actor
  uint64_t ns() const { return end_ns - start_ns; }
};

struct ActorResult {
  Slot slot{};
  pid_t tid = 0;  // kernel thread id; the child's pid in process mode
  pid_t pid = 0;  // getpid() in the actor: the caller's own in thread mode
  int events = 0;
  double sum_s = 0;
};

struct EventResult {
  uint64_t events = 0;
  std::vector<EventTime> times;  // by event number, the events that ran
  // From the first event's start to the last one's end, and the sum of the
  // events' own times. Each actor's events are checked to lie in order
  // inside the span, so per actor sum <= span; with one actor and no
  // prepare the two differ only by the runner's own steps between events.
  double span_s = 0;
  double sum_s = 0;
  Histogram latency;  // every event
  long ops = 0;       // sum of EventContext::ops
  std::vector<ActorResult> actors;
  std::vector<Fd> kept;  // EventContext::Keep, in no particular order
};

// Runs the events. Throws what an actor threw (SysError, Unsupported, ...;
// in process mode rebuilt from the child's report), Interrupted when
// spec.interrupt is set, runtime_error when actors cannot start or the
// events' own timestamps contradict each other.
EventResult RunEvents(const EventSpec& spec);

}  // namespace mntscale
