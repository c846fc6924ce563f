// mitigations: the path_walk density point (stat of the deep path with N
// containers) with one change at a time, to show what each buys: one shared
// namespace instead of N private ones (fewer mounts in the global hash and
// fewer namespaces), 3 layers instead of the profile's (fewer overlay clones,
// shorter merges), files baked into the image instead of runtime bind mounts
// (fewer mounts, no crossing on those paths), chroot instead of pivot_root
// (the walk starts below a mount instead of at a namespace root).
#include <map>
#include <tuple>

#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

enum class Variant { kBaseline, kSharedNs, kThreeLayers, kNoBinds, kChroot };
constexpr EnumName<Variant> kVariants[] = {{Variant::kBaseline, "baseline"},
                                           {Variant::kSharedNs, "shared-ns"},
                                           {Variant::kThreeLayers, "3-layers"},
                                           {Variant::kNoBinds, "no-binds"},
                                           {Variant::kChroot, "chroot"}};

Profile VariantProfile(Profile pr, Variant variant) {
  switch (variant) {
    case Variant::kBaseline: break;
    case Variant::kSharedNs: pr.ns_mode = NsMode::kShared; break;
    case Variant::kThreeLayers: pr.layers = 3; break;
    case Variant::kNoBinds: pr.binds = 0; break;
    case Variant::kChroot: pr.root_switch = RootSwitch::kChroot; break;
  }
  pr.Validate();
  return pr;
}

void Mitigations(Session& s, const Point& p, Entry& e) {
  const Variant variant = p.Enum(kVariants, "variant");
  Profile pr = VariantProfile(s.ProfileFor(p), variant);
  Farm& farm = s.FarmFor(pr, p.Int("containers"));
  RunSpec spec;
  spec.workers = s.Workers(p, &farm, FindOp("stat"), farm.image().deep_path);
  RunResult r = s.Measure(std::move(spec), &e);
  // The baseline runs first (first value of the axis); later variants at the
  // same containers and workers carry their ratio to it.
  auto& baseline = s.Kept<std::map<std::tuple<int, int>, double>>("baseline");
  auto key = std::make_tuple(p.Int("containers"), p.Int("workers"));
  if (variant == Variant::kBaseline) baseline[key] = r.ops_per_s();
  if (baseline.count(key) && baseline[key] > 0) {
    e.Set("ratio_to_baseline", r.ops_per_s() / baseline[key]);
  }
  e.Set("variant_layers", pr.layers);
  e.Set("variant_binds", pr.binds);
  e.Set("variant_ns_mode", Name(pr.ns_mode));
  e.Set("variant_root_switch", Name(pr.root_switch));
  e.Set("mounts_per_container", pr.MountsPerContainer());
  e.Set("mounts_held", farm.MountsHeld());
}

}  // namespace

MNTSCALE_SCENARIO(
    mitigations,
    {
        .name = "mitigations",
        .mechanism = "one mitigation at a time at a density point: shared namespace, fewer layers, "
                     "no runtime binds, chroot instead of pivot_root",
        .expect = "each variant's throughput against the baseline (ratio_to_baseline >= 1 where "
                  "the mitigation helps)",
        .axes = {axes::Containers("100"),
                 axes::Workers("1"),
                 EnumAxis("variant", "baseline,shared-ns,3-layers,no-binds,chroot", kVariants)},
        .run = Mitigations,
    });

}  // namespace mntscale
