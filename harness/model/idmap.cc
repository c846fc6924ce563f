#include "mntscale/model/idmap.h"

#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <mutex>

#include "mntscale/model/sandbox.h"

namespace mntscale {
namespace {

std::string ProcPath(pid_t pid, const char* leaf) {
  return "/proc/" + std::to_string(pid) + "/" + leaf;
}

// /proc as the sandbox sees it: builder threads have a container root.
int ProcDir() { return Sandbox::Entered() ? Sandbox::Current().proc_fd() : AT_FDCWD; }

void WriteProcFile(pid_t pid, const char* leaf, const std::string& data) {
  std::string rel = std::to_string(pid) + "/" + leaf;
  int dir = ProcDir();
  Fd fd(openat(dir, dir == AT_FDCWD ? ProcPath(pid, leaf).c_str() : rel.c_str(),
               O_WRONLY | O_CLOEXEC));
  Check(fd.get(), "open", ProcPath(pid, leaf));
  if (write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    Check(-1, "write", ProcPath(pid, leaf) + " = '" + data + "'",
          "the map must fit inside the caller's own user namespace mapping");
  }
}

bool InInitialUserNamespace() {
  Fd fd(openat(ProcDir(), ProcDir() == AT_FDCWD ? "/proc/self/uid_map" : "self/uid_map",
               O_RDONLY | O_CLOEXEC));
  char buf[256] = {};
  if (!fd.valid() || read(fd.get(), buf, sizeof buf - 1) <= 0) return false;
  std::string map = buf;
  // The initial namespace maps everything: "0 0 4294967295".
  return map.find("4294967295") != std::string::npos;
}

}  // namespace

Fd MakeUserNamespace(const std::string& uid_map, const std::string& gid_map) {
  int ready[2], go[2];
  Check(pipe2(ready, O_CLOEXEC), "pipe2", "userns ready");
  Check(pipe2(go, O_CLOEXEC), "pipe2", "userns go");
  pid_t pid = fork();
  if (pid < 0) Check(-1, "fork", "userns child");
  if (pid == 0) {
    // Only async-signal-safe calls: the parent may have threads. Our copy
    // of the go pipe's write end would keep the read below from seeing EOF.
    close(go[1]);
    close(ready[0]);
    char c = unshare(CLONE_NEWUSER) == 0 ? 0 : static_cast<char>(errno);
    (void)!write(ready[1], &c, 1);
    (void)!read(go[0], &c, 1);
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  Fd go_w(go[1]);
  char c = 1;
  ssize_t n = read(ready[0], &c, 1);
  close(ready[0]);
  auto reap = [&] {
    go_w.Reset();
    waitpid(pid, nullptr, 0);
  };
  if (n != 1 || c != 0) {
    reap();
    throw Unsupported(
        "cannot create a user namespace for idmapped mounts: unshare(CLONE_NEWUSER): " +
        ErrnoName(n == 1 ? c : EIO) + " (user.max_user_namespaces?)");
  }
  try {
    WriteProcFile(pid, "uid_map", uid_map);
    WriteProcFile(pid, "gid_map", gid_map);
    std::string rel = std::to_string(pid) + "/ns/user";
    int dir = ProcDir();
    Fd ns(openat(dir, dir == AT_FDCWD ? ProcPath(pid, "ns/user").c_str() : rel.c_str(),
                 O_RDONLY | O_CLOEXEC));
    Check(ns.get(), "open", ProcPath(pid, "ns/user"));
    reap();
    return ns;
  } catch (...) {
    reap();
    throw;
  }
}

int ContainerUserNamespace() {
  static std::mutex mu;
  static int fd = -1;
  std::lock_guard<std::mutex> lock(mu);
  if (fd < 0) {
    const char* map = InInitialUserNamespace() ? "0 100000 65536\n" : "0 0 1\n";
    fd = MakeUserNamespace(map, map).Release();
  }
  return fd;
}

Fd CloneIdmapped(const std::string& path, int userns_fd, std::atomic<long>* ops) {
  Fd mnt(OpenTree(AT_FDCWD, path.c_str(), kOpenTreeClone | kOpenTreeCloexec));
  Check(mnt.get(), "open_tree", path + ", OPEN_TREE_CLONE");
  MountAttr attr = {};
  attr.attr_set = kMountAttrIdmap;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (MountSetattr(mnt.get(), "", AT_EMPTY_PATH, &attr) < 0) {
    int err = errno;
    if (err == ENOSYS) throw Unsupported("mount_setattr needs Linux >= 5.12");
    if (err == EINVAL) {
      throw Unsupported("mount_setattr(" + path +
                        ", MOUNT_ATTR_IDMAP): EINVAL: this filesystem "
                        "cannot be idmapped on this kernel (tmpfs needs Linux >= 6.3)");
    }
    errno = err;
    Check(-1, "mount_setattr", path + ", MOUNT_ATTR_IDMAP");
  }
  ops->fetch_add(2, std::memory_order_relaxed);
  return mnt;
}

void AttachMount(const Fd& mnt, const std::string& target, std::atomic<long>* ops) {
  Check(MoveMount(mnt.get(), "", AT_FDCWD, target.c_str(), kMoveMountFEmptyPath), "move_mount",
        target);
  ops->fetch_add(1, std::memory_order_relaxed);
}

IdmapStrategy ParseIdmapStrategy(const std::string& s, const std::string& what) {
  if (s == "none") return IdmapStrategy::kNone;
  if (s == "per-layer" || s == "per-layer-idmap") return IdmapStrategy::kPerLayer;
  if (s == "parent" || s == "parent-idmap") return IdmapStrategy::kParent;
  throw UsageError(what + " must be none, per-layer or parent; got '" + s + "'");
}

const char* IdmapStrategyName(IdmapStrategy s) {
  switch (s) {
    case IdmapStrategy::kNone: return "none";
    case IdmapStrategy::kPerLayer: return "per-layer";
    case IdmapStrategy::kParent: return "parent";
  }
  return "none";
}

const char* IdmapStrategyAxisName(IdmapStrategy s) {
  switch (s) {
    case IdmapStrategy::kNone: return "none";
    case IdmapStrategy::kPerLayer: return "per-layer-idmap";
    case IdmapStrategy::kParent: return "parent-idmap";
  }
  return "none";
}

std::string IdmapLayers(IdmapStrategy mode, const std::vector<std::string>& layers,
                        const std::string& dir, int userns_fd, std::vector<std::string>* mounted,
                        std::atomic<long>* ops) {
  std::string lower;
  if (mode == IdmapStrategy::kPerLayer) {
    std::vector<std::string> attached;
    for (size_t i = 0; i < layers.size(); ++i) {
      std::string at = dir + "/l" + std::to_string(i);
      Check(mkdir(at.c_str(), 0755), "mkdir", at);
      AttachMount(CloneIdmapped(layers[i], userns_fd, ops), at, ops);
      mounted->push_back(at);
      attached.push_back(at);
    }
    for (auto it = attached.rbegin(); it != attached.rend(); ++it) {
      lower += (lower.empty() ? "" : ":") + *it;
    }
    return lower;
  }
  if (mode == IdmapStrategy::kParent) {
    // Every layer lives in one parent directory, as in a snapshotter's store.
    std::string parent = layers.front().substr(0, layers.front().rfind('/'));
    for (const std::string& l : layers) {
      if (l.substr(0, l.rfind('/')) != parent) {
        throw UsageError("idmap 'parent' needs the layers in one directory: " + l);
      }
    }
    std::string at = dir + "/lower";
    Check(mkdir(at.c_str(), 0755), "mkdir", at);
    AttachMount(CloneIdmapped(parent, userns_fd, ops), at, ops);
    mounted->push_back(at);
    for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
      lower += (lower.empty() ? "" : ":") + at + it->substr(it->rfind('/'));
    }
    return lower;
  }
  throw UsageError("IdmapLayers: strategy none has no idmapped layers");
}

void UnmountAll(const std::vector<std::string>& mounted, std::atomic<long>* ops) {
  for (const std::string& m : mounted) {
    Check(umount2(m.c_str(), MNT_DETACH), "umount2", m);
    ops->fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace mntscale
