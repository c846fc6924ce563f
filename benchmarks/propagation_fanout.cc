// propagation_fanout: a mount and an umount under a shared mount whose peer
// group has N members, one per namespace. propagate_mnt copies the new mount
// to every peer and propagate_umount removes every copy, all under
// namespace_sem and lock_mount_hash, so each operation should cost O(N).
#include <sys/mount.h>
#include <sys/stat.h>

#include <chrono>

#include "mntscale/sys/histogram.h"
#include "mntscale/model/scratch.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

constexpr const char* kShared = "/shared";
constexpr const char* kTarget = "/shared/x";

int MountUmount(OpContext& c) {
  if (mount("tmpfs", c.path, "tmpfs", 0, "size=4k") < 0) return -errno;
  return umount2(c.path, 0) < 0 ? -errno : 0;
}

const OpInfo kMountUmount = {"mount-umount-shared", "tmpfs mount + umount under a shared mount",
                             MountUmount};

void PropagationFanout(Session& s, const Point& p, Entry& e) {
  const int n = p.Int("peers");
  // A shared tmpfs in a one-mount namespace, then N-1 copies of it: the
  // measured namespace and every copy hold one peer each.
  ScratchNs ns;
  ns.Run([&] {
    Check(mkdir(kShared, 0755), "mkdir", kShared);
    Check(mount("tmpfs", kShared, "tmpfs", 0, "size=64k"), "mount", kShared);
    Check(mount(nullptr, kShared, nullptr, MS_SHARED, nullptr), "mount",
          "MS_SHARED " + std::string(kShared));
    Check(mkdir(kTarget, 0755), "mkdir", kTarget);
  });
  auto t0 = std::chrono::steady_clock::now();
  std::vector<ScratchNs> peers = ns.Copies(n - 1);
  double copy_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  long group = 0;
  // The mount and the umount alone, timed apart, on one thread.
  Histogram mount_h, umount_h;
  const double budget_s = s.config().window_s;
  ns.Run([&] {
    group = PeerGroupOf(ThreadMountinfo(), kShared);
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(budget_s);
    do {
      uint64_t a = MonotonicNs();
      Check(mount("tmpfs", kTarget, "tmpfs", 0, "size=4k"), "mount", kTarget);
      uint64_t b = MonotonicNs();
      Check(umount2(kTarget, 0), "umount2", kTarget);
      uint64_t c = MonotonicNs();
      mount_h.Record(b - a);
      umount_h.Record(c - b);
    } while (std::chrono::steady_clock::now() < end);
  });
  if (group <= 0) throw std::runtime_error("/shared is not in a peer group");
  RunSpec spec;
  spec.workers = s.Workers(p, nullptr, &kMountUmount, kTarget, 1);
  spec.workers[0].container = &ns.container();
  spec.latency = true;
  s.Measure(std::move(spec), &e);
  e.Set("peers", n);
  e.Set("peer_group", group);
  e.Set("mount_ns_p50", mount_h.Quantile(0.5));
  e.Set("umount_ns_p50", umount_h.Quantile(0.5));
  e.Set("mount_ns_p99", mount_h.Quantile(0.99));
  e.Set("umount_ns_p99", umount_h.Quantile(0.99));
  e.Set("namespaces_copy_s", copy_s);
}

}  // namespace

MNTSCALE_SCENARIO(
    propagation_fanout,
    {
        .name = "propagation_fanout",
        .mechanism = "propagate_mnt / propagate_umount over a shared peer group of N namespaces",
        .expect = "mount and umount each O(N): throughput ~ 1/N",
        .axes = {IntAxis("peers", "1,10,100,1000", 1, 100000, "peer namespaces").Alias("N")},
        .run = PropagationFanout,
        .claims = {claims::Grows("mount_ns_p50", "peers", 2,
                                 "a mount under a shared mount costs more with more peers "
                                 "(propagate_mnt is O(peers))")},
    });

}  // namespace mntscale
