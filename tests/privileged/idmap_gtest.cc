// The mechanisms churn_interference, container_start_storm and the table
// scenarios build on, checked against the kernel: the per-layer-idmap
// strategy really makes idmapped mounts (as the kernel reports them), and a
// process-mode worker really runs in its container's mount namespace.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <sstream>

#include "mntscale/model/farm.h"
#include "mntscale/model/idmap.h"
#include "mntscale/run/runner.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/model/scratch.h"
#include "mntscale/sys/sys.h"
#include "mntscale/run/topology.h"

namespace mntscale {
namespace {

#define REQUIRE_ROOT() \
  if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_SYS_ADMIN) for real mounts"

// Field 6 of a mountinfo line: the per-mount options ("rw,relatime,idmapped").
std::string MountOptions(const std::vector<std::string>& lines, const std::string& point) {
  std::string found = "<no mount>";
  for (const std::string& line : lines) {
    std::istringstream ss(line);
    std::string id, parent, dev, root, mp, opts;
    ss >> id >> parent >> dev >> root >> mp >> opts;
    if (mp == point) found = opts;
  }
  return found;
}

// statmount's view of the mount at path: its mnt_attr (MOUNT_ATTR_*).
uint64_t StatmountAttr(const std::string& path) {
  struct statx stx = {};
  constexpr unsigned kStatxMntIdUnique = 0x4000;
  Check(statx(AT_FDCWD, path.c_str(), 0, kStatxMntIdUnique, &stx), "statx", path);
  MntIdReq req = {};
  req.size = kMntIdReqSize0;
  req.mnt_id = stx.stx_mnt_id;
  req.param = kStatmountMntBasic;
  alignas(8) char buf[4096];
  Check(StatMount(&req, buf, sizeof buf, 0), "statmount", path);
  return reinterpret_cast<StatMountHead*>(buf)->mnt_attr;
}

// What container_start_storm does per start under per-layer-idmap, through
// the same helpers: each layer cloned, idmapped and attached, the overlay
// mounted on them, the temporary mounts dropped.
TEST(ScenariosA, PerLayerIdmapMakesIdmappedMounts) {
  REQUIRE_ROOT();
  Sandbox::Enter();
  ScratchNs ns;
  std::string skip;
  ns.Run([&] {
    OverlayLayers layers = MakeOverlayLayers("/layers", 3, 2);
    int userns = -1;
    try {
      userns = ContainerUserNamespace();
    } catch (const Unsupported& u) {
      skip = u.what();
      return;
    }
    MkdirP("/idm");
    std::vector<std::string> mounted;
    std::atomic<long> ops{0};
    std::string lower;
    try {
      lower = IdmapLayers(IdmapStrategy::kPerLayer, layers.dirs, "/idm", userns, &mounted, &ops);
    } catch (const Unsupported& u) {
      skip = u.what();
      return;
    }
    ASSERT_EQ(mounted.size(), 3u);
    EXPECT_EQ(ops.load(), 3 * 3);  // open_tree, mount_setattr, move_mount per layer
    std::vector<std::string> info = ThreadMountinfo();
    for (const std::string& m : mounted) {
      EXPECT_NE(MountOptions(info, m).find("idmapped"), std::string::npos)
          << m << ": " << MountOptions(info, m);
      if (HaveStatmount()) {
        EXPECT_TRUE(StatmountAttr(m) & kMountAttrIdmap) << m;
      }
    }
    // The source layers themselves stay plain.
    EXPECT_EQ(MountOptions(info, "/").find("idmapped"), std::string::npos);
    if (HaveStatmount()) EXPECT_FALSE(StatmountAttr("/layers") & kMountAttrIdmap);

    // Files seen through an idmapped layer belong to the mapped range.
    struct stat st;
    ASSERT_EQ(stat((mounted[0] + "/" + layers.file).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 100000u) << "map 0 100000 65536 applied to a root-owned file";

    // The overlay takes them as lowerdirs and keeps working once they go.
    MkdirP("/c/upper");
    MkdirP("/c/work");
    MkdirP("/c/root");
    std::string opts = "lowerdir=" + lower + ",upperdir=/c/upper,workdir=/c/work";
    ASSERT_EQ(mount("overlay", "/c/root", "overlay", 0, opts.c_str()), 0)
        << ErrnoName(errno) << " " << opts;
    UnmountAll(mounted, &ops);
    info = ThreadMountinfo();
    for (const std::string& m : mounted) EXPECT_EQ(MountOptions(info, m), "<no mount>") << m;
    EXPECT_EQ(stat(("/c/root/" + layers.file).c_str(), &st), 0) << ErrnoName(errno);
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

TEST(ScenariosA, ParentIdmapMakesOneIdmappedMount) {
  REQUIRE_ROOT();
  Sandbox::Enter();
  ScratchNs ns;
  std::string skip;
  ns.Run([&] {
    OverlayLayers layers = MakeOverlayLayers("/layers", 4, 1);
    MkdirP("/idm");
    std::vector<std::string> mounted;
    std::atomic<long> ops{0};
    try {
      IdmapLayers(IdmapStrategy::kParent, layers.dirs, "/idm", ContainerUserNamespace(), &mounted, &ops);
    } catch (const Unsupported& u) {
      skip = u.what();
      return;
    }
    ASSERT_EQ(mounted.size(), 1u);
    EXPECT_EQ(ops.load(), 3);
    int idmapped = 0;
    for (const std::string& line : ThreadMountinfo())
      idmapped += line.find("idmapped") != std::string::npos;
    EXPECT_EQ(idmapped, 1);
  });
  if (!skip.empty()) GTEST_SKIP() << skip;
}

// A process-mode worker's setup hook records the inode of its own mount
// namespace; it must be the container's, not the harness's.
TEST(ScenariosA, ProcessModeWorkerRunsInItsContainerNamespace) {
  REQUIRE_ROOT();
  Sandbox::Enter();
  Profile profile;
  profile.layers = 2;
  Farm farm(profile,
            GetImage({profile.layers, profile.depth, profile.files_per_dir, profile.binds}), 1);
  farm.Grow(2);
  struct Seen {
    std::atomic<uint64_t> ns_ino[2];
    std::atomic<int> pid[2];
  };
  void* mem =
      mmap(nullptr, sizeof(Seen), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  Seen* seen = new (mem) Seen();
  Topology topo = Topology::Host();
  std::vector<Slot> slots = PlanPlacement(topo, PlacementSpec::Parse("compact,share"), 2);
  RunSpec spec;
  spec.mode = WorkerMode::kProcess;
  spec.warmup_s = 0.01;
  spec.window_s = 0.05;
  spec.windows = 1;
  for (int i = 0; i < 2; ++i) {
    WorkerPlan w;
    w.slot = slots[i];
    w.container = &farm.containers()[i];
    w.op = FindOp("stat");
    w.path = farm.image().deep_path;
    w.setup = [seen](OpContext& c) {
      struct stat st;
      Check(fstatat(Sandbox::Enter().proc_fd(), "thread-self/ns/mnt", &st, 0), "stat",
            "/proc/thread-self/ns/mnt");
      seen->ns_ino[c.worker].store(st.st_ino);
      seen->pid[c.worker].store(getpid());
    };
    spec.workers.push_back(std::move(w));
  }
  RunResult r = mntscale::Run(spec);
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_GT(r.ops, 0u);
  struct stat own;
  ASSERT_EQ(fstatat(Sandbox::Enter().proc_fd(), "thread-self/ns/mnt", &own, 0), 0);
  for (int i = 0; i < 2; ++i) {
    struct stat want;
    ASSERT_EQ(fstat(farm.containers()[i].ns_fd, &want), 0);
    EXPECT_EQ(seen->ns_ino[i].load(), want.st_ino) << "worker " << i;
    EXPECT_NE(seen->ns_ino[i].load(), own.st_ino) << "worker " << i << " stayed in our namespace";
    EXPECT_NE(seen->pid[i].load(), getpid()) << "worker " << i << " is not a process";
    EXPECT_GT(seen->pid[i].load(), 0);
  }
  EXPECT_NE(seen->pid[0].load(), seen->pid[1].load());
  munmap(mem, sizeof(Seen));
}

}  // namespace
}  // namespace mntscale
