#include "mntscale/run/background.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

void* MapShared(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) Check(-1, "mmap", "background workers' shared memory");
  return p;
}

}  // namespace

BackgroundReaders::BackgroundReaders(std::vector<WorkerPlan> plans, WorkerMode mode)
    : plans_(std::move(plans)), mode_(mode), pool_(mode) {
  const size_t n = plans_.size();
  slots_ = new (MapShared(sizeof(ReaderState) * std::max<size_t>(n, 1))) ReaderState[std::max<size_t>(n, 1)]();
  ctl_ = new (MapShared(sizeof(Control))) Control();
  for (size_t i = 0; i < n; ++i) {
    try {
      pool_.Start([this, i] { Loop(static_cast<int>(i)); },
                  "background worker " + std::to_string(i));
    } catch (const SysError&) {
      Stop();
      throw;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    ReaderState& s = slots_[i];
    while (s.state.load(std::memory_order_acquire) == 0) {
      if (pool_.Exited(i, nullptr)) {
        snprintf(s.msg, sizeof s.msg, "background worker %zu died before it was ready", i);
        s.state.store(2);
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (s.state.load() == 2) {
      std::string msg = s.msg;
      try {
        Stop();
      } catch (...) {
      }
      throw std::runtime_error(msg);
    }
  }
  // Phase 0 starts when every worker is looping.
  phase_t0_ns_ = MonotonicNs();
}

BackgroundReaders::~BackgroundReaders() {
  try {
    Stop();
  } catch (...) {
  }
  munmap(slots_, sizeof(ReaderState) * std::max<size_t>(plans_.size(), 1));
  munmap(ctl_, sizeof(Control));
}

void BackgroundReaders::Loop(int i) {
  const WorkerPlan& plan = plans_[i];
  ReaderState& slot = slots_[i];
  slot.tid = static_cast<int>(syscall(SYS_gettid));
  OpContext ctx;
  slot.tid = static_cast<pid_t>(syscall(SYS_gettid));
  try {
    ctx = EnterWorker(plan, i, true);
  } catch (const std::exception& e) {
    snprintf(slot.msg, sizeof slot.msg, "%s %d: %s", plan.role.c_str(), i, e.what());
    slot.state.store(2, std::memory_order_release);
    return;
  }
  slot.state.store(1, std::memory_order_release);
  OpFn fn = plan.op->fn;
  while (!ctl_->stop.load(std::memory_order_relaxed)) {
    int ph = ctl_->phase.load(std::memory_order_relaxed);
    slot.seen.store(ph, std::memory_order_relaxed);
    uint64_t t0 = MonotonicNs();
    int rc = fn(ctx);
    slot.hist[ph].Record(MonotonicNs() - t0);
    ++slot.ops[ph];
    if (rc < 0) {
      snprintf(slot.msg, sizeof slot.msg, "%s",
               SysError::Format(plan.op->name, plan.path, -rc, "").c_str());
      slot.state.store(3, std::memory_order_release);
      break;
    }
  }
  if (plan.cleanup) {
    try {
      plan.cleanup(ctx);
    } catch (...) {
    }
  }
}

void BackgroundReaders::SetPhase(int phase) {
  uint64_t now = MonotonicNs();
  int old = ctl_->phase.exchange(phase, std::memory_order_relaxed);
  phase_s_[old] += (now - phase_t0_ns_) * 1e-9;
  phase_t0_ns_ = now;
  if (old == phase || stopped_) return;
  const uint64_t deadline = now + 1000000000ull;
  for (size_t i = 0; i < plans_.size(); ++i) {
    ReaderState& s = slots_[i];
    while (s.state.load(std::memory_order_acquire) == 1 &&
           s.seen.load(std::memory_order_relaxed) != phase && MonotonicNs() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

void BackgroundReaders::Stop() {
  if (stopped_) return;
  stopped_ = true;
  SetPhase(ctl_->phase.load());
  ctl_->stop.store(1);
  pool_.JoinAll();
  for (size_t i = 0; i < plans_.size(); ++i) {
    if (slots_[i].state.load() == 3) throw std::runtime_error(slots_[i].msg);
  }
}

Histogram BackgroundReaders::Latency(const std::string& role, int phase) const {
  Histogram h;
  for (size_t i = 0; i < plans_.size(); ++i) {
    if (plans_[i].role == role) h.Merge(slots_[i].hist[phase]);
  }
  return h;
}

double BackgroundReaders::OpsPerSec(const std::string& role, int phase) const {
  uint64_t n = 0;
  for (size_t i = 0; i < plans_.size(); ++i) {
    if (plans_[i].role == role) n += slots_[i].ops[phase];
  }
  return phase_s_[phase] > 0 ? n / phase_s_[phase] : 0;
}

std::vector<pid_t> BackgroundReaders::tids() const {
  std::vector<pid_t> v;
  for (size_t i = 0; i < plans_.size(); ++i) v.push_back(slots_[i].tid);
  return v;
}

}  // namespace mntscale
