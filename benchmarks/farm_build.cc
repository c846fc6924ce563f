// farm_build: building and tearing down N containers. Each build is a
// copy_tree of a one-mount namespace, an overlay mount (L+1 private clones),
// binds, proc/dev/shm/mqueue and a pivot_root; each teardown an umount_tree
// under namespace_sem plus an RCU grace period.
#include "mntscale/model/sandbox.h"
#include "mntscale/suite/session.h"

namespace mntscale {
namespace {

void FarmBuild(Session& s, const Point& p, Entry& e) {
  s.DropFarms();  // a clean system: only this farm's containers exist
  Profile profile = s.ProfileFor(p);
  const int n = p.Int("containers");
  Farm farm(profile,
            GetImage({profile.layers, profile.depth, profile.files_per_dir, profile.binds}), 0);
  long slab0 = SlabMountObjects();
  auto t0 = std::chrono::steady_clock::now();
  double build_s = farm.Grow(n, [&](int done, int total) {
    s.Progress("farm_build", done, total,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
  Histogram per_container;
  for (const Container& c : farm.containers()) per_container.Record(c.build_s * 1e9);
  long slab_built = SlabMountObjects();
  long held = farm.MountsHeld();
  long ops = farm.mount_ops();
  double teardown_s = farm.Teardown();
  e.FromEvents(n, build_s, &per_container);
  e.Set("build_s", build_s);
  e.Set("build_per_s", n / build_s);
  e.Set("teardown_s", teardown_s);
  e.Set("teardown_per_s", n / teardown_s);
  e.Set("mount_ops", ops);
  e.Set("mounts_held", held);
  e.Set("mounts_per_container", profile.MountsPerContainer());
  if (slab0 >= 0) e.Set("slab_mounts_while_built", slab_built - slab0);
}

// It drops the session's farm and builds (and tears down) its own.
PointCost FarmBuildCost(const Point& p) {
  return {.measurements = 0, .own_containers = p.Int("containers"), .session_farm = false};
}

}  // namespace

MNTSCALE_SCENARIO(
    farm_build,
    {
        .name = "farm_build",
        .mechanism = "container build (copy_tree, overlay mount, binds, pivot_root) and "
                     "namespace teardown (umount_tree, RCU grace period)",
        .expect = "build and teardown time linear in containers",
        .axes = {axes::Layers("10"), axes::Binds("3"), axes::Containers("1000")},
        .run = FarmBuild,
        .claims = {claims::Above("build_per_s", 100, "the farm builds over 100 containers/s")},
        .cost = FarmBuildCost,
    });

}  // namespace mntscale
