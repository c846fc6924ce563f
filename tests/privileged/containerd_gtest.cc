// containerd as a real runtime (issue 24): a daemon owned by the run, inside
// the runtime supervisor's namespaces, with every file on the sandbox tmpfs;
// its containers run, are entered and read; teardown leaves no process, no
// mount and no cgroup, and the host's mount table is as it was. Fidelity: the
// farm built from the profile captured from a containerd container holds the
// same table. Run as root; SKIP with the reason when containerd is not
// installed or cannot run here.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "mntscale/runtimes/containerd.h"
#include "mntscale/model/farm.h"
#include "mntscale/runtimes/runtime.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/model/scratch.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

// The host's mount namespace, opened before any test enters the sandbox.
const int g_host_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);

std::string HostMountinfo() {
  std::string text;
  std::thread([&] {  // a thread of its own fs_struct, in the host's namespace
    if (unshare(CLONE_FS) == 0 && setns(g_host_ns, CLONE_NEWNS) == 0) {
      text = ReadFile("/proc/thread-self/mountinfo");
    }
  })
      .join();
  return text;
}
const std::string g_host_before = ReadFile("/proc/self/mountinfo");


// Processes (this PID namespace's view) whose command line names `needle`.
std::vector<std::string> ProcessesNaming(const std::string& needle) {
  std::vector<std::string> found;
  DIR* d = opendir("/proc");
  while (dirent* e = d ? readdir(d) : nullptr) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::string cmd;
    if (!TryReadFile(std::string("/proc/") + e->d_name + "/cmdline", &cmd)) continue;
    for (char& c : cmd) c = c ? c : ' ';
    if (cmd.find(needle) != std::string::npos) found.push_back(std::string(e->d_name) + ": " + cmd);
  }
  if (d) closedir(d);
  return found;
}

// Cgroup directories named prefix* (at any depth up to 2) on every cgroup mount.
std::vector<std::string> CgroupsNamed(const std::string& prefix) {
  std::vector<std::string> found;
  for (const MountInfoEntry& m : ParseMountinfo(ThreadMountinfo())) {
    if (m.fstype != "cgroup" && m.fstype != "cgroup2") continue;
    DIR* d = opendir(m.mount_point.c_str());
    while (dirent* e = d ? readdir(d) : nullptr) {
      if (strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0) {
        found.push_back(m.mount_point + "/" + e->d_name);
      }
    }
    if (d) closedir(d);
  }
  return found;
}

class ContainerdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for real mounts and runtimes";
    if (std::string m = ContainerdMissingBinary(); !m.empty()) {
      GTEST_SKIP() << "containerd: '" << m << "' is not installed (scripts/setup.sh installs it)";
    }
    Sandbox::Enter();
  }
};

TEST_F(ContainerdTest, FarmOnTheSandboxRunsContainersAndLeavesNothing) {
  const std::string dir = Sandbox::Current().workdir() + "/ctrd-farm";
  const Image& img = GetImage({2, 2, 1, 0});
  std::string ns;
  ino_t sup_ns = 0;
  {
    std::unique_ptr<ContainerdFarm> farm;
    try {
      farm = std::make_unique<ContainerdFarm>(dir, 2);
    } catch (const Unsupported& e) {
      GTEST_SKIP() << e.what();
    }
    ns = farm->ns();
    EXPECT_EQ(ns.rfind(CgroupPrefix(), 0), 0u) << ns;
    std::vector<Container> cs;
    for (int i = 0; i < 3; ++i) cs.push_back(farm->Create(i, img));

    // ctr says each task runs; each table is read from inside.
    auto tasks = farm->Tasks();
    EXPECT_EQ(tasks.size(), 3u);
    for (const auto& [id, status] : tasks) EXPECT_EQ(status, "RUNNING") << id;
    for (const Container& c : cs) {
      auto mounts = ReadNamespaceMounts(c.ns_fd);
      EXPECT_EQ(static_cast<int>(mounts.size()), c.mounts);
      EXPECT_GE(c.mounts, 10);
      ASSERT_FALSE(mounts.empty());
      EXPECT_EQ(mounts[0].mount_point, "/");
      EXPECT_EQ(mounts[0].fstype, "overlay");  // the snapshotter's rootfs
      EXPECT_EQ(c.upper.rfind(dir + "/root/io.containerd.snapshotter.v1.overlayfs/", 0), 0u)
          << c.upper;
    }
    EXPECT_EQ(farm->CountProcesses("containerd-shim"), 3);

    // Every file the daemon holds open is on the sandbox (or no path at all:
    // sockets, pipes, /dev/null); its sockets and the shims' are there.
    std::vector<std::string> outside;
    std::vector<std::string> shim_sockets;
    OnPrivateThread([&] {
      Check(setns(farm->mount_ns(), CLONE_NEWNS), "setns", "containerd's namespace");
      const std::string fds = "/proc/" + std::to_string(farm->daemon_pid()) + "/fd";
      DIR* d = opendir(fds.c_str());
      ASSERT_NE(d, nullptr) << fds;
      while (dirent* e = readdir(d)) {
        char buf[4096];
        ssize_t n = readlink((fds + "/" + e->d_name).c_str(), buf, sizeof buf - 1);
        if (n <= 0 || buf[0] != '/') continue;
        std::string path(buf, n);
        if (path != "/dev/null" && path.rfind(dir + "/", 0) != 0) outside.push_back(path);
      }
      closedir(d);
      // In containerd's namespace /run is the sandbox's dir/run: the shims'
      // sockets (always /run/containerd/s/) are on the sandbox.
      if (DIR* s = opendir("/run/containerd/s")) {
        while (dirent* e = readdir(s)) {
          if (e->d_name[0] != '.') shim_sockets.push_back(e->d_name);
        }
        closedir(s);
      }
      struct stat st;
      EXPECT_EQ(stat((dir + "/run/containerd/s").c_str(), &st), 0);
      // the snapshots are mounted here, one overlay per container
      int overlays = 0;
      for (const MountInfoEntry& m : ParseMountinfo(ThreadMountinfo())) {
        overlays += m.fstype == "overlay" && m.mount_point.rfind(dir + "/state/", 0) == 0;
      }
      EXPECT_EQ(overlays, 3);
      if (fstat(farm->mount_ns(), &st) == 0) sup_ns = st.st_ino;
    });
    EXPECT_TRUE(outside.empty()) << "containerd holds files outside the sandbox: "
                                 << testing::PrintToString(outside);
    EXPECT_EQ(shim_sockets.size(), 3u);
    for (const char* f :
         {"/containerd.sock", "/config.toml", "/root/io.containerd.metadata.v1.bolt/meta.db"}) {
      EXPECT_EQ(access((dir + f).c_str(), F_OK), 0) << dir + f;
    }
    // Nothing of it on the sandbox's own /run, nor on the host's.
    for (const std::string& s : shim_sockets) {
      EXPECT_NE(access(("/run/containerd/s/" + s).c_str(), F_OK), 0) << s;
    }

    farm->Delete(cs[0]);
    EXPECT_EQ(farm->Tasks().count("f0"), 0u);
    OnPrivateThread([&] {
      Check(setns(farm->mount_ns(), CLONE_NEWNS), "setns", "containerd's namespace");
      int overlays = 0;
      for (const MountInfoEntry& m : ParseMountinfo(ThreadMountinfo())) {
        overlays += m.fstype == "overlay" && m.mount_point.rfind(dir + "/state/", 0) == 0;
      }
      EXPECT_EQ(overlays, 2) << "Delete left its snapshot mounted";
    });
    farm->Shutdown();
    EXPECT_EQ(farm->daemon_pid(), -1);
  }
  // No containerd or shim process left, no process in its mount namespace
  // (so the namespace, and every mount in it, is gone), no cgroup.
  EXPECT_TRUE(ProcessesNaming(dir + "/").empty())
      << testing::PrintToString(ProcessesNaming(dir + "/"));
  ASSERT_NE(sup_ns, 0u);
  DIR* d = opendir("/proc");
  while (dirent* e = d ? readdir(d) : nullptr) {
    struct stat st;
    if (stat((std::string("/proc/") + e->d_name + "/ns/mnt").c_str(), &st) == 0) {
      EXPECT_NE(st.st_ino, sup_ns) << "process " << e->d_name << " is in containerd's namespace";
    }
  }
  if (d) closedir(d);
  std::vector<std::string> cgs;
  for (int i = 0; i < 100; ++i) {  // the janitor works after the supervisor is gone
    cgs = CgroupsNamed(ns);
    if (cgs.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(cgs.empty()) << testing::PrintToString(cgs);
  auto host = HostMountinfo();
  EXPECT_EQ(g_host_before, host) << "the host's mount table changed";
}

// The profile captured from containerd's container builds the same table.
TEST_F(ContainerdTest, FarmFromCaptureMatchesContainerdMountForMount) {
  CaptureResult cap;
  try {
    cap = CaptureRuntimeMounts({RuntimeKind::kContainerd, "", 2});
  } catch (const Unsupported& e) {
    GTEST_SKIP() << e.what();
  }
  EXPECT_EQ(cap.runtime.rfind("containerd ", 0), 0u) << cap.runtime;
  auto want = MountKeys(cap.mounts);
  EXPECT_GE(want.size(), 10u);
  Profile p = ProfileFromCapture(cap, "live-containerd", 2);
  p.depth = 2;
  p.files_per_dir = 1;
  const Image& img = GetImage({p.layers, p.depth, p.files_per_dir, p.binds});
  {
    Farm farm(p, img, 1);
    farm.Grow(1);
    EXPECT_EQ(farm.containers()[0].mounts, p.MountsPerContainer());
    auto got = MountKeys(ReadNamespaceMounts(farm.containers()[0].ns_fd));
    EXPECT_EQ(want, got) << MountKeysDiff(want, got);
  }
  // --farm containerd: containerd's own containers hold the captured table.
  Farm farm(p, img, 1,
            OpenRealRuntime(RuntimeKind::kContainerd, Sandbox::Current().workdir() + "/rt-farm"));
  farm.Grow(2);
  ASSERT_EQ(farm.size(), 2);
  for (const Container& c : farm.containers()) {
    auto got = MountKeys(ReadNamespaceMounts(c.ns_fd));
    EXPECT_EQ(want, got) << MountKeysDiff(want, got);
  }
  farm.Teardown();
  auto host = HostMountinfo();
  EXPECT_EQ(g_host_before, host) << "the host's mount table changed";
}

TEST(ContainerdInput, BadInputIsAUsageErrorBeforeAnythingIsStarted) {
  EXPECT_THROW(ValidateCaptureRequest({RuntimeKind::kContainerd, "/etc/hostname", 1}), UsageError);
  EXPECT_THROW(ValidateCaptureRequest({RuntimeKind::kContainerd, "", 0}), UsageError);
  EXPECT_THROW(ParseFarmBackend("containerd2"), UsageError);
  EXPECT_THROW(ParseRuntime("containerd2"), UsageError);
  EXPECT_THROW(ValidateCaptureRequest({RuntimeKind::kContainerd, "", 1, "/etc/hostname"}), UsageError);
  EXPECT_THROW(ValidateCaptureRequest({RuntimeKind::kContainerd, "", 1, "/etc"}), UsageError);
  EXPECT_THROW(ValidateCaptureRequest({RuntimeKind::kRunc, "", 1, "/etc/hostname"}), UsageError);
  const std::string path = getenv("PATH") ? getenv("PATH") : "";
  setenv("PATH", "/nonexistent", 1);
  EXPECT_THROW(CheckFarmBackend(RuntimeKind::kContainerd), UsageError);
  EXPECT_THROW(ValidateCaptureRequest({RuntimeKind::kContainerd, "", 1}), UsageError);
  if (geteuid() == 0) {  // refused before the supervisor or any directory is made
    const std::string dir = Sandbox::Enter().workdir() + "/ctrd-missing";
    EXPECT_THROW(ContainerdFarm{dir}, Unsupported);
    EXPECT_NE(access(dir.c_str(), F_OK), 0);
  }
  setenv("PATH", path.c_str(), 1);
}

}  // namespace
}  // namespace mntscale
