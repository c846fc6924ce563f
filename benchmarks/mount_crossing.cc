// mount_crossing: a stat of a path that crosses K mountpoints, nested (one
// mount inside the next) or stacked (K mounts on one mountpoint). Every
// crossing is one __lookup_mnt probe of the global mount hash, keyed by
// (parent mount, dentry), so the walk should cost a fixed amount more per
// crossing. Background mounts in another namespace share that hash: they
// lengthen its chains only when they are many against the bucket count.
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>

#include "mntscale/model/scratch.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

constexpr int kRounds = 3;

void MountTmpfs(const std::string& dir) {
  Check(mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64k"), "mount", "tmpfs, " + dir);
}

void Mkdir(const std::string& dir) { Check(mkdir(dir.c_str(), 0755), "mkdir", dir); }

// The background is kept between points in the session (background is the
// outermost axis, so it is built once per value) and lives in its own
// namespace.
struct KeptBackground {
  std::unique_ptr<ScratchNs> ns;
  int count = 0;
};

ScratchNs* Background(Session& s, int n) {
  KeptBackground& kept = s.Kept<KeptBackground>("background");
  std::unique_ptr<ScratchNs>& ns = kept.ns;
  int& count = kept.count;
  if (n == count) return ns.get();
  ns.reset();
  count = 0;
  if (n > 0) {
    auto fresh = std::make_unique<ScratchNs>();
    fresh->Run([&] {
      Mkdir("/seed");
      for (int i = 0; i < n; ++i) {
        std::string d = "/b" + std::to_string(i);
        Mkdir(d);
        Check(mount("/seed", d.c_str(), nullptr, MS_BIND, nullptr), "mount", "bind " + d);
      }
    });
    ns = std::move(fresh);
  }
  count = n;
  return ns.get();
}

// Nested: K mountpoints along the path. Stacked: K mounts on one mountpoint.
enum class Layout { kNested, kStacked };
constexpr EnumName<Layout> kLayouts[] = {{Layout::kNested, "nested"}, {Layout::kStacked, "stacked"}};

void MountCrossing(Session& s, const Point& p, Entry& e) {
  const int k = p.Int("crossings");
  const bool nested = p.Enum(kLayouts, "layout") == Layout::kNested;
  Background(s, p.Int("background"));
  ScratchNs ns;
  std::string path, control;  // control: the same components, no mounts
  ns.Run([&] {
    if (nested) {
      std::string cur, plain = "/c";
      for (int i = 0; i < k; ++i) {
        cur += "/m";
        Mkdir(cur);
        MountTmpfs(cur);
        if (i) plain += "/m";
      }
      MkdirP(plain);
      path = cur + "/target";
      control = plain + "/target";
    } else {
      Mkdir("/s");
      for (int i = 0; i < k; ++i) MountTmpfs("/s");
      Mkdir("/c");
      path = "/s/target";
      control = "/c/target";
    }
    WriteFile(path, "");
    WriteFile(control, "");
  });
  RunSpec spec;
  spec.workers = s.Workers(p, nullptr, FindOp("stat"), path, 1);
  spec.workers[0].container = &ns.container();
  s.Measure(spec, &e);
  // Bare loops of both paths on the same PU, alternated; the fastest round of
  // each is the least disturbed by other load. The difference is the crossings.
  const double secs = s.config().window_s * s.config().windows / (2 * kRounds);
  WorkerPlan plan = spec.workers[0], control_plan = spec.workers[0];
  control_plan.path = control;
  double crossing_rate = 0, control_rate = 0;
  for (int i = 0; i < kRounds; ++i) {
    crossing_rate = std::max(crossing_rate, BareLoop(plan, secs));
    control_rate = std::max(control_rate, BareLoop(control_plan, secs));
  }
  double ns_op = 1e9 / crossing_rate, ns_control = 1e9 / control_rate;
  e.Set("mounts_crossed", k);
  e.Set("bare_ns_per_op", ns_op);
  e.Set("control_ns_per_op", ns_control);
  e.Set("ns_per_crossing", (ns_op - ns_control) / k);
  e.Set("background_mounts", p.Int("background"));
  e.Set("path", path);
}

}  // namespace

MNTSCALE_SCENARIO(
    mount_crossing,
    {
        .name = "mount_crossing",
        .mechanism = "__lookup_mnt in the global mount hash, once per mountpoint a path crosses "
                     "(nested or stacked), with background mounts elsewhere",
        .expect = "cost per stat linear in K (ns_per_crossing flat); background changes it only "
                  "when mounts outnumber hash buckets",
        .axes = {IntAxis("background", "0,10000", 0, 1000000, "mounts in another namespace"),
                 EnumAxis("layout", "nested,stacked", kLayouts),
                 IntAxis("crossings", "1,4,16,64", 1, 10000, "mountpoints crossed").Alias("K")},
        .run = MountCrossing,
    });

}  // namespace mntscale
