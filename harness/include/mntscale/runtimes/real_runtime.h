// "A real runtime", as the farm (--farm) and the start storm (runtime=) use
// one: runc and crun (RuntimeFarm, runtime.h) or containerd (ContainerdFarm,
// containerd.h). Each runs under a RuntimeSupervisor (runtime_supervisor.h):
// nothing of it outlives this process.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mntscale/model/farm.h"
#include "mntscale/model/image.h"

namespace mntscale {

// The real runtimes, as --farm, the storm's runtime= and `profile capture
// --runtime` name them.
inline constexpr const char* kRuntimes[] = {"runc", "crun", "containerd"};

// "" when the runtime's binaries are on PATH; otherwise which is missing
// ("runtime 'runc' is not installed ...", "containerd: 'ctr' is not ...").
// UsageError for a name that is not in kRuntimes.
std::string RuntimeMissing(const std::string& runtime);

class RealRuntime {
 public:
  virtual ~RealRuntime() = default;

  // --farm: one container of the farm's image, held up (its init stopped, or
  // the holder running); workers enter through Container::ns_fd.
  virtual Container Create(int index, const Image& image) = 0;
  virtual void Delete(const Container& c) = 0;

  // The start storm. The runtime's mount namespace (the supervisor's): where
  // bundles' rootfs are mounted, and where containerd mounts its snapshots.
  virtual int mount_ns() const = 0;
  // true when Start takes the rootfs from the runtime's own image store
  // (containerd's snapshotter, the image given to UseImage); false when the
  // caller mounts <bundle>/rootfs in mount_ns() first (runc, crun).
  virtual bool PreparesRootfs() const = 0;
  // The image every Start runs (layer dirs bottom first, the holder already
  // in one of them); only where PreparesRootfs().
  virtual void UseImage(const std::vector<std::string>& layer_dirs) { (void)layer_dirs; }
  struct Started {
    std::string id;
    int ns_fd = -1;  // the container's mount namespace; the caller owns it
  };
  // A real start running the holder (it prints its mountinfo and holds the
  // container up until Stop). Safe from several threads at once.
  virtual Started Start(const std::string& bundle) = 0;
  // The container's processes killed, its state, rootfs and cgroups removed.
  virtual void Stop(const std::string& id) = 0;
  // "created", "running", "stopped", or "unknown: why".
  virtual std::string Status(const std::string& id) = 0;
  // How many of ids are "running": Status of each, or one listing where the
  // runtime has one (containerd's `ctr task ls`).
  virtual int CountRunning(const std::vector<std::string>& ids) {
    int n = 0;
    for (const std::string& id : ids) n += Status(id) == "running";
    return n;
  }
  // Runtime commands so far, by verb ("create", "start", "delete").
  virtual long calls(const std::string& verb) const = 0;
};

// The runtime named (one of kRuntimes), its commands run from a supervisor
// with files under dir, up to `parallel` at once. Unsupported("<runtime>:
// why") where it cannot run here.
std::unique_ptr<RealRuntime> OpenRealRuntime(const std::string& runtime, const std::string& dir,
                                             int parallel = 1);

// "builtin", or a runtime of kRuntimes that is installed; UsageError otherwise.
void ValidateFarmBackend(const std::string& farm);

}  // namespace mntscale
