// observe's interval, once: the census, the mount operations since the last
// one, the CPU shares. The command steps it on its schedule; ObserveLoop
// steps it on a thread of its own to measure what it costs.
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <unordered_set>

#include "mntscale/live/observe.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

double Mono() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

double Wall() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

}  // namespace

void CensusDiff(const Census& a, const Census& b, long* attach, long* detach) {
  for (const auto& [ino, ids] : b.ids) {
    auto it = a.ids.find(ino);
    if (it == a.ids.end()) {
      *attach += static_cast<long>(ids.size());
      continue;
    }
    std::unordered_set<uint64_t> before(it->second.begin(), it->second.end());
    for (uint64_t id : ids) *attach += before.erase(id) ? 0 : 1;
    *detach += static_cast<long>(before.size());
  }
  for (const auto& [ino, ids] : a.ids) {
    if (!b.ids.count(ino)) *detach += static_cast<long>(ids.size());
  }
}

ObserveCycle::ObserveCycle(CensusReader* reader, std::unique_ptr<MountEventCounter> events,
                           std::string diff_why, ObserveSample base)
    : reader_(reader),
      events_(std::move(events)),
      diff_why_(std::move(diff_why)),
      base_(std::move(base)) {
  sample_.census = reader_->Read();
  if (events_) {
    events_->Watch(sample_.census.namespaces);
    events_->Take();  // from here on
  }
  cpu0_ = ReadCpuTimes();
  last_ = Mono();
}

ObserveCycle::~ObserveCycle() = default;

const ObserveSample& ObserveCycle::Step() {
  ObserveSample s = base_;
  s.census = reader_->Read();
  const double now = Mono();
  s.t = Wall();
  s.interval_s = now - last_;
  last_ = now;
  if (events_) {
    MountEventCounter::Counts c = events_->Take();
    s.ops_source = "fanotify";
    s.ops_note = "attach and detach events in namespaces marked at an earlier census (" +
                 std::to_string(c.watched) +
                 "); mounts of namespaces created or destroyed are not attach or detach events";
    s.attach = c.attach;
    s.detach = c.detach;
    s.overflows = c.overflows;
    events_->Watch(s.census.namespaces);
  } else {
    CensusDiff(sample_.census, s.census, &s.attach, &s.detach);
    s.ops_source = "diff";
    s.ops_note = "mounts present at one census and not the next" +
                 (diff_why_.empty() ? std::string() : " (" + diff_why_ + ")") +
                 "; a mount that came and went within one interval is not counted (--ops "
                 "fanotify counts every one on Linux 6.15+)";
  }
  if (s.interval_s > 0) {
    s.attach_per_s = s.attach / s.interval_s;
    s.detach_per_s = s.detach / s.interval_s;
  }
  const CpuTimes cpu1 = ReadCpuTimes();
  const double total = static_cast<double>(cpu1.Total() - cpu0_.Total());
  if (total > 0) {
    s.user_share = (cpu1.user + cpu1.nice - cpu0_.user - cpu0_.nice) / total;
    s.system_share =
        (cpu1.system + cpu1.irq + cpu1.softirq - cpu0_.system - cpu0_.irq - cpu0_.softirq) /
        total;
    s.steal_share = (cpu1.steal - cpu0_.steal) / total;
    s.idle_share = (cpu1.idle + cpu1.iowait - cpu0_.idle - cpu0_.iowait) / total;
  }
  cpu0_ = cpu1;
  sample_ = std::move(s);
  return sample_;
}

// --- the loop, for measuring observe's cost ---------------------------------

struct ObserveLoop::Impl {
  std::unique_ptr<ObserveCycle> cycle;
  double interval_s;
  Fd stop;
  std::thread thread;
  std::atomic<int> censuses{0};
  std::atomic<long> event_count{0};
  std::atomic<uint64_t> cpu_ns{0};
};

ObserveLoop::ObserveLoop(CensusReader* reader, bool events, double interval_s)
    : impl_(std::make_unique<Impl>()) {
  impl_->interval_s = interval_s;
  impl_->cycle = std::make_unique<ObserveCycle>(
      reader, events ? std::make_unique<MountEventCounter>() : nullptr);
  impl_->stop.Reset(Check(eventfd(0, EFD_CLOEXEC), "eventfd", "observe loop"));
  Impl* d = impl_.get();
  impl_->thread = std::thread([d] {
    pollfd p = {d->stop.get(), POLLIN, 0};
    for (;;) {
      int r = poll(&p, 1, static_cast<int>(d->interval_s * 1000));
      if (r > 0 || (r < 0 && errno != EINTR)) break;
      const ObserveSample& s = d->cycle->Step();
      d->event_count += s.attach + s.detach;
      ++d->censuses;
      timespec ts;
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      d->cpu_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
    }
  });
}

ObserveLoop::~ObserveLoop() {
  uint64_t one = 1;
  // An eventfd write of 8 bytes cannot fail short of EBADF; the thread
  // also ends at its next census if it somehow did.
  (void)!write(impl_->stop.get(), &one, sizeof(one));
  if (impl_->thread.joinable()) impl_->thread.join();
}

int ObserveLoop::censuses() const { return impl_->censuses.load(); }
double ObserveLoop::cpu_s() const { return impl_->cpu_ns.load() / 1e9; }
long ObserveLoop::events() const { return impl_->event_count.load(); }

}  // namespace mntscale
