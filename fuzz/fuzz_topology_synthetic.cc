// hwloc synthetic strings: the PU-count pre-check, then hwloc itself and the
// placement planner on what passes. Topologies above kFuzzMaxPus are checked
// by the pre-check only, to keep the fuzzer fast (hwloc's cost grows steeply).
#include <cstdint>
#include <string>

#include "mntscale/sys/sys.h"
#include "mntscale/run/topology.h"

namespace {
constexpr long kFuzzMaxPus = 256;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string desc(reinterpret_cast<const char*>(data), size);
  try {
    long pus = mntscale::SyntheticPuCount(desc);
    if (pus > kFuzzMaxPus) return 0;
    mntscale::Topology t = mntscale::Topology::Synthetic(desc);
    // The pre-check must never undercount what hwloc builds: it is the cap.
    if (static_cast<long>(t.pus().size()) > pus) __builtin_trap();
    for (const char* pl : {"compact", "spread,smt-off,share", "socket:1"}) {
      try {
        mntscale::PlanPlacement(t, mntscale::PlacementSpec::Parse(pl), 3);
      } catch (const mntscale::UsageError&) {
      }
    }
  } catch (const mntscale::UsageError&) {
  } catch (const mntscale::SysError&) {
  }
  return 0;
}
