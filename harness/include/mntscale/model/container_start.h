// A container start as a runtime does it, modelled once for the start storm
// and capacity's churn. containerd's part runs in the runtime's namespace:
// layers idmapped per strategy, the overlay rootfs. runc's part: a new
// namespace copied from the runtime's, the runtime-file binds, proc, dev and
// pivot_root. Every mount-table write is counted in *ops.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "mntscale/model/idmap_strategy.h"

namespace mntscale {

// The files a runtime binds into every container's /etc.
inline constexpr const char* kRuntimeFiles[] = {"hosts", "resolv.conf", "hostname"};

// "top:...:bottom" for overlay's lowerdir from layers listed bottom first.
std::string LowerDirs(const std::vector<std::string>& layers);

// containerd, in the calling thread's mount namespace: dir/{upper,work,
// rootfs,idm}, the lower layers per idmap ("none" | "per-layer" |
// "parent", clones idmapped into userns), the overlay at dir/rootfs; the
// temporary idmapped clones go again (the overlay holds its own).
void MountContainerRootfs(const std::string& dir, IdmapStrategy idmap,
                          const std::vector<std::string>& layers, int userns,
                          std::atomic<long>* ops);

// runc, modelled, on a thread with its own fs_struct: a new namespace copied
// from the current one, /binds/<file> bound over root/etc/<file>, proc, a
// tmpfs /dev, pivot_root into root and the old root detached. Returns the
// container's mount namespace (an fd the caller owns).
int EnterModelContainer(const std::string& root, std::atomic<long>* ops);

}  // namespace mntscale
