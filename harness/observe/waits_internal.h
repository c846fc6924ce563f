// Pure logic of the wait tracer (lock contention and off-CPU time), exposed
// for unit tests: pairing contention_begin/end per task, tracking a task's
// switches into on- and off-CPU intervals, tracepoint format parsing and
// naming a lock wait's type and caller.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mntscale::waits {

// One completed wait: from contention_begin to the matching contention_end.
struct Wait {
  std::string bucket;  // the lock's bucket, named by the chain at begin
  std::string site;    // "<caller> <type>", as perf lock contention groups
  uint64_t ns = 0;
};

// Pairs one task's contention_begin/end events (the tracepoints fire in the
// waiting task, so a task's events are already in order). An end closes the
// innermost open begin on the same lock address; begins above it whose end
// was lost are dropped. A second begin on a lock already open is the same
// wait (a mutex logs begin once for optimistic spinning and again before it
// sleeps, with one end): it is merged, as perf lock contention does.
class WaitPairer {
 public:
  void Begin(uint64_t t_ns, uint64_t lock, std::string bucket, std::string site);
  void End(uint64_t t_ns, uint64_t lock);
  // Closes the window: waits still open are counted in open_at_end (their
  // clipped time in open_ns) and are not completed waits.
  void Finish(uint64_t window_end_ns);

  const std::vector<Wait>& waits() const { return waits_; }
  uint64_t unmatched_ends() const { return unmatched_ends_; }  // began before the window
  uint64_t dropped_begins() const { return dropped_begins_; }  // end lost
  uint64_t merged_begins() const { return merged_begins_; }
  uint64_t open_at_end() const { return open_at_end_; }
  uint64_t open_ns() const { return open_ns_; }

 private:
  struct Open {
    uint64_t lock, t_ns;
    std::string bucket, site;
  };
  std::vector<Open> open_;
  std::vector<Wait> waits_;
  uint64_t unmatched_ends_ = 0, dropped_begins_ = 0, merged_begins_ = 0;
  uint64_t open_at_end_ = 0, open_ns_ = 0;
};

// Label of off-CPU time whose cause is unknown: the task was already off
// CPU when the window opened, or its sched_switch sample was lost.
inline constexpr const char* kOffUnknown = "unknown";
inline constexpr const char* kPreempted = "preempted";

// One task's time in a window [start, end], from its sched_switch samples
// (cause of the switch) and its switch-out/switch-in records.
class OffCpuTracker {
 public:
  explicit OffCpuTracker(uint64_t window_start_ns) : start_(window_start_ns) {}
  // The sched_switch tracepoint fired for this task: `label` is kPreempted
  // (runnable, prev_state 0) or the blocked bucket.
  void Switch(uint64_t t_ns, std::string label);
  void Out(uint64_t t_ns, bool preempt_flag);
  void In(uint64_t t_ns);
  void Finish(uint64_t window_end_ns);

  uint64_t on_cpu_ns() const { return on_ns_; }
  const std::map<std::string, uint64_t>& off_ns() const { return off_ns_; }
  uint64_t switches() const { return switches_; }
  bool saw_events() const { return seen_; }

 private:
  void Clip(uint64_t* t) const {
    if (*t < start_) *t = start_;
  }
  uint64_t start_;
  bool seen_ = false, off_ = false;
  uint64_t since_ = 0;  // start of the current on or off interval
  std::string pending_;
  uint64_t pending_t_ = 0;
  std::string off_label_;
  uint64_t on_ns_ = 0, switches_ = 0;
  std::map<std::string, uint64_t> off_ns_;
};

struct Field {
  size_t offset = 0, size = 0;
};
// Finds "field:<type> <name>;\toffset:N;\tsize:M;" in a tracefs format file.
std::optional<Field> FindField(std::string_view format, std::string_view name);

// sched_switch's prev_state says the task was switched out runnable
// (preempted), not blocked: the low byte is the task state (0 = runnable);
// newer kernels add TASK_REPORT_MAX (bit 8) to a preemption's state.
bool SwitchedOutRunnable(int64_t prev_state);

// perf lock's names for contention_begin flags: "spinlock", "rwlock:R",
// "rwsem:W", "mutex", "pcpu-sem:R", ...
std::string LockType(uint32_t flags);

// The first frame (leaf first) that is not a lock primitive or the
// scheduler: the function that asked for the lock.
std::string_view LockCaller(std::span<const std::string_view> frames);

}  // namespace mntscale::waits
