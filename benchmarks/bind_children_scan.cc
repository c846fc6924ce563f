// bind_children_scan: a non-recursive bind (mount --bind without MS_REC) or
// an open_tree(OPEN_TREE_CLONE) clone of a mount with C child mounts. Both
// go through __do_loopback, which scans every child of the source for a
// locked one (__has_locked_children) before cloning only the top mount, so
// the cost should grow linearly in C although one mount is copied.
#include <sys/mount.h>
#include <sys/stat.h>

#include "mntscale/model/scratch.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

constexpr const char* kSource = "/src";
constexpr const char* kDest = "/dst";

int BindUmount(OpContext& c) {
  if (mount(c.path, c.path2, nullptr, MS_BIND, nullptr) < 0) return -errno;
  return umount2(c.path2, 0) < 0 ? -errno : 0;
}

int OpenTreeClose(OpContext& c) {
  int fd = OpenTree(AT_FDCWD, c.path, kOpenTreeClone | kOpenTreeCloexec);
  if (fd < 0) return -errno;
  close(fd);  // dissolves the detached clone
  return 0;
}

const OpInfo kBind = {"bind-umount", "non-recursive bind of the source + umount", BindUmount};
const OpInfo kOpenTree = {"open_tree-close", "open_tree(OPEN_TREE_CLONE) of the source + close",
                          OpenTreeClose};

enum class Method { kBind, kOpenTree };
constexpr EnumName<Method> kMethods[] = {{Method::kBind, "bind"}, {Method::kOpenTree, "open_tree"}};

void BindChildrenScan(Session& s, const Point& p, Entry& e) {
  const int children = p.Int("children");
  const Method method = p.Enum(kMethods, "method");
  const OpInfo* op = method == Method::kBind ? &kBind : &kOpenTree;
  if (method == Method::kOpenTree && !HaveNewMountApi())
    throw Unsupported("open_tree needs Linux >= 5.2");
  ScratchNs ns;
  ns.Run([&] {
    for (const char* d : {kSource, kDest, "/seed"}) Check(mkdir(d, 0755), "mkdir", d);
    Check(mount("tmpfs", kSource, "tmpfs", 0, "size=4m"), "mount", kSource);
    for (int i = 0; i < children; ++i) {
      std::string d = std::string(kSource) + "/c" + std::to_string(i);
      Check(mkdir(d.c_str(), 0755), "mkdir", d);
      Check(mount("/seed", d.c_str(), nullptr, MS_BIND, nullptr), "mount", "bind " + d);
    }
  });
  RunSpec spec;
  spec.workers = s.Workers(p, nullptr, op, kSource, 1);
  spec.workers[0].container = &ns.container();
  spec.workers[0].path2 = kDest;
  spec.latency = true;
  s.Measure(std::move(spec), &e);
  e.Set("children", children);
  e.Set("mounts_in_namespace", children + 2);
}

}  // namespace

MNTSCALE_SCENARIO(
    bind_children_scan,
    {
        .name = "bind_children_scan",
        .mechanism = "__has_locked_children scan of every child mount in a non-recursive bind or "
                     "open_tree clone",
        .expect = "time per bind/clone linear in children",
        .axes = {IntAxis("children", "0,100,1000,10000", 0, 1000000, "child mounts").Alias("C"),
                 EnumAxis("method", "bind,open_tree", kMethods)},
        .run = BindChildrenScan,
        .claims = {claims::Linear("real_time", "children", 0.9, 0, 1e9, "ns/child",
                                  "a non-recursive bind or clone costs time linear in the "
                                  "source's child mounts")},
    });

}  // namespace mntscale
