// mount_watcher: what a mount-table watcher costs under churn, the way
// systemd and libmount's monitor run on every host. The mountinfo watcher
// polls /proc/PID/mountinfo (POLLPRI on a change of the namespace's event
// count) and re-reads the whole table each time, taking namespace_sem for
// reading per read and paying for every mount the namespace holds. The
// fanotify watcher (6.15+) gets one event per attach or detach, with the
// mount's id, and statmounts only that mount. The churn mounts and unmounts
// a tmpfs in the watched namespace, which holds one rootfs mount per
// container as a runtime's namespace does.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "mntscale/run/churn.h"
#include "mntscale/live/observe.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

uint64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

uint64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

// The watcher's own record: when it knew the churn's mount was there, and
// what it spent. The per-event figures divide by the churn's writes.
struct Watch {
  std::vector<uint64_t> noticed_ns;  // CLOCK_MONOTONIC, taken by the watcher
  long wakeups = 0, reads = 0, events = 0, overflows = 0;
  uint64_t cpu_ns = 0;
  std::string error;
};

// Re-reads the table on every POLLPRI, as libmount's mountinfo monitor does.
void WatchMountinfo(int ns_fd, int stop, const std::atomic<bool>& ready, Watch* w) {
  Check(setns(ns_fd, CLONE_NEWNS), "setns", "watched namespace");
  Fd mi(openat(Sandbox::Current().proc_fd(), "thread-self/mountinfo", O_RDONLY | O_CLOEXEC));
  Check(mi.get(), "openat", "thread-self/mountinfo");
  std::vector<char> buf(1 << 20);
  pollfd p[2] = {{mi.get(), POLLPRI, 0}, {stop, POLLIN, 0}};
  const_cast<std::atomic<bool>&>(ready).store(true);
  uint64_t cpu0 = ThreadCpuNs();
  for (;;) {
    if (poll(p, 2, -1) < 0 && errno != EINTR) break;
    if (p[1].revents) break;
    if (!(p[0].revents & (POLLPRI | POLLERR))) continue;
    ++w->wakeups;
    // Read to the end from the start; the table is text of every mount.
    lseek(mi.get(), 0, SEEK_SET);
    std::string table;
    ssize_t n;
    while ((n = read(mi.get(), buf.data(), buf.size())) > 0) table.append(buf.data(), n);
    ++w->reads;
    if (table.find(" /w ") != std::string::npos) w->noticed_ns.push_back(MonoNs());
  }
  w->cpu_ns = ThreadCpuNs() - cpu0;
}

// One event per attach/detach; statmount of the attached mount's id for its
// mount point, as libmount's fanotify monitor does.
void WatchFanotify(int ns_fd, int stop, const std::atomic<bool>& ready, Watch* w) {
  Fd fan(FanotifyInit(kFanClassNotif | kFanCloexec | kFanNonblock | kFanReportMnt |
                          kFanUnlimitedQueue,
                      O_RDONLY));
  Check(fan.get(), "fanotify_init", "FAN_REPORT_MNT");
  Check(FanotifyMark(fan.get(), kFanMarkAdd | kFanMarkMntns, kFanMntAttach | kFanMntDetach, ns_fd,
                     nullptr),
        "fanotify_mark", "FAN_MARK_MNTNS");
  uint64_t ns_id = 0;
  Check(ioctl(ns_fd, kNsGetMntnsId, &ns_id), "ioctl", "NS_GET_MNTNS_ID");
  std::vector<char> buf(64 * 1024), sm(4096 + sizeof(StatMountHead));
  pollfd p[2] = {{fan.get(), POLLIN, 0}, {stop, POLLIN, 0}};
  const_cast<std::atomic<bool>&>(ready).store(true);
  uint64_t cpu0 = ThreadCpuNs();
  for (;;) {
    if (poll(p, 2, -1) < 0 && errno != EINTR) break;
    if (p[1].revents) break;
    if (!p[0].revents) continue;
    ++w->wakeups;
    ssize_t n;
    while ((n = read(fan.get(), buf.data(), buf.size())) > 0) {
      ++w->reads;
      w->events += ForEachFanotifyEvent(buf.data(), n, [&](const FanotifyEvent& e) {
        if (e.mask & kFanQOverflow) ++w->overflows;
        if (!(e.mask & kFanMntAttach) || !e.mnt_id) return;
        MntIdReq req{kMntIdReqSize1, 0, e.mnt_id, kStatmountMntPoint, ns_id};
        if (StatMount(&req, sm.data(), sm.size(), 0) == 0) {
          const auto* s = reinterpret_cast<const StatMountHead*>(sm.data());
          if ((s->mask & kStatmountMntPoint) && strcmp(s->str + s->mnt_point, "/w") == 0) {
            w->noticed_ns.push_back(MonoNs());
          }
        } else if (errno == ENOENT) {
          w->noticed_ns.push_back(MonoNs());  // it came and went: noticed, already gone
        }
      });
    }
  }
  w->cpu_ns = ThreadCpuNs() - cpu0;
}

enum class Watcher { kNone, kMountinfo, kFanotify };
constexpr EnumName<Watcher> kWatchers[] = {
    {Watcher::kNone, "none"}, {Watcher::kMountinfo, "mountinfo"}, {Watcher::kFanotify, "fanotify"}};

void MountWatcher(Session& s, const Point& p, Entry& e) {
  const Watcher watcher = p.Enum(kWatchers, "watcher");
  const int n = p.Int("containers"), rate = p.Int("rate");
  if (watcher == Watcher::kFanotify) {
    std::string why = MountEventCounter::Unavailable();
    if (!why.empty()) throw Unsupported(why);
  }
  s.FarmFor(p);  // N containers exist, each its own namespace
  ScratchNs watched = NamespaceWithMounts(n, Propagation::kPrivate);
  watched.Run([] { Check(mkdir("/w", 0755), "mkdir", "/w"); });

  // The churn on the first PU, the watcher on the next (its own when there
  // are two).
  EventSpec spec;
  spec.actors = s.Slots(p, 1, "compact");
  std::vector<Slot> wslot = s.Slots(p, 1, "compact", 1);
  spec.containers = {&watched.container()};
  spec.shared = false;
  // Paced: one mount-table write every 1/(2 rate) s, a mount and its unmount
  // per 1/rate (the delay is then one event's, not a queue's); rate 0: as
  // fast as the churn goes, for its slowdown.
  const double window = s.config().window_s;
  spec.events = rate > 0 ? std::max(20, 2 * static_cast<int>(rate * window)) : 1000000;
  if (rate == 0) {
    spec.budget_s = window;
    spec.min_events = 20;
  }
  uint64_t t0 = 0;
  if (rate > 0) {
    spec.prepare = [&](EventContext& c) {
      if (c.event == 0) t0 = MonoNs();
      uint64_t due = t0 + static_cast<uint64_t>(c.event * 0.5e9 / rate);
      for (uint64_t now = MonoNs(); now < due; now = MonoNs()) {
        timespec ts{0, static_cast<long>(std::min<uint64_t>(due - now, 999999999))};
        nanosleep(&ts, nullptr);
      }
    };
  }
  // Events alternate: even ones mount the tmpfs on /w, odd ones unmount it,
  // so a mount stays for one event's spacing and a watcher can see it.
  spec.event = [&](EventContext& c) {
    if (c.event % 2 == 0) {
      Check(mount("none", "/w", "tmpfs", 0, "size=4k"), "mount", "tmpfs on /w");
    } else {
      Check(umount2("/w", 0), "umount2", "/w");
    }
    c.ops += 1;
  };
  spec.cleanup = [&](EventContext&) { umount2("/w", MNT_DETACH); };
  Watch w;
  std::atomic<bool> ready{false};
  Fd stop(Check(eventfd(0, EFD_CLOEXEC), "eventfd", "watcher stop"));
  std::thread th;
  if (watcher != Watcher::kNone) {
    th = std::thread([&] {
      try {
        PinCurrentThread(wslot[0], false);
        unshare(CLONE_FS);  // setns needs an fs_struct of its own
        if (watcher == Watcher::kMountinfo) {
          WatchMountinfo(watched.fd(), stop.get(), ready, &w);
        } else {
          WatchFanotify(watched.fd(), stop.get(), ready, &w);
        }
      } catch (const std::exception& ex) {
        w.error = ex.what();
        ready.store(true);
      }
    });
    while (!ready.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EventResult r;
  try {
    r = s.Events(spec, &e);
  } catch (...) {
    uint64_t one = 1;
    if (write(stop.get(), &one, 8) == 8 && th.joinable()) th.join();
    throw;
  }
  // Let the watcher catch up with the last event before it stops.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  uint64_t one = 1;
  if (write(stop.get(), &one, 8) != 8) throw SysError("write", "watcher stop eventfd", errno);
  if (th.joinable()) th.join();
  if (!w.error.empty()) throw std::runtime_error("watcher: " + w.error);

  e.FromEvents(r.times.size(), r.span_s, &r.latency);
  // Mount-table writes per second: the churn's speed beside the watcher.
  e.Set("churn_writes_per_sec", r.times.size() / r.span_s);
  e.Set("mounts_in_watched_ns", n + 3);
  if (watcher == Watcher::kNone) return;
  // Each mount's delay: from the start of its mount call to the watcher's
  // first notice after it, if that came before the next mount began; a mount
  // with no notice in that span was missed (coalesced: the table was read
  // only after the unmount, or the watcher fell behind).
  std::vector<EventTime> times = r.times;
  std::sort(times.begin(), times.end(),
            [](const EventTime& a, const EventTime& b) { return a.start_ns < b.start_ns; });
  std::vector<uint64_t> mounts;
  for (size_t k = 0; k < times.size(); k += 2) mounts.push_back(times[k].start_ns);
  Histogram delay;
  long noticed = 0;
  size_t j = 0;
  for (size_t k = 0; k < mounts.size(); ++k) {
    while (j < w.noticed_ns.size() && w.noticed_ns[j] < mounts[k]) ++j;
    if (j == w.noticed_ns.size()) break;
    if (k + 1 < mounts.size() && w.noticed_ns[j] >= mounts[k + 1]) continue;
    delay.Record(w.noticed_ns[j] - mounts[k]);
    ++noticed;
  }
  const double events = static_cast<double>(r.times.size());
  e.Set("watcher_cpu_ns", w.cpu_ns);
  e.Set("watcher_cpu_per_event_ns", w.cpu_ns / events);
  e.Set("watcher_cpu_share", w.cpu_ns / 1e9 / r.span_s);
  e.Set("watcher_wakeups", w.wakeups);
  e.Set("watcher_reads", w.reads);
  if (watcher == Watcher::kFanotify) {
    e.Set("watcher_events", w.events);
    e.Set("watcher_overflows", w.overflows);
  }
  e.Set("mounts_made", mounts.size());
  e.Set("noticed_share", mounts.empty() ? 0.0 : noticed / static_cast<double>(mounts.size()));
  // Flat out, a read that began before one mount can end after the next one
  // began, and its notice would be matched to the later mount: the delay is
  // a paced figure only.
  if (noticed && rate > 0) {
    e.Set("notice_delay_ns", delay.ToJson());
    e.Set("notice_delay_p50_ns", delay.Quantile(0.5));
    e.Set("notice_delay_p99_ns", delay.Quantile(0.99));
  }
}

}  // namespace

MNTSCALE_SCENARIO(
    mount_watcher,
    {
        .name = "mount_watcher",
        .mechanism = "a mount watcher under churn: mountinfo re-read on every change "
                     "(namespace_sem read, cost in every mount held) vs fanotify mount events "
                     "and one statmount per attach (6.15+)",
        .expect = "mountinfo watcher's CPU per event grows with the mounts held and it "
                  "coalesces changes; fanotify's stays flat and it sees every mount",
        .axes = {EnumAxis("watcher", "none,mountinfo,fanotify", kWatchers),
                 axes::Containers("100,1000"),
                 IntAxis("rate", "0,200", 0, 100000,
                         "mounts (each then unmounted) per second; 0 as fast as the churn goes")},
        .run = MountWatcher,
        .claims = {claims::Grows("watcher_cpu_per_event_ns", "containers", 2,
                                 "re-reading mountinfo costs the watcher more per change with "
                                 "more mounts held")
                       .Where({{"watcher", "mountinfo"}, {"rate", "200"}}),
                   claims::Ratio("watcher_cpu_per_event_ns", {{"watcher", "fanotify"}},
                                 {{"watcher", "mountinfo"}}, 0, 0.5,
                                 "at 1,000 containers a fanotify watcher spends less than half "
                                 "the CPU per change of a mountinfo watcher")
                       .Where({{"containers", "1000"}, {"rate", "200"}}),
                   claims::Ratio("churn_writes_per_sec", {{"watcher", "mountinfo"}},
                                 {{"watcher", "none"}}, 0, 0.8,
                                 "a mountinfo watcher slows a churn in its namespace by more "
                                 "than 20% at 1,000 containers (its reads hold namespace_sem)")
                       .Where({{"containers", "1000"}, {"rate", "0"}})},
    });

}  // namespace mntscale
