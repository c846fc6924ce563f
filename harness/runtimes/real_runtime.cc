#include "mntscale/runtimes/real_runtime.h"

#include "mntscale/runtimes/containerd.h"
#include "mntscale/runtimes/runtime.h"
#include "mntscale/sys/sys.h"

namespace mntscale {

RuntimeKind ParseRuntime(const std::string& name) {
  if (auto k = FindEnum(kRuntimeKinds, name)) return *k;
  throw UsageError("unknown runtime '" + name + "' (known: " + EnumNameList(kRuntimeKinds) + ")");
}

std::string RuntimeMissing(RuntimeKind runtime) {
  if (runtime == RuntimeKind::kContainerd) {
    const std::string m = ContainerdMissingBinary();
    if (m.empty()) return "";
    return "containerd: '" + m +
           "' is not installed (not found on PATH); scripts/setup.sh installs containerd";
  }
  if (!FindRuntime(Name(runtime)).empty()) return "";
  return std::string("runtime '") + Name(runtime) +
         "' is not installed (not found on PATH); scripts/setup.sh installs it";
}

std::unique_ptr<RealRuntime> OpenRealRuntime(RuntimeKind runtime, const std::string& dir,
                                             int parallel) {
  if (runtime == RuntimeKind::kContainerd) return std::make_unique<ContainerdFarm>(dir, parallel);
  return std::make_unique<RuntimeFarm>(runtime, dir, parallel);
}

std::optional<RuntimeKind> ParseFarmBackend(const std::string& farm) {
  static constexpr auto kFarmBackends = WithNone("builtin", kRuntimeKinds);
  if (auto b = FindEnum(kFarmBackends, farm)) return *b;
  throw UsageError("--farm '" + farm + "' is not one of: " + EnumNameList(kFarmBackends));
}

void CheckFarmBackend(std::optional<RuntimeKind> farm) {
  if (!farm) return;
  if (std::string why = RuntimeMissing(*farm); !why.empty()) {
    throw UsageError(std::string("--farm ") + Name(*farm) + ": " + why);
  }
}

}  // namespace mntscale
