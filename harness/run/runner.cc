#include "mntscale/run/runner.h"

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "mntscale/model/sandbox.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

using Clock = std::chrono::steady_clock;

enum Phase : int { kWait = 0, kWarmup = 1, kMeasure = 2, kStop = 3 };
enum State : int { kStarting = 0, kReady = 1, kFailed = 2 };

// One worker's slot. 256-byte aligned: the hot counter never shares a line
// (or an adjacent-line prefetch pair) with another worker's.
struct alignas(256) WorkerSlot {
  std::atomic<uint64_t> ops;
  std::atomic<int> state;
  int tid;
  int err;                         // errno of a failed op
  int mounts_in_ns;                // its namespace's mountinfo lines, once in place
  double cpu[4], user[4], sys[4];  // at each phase transition
  char msg[512];
};

struct alignas(256) Control {
  std::atomic<int> phase;
};

// Shared anonymous memory: visible to forked process-mode workers too.
template <typename T>
T* SharedArray(size_t n) {
  void* p = mmap(nullptr, sizeof(T) * n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) Check(-1, "mmap", "runner shared memory");
  return new (p) T[n]();
}

template <typename T>
void FreeShared(T* p, size_t n) {
  munmap(p, sizeof(T) * n);
}

double ThreadCpu(double* user, double* sys) {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  *user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6;
  *sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

struct Shared {
  Control* ctl;
  WorkerSlot* slots;
  Histogram* hists;
};

// The hot loop. Checks the phase once per op (a read-mostly line), counts in
// its own slot, and records phase transitions outside the op.
template <bool kTimed>
void HotLoop(const WorkerPlan& plan, OpContext& ctx, WorkerSlot& slot, Histogram* hist,
             std::atomic<int>& phase) {
  OpFn fn = plan.op->fn;
  uint64_t n = 0;
  int local = kWait;
  // Records the CPU clocks for every phase from local+1 to ph: a slow start
  // or a long op can miss a phase (an interrupt can move warm-up -> stop
  // before the worker first looks), and each phase still gets a value.
  auto advance = [&](int ph) {
    double user, sys;
    double cpu = ThreadCpu(&user, &sys);
    for (int p = local + 1; p <= ph; ++p) {
      slot.cpu[p] = cpu;
      slot.user[p] = user;
      slot.sys[p] = sys;
    }
    local = ph;
  };
  int ph;
  while ((ph = phase.load(std::memory_order_acquire)) == kWait) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  advance(ph);
  if (local == kStop) return;
  for (;;) {
    ph = phase.load(std::memory_order_relaxed);
    if (__builtin_expect(ph != local, 0)) {
      advance(ph);
      if (ph == kStop) break;
    }
    int rc;
    if constexpr (kTimed) {
      uint64_t t0 = MonotonicNs();
      rc = fn(ctx);
      if (local == kMeasure) hist->Record(MonotonicNs() - t0);
    } else {
      rc = fn(ctx);
    }
    if (__builtin_expect(rc < 0, 0)) {
      slot.err = -rc;
      snprintf(slot.msg, sizeof slot.msg, "%s",
               SysError::Format(plan.op->name, plan.path, -rc, "").c_str());
      // Keep the phase bookkeeping consistent for the main thread.
      while ((ph = phase.load(std::memory_order_acquire)) != kStop) {
        if (ph != local) advance(ph);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      advance(kStop);
      return;
    }
    slot.ops.store(++n, std::memory_order_relaxed);
  }
}

void WorkerMain(const RunSpec& spec, int i, Shared sh) {
  const WorkerPlan& plan = spec.workers[i];
  WorkerSlot& slot = sh.slots[i];
  OpContext ctx;
  try {
    slot.tid = static_cast<int>(syscall(SYS_gettid));
    ctx = EnterWorker(plan, i, spec.bind_memory);
    // Read by the kernel, in the namespace the worker measures in, so tests
    // check the scenario's layout against the kernel, not its arithmetic.
    slot.mounts_in_ns = CountOwnMounts();
  } catch (const std::exception& e) {
    snprintf(slot.msg, sizeof slot.msg, "worker %d: %s", i, e.what());
    slot.state.store(kFailed, std::memory_order_release);
    return;
  }
  slot.state.store(kReady, std::memory_order_release);
  bool timed = spec.latency && plan.measured;
  if (timed) {
    HotLoop<true>(plan, ctx, slot, &sh.hists[i], sh.ctl->phase);
  } else {
    HotLoop<false>(plan, ctx, slot, nullptr, sh.ctl->phase);
  }
  if (plan.cleanup) {
    try {
      plan.cleanup(ctx);
    } catch (...) {
    }
  }
}

void SleepUntil(Clock::time_point t, const std::atomic<bool>* interrupt) {
  while (Clock::now() < t) {
    if (interrupt && interrupt->load()) return;
    auto left = t - Clock::now();
    std::this_thread::sleep_for(std::min<Clock::duration>(left, std::chrono::milliseconds(20)));
  }
}

}  // namespace

const char* ModeName(WorkerMode m) { return m == WorkerMode::kThread ? "thread" : "process"; }

WorkerMode ParseMode(const std::string& s) {
  if (s == "thread") return WorkerMode::kThread;
  if (s == "process") return WorkerMode::kProcess;
  throw UsageError("unknown worker mode '" + s + "' (known: thread, process)");
}

void EnterContainer(const Container& c) {
  Check(unshare(CLONE_FS), "unshare", "CLONE_FS");
  Check(setns(c.ns_fd, CLONE_NEWNS), "setns", "container " + std::to_string(c.index));
  if (!c.root.empty()) {
    Check(chroot(c.root.c_str()), "chroot", c.root);
    Check(chdir("/"), "chdir", "/");
  }
}

OpContext EnterWorker(const WorkerPlan& plan, int worker, bool bind_memory) {
  PinCurrentThread(plan.slot, bind_memory);
  if (plan.container) EnterContainer(*plan.container);
  OpContext ctx;
  ctx.path = plan.path.c_str();
  ctx.path2 = plan.path2.empty() ? nullptr : plan.path2.c_str();
  ctx.dirfd = AT_FDCWD;
  ctx.worker = worker;
  if (plan.setup) plan.setup(ctx);
  return ctx;
}

RunResult Run(const RunSpec& spec) {
  const int w = static_cast<int>(spec.workers.size());
  if (w == 0) throw UsageError("a run needs at least one worker");
  Shared sh{SharedArray<Control>(1), SharedArray<WorkerSlot>(w),
            spec.latency ? SharedArray<Histogram>(w) : nullptr};
  WorkerPool pool(spec.mode);
  auto stop_all = [&] {
    sh.ctl->phase.store(kStop, std::memory_order_release);
    pool.JoinAll();
  };
  auto release = [&] {
    FreeShared(sh.ctl, 1);
    FreeShared(sh.slots, w);
    if (sh.hists) FreeShared(sh.hists, w);
  };

  RunResult res;
  try {
    for (int i = 0; i < w; ++i) {
      pool.Start([&spec, i, sh] { WorkerMain(spec, i, sh); }, "worker " + std::to_string(i));
    }
    // Wait for every worker to be pinned and inside its container.
    auto deadline = Clock::now() + std::chrono::seconds(60);
    for (int i = 0; i < w; ++i) {
      while (sh.slots[i].state.load(std::memory_order_acquire) == kStarting) {
        if (Clock::now() > deadline) throw std::runtime_error("workers did not start in 60 s");
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      if (sh.slots[i].state.load() == kFailed) throw std::runtime_error(sh.slots[i].msg);
    }
    std::vector<pid_t> tids;
    for (int i = 0; i < w; ++i) tids.push_back(sh.slots[i].tid);
    for (const auto& a : spec.observed_actors) tids.push_back(a.first);
    for (auto* o : spec.observers) o->OnWorkersReady(tids);

    sh.ctl->phase.store(kWarmup, std::memory_order_release);
    SleepUntil(Clock::now() + Seconds(spec.warmup_s), spec.interrupt);

    auto snapshot = [&](std::vector<uint64_t>* v) {
      for (int i = 0; i < w; ++i) (*v)[i] = sh.slots[i].ops.load(std::memory_order_relaxed);
    };
    std::vector<uint64_t> start(w), prev(w), cur(w);
    sh.ctl->phase.store(kMeasure, std::memory_order_release);
    auto t0 = Clock::now();
    snapshot(&start);
    prev = start;
    for (auto* o : spec.observers) o->OnMeasureStart();
    auto tprev = t0;
    for (int win = 0; win < spec.windows; ++win) {
      SleepUntil(t0 + Seconds(spec.window_s * (win + 1)), spec.interrupt);
      if (spec.interrupt && spec.interrupt->load()) throw Interrupted();
      snapshot(&cur);
      auto tnow = Clock::now();
      uint64_t d = 0;
      for (int i = 0; i < w; ++i) {
        if (spec.workers[i].measured) d += cur[i] - prev[i];
      }
      res.windows.push_back(d / std::chrono::duration<double>(tnow - tprev).count());
      prev = cur;
      tprev = tnow;
      for (auto* o : spec.observers) o->OnWindowEnd(win);
    }
    for (auto* o : spec.observers) o->OnMeasureEnd();
    res.measured_s = std::chrono::duration<double>(tprev - t0).count();
    stop_all();

    std::map<std::string, uint64_t> role_ops;
    for (int i = 0; i < w; ++i) {
      const WorkerPlan& p = spec.workers[i];
      WorkerSlot& s = sh.slots[i];
      WorkerResult wr;
      wr.worker = i;
      wr.slot = p.slot;
      wr.container = p.container ? p.container->index : -1;
      wr.mounts_in_ns = s.mounts_in_ns;
      wr.role = p.role;
      wr.measured = p.measured;
      wr.ops = prev[i] - start[i];
      wr.cpu_s = s.cpu[kStop] - s.cpu[kMeasure];
      wr.user_s = s.user[kStop] - s.user[kMeasure];
      wr.sys_s = s.sys[kStop] - s.sys[kMeasure];
      role_ops[p.role] += wr.ops;
      if (p.measured) {
        res.ops += wr.ops;
        res.cpu_s += wr.cpu_s;
        res.user_s += wr.user_s;
        res.sys_s += wr.sys_s;
        if (sh.hists) res.latency.Merge(sh.hists[i]);
      }
      if (s.err && res.error.empty()) res.error = s.msg;
      res.workers.push_back(wr);
    }
    for (auto& [role, n] : role_ops) res.role_ops_per_s[role] = n / res.measured_s;
  } catch (...) {
    stop_all();
    release();
    throw;
  }
  release();
  return res;
}

double BareLoop(const WorkerPlan& plan, double seconds) {
  double rate = 0;
  std::exception_ptr err;
  std::thread t([&] {
    try {
      OpContext ctx = EnterWorker(plan, 0, true);
      OpFn fn = plan.op->fn;
      // Check the clock every 1024 ops only: the loop is the op and nothing else.
      uint64_t n = 0;
      auto t0 = Clock::now(), end = t0 + Seconds(seconds);
      Clock::time_point now;
      do {
        for (int k = 0; k < 1024; ++k) {
          if (fn(ctx) < 0) Check(-1, plan.op->name, plan.path);
        }
        n += 1024;
      } while ((now = Clock::now()) < end);
      rate = n / std::chrono::duration<double>(now - t0).count();
      if (plan.cleanup) plan.cleanup(ctx);
    } catch (...) {
      err = std::current_exception();
    }
  });
  t.join();
  if (err) std::rethrow_exception(err);
  return rate;
}

}  // namespace mntscale
