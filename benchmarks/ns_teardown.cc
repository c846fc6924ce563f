// ns_teardown: destroying mount namespaces that hold M mounts. When the last
// reference goes, put_mnt_ns runs one umount_tree over all M mounts inside a
// single lock_mount_hash section, then namespace_unlock waits out an RCU
// grace period (synchronize_rcu_expedited: an IPI to every CPU). An umount2
// loop instead takes the lock M times, each short. Readers anywhere stall
// while the sequence is held for write.
#include <sys/mount.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

#include "mntscale/run/background.h"
#include "mntscale/run/churn.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

enum Phase { kIdle = 0, kTeardown = 1, kBuild = 2 };

enum class Method { kClose, kUmountLoop };
constexpr EnumName<Method> kMethods[] = {{Method::kClose, "close"},
                                         {Method::kUmountLoop, "umount-loop"}};

void NsTeardown(Session& s, const Point& p, Entry& e) {
  const int m = p.Int("mounts"), k = p.Int("parallel");
  const Method method = p.Enum(kMethods, "method");
  // A health-check reader on the first PU; the teardowns on the others.
  Farm& farm = s.FarmFor(s.config().profile, 1);
  BackgroundReaders bg(s.Workers(p, &farm, FindOp("stat"), farm.image().deep_path, 1, "compact"),
                       s.config().mode);

  // Each actor builds its namespace before the barrier and tears it down as
  // its event: close drops the last reference (put_mnt_ns); umount-loop
  // unmounts every mount from inside, deepest (last made) first, then leaves
  // and closes.
  std::vector<std::optional<ScratchNs>> victims(k);
  std::vector<Fd> homes(k);
  EventSpec spec;
  spec.actors = s.Slots(p, k, "compact", 1);
  spec.events = k;
  spec.shared = false;
  spec.setup = [&](EventContext& c) {
    victims[c.actor].emplace(NamespaceWithMounts(m, Propagation::kPrivate));
  };
  if (method == Method::kUmountLoop) {
    spec.prepare = [&](EventContext& c) {
      homes[c.actor] = Fd(OpenThreadMountNs());
      Check(setns(victims[c.actor]->fd(), CLONE_NEWNS), "setns", "namespace to tear down");
    };
  }
  spec.event = [&](EventContext& c) {
    if (method == Method::kUmountLoop) {
      char path[32];
      for (int i = m - 1; i >= 0; --i) {
        snprintf(path, sizeof path, "/m/%d", i);
        Check(umount2(path, 0), "umount2", path);
      }
      Check(setns(homes[c.actor].get(), CLONE_NEWNS), "setns", "back home");
    }
    victims[c.actor].reset();
  };
  spec.on_ready = [&] {
    bg.SetPhase(kIdle);  // a quiet stretch: the readers' baseline
    std::this_thread::sleep_for(std::chrono::duration<double>(s.config().window_s));
    bg.SetPhase(kTeardown);
  };

  Histogram per_ns;
  std::vector<double> wall_ns;
  double total_s = 0;
  for (int round = 0; round < p.Int("rounds"); ++round) {
    if (s.interrupted().load()) throw Interrupted();
    bg.SetPhase(kBuild);
    EventResult r = s.Events(spec, &e);
    bg.SetPhase(kBuild);
    per_ns.Merge(r.latency);
    wall_ns.push_back(r.span_s * 1e9);
    total_s += r.span_s;
  }
  bg.Stop();
  e.FromEvents(per_ns.count(), total_s, &per_ns);
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
                 EnumAxis("method", "close,umount-loop", kMethods),
                 IntAxis("parallel", "1,4", 1, 4096, "concurrent teardowns"),
                 axes::Rounds("3")},
        .run = NsTeardown,
        .claims = {claims::Grows("per_ns_p50_ns", "mounts", 2,
                                 "tearing down a namespace costs more with more mounts")},
    });

}  // namespace mntscale
