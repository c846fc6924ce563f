// "A real runtime", as the farm (--farm) and the start storm (runtime=) use
// one: runc and crun (RuntimeFarm, runtime.h) or containerd (ContainerdFarm,
// containerd.h). Each runs under a RuntimeSupervisor (runtime_supervisor.h):
// nothing of it outlives this process.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mntscale/model/farm.h"
#include "mntscale/model/image.h"
#include "mntscale/model/real_runtime.h"

namespace mntscale {

// The runtime named as --farm, the storm's runtime= and `profile capture
// --runtime` name it; UsageError "unknown runtime 'x' (known: ...)" otherwise.
RuntimeKind ParseRuntime(const std::string& name);

// "" when the runtime's binaries are on PATH; otherwise which is missing
// ("runtime 'runc' is not installed ...", "containerd: 'ctr' is not ...").
std::string RuntimeMissing(RuntimeKind runtime);


// The runtime, its commands run from a supervisor with files under dir, up
// to `parallel` at once. Unsupported("<runtime>: why") where it cannot run here.
std::unique_ptr<RealRuntime> OpenRealRuntime(RuntimeKind runtime, const std::string& dir,
                                             int parallel = 1);

// --farm: "builtin" (mntscale creates the containers: nullopt) or a runtime;
// UsageError for any other name.
std::optional<RuntimeKind> ParseFarmBackend(const std::string& farm);
// UsageError "--farm <runtime>: <why>" when the runtime is not installed.
void CheckFarmBackend(std::optional<RuntimeKind> farm);

}  // namespace mntscale
