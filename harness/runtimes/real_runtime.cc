#include "mntscale/runtimes/real_runtime.h"

#include "mntscale/runtimes/containerd.h"
#include "mntscale/runtimes/runtime.h"
#include "mntscale/sys/sys.h"

namespace mntscale {

std::string RuntimeMissing(const std::string& runtime) {
  bool known = false;
  for (const char* r : kRuntimes) known |= runtime == r;
  if (!known) throw UsageError("unknown runtime '" + runtime + "' (known: runc, crun, containerd)");
  if (runtime == "containerd") {
    const std::string m = ContainerdMissingBinary();
    if (m.empty()) return "";
    return "containerd: '" + m +
           "' is not installed (not found on PATH); scripts/setup.sh installs containerd";
  }
  if (!FindRuntime(runtime).empty()) return "";
  return "runtime '" + runtime +
         "' is not installed (not found on PATH); scripts/setup.sh installs it";
}

std::unique_ptr<RealRuntime> OpenRealRuntime(const std::string& runtime, const std::string& dir,
                                             int parallel) {
  if (runtime == "containerd") return std::make_unique<ContainerdFarm>(dir, parallel);
  return std::make_unique<RuntimeFarm>(runtime, dir, parallel);
}

void ValidateFarmBackend(const std::string& farm) {
  if (farm == "builtin") return;
  bool known = false;
  for (const char* r : kRuntimes) known |= farm == r;
  if (!known) {
    throw UsageError("--farm '" + farm + "' is not one of: builtin, runc, crun, containerd");
  }
  if (std::string why = RuntimeMissing(farm); !why.empty())
    throw UsageError("--farm " + farm + ": " + why);
}

}  // namespace mntscale
