#include "mntscale/run/events.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

namespace mntscale {

// Reaches EventContext's private span and keep hook.
struct EventRunnerAccess {
  static void Reset(EventContext& c) { c.span_start_ = c.span_end_ = 0; }
  static bool Span(const EventContext& c, uint64_t* start, uint64_t* end) {
    if (!c.span_end_) return false;
    *start = c.span_start_;
    *end = c.span_end_;
    return true;
  }
  static void SetKeep(EventContext& c, std::function<void(int)> f) { c.keep_ = std::move(f); }
};

void EventContext::Keep(int fd) {
  if (!keep_) {
    close(fd);
    throw std::logic_error("EventContext::Keep outside an event runner");
  }
  keep_(fd);
}

namespace {

enum Go : int { kWait = 0, kGo = 1, kAbort = 2 };
enum State : int { kStarting = 0, kReady = 1, kDone = 2 };  // kDone: finished or failed
enum ErrKind : int { kNone = 0, kSys, kUnsupported, kUsage, kInterrupted, kOther };

struct alignas(256) Control {
  std::atomic<int> go;
  std::atomic<int> next;  // the next event number (shared claiming)
  std::atomic<int> done;  // events finished
  std::atomic<int> stop;  // an actor failed or the run was interrupted
  uint64_t start_ns;      // when the barrier opened
};

// What a failed actor reports: enough to rebuild its exception.
struct ErrorReport {
  int kind;
  int err;
  char call[64], arg[512], hint[256], msg[1024];
};

struct alignas(256) ActorSlot {
  std::atomic<int> state;
  std::atomic<long> ops;
  int tid, pid;
  int events;
  uint64_t sum_ns;
  Histogram hist;
  ErrorReport error;
};

struct TimeSlot {
  uint64_t start_ns, end_ns;
  int actor;  // -1: never ran
};

template <typename T>
T* SharedArray(size_t n) {
  void* p = mmap(nullptr, sizeof(T) * std::max<size_t>(n, 1), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) Check(-1, "mmap", "event runner shared memory");
  return new (p) T[std::max<size_t>(n, 1)]();
}

template <typename T>
void FreeShared(T* p, size_t n) {
  if (p) munmap(p, sizeof(T) * std::max<size_t>(n, 1));
}

void Copy(char* dst, size_t size, const std::string& s) { snprintf(dst, size, "%s", s.c_str()); }

void Report(ErrorReport* r, const std::exception_ptr& ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const SysError& e) {
    r->kind = kSys;
    r->err = e.err();
    Copy(r->call, sizeof r->call, e.call());
    Copy(r->arg, sizeof r->arg, e.arg());
    Copy(r->hint, sizeof r->hint, e.hint());
  } catch (const Unsupported& e) {
    r->kind = kUnsupported;
    Copy(r->msg, sizeof r->msg, e.what());
  } catch (const UsageError& e) {
    r->kind = kUsage;
    Copy(r->msg, sizeof r->msg, e.what());
  } catch (const Interrupted&) {
    r->kind = kInterrupted;
  } catch (const std::exception& e) {
    r->kind = kOther;
    Copy(r->msg, sizeof r->msg, e.what());
  } catch (...) {
    r->kind = kOther;
    Copy(r->msg, sizeof r->msg, "unknown exception");
  }
}

[[noreturn]] void Rethrow(const ErrorReport& r) {
  switch (r.kind) {
    case kSys:
      throw SysError(r.call, r.arg, r.err, r.hint);
    case kUnsupported: {
      // Unsupported prefixes "unsupported: " itself.
      std::string m = r.msg;
      const std::string prefix = "unsupported: ";
      throw Unsupported(m.rfind(prefix, 0) == 0 ? m.substr(prefix.size()) : m);
    }
    case kUsage:
      throw UsageError(r.msg);
    case kInterrupted:
      throw Interrupted();
    default:
      throw std::runtime_error(r.msg);
  }
}

// Sends fd over sock with SCM_RIGHTS, then closes it here.
void SendFd(int sock, int fd) {
  const char byte = 0;
  const ssize_t n = SendWithFd(sock, &byte, 1, fd);
  int err = errno;
  close(fd);
  if (n < 0) throw SysError("sendmsg", "SCM_RIGHTS to the event runner", err);
}

// Receives every fd waiting on sock (non-blocking).
void DrainFds(int sock, std::vector<Fd>* out) {
  for (;;) {
    char byte;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    ssize_t n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n <= 0) return;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int fd;
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
        out->emplace_back(fd);
      }
    }
  }
}

struct Shared {
  Control* ctl = nullptr;
  ActorSlot* actors = nullptr;
  TimeSlot* times = nullptr;
};

class Runner {
 public:
  explicit Runner(const EventSpec& spec)
      : spec_(spec), n_(static_cast<int>(spec.actors.size())), pool_(spec.mode) {}

  EventResult Run();

 private:
  void ActorMain(int a);
  void Events(int a, EventContext& ctx);
  int Claim(int a, int* mine);
  void WaitActors(State want_at_least);
  void StopAll();
  void Release();

  const EventSpec& spec_;
  const int n_;
  Shared sh_;
  WorkerPool pool_;
  std::vector<std::exception_ptr> errors_;  // thread mode: the exception itself
  int sock_[2] = {-1, -1};                  // process mode: kept fds
  std::mutex kept_mu_;
  std::vector<Fd> kept_;
};

int Runner::Claim(int a, int* mine) {
  Control& ctl = *sh_.ctl;
  if (ctl.stop.load(std::memory_order_acquire)) return -1;
  if (spec_.budget_s > 0 && ctl.done.load(std::memory_order_acquire) >= spec_.min_events &&
      MonotonicNs() - ctl.start_ns >= static_cast<uint64_t>(spec_.budget_s * 1e9)) {
    return -1;
  }
  int k;
  if (spec_.shared) {
    k = ctl.next.fetch_add(1, std::memory_order_relaxed);
  } else {
    k = a + n_ * (*mine)++;
  }
  return k < spec_.events ? k : -1;
}

void Runner::Events(int a, EventContext& ctx) {
  ActorSlot& slot = sh_.actors[a];
  int mine = 0;
  for (int k; (k = Claim(a, &mine)) >= 0;) {
    ctx.event = k;
    EventRunnerAccess::Reset(ctx);
    if (spec_.prepare) spec_.prepare(ctx);
    uint64_t t0 = MonotonicNs();
    spec_.event(ctx);
    uint64_t t1 = MonotonicNs();
    EventRunnerAccess::Span(ctx, &t0, &t1);
    if (t1 < t0) throw std::runtime_error("event " + std::to_string(k) + " ends before it starts");
    sh_.times[k] = {t0, t1, a};
    slot.hist.Record(t1 - t0);
    slot.sum_ns += t1 - t0;
    ++slot.events;
    sh_.ctl->done.fetch_add(1, std::memory_order_release);
  }
}

void Runner::ActorMain(int a) {
  ActorSlot& slot = sh_.actors[a];
  EventContext ctx;
  ctx.actor = a;
  ctx.ops = &slot.ops;
  if (spec_.mode == WorkerMode::kProcess) {
    const int sock = sock_[1];
    EventRunnerAccess::SetKeep(ctx, [sock](int fd) { SendFd(sock, fd); });
  } else {
    EventRunnerAccess::SetKeep(ctx, [this](int fd) {
      std::lock_guard<std::mutex> lock(kept_mu_);
      kept_.emplace_back(fd);
    });
  }
  bool set_up = false;
  auto fail = [&] {
    std::exception_ptr ep = std::current_exception();
    if (spec_.mode == WorkerMode::kThread) errors_[a] = ep;
    Report(&slot.error, ep);
    sh_.ctl->stop.store(1, std::memory_order_release);
    if (set_up && spec_.cleanup) {
      try {
        spec_.cleanup(ctx);
      } catch (...) {
      }
    }
    slot.state.store(kDone, std::memory_order_release);
  };
  try {
    slot.tid = static_cast<int>(syscall(SYS_gettid));
    slot.pid = getpid();
    PinCurrentThread(spec_.actors[a], spec_.bind_memory);
    const Container* c =
        a < static_cast<int>(spec_.containers.size()) ? spec_.containers[a] : nullptr;
    if (c) {
      EnterContainer(*c);
    } else {
      Check(unshare(CLONE_FS), "unshare", "CLONE_FS");
    }
    if (spec_.setup) spec_.setup(ctx);
    set_up = true;
  } catch (...) {
    fail();
    return;
  }
  slot.state.store(kReady, std::memory_order_release);
  int go;
  while ((go = sh_.ctl->go.load(std::memory_order_acquire)) == kWait) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  try {
    if (go == kGo) Events(a, ctx);
    if (spec_.cleanup) spec_.cleanup(ctx);
  } catch (...) {
    fail();
    return;
  }
  slot.state.store(kDone, std::memory_order_release);
}

void Runner::WaitActors(State want) {
  for (;;) {
    bool all = true;
    for (int a = 0; a < n_; ++a) {
      if (sh_.actors[a].state.load(std::memory_order_acquire) < want) all = false;
    }
    if (sock_[0] >= 0) DrainFds(sock_[0], &kept_);
    if (all) return;
    if (spec_.interrupt && spec_.interrupt->load()) sh_.ctl->stop.store(1);
    // A child that died without reporting (killed) would leave us waiting.
    for (int a = 0; a < static_cast<int>(pool_.size()); ++a) {
      int st;
      if (pool_.Exited(a, &st)) {
        if (sh_.actors[a].state.load() != kDone) {
          snprintf(sh_.actors[a].error.msg, sizeof sh_.actors[a].error.msg,
                   "event actor %d died: %s", a,
                   WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited early");
          sh_.actors[a].error.kind = kOther;
          sh_.actors[a].state.store(kDone);
          sh_.ctl->stop.store(1);
        }
      }
    }
    if (sock_[0] >= 0) {
      pollfd pfd{sock_[0], POLLIN, 0};
      poll(&pfd, 1, 1);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

void Runner::StopAll() {
  if (sh_.ctl->go.load() == kWait) sh_.ctl->go.store(kAbort, std::memory_order_release);
  pool_.JoinAll();
  if (sock_[0] >= 0) DrainFds(sock_[0], &kept_);
}

void Runner::Release() {
  FreeShared(sh_.ctl, 1);
  FreeShared(sh_.actors, n_);
  FreeShared(sh_.times, spec_.events);
  for (int& fd : sock_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
}

EventResult Runner::Run() {
  if (n_ == 0) throw UsageError("an event run needs at least one actor");
  if (!spec_.event) throw UsageError("an event run needs an event");
  sh_ = {SharedArray<Control>(1), SharedArray<ActorSlot>(n_), SharedArray<TimeSlot>(spec_.events)};
  for (int k = 0; k < spec_.events; ++k) sh_.times[k].actor = -1;
  errors_.resize(n_);
  EventResult res;
  try {
    if (spec_.mode == WorkerMode::kProcess) {
      Check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock_), "socketpair",
            "event runner fd channel");
    }
    for (int a = 0; a < n_; ++a) {
      pool_.Start([this, a] { ActorMain(a); }, "event actor " + std::to_string(a),
                  [this] { close(sock_[0]); });
    }
    if (sock_[1] >= 0) {
      close(sock_[1]);
      sock_[1] = -1;
    }
    WaitActors(kReady);
    for (int a = 0; a < n_; ++a) {
      if (sh_.actors[a].error.kind != kNone) {
        StopAll();
        if (errors_[a]) std::rethrow_exception(errors_[a]);
        Rethrow(sh_.actors[a].error);
      }
    }
    std::vector<pid_t> tids;
    for (int a = 0; a < n_; ++a) tids.push_back(sh_.actors[a].tid);
    for (auto* o : spec_.observers) o->OnWorkersReady(tids);
    if (spec_.on_ready) spec_.on_ready();
    for (auto* o : spec_.observers) o->OnMeasureStart();
    sh_.ctl->start_ns = MonotonicNs();
    sh_.ctl->go.store(kGo, std::memory_order_release);
    WaitActors(kDone);
    for (auto* o : spec_.observers) o->OnMeasureEnd();
    StopAll();
    for (int a = 0; a < n_; ++a) {
      if (sh_.actors[a].error.kind != kNone) {
        if (errors_[a]) std::rethrow_exception(errors_[a]);
        Rethrow(sh_.actors[a].error);
      }
    }
    if (spec_.interrupt && spec_.interrupt->load()) throw Interrupted();

    // The events' own timestamps: per actor in order, none overlapping.
    std::vector<uint64_t> last_end(n_, 0);
    uint64_t first = UINT64_MAX, last = 0, sum = 0;
    for (int k = 0; k < spec_.events; ++k) {
      const TimeSlot& t = sh_.times[k];
      if (t.actor < 0) continue;
      EventTime et{t.actor, t.start_ns, t.end_ns};
      if (et.start_ns < last_end[et.actor]) {
        // An actor takes its events in increasing number, so each starts
        // after its previous one ended.
        throw std::runtime_error("event " + std::to_string(k) + " of actor " +
                                 std::to_string(et.actor) +
                                 " starts before its previous one ended");
      }
      last_end[et.actor] = std::max(last_end[et.actor], et.end_ns);
      first = std::min(first, et.start_ns);
      last = std::max(last, et.end_ns);
      sum += et.ns();
      res.times.push_back(et);
    }
    res.events = res.times.size();
    for (int a = 0; a < n_; ++a) {
      const ActorSlot& s = sh_.actors[a];
      res.latency.Merge(s.hist);
      res.ops += s.ops.load();
      res.actors.push_back({spec_.actors[a], s.tid, s.pid, s.events, s.sum_ns * 1e-9});
      // Within one actor events never overlap: their sum fits in the span.
      if (res.events && s.sum_ns > last - first) {
        throw std::runtime_error("event times disagree: actor " + std::to_string(a) +
                                 "'s events sum to " + std::to_string(s.sum_ns) +
                                 " ns, more than the span of " + std::to_string(last - first) +
                                 " ns");
      }
    }
    if (res.events) {
      res.span_s = (last - first) * 1e-9;
      res.sum_s = sum * 1e-9;
    }
    res.kept = std::move(kept_);
  } catch (...) {
    if (sh_.ctl) sh_.ctl->stop.store(1);
    StopAll();
    Release();
    throw;
  }
  Release();
  return res;
}

}  // namespace

EventResult RunEvents(const EventSpec& spec) { return Runner(spec).Run(); }

}  // namespace mntscale
