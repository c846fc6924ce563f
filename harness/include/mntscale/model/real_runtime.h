// What a real container runtime is to the model: the interface a Farm
// creates its containers through (--farm) and the start storm starts them
// through (runtime=). The implementations (runc, crun, containerd) live in
// runtimes/ (real_runtime.h opens one); the model sees only this.
#pragma once

#include <string>
#include <vector>

#include "mntscale/model/container.h"
#include "mntscale/model/image.h"
#include "mntscale/sys/enum_names.h"

namespace mntscale {

// The real runtimes. A name is also the runtime's binary (containerd's is the
// daemon; `ctr` drives it).
enum class RuntimeKind { kRunc, kCrun, kContainerd };
inline constexpr EnumName<RuntimeKind> kRuntimeKinds[] = {{RuntimeKind::kRunc, "runc"},
                                                         {RuntimeKind::kCrun, "crun"},
                                                         {RuntimeKind::kContainerd, "containerd"}};
inline const char* Name(RuntimeKind k) { return EnumNameOf(kRuntimeKinds, k); }

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

}  // namespace mntscale
