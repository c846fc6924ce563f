// ns_teardown: destroying mount namespaces that hold M mounts. When the last
// reference goes, put_mnt_ns runs one umount_tree over all M mounts inside a
// single lock_mount_hash section, then namespace_unlock waits out an RCU
// grace period (synchronize_rcu_expedited: an IPI to every CPU). An umount2
// loop instead takes the lock M times, each short. Readers anywhere stall
// while the sequence is held for write.
#include <sched.h>
#include <sys/mount.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>

#include "mntscale/background.h"
#include "mntscale/churn.h"
#include "mntscale/sandbox.h"
#include "mntscale/session.h"
#include "mntscale/sys.h"

namespace mntscale {
namespace {

enum Phase { kIdle = 0, kTeardown = 1, kBuild = 2 };

// Tears ns down by `method` and returns how long it took. umount-loop:
// every mount unmounted from inside, deepest (last made) first, then the
// namespace left and its fd closed.
uint64_t TearDown(ScratchNs ns, int mounts, const std::string& method) {
  if (method == "close") {
    uint64_t t0 = MonotonicNs();
    { ScratchNs dying = std::move(ns); }
    return MonotonicNs() - t0;
  }
  Check(unshare(CLONE_FS), "unshare", "CLONE_FS");
  Fd home(OpenThreadMountNs());
  Check(setns(ns.fd(), CLONE_NEWNS), "setns", "namespace to tear down");
  uint64_t t0 = MonotonicNs();
  char path[32];
  for (int i = mounts - 1; i >= 0; --i) {
    snprintf(path, sizeof path, "/m/%d", i);
    Check(umount2(path, 0), "umount2", path);
  }
  Check(setns(home.get(), CLONE_NEWNS), "setns", "back home");
  { ScratchNs dying = std::move(ns); }
  return MonotonicNs() - t0;
}

void NsTeardown(Session& s, const Point& p, Entry& e) {
  const int m = p.Int("mounts"), k = p.Int("parallel");
  const std::string method = p.Str("method");
  // A health-check reader on the first PU; the teardowns on the others.
  Farm& farm = s.FarmFor(s.config().profile, 1);
  BackgroundReaders bg(s.Workers(p, &farm, FindOp("stat"), farm.image().deep_path, 1, "compact"));
  const auto& pus = s.topology().pus();
  cpu_set_t others;
  CPU_ZERO(&others);
  for (size_t i = 1; i < pus.size(); ++i) CPU_SET(pus[i].os_index, &others);
  const bool pin = pus.size() > 1;

  Histogram per_ns;
  std::vector<double> wall_ns;
  uint64_t total_ns = 0;
  for (int round = 0; round < p.Int("rounds"); ++round) {
    if (s.interrupted().load()) throw Interrupted();
    bg.SetPhase(kBuild);
    std::vector<ScratchNs> victims;
    for (int i = 0; i < k; ++i) victims.push_back(NamespaceWithMounts(m, "private"));
    bg.SetPhase(kIdle);  // a quiet stretch: the readers' baseline
    std::this_thread::sleep_for(std::chrono::duration<double>(s.config().window_s));
    std::vector<uint64_t> took(k);
    std::vector<std::exception_ptr> errs(k);
    std::vector<std::thread> ts;
    bg.SetPhase(kTeardown);
    uint64_t t0 = MonotonicNs();
    for (int i = 0; i < k; ++i) {
      ts.emplace_back([&, i] {
        try {
          if (pin) sched_setaffinity(0, sizeof others, &others);
          took[i] = TearDown(std::move(victims[i]), m, method);
        } catch (...) {
          errs[i] = std::current_exception();
        }
      });
    }
    for (auto& t : ts) t.join();
    uint64_t wall = MonotonicNs() - t0;
    bg.SetPhase(kBuild);
    for (auto& err : errs) {
      if (err) std::rethrow_exception(err);
    }
    for (uint64_t t : took) per_ns.Record(t);
    wall_ns.push_back(wall);
    total_ns += wall;
  }
  bg.Stop();
  e.FromEvents(per_ns.count(), total_ns * 1e-9, &per_ns);
  e.Set("teardown_wall_ns", wall_ns);
  e.Set("per_ns_p50_ns", per_ns.Quantile(0.5));
  e.Set("per_mount_ns", static_cast<double>(per_ns.Quantile(0.5)) / std::max(1, m));
  for (auto [phase, name] : {std::pair{kIdle, "idle"}, {kTeardown, "teardown"}}) {
    e.Set(std::string("reader_latency_ns_") + name, bg.Latency("reader", phase).ToJson());
    e.Set(std::string("reader_ops_per_sec_") + name, bg.OpsPerSec("reader", phase));
  }
  Histogram h = bg.Latency("reader", kTeardown);
  e.Set("reader_stall_max_ns", h.max());
  e.Set("reader_p99_ns", h.Quantile(0.99));
}

}  // namespace

MNTSCALE_SCENARIO(
    ns_teardown,
    {
        .name = "ns_teardown",
        .mechanism = "namespace destruction: one umount_tree under lock_mount_hash plus an "
                     "expedited RCU grace period (close) vs M short umount2 sections (loop)",
        .expect = "teardown linear in mounts; close holds the lock in one stretch (readers' max "
                  "stall grows with M), the loop spreads it out; parallel K serialises",
        .axes = {axes::Mounts("100,1000,5000,20000"),
                 EnumAxis("method", "close,umount-loop", {"close", "umount-loop"}),
                 IntAxis("parallel", "1,4", 1, 4096, "concurrent teardowns"),
                 axes::Rounds("3")},
        .run = NsTeardown,
    });

}  // namespace mntscale
