// overlay_layers: an overlay of L lower layers, mounted and torn down by the
// classic option string or by fsopen/fsconfig("lowerdir+")/fsmount/move_mount,
// then a lookup of a file only the bottom layer holds. Mounting clones each
// layer privately (N+2 vfsmounts), so mount and umount grow with L; a cold
// lookup (fresh overlay, empty overlay dcache) runs ovl_lookup through every
// layer at each level, so it grows with L too; a warm one hits the dcache
// and stays flat. A negative lookup is cold: every layer is searched.
#include <sys/mount.h>
#include <sys/stat.h>

#include <chrono>

#include "mntscale/sys/histogram.h"
#include "mntscale/model/scratch.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

constexpr int kDepth = 3;  // d0/d1/d2/target: four merged lookups per walk

// cold: a fresh overlay per lookup; warm: one overlay, its dcache filled;
// negative: a name no layer has, so every layer is searched.
enum class Lookup { kCold, kWarm, kNegative };
constexpr EnumName<Lookup> kLookups[] = {
    {Lookup::kCold, "cold"}, {Lookup::kWarm, "warm"}, {Lookup::kNegative, "negative"}};
constexpr int kMinSamples = 5;
constexpr const char* kMnt = "/o";

using Clock = std::chrono::steady_clock;

uint64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void OverlayLayersRun(Session& s, const Point& p, Entry& e) {
  const int layers = p.Int("layers");
  const OverlayApi api = p.Enum(kOverlayApis, "overlay_api");
  const Lookup lookup = p.Enum(kLookups, "lookup");
  ScratchNs ns;
  OverlayLayers ol;
  Histogram mount_h, umount_h, lookup_h;
  double lookup_s = 0;
  const double budget_s = s.config().window_s * s.config().windows;
  ns.Run([&] {
    ol = MakeOverlayLayers("/l", layers, kDepth);
    for (const char* d : {"/u", "/w", kMnt}) Check(mkdir(d, 0755), "mkdir", d);
    const std::string target =
        std::string(kMnt) + "/" + (lookup == Lookup::kNegative ? ol.missing : ol.file);
    // Every sample is a fresh overlay: its dcache starts empty, while the
    // layers' own (tmpfs) dentries stay cached, as on a host with warm images.
    auto end = Clock::now() + std::chrono::duration<double>(budget_s);
    for (int n = 0; n < kMinSamples || Clock::now() < end; ++n) {
      uint64_t t0 = NowNs();
      MountOverlayAt(api, ol.dirs, "/u", "/w", kMnt);
      uint64_t t1 = NowNs();
      struct stat st;
      int rc = stat(target.c_str(), &st);
      int err = errno;
      uint64_t t2 = NowNs();
      if (lookup == Lookup::kNegative ? (rc == 0 || err != ENOENT) : rc != 0) {
        Check(rc == 0 ? -1 : rc, "stat", target, "unexpected result through the overlay");
      }
      Check(umount2(kMnt, 0), "umount2", kMnt);
      uint64_t t3 = NowNs();
      mount_h.Record(t1 - t0);
      lookup_h.Record(t2 - t1);
      umount_h.Record(t3 - t2);
      lookup_s += (t2 - t1) * 1e-9;
    }
    if (lookup == Lookup::kWarm) MountOverlayAt(api, ol.dirs, "/u", "/w", kMnt);
  });
  if (lookup == Lookup::kWarm) {
    RunSpec spec;
    spec.workers = s.Workers(p, nullptr, FindOp("stat"), std::string(kMnt) + "/" + ol.file, 1);
    spec.workers[0].container = &ns.container();
    spec.latency = true;
    s.Measure(std::move(spec), &e);
  } else {
    e.FromEvents(lookup_h.count(), lookup_s, &lookup_h);
  }
  e.Set("samples", lookup_h.count());
  e.Set("mount_ns", mount_h.ToJson());
  e.Set("umount_ns", umount_h.ToJson());
  e.Set("first_lookup_ns", lookup_h.ToJson());
  e.Set("path_levels", kDepth + 1);
  e.Set("vfsmounts_per_overlay", layers + 2);
}

}  // namespace

MNTSCALE_SCENARIO(
    overlay_layers,
    {
        .name = "overlay_layers",
        .mechanism = "overlay mount/umount with N+2 private vfsmounts, per-layer ovl_lookup on a "
                     "cold dcache",
        .expect = "mount, umount and cold/negative lookup linear in layers; warm lookup flat",
        .axes = {IntAxis("layers", "1,5,20,50,100", 1, kMaxLayers, "layers"),
                 EnumAxis("overlay_api", "mount,fsmount", kOverlayApis).Alias("api"),
                 EnumAxis("lookup", "cold,warm,negative", kLookups)},
        .run = OverlayLayersRun,
        .claims = {claims::Linear("vfsmounts_per_overlay", "layers", 0.999, 0.99, 1.01,
                                  "vfsmounts/layer",
                                  "an overlay of N layers holds N+2 vfsmounts (one more per "
                                  "layer)"),
                   claims::Linear("real_time", "layers", 0.9, 1, 1e9, "ns/layer",
                                  "a cold lookup is linear in layers (one negative lookup per "
                                  "layer)")
                       .Where({{"lookup", "cold"}}),
                   claims::Flat("items_per_second", "layers", 25,
                                "a warm lookup is flat in layers (within 25%)")
                       .Where({{"lookup", "warm"}})},
    });

}  // namespace mntscale
