#include "mntscale/run/churn.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <cstdio>

#include "mntscale/run/ops.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

int Ret(long rc) { return rc < 0 ? -errno : 0; }

// Each cycle takes lock_mount_hash (bumping the mount_lock sequence every
// RCU walk in the system samples) and namespace_sem.
int OpMountUmount(OpContext& c) {
  if (mount("tmpfs", c.path, "tmpfs", 0, "size=4k") < 0) return -errno;
  return Ret(umount2(c.path, 0));
}

int OpBindUmount(OpContext& c) {
  if (mount(c.path2, c.path, nullptr, MS_BIND, nullptr) < 0) return -errno;
  return Ret(umount2(c.path, 0));
}

int OpSetattrToggle(OpContext& c) {
  MountAttr a = {};
  a.attr_set = kMountAttrRdonly;
  if (MountSetattr(AT_FDCWD, c.path, 0, &a) < 0) return -errno;
  a = {};
  a.attr_clr = kMountAttrRdonly;
  return Ret(MountSetattr(AT_FDCWD, c.path, 0, &a));
}

// The clone lives in an anonymous namespace; the close dissolves it.
int OpCloneClose(OpContext& c) {
  int fd = OpenTree(AT_FDCWD, c.path, kOpenTreeClone | kOpenTreeCloexec);
  if (fd < 0) return -errno;
  close(fd);
  return 0;
}

int OpMountinfo(OpContext&) {
  thread_local char buf[1 << 16];
  long n = ReadOwnMountinfo(buf, sizeof buf);
  return n < 0 ? static_cast<int>(n) : 0;
}

// Indexed by WriterKind.
constexpr OpInfo kWriterOps[] = {
    {"mount", "tmpfs mount+umount", OpMountUmount},
    {"bind", "bind mount+umount", OpBindUmount},
    {"setattr", "mount_setattr RDONLY set+clear on a bind mount", OpSetattrToggle},
    {"clone", "open_tree(OPEN_TREE_CLONE)+close", OpCloneClose},
};
static_assert(NamesInOrder(kWriterOps, kWriterKinds));

struct WriterState {
  std::string scratch, target, source;
};

}  // namespace

void MakeWriter(WorkerPlan* w, WriterKind kind) {
  w->op = &kWriterOps[static_cast<int>(kind)];
  w->role = "writer";
  w->measured = false;
  w->path = "/mntscale-churn-" + std::to_string(w->slot.worker) + "/t";
  const bool bind_first = kind == WriterKind::kSetattr;
  w->setup = [bind_first](OpContext& c) {
    auto* st = new WriterState;
    st->scratch = "/mntscale-churn-" + std::to_string(c.worker);
    st->target = st->scratch + "/t";
    st->source = st->scratch + "/s";
    c.scratch = st;
    if (mkdir(st->scratch.c_str(), 0755) < 0 && errno != EEXIST) {
      Check(-1, "mkdir", st->scratch, "the writer's root must be writable");
    }
    Check(mount("tmpfs", st->scratch.c_str(), "tmpfs", 0, "size=64k,mode=755"), "mount",
          "tmpfs, " + st->scratch);
    Check(mkdir(st->target.c_str(), 0755), "mkdir", st->target);
    Check(mkdir(st->source.c_str(), 0755), "mkdir", st->source);
    if (bind_first) {
      Check(mount(st->source.c_str(), st->target.c_str(), nullptr, MS_BIND, nullptr), "mount",
            "bind " + st->source + ", " + st->target);
    }
    c.path = st->target.c_str();
    c.path2 = st->source.c_str();
  };
  w->cleanup = [](OpContext& c) {
    auto* st = static_cast<WriterState*>(c.scratch);
    if (!st) return;
    umount2(st->scratch.c_str(), MNT_DETACH);
    rmdir(st->scratch.c_str());
    delete st;
    c.scratch = nullptr;
  };
}

ScratchNs NamespaceWithMounts(int mounts, Propagation propagation) {
  ScratchNs ns;
  ns.Run([&] {
    Check(mkdir("/m", 0755), "mkdir", "/m");
    // The bind source is a mount of its own without children: a
    // non-recursive bind scans every child of the source mount
    // (__has_locked_children), which would make building M binds O(M^2).
    Check(mkdir("/src", 0755), "mkdir", "/src");
    Check(mount("tmpfs", "/src", "tmpfs", 0, "size=4k,mode=755"), "mount", "tmpfs, /src");
    char path[32];
    for (int i = 0; i < mounts; ++i) {
      snprintf(path, sizeof path, "/m/%d", i);
      Check(mkdir(path, 0755), "mkdir", path);
      Check(mount("/src", path, nullptr, MS_BIND, nullptr), "mount", std::string("bind ") + path,
            "fs.mount-max?");
    }
    if (propagation == Propagation::kShared) {
      Check(mount(nullptr, "/", nullptr, MS_REC | MS_SHARED, nullptr), "mount",
            "/, MS_REC|MS_SHARED");
    }
  });
  return ns;
}

long ReadOwnMountinfo(char* buf, size_t size) {
  int fd = openat(Sandbox::Current().proc_fd(), "thread-self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  long total = 0;
  ssize_t n;
  while ((n = read(fd, buf, size)) > 0) total += n;
  int err = n < 0 ? errno : 0;
  close(fd);
  return err ? -err : total;
}

MNTSCALE_OP(mountinfo, "mountinfo",
            "a full read of the worker's /proc/thread-self/mountinfo (namespace_sem read side)",
            OpMountinfo);

}  // namespace mntscale
