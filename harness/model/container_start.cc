#include "mntscale/model/container_start.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mntscale/model/idmap.h"
#include "mntscale/model/scratch.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

void Mount(const std::string& src, const std::string& target, const char* type, unsigned long flags,
           const char* data, std::atomic<long>* ops) {
  Check(mount(src.c_str(), target.c_str(), type, flags, data), "mount",
        (type ? std::string(type) : src) + ", " + target);
  ops->fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

std::string LowerDirs(const std::vector<std::string>& layers) {
  std::string lower;
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    lower += (lower.empty() ? "" : ":") + *it;
  }
  return lower;
}

void MountContainerRootfs(const std::string& dir, IdmapStrategy idmap,
                          const std::vector<std::string>& layers, int userns,
                          std::atomic<long>* ops) {
  for (const char* d : {"", "/upper", "/work", "/rootfs", "/idm"}) {
    Check(mkdir((dir + d).c_str(), 0755), "mkdir", dir + d);
  }
  std::vector<std::string> temp;
  const std::string lower = idmap == IdmapStrategy::kNone ? LowerDirs(layers)
                                            : IdmapLayers(idmap, layers, dir + "/idm", userns, &temp, ops);
  const std::string opts =
      "lowerdir=" + lower + ",upperdir=" + dir + "/upper,workdir=" + dir + "/work";
  Mount("overlay", dir + "/rootfs", "overlay", 0, opts.c_str(), ops);
  UnmountAll(temp, ops);
}

int EnterModelContainer(const std::string& root, std::atomic<long>* ops) {
  Check(unshare(CLONE_NEWNS), "unshare", "CLONE_NEWNS (container at " + root + ")");
  for (const char* f : kRuntimeFiles) {
    Mount(std::string("/binds/") + f, root + "/etc/" + f, nullptr, MS_BIND, nullptr, ops);
  }
  Mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, ops);
  Mount("tmpfs", root + "/dev", "tmpfs", MS_NOSUID, "mode=755,size=64k", ops);
  Check(chdir(root.c_str()), "chdir", root);
  Check(syscall(SYS_pivot_root, ".", "."), "pivot_root", root);
  Check(umount2(".", MNT_DETACH), "umount2", "old root of the container at " + root);
  ops->fetch_add(2, std::memory_order_relaxed);  // pivot_root and the old root's detach
  Check(chdir("/"), "chdir", "/");
  return OpenThreadMountNs();
}

}  // namespace mntscale
