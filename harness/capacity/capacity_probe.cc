// One density of `mntscale capacity` on the real kernel (capacity.h,
// CapacityProbe). Its churn starts containers with container_start.h, the
// model the start storm uses.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <exception>
#include <mutex>
#include <set>
#include <thread>

#include "mntscale/sys/stats.h"
#include "mntscale/run/background.h"
#include "mntscale/capacity/capacity.h"
#include "mntscale/model/container_start.h"
#include "mntscale/model/idmap.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/model/scratch.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

std::string Rootfs(long k) { return "/s/" + std::to_string(k) + "/rootfs"; }

// The storm's container start k (container_start.h) on the calling thread,
// which has its own fs_struct. Returns the container's namespace.
int StartContainer(int host_fd, IdmapStrategy idmap, const std::vector<std::string>& layers,
                   int userns, long k, std::atomic<long>* ops) {
  Check(setns(host_fd, CLONE_NEWNS), "setns", "runtime namespace");
  MountContainerRootfs("/s/" + std::to_string(k), idmap, layers, userns, ops);
  return EnterModelContainer(Rootfs(k), ops);
}

// Each actor's time by bucket, per second of its wall time: on CPU in the
// kernel (sampled) and blocked off CPU (traced) with --waits, one group per
// actor and side ("churn, off CPU"); "buckets" of the path walkers alone
// keep their merged form. With --attribute alone, the share of the walkers'
// kernel samples.
nlohmann::json ContractAttribution(const nlohmann::json& entry, bool waits) {
  if (waits) {
    const nlohmann::json& d = entry.value("time_decomposition", nlohmann::json());
    if (!d.is_object()) return {{"unsupported", "no time decomposition in the measurement"}};
    if (d.contains("unsupported")) return {{"unsupported", d["unsupported"]}};
    const nlohmann::json roles = d.value("roles", nlohmann::json::object());
    nlohmann::json groups = nlohmann::json::object();
    nlohmann::json actors = nlohmann::json::object();
    for (const auto& [role, r] : roles.items()) {
      const double wall = r.value("wall_s", 0.0);
      if (wall <= 0) continue;
      nlohmann::json one = nlohmann::json::object();
      for (const auto& [part, side] :
           {std::pair<const char*, const char*>{"kernel_s", "on CPU"}, {"blocked_s", "off CPU"}}) {
        nlohmann::json g = nlohmann::json::object();
        if (r.contains(part) && r[part].is_object()) {
          for (auto& [b, v] : r[part].items()) {
            if (v.is_number()) g[b] = v.get<double>() / wall;
          }
        }
        groups[role + ", " + side] = g;
        one[side] = g;
      }
      one["preempted"] = r.value("preempted_s", 0.0) / wall;
      one["user"] = r.value("user_s", 0.0) / wall;
      actors[role] = one;
    }
    if (groups.empty()) return {{"unsupported", "the decomposition holds no actor wall time"}};
    return {{"buckets", groups},
            {"actors", actors},
            {"unit", "s per second of the actor's wall"},
            {"source", "--waits"}};
  }
  const nlohmann::json& a = entry.value("attribution", nlohmann::json());
  if (!a.is_object()) return {{"unsupported", "no attribution in the measurement"}};
  if (a.contains("unsupported")) return {{"unsupported", a["unsupported"]}};
  return {{"buckets", a.value("buckets", nlohmann::json::object())},
          {"unit", "share of kernel samples"},
          {"source", "--attribute"}};
}

// The path walkers' time on a CPU over the measured interval, from the
// scheduler's sum_exec_runtime (/proc/TID/schedstat's first field): walks
// per on-CPU second separate the kernel's cost from the CPU share the
// walkers got beside the other actors.
class OnCpuObserver : public RunObserver {
 public:
  explicit OnCpuObserver(size_t workers) : workers_(workers) {}
  void OnWorkersReady(const std::vector<pid_t>& tids) override {
    // The workers come first; observed actors after them are not walkers.
    tids_.assign(tids.begin(), tids.begin() + std::min(workers_, tids.size()));
  }
  void OnMeasureStart() override { t0_ = Sum(); }
  void OnWindowEnd(int) override {}
  void OnMeasureEnd() override { on_cpu_s = Sum() - t0_; }
  void Report(nlohmann::json*) override {}
  double on_cpu_s = -1;

 private:
  double Sum() const {
    double total = 0;
    for (pid_t t : tids_) {
      std::string text;
      if (!TryReadFile("/proc/" + std::to_string(t) + "/schedstat", &text)) return std::nan("");
      total += std::strtoull(text.c_str(), nullptr, 10) / 1e9;
    }
    return total;
  }
  size_t workers_;
  std::vector<pid_t> tids_;
  double t0_ = 0;
};

// The control loop (issue 22): a fixed stat() of four tmpfs components that
// cross no mountpoint, so the mount table's size does not reach it, timed on
// the walker's PU for kControlS right before and right after the window.
// What it measures is the host: a VM whose vCPU runs 620k stat/s one second
// and 840k the next slows the walker the same way, and the capacity fit
// reads the walker's rate relative to it (capacity.h, RatioBase).
constexpr double kControlS = 0.2;
double ControlRate(int dirfd, const Slot& slot) {
  double rate = std::nan("");
  std::thread t([&] {
    PinCurrentThread(slot, false);
    struct stat st;
    long calls = 0;
    const uint64_t a = MonotonicNs(), until = a + static_cast<uint64_t>(kControlS * 1e9);
    uint64_t now = a;
    while (now < until) {
      for (int i = 0; i < 64; ++i) {
        if (fstatat(dirfd, "a/b/c/d", &st, 0) != 0) return;
      }
      calls += 64;
      now = MonotonicNs();
    }
    rate = calls / ((now - a) * 1e-9);
  });
  t.join();
  return rate;
}

}  // namespace


struct CapacityProbe::Impl {
  Session& s;
  ProbeConfig cfg;
  ScratchNs host;  // the runtime's namespace
  std::vector<std::string> layers;
  int userns = -1;
  int rootfs_mounts = 0;  // runtime-namespace rootfs mounts mirroring the farm
  long next_start = 0;    // churn container serial, unique for the run
  std::vector<ActorSlot> plan;
  Fd control_dir;  // the control loop's directory (ControlRate)

  Impl(Session& session, ProbeConfig c) : s(session), cfg(std::move(c)) {
    plan = PlanCapacityActors(s.topology(), cfg.path_walk_workers, cfg.health_workers);
    const int nl = std::max(1, s.config().profile.layers);
    host.Run([&] {
      layers = MakeOverlayLayers("/layers", nl, 4).dirs;
      const std::string& bottom = layers.front();
      for (const char* d : {"/etc", "/proc", "/dev"}) MkdirP(bottom + d);
      MkdirP("/binds");
      MkdirP("/s");
      MkdirP("/r");
      MkdirP("/control/a/b/c/d");
      control_dir = Fd(static_cast<int>(Check(open("/control", O_PATH | O_DIRECTORY | O_CLOEXEC), "open", "/control")));
      for (const char* f : kRuntimeFiles) {
        WriteFile(bottom + "/etc/" + f, "");
        WriteFile(std::string("/binds/") + f, std::string(f) + "\n");
      }
      if (cfg.idmap != IdmapStrategy::kNone) {
        userns = ContainerUserNamespace();
        std::atomic<long> probe{0};
        CloneIdmapped("/layers", userns, &probe);  // Unsupported before tmpfs idmap (6.3)
      }
    });
  }

  // The runtime's namespace holds one overlay rootfs per farm container.
  void MirrorRootfs(int n) {
    if (n == rootfs_mounts) return;
    host.Run([&] {
      const std::string lower = LowerDirs(layers);
      for (int i = rootfs_mounts; i < n; ++i) {
        const std::string d = "/r/" + std::to_string(i);
        for (const char* sub : {"", "/u", "/w", "/m"}) MkdirP(d + sub);
        const std::string opts = "lowerdir=" + lower + ",upperdir=" + d + "/u,workdir=" + d + "/w";
        Check(mount("overlay", (d + "/m").c_str(), "overlay", 0, opts.c_str()), "mount",
              "overlay, " + d + "/m");
      }
      for (int i = n; i < rootfs_mounts; ++i) {
        const std::string m = "/r/" + std::to_string(i) + "/m";
        Check(umount2(m.c_str(), MNT_DETACH), "umount2", m);
      }
    });
    rootfs_mounts = n;
  }
};

CapacityProbe::CapacityProbe(Session& s, ProbeConfig cfg)
    : impl_(std::make_unique<Impl>(s, std::move(cfg))) {}
CapacityProbe::~CapacityProbe() = default;
int CapacityProbe::layers() const { return static_cast<int>(impl_->layers.size()); }
const std::vector<ActorSlot>& CapacityProbe::placement() const { return impl_->plan; }

Invocation CapacityProbe::Measure(int n, int /*index*/) {
  Impl& m = *impl_;
  Session& s = m.s;
  if (s.interrupted().load()) throw Interrupted();
  Farm& farm = s.FarmFor(s.config().profile, n);
  m.MirrorRootfs(n);
  const Point p;

  // Health checks: a stat in existing containers.
  // Every actor on the PU the plan gave it (PlanCapacityActors).
  auto slot_of = [&](const std::string& actor, int index) {
    for (const ActorSlot& a : m.plan) {
      if (a.actor == actor && a.index == index) return a.slot;
    }
    throw std::logic_error("capacity: no slot for " + actor);
  };
  std::vector<WorkerPlan> health = s.Workers(p, &farm, FindOp("stat"), farm.image().deep_path,
                                             m.cfg.health_workers, "compact,share");
  for (size_t i = 0; i < health.size(); ++i) {
    health[i].slot = slot_of("health", static_cast<int>(i));
    health[i].role = "health";
    health[i].container = &farm.containers()[(farm.size() - 1 - i % farm.size())];
  }
  BackgroundReaders bg(std::move(health), s.config().mode);

  // The churn: starts at churn_rate per second, each container stopped once
  // about a second's worth of newer ones run.
  std::atomic<bool> stop{false};
  std::vector<double> starts_s;
  Histogram starts_hist;
  std::atomic<pid_t> churn_tid{0};
  const Slot churn_slot = slot_of("churn", 0);
  std::exception_ptr churn_error;
  const size_t keep = std::max<size_t>(1, std::lround(m.cfg.churn_rate));
  std::thread churn([&] {
    std::deque<std::pair<long, Fd>> live;
    std::atomic<long> ops{0};
    auto stop_one = [&] {
      auto [k, fd] = std::move(live.front());
      live.pop_front();
      fd.Reset();
      Check(setns(m.host.fd(), CLONE_NEWNS), "setns", "runtime namespace");
      umount2(Rootfs(k).c_str(), MNT_DETACH);
    };
    try {
      churn_tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
      PinCurrentThread(churn_slot, false);
      Check(unshare(CLONE_FS), "unshare", "CLONE_FS (churn thread)");
      const uint64_t t0 = MonotonicNs();
      for (long i = 0; !stop.load() && m.cfg.churn_rate > 0; ++i) {
        const uint64_t due = t0 + static_cast<uint64_t>(i / m.cfg.churn_rate * 1e9);
        while (!stop.load() && MonotonicNs() < due) {
          std::this_thread::sleep_for(std::chrono::milliseconds(
              std::clamp<long>((due - MonotonicNs()) / 1000000, 1, 20)));
        }
        if (stop.load()) break;
        const long k = m.next_start++;
        const uint64_t a = MonotonicNs();
        Fd ns(StartContainer(m.host.fd(), m.cfg.idmap, m.layers, m.userns, k, &ops));
        const uint64_t took = MonotonicNs() - a;
        starts_s.push_back(took * 1e-9);
        starts_hist.Record(took);
        live.emplace_back(k, std::move(ns));
        while (live.size() > keep) stop_one();
      }
      while (!live.empty()) stop_one();
    } catch (...) {
      churn_error = std::current_exception();
      stop.store(true);
      try {
        while (!live.empty()) stop_one();
      } catch (...) {
      }
    }
  });

  RunSpec spec;
  spec.workers = s.Workers(p, &farm, FindOp("stat"), farm.image().deep_path,
                           m.cfg.path_walk_workers, "compact,share");
  for (size_t i = 0; i < spec.workers.size(); ++i) {
    spec.workers[i].slot = slot_of("path_walk", static_cast<int>(i));
    spec.workers[i].path2 = farm.image().missing_path;
    spec.workers[i].role = "path_walk";
  }
  // The harness's other actors are not the walkers' own time: on a walker's
  // PU they take its CPU like any other task, and elsewhere their run time
  // must not be subtracted from the walkers' CPUs' busy time (a health reader
  // spinning on PU 1 hid a neighbour taking half of PU 0).
  while (m.cfg.churn_rate > 0 && !churn_tid.load() && !stop.load()) std::this_thread::yield();
  if (churn_tid.load()) spec.foreign_tids.push_back(churn_tid.load());
  for (pid_t t : bg.tids()) spec.foreign_tids.push_back(t);
  OnCpuObserver on_cpu(spec.workers.size());
  // With --waits every actor is attributed, not only the walkers: the churn's
  // and the health readers' waits can be what grows (issue 22).
  if (s.config().waits) {
    const std::vector<pid_t> bg_tids = bg.tids();
    for (pid_t t : bg_tids) spec.observed_actors.emplace_back(t, "health");
    if (churn_tid.load()) spec.observed_actors.emplace_back(churn_tid.load(), "churn");
  }
  spec.observers.push_back(&on_cpu);
  Entry e;
  RunResult r;
  std::exception_ptr measure_error;
  const bool control = m.cfg.path_walk_workers > 0;
  double control_before = std::nan(""), control_after = std::nan("");
  try {
    if (control) control_before = ControlRate(m.control_dir.get(), slot_of("path_walk", 0));
    r = s.Measure(std::move(spec), &e);
    if (control) control_after = ControlRate(m.control_dir.get(), slot_of("path_walk", 0));
  } catch (...) {
    measure_error = std::current_exception();
  }
  stop.store(true);
  churn.join();
  Histogram hs = bg.Latency("health", 0);
  bg.Stop();
  if (measure_error) std::rethrow_exception(measure_error);
  if (churn_error) std::rethrow_exception(churn_error);

  Invocation inv;
  if (!starts_s.empty()) {
    inv.values["start_p50_s"] = NearestRankQuantile(starts_s, 0.5);
    inv.values["start_p99_s"] = NearestRankQuantile(starts_s, 0.99);
    inv.samples["start_ns"] = starts_hist;
  }
  if (hs.count() > 0) {
    inv.values["health_stat_p99_ms"] = hs.Quantile(0.99) * 1e-6;
    inv.samples["health_stat_ns"] = hs;
  }
  if (m.cfg.path_walk_workers > 0 && r.measured_s > 0) {
    inv.values["path_walk_per_worker"] = r.ops_per_s() / m.cfg.path_walk_workers;
    if (on_cpu.on_cpu_s > 0) {
      inv.values["path_walk_per_cpu_s"] = r.ops / on_cpu.on_cpu_s;
      inv.walker_on_cpu_share = on_cpu.on_cpu_s / (r.measured_s * m.cfg.path_walk_workers);
    }
    if (control_before > 0 && control_after > 0) {
      const double control = (control_before + control_after) / 2;
      inv.values["control_stat_per_s"] = control;
      inv.values["control_drift"] = control_after / control_before - 1;
      inv.values["path_walk_per_control"] = inv.values["path_walk_per_worker"] / control;
    }
  }
  m.host.Run([&] {
    const uint64_t a = MonotonicNs();
    const std::vector<std::string> lines = ThreadMountinfo();
    inv.values["mountinfo_read_s"] = (MonotonicNs() - a) * 1e-9;
    (void)lines;
  });
  const nlohmann::json& j = e.json();
  inv.noisy = j.contains("noisy");
  if (s.config().attribute || s.config().waits) inv.attribution = ContractAttribution(j, s.config().waits);
  return inv;
}

}  // namespace mntscale
