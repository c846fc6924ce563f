// Mount-table writers and big mount tables, for the scenarios that measure
// what one namespace's mount activity costs everyone else (churn, copy,
// teardown, table reads).
#pragma once

#include <string>

#include "mntscale/sys/enum_names.h"
#include "mntscale/run/runner.h"
#include "mntscale/model/scratch.h"

namespace mntscale {

// The writer kinds: mount (tmpfs mount+umount), bind (bind+umount),
// setattr (mount_setattr MOUNT_ATTR_RDONLY set then clear on a bind mount),
// clone (open_tree(OPEN_TREE_CLONE)+close). One op is one full cycle.
enum class WriterKind { kMount, kBind, kSetattr, kClone };
inline constexpr EnumName<WriterKind> kWriterKinds[] = {{WriterKind::kMount, "mount"},
                                                        {WriterKind::kBind, "bind"},
                                                        {WriterKind::kSetattr, "setattr"},
                                                        {WriterKind::kClone, "clone"}};

// Turns w into a writer of `kind`: role "writer", not measured, its op one
// cycle of kind. Its setup (inside its namespace) mounts a private tmpfs
// scratch at /mntscale-churn-<worker> (the container's root must be
// writable: an overlay upper or a tmpfs) and makes the mountpoint and, for
// setattr, the bind mount it toggles; its cleanup detaches the scratch.
void MakeWriter(WorkerPlan* w, WriterKind kind);

// The propagation of a namespace's mounts (MS_PRIVATE or MS_SHARED).
enum class Propagation { kPrivate, kShared };
inline constexpr EnumName<Propagation> kPropagations[] = {{Propagation::kPrivate, "private"},
                                                          {Propagation::kShared, "shared"}};
// A scratch namespace holding `mounts` bind mounts of one small tmpfs (/src)
// besides its root and that tmpfs, each on its own directory /m/<i>
// (distinct mount-hash keys). propagation "private"
// leaves them private; "shared" makes every mount shared (each its own peer
// group), so a copy of the namespace joins each group.
ScratchNs NamespaceWithMounts(int mounts, Propagation propagation);

// Reads the calling thread's /proc/thread-self/mountinfo to the end (through
// the sandbox's /proc, so it works from a container root). Returns the bytes
// read, or -errno.
long ReadOwnMountinfo(char* buf, size_t size);

}  // namespace mntscale
