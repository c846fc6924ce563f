// Idmapped mounts as container runtimes make them: a user namespace holding
// the container's uid/gid mapping, and detached clones of a directory tree
// idmapped through it (open_tree(OPEN_TREE_CLONE) + mount_setattr(
// MOUNT_ATTR_IDMAP)), attached with move_mount. Shared by the farm (profile
// field "idmap") and scenarios that prepare idmapped layers themselves.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "mntscale/model/idmap_strategy.h"
#include "mntscale/sys/sys.h"

namespace mntscale {

// A new user namespace with the given maps ("inside outside count" lines),
// held by its nsfs fd. A forked child unshares CLONE_NEWUSER and the caller
// writes the child's uid_map/gid_map, then the child exits: the fd keeps the
// namespace alive. Safe to call from a multithreaded process.
Fd MakeUserNamespace(const std::string& uid_map, const std::string& gid_map);

// The process-wide user namespace idmapped mounts use, made on first use:
// "0 100000 65536" like a runtime's container range when we are in the
// initial user namespace, else "0 0 1" (all a rootless namespace can give).
// Returns the fd (owned by the process; do not close).
int ContainerUserNamespace();

// A detached clone of path (relative to the caller's root and cwd), idmapped
// through userns_fd. Throws SysError naming the call; Unsupported when the
// filesystem or kernel cannot idmap. *ops counts 2 (open_tree, mount_setattr).
Fd CloneIdmapped(const std::string& path, int userns_fd, std::atomic<long>* ops);

// Attaches a detached mount at target (move_mount); *ops += 1.
void AttachMount(const Fd& mnt, const std::string& target, std::atomic<long>* ops);

// Prepares a container's lower layers the way profile.idmap asks, under dir
// (a directory the caller owns, in the caller's namespace):
//   "per-layer": each layer cloned, idmapped and attached at dir/l<i>
//                (containerd 2.0: 3 mount operations per layer);
//   "parent":    the layers' common parent cloned, idmapped and attached once
//                at dir/lower (containerd PR 12092);
// and returns the overlay lowerdir string (top layer first) through those
// mounts. layers_bottom_first are absolute paths in the caller's root.
// *mounted receives what to unmount once the overlay holds its private
// clones.
std::string IdmapLayers(IdmapStrategy mode,
                        const std::vector<std::string>& layers_bottom_first, const std::string& dir,
                        int userns_fd, std::vector<std::string>* mounted, std::atomic<long>* ops);

// Lazily unmounts each of mounted (the runtime's umount after the overlay
// mount); *ops += one per mount.
void UnmountAll(const std::vector<std::string>& mounted, std::atomic<long>* ops);

}  // namespace mntscale
