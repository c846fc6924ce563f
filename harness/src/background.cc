#include "mntscale/background.h"

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <chrono>

#include "mntscale/sys.h"

namespace mntscale {

BackgroundReaders::BackgroundReaders(std::vector<WorkerPlan> plans) : plans_(std::move(plans)) {
  for (size_t i = 0; i < plans_.size(); ++i) slots_.push_back(std::make_unique<Slot>());
  phase_t0_ns_ = MonotonicNs();
  for (size_t i = 0; i < plans_.size(); ++i)
    threads_.emplace_back(&BackgroundReaders::Loop, this, i);
  for (auto& s : slots_) {
    while (s->state.load(std::memory_order_acquire) == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (s->state.load() == 2) {
      std::string msg = s->msg;
      Stop();
      throw std::runtime_error(msg);
    }
  }
  // Phase 0 starts when every reader is looping.
  phase_t0_ns_ = MonotonicNs();
}

std::vector<pid_t> BackgroundReaders::tids() const {
  std::vector<pid_t> out;
  for (const auto& s : slots_) out.push_back(s->tid);
  return out;
}

BackgroundReaders::~BackgroundReaders() {
  try {
    Stop();
  } catch (...) {
  }
}

void BackgroundReaders::Loop(int i) {
  const WorkerPlan& plan = plans_[i];
  Slot& slot = *slots_[i];
  OpContext ctx;
  slot.tid = static_cast<pid_t>(syscall(SYS_gettid));
  try {
    ctx = EnterWorker(plan, i, true);
  } catch (const std::exception& e) {
    slot.msg = "reader " + std::to_string(i) + ": " + e.what();
    slot.state.store(2, std::memory_order_release);
    return;
  }
  slot.state.store(1, std::memory_order_release);
  OpFn fn = plan.op->fn;
  while (!stop_.load(std::memory_order_relaxed)) {
    int ph = phase_.load(std::memory_order_relaxed);
    uint64_t t0 = MonotonicNs();
    int rc = fn(ctx);
    slot.hist[ph].Record(MonotonicNs() - t0);
    ++slot.ops[ph];
    if (rc < 0) {
      slot.msg = SysError::Format(plan.op->name, plan.path, -rc, "");
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
  int old = phase_.exchange(phase, std::memory_order_relaxed);
  phase_s_[old] += (now - phase_t0_ns_) * 1e-9;
  phase_t0_ns_ = now;
}

void BackgroundReaders::Stop() {
  if (stopped_) return;
  stopped_ = true;
  SetPhase(phase_.load());
  stop_.store(true);
  for (auto& t : threads_) t.join();
  for (auto& s : slots_) {
    if (s->state.load() == 3) throw std::runtime_error(s->msg);
  }
}

Histogram BackgroundReaders::Latency(const std::string& role, int phase) const {
  Histogram h;
  for (size_t i = 0; i < plans_.size(); ++i) {
    if (plans_[i].role == role) h.Merge(slots_[i]->hist[phase]);
  }
  return h;
}

double BackgroundReaders::OpsPerSec(const std::string& role, int phase) const {
  uint64_t n = 0;
  for (size_t i = 0; i < plans_.size(); ++i) {
    if (plans_[i].role == role) n += slots_[i]->ops[phase];
  }
  return phase_s_[phase] > 0 ? n / phase_s_[phase] : 0;
}

}  // namespace mntscale
