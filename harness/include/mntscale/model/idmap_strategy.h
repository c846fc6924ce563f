// The idmap strategy as a type; the mounts that carry it out are idmap.h.
#pragma once

#include <string>

namespace mntscale {

// How a container's lower layers are idmapped. One enum with one parser, for
// the profiles ("idmap"), the storm's strategy axis and capacity's --idmap.
enum class IdmapStrategy { kNone, kPerLayer, kParent };
// "none", "per-layer" or "parent" (the profiles' spelling), also
// "per-layer-idmap" and "parent-idmap" (the storm's axis and capacity's
// contract); UsageError naming `what` otherwise.
IdmapStrategy ParseIdmapStrategy(const std::string& s, const std::string& what = "idmap");
// "none" | "per-layer" | "parent": profiles and --idmap.
const char* IdmapStrategyName(IdmapStrategy s);
// "none" | "per-layer-idmap" | "parent-idmap": the storm's axis and the
// capacity contract's churn.strategy.
const char* IdmapStrategyAxisName(IdmapStrategy s);

}  // namespace mntscale
