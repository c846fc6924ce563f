// Real namespaces and mounts: the farm builds what it says, and nothing
// reaches the host. Run as root.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "mntscale/model/farm.h"
#include "mntscale/run/runner.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/model/scratch.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

bool Privileged(std::string* why) {
  if (geteuid() != 0) {
    *why = "needs root (CAP_SYS_ADMIN) for real mounts";
    return false;
  }
  return true;
}

#define REQUIRE_ROOT()                          \
  do {                                          \
    std::string why;                            \
    if (!Privileged(&why)) GTEST_SKIP() << why; \
  } while (0)

// Runs fn on a thread that has entered container c.
template <typename Fn>
void InContainer(const Container& c, Fn fn) {
  std::thread t([&] {
    EnterContainer(c);
    fn();
  });
  t.join();
}

// Field 5 of a mountinfo line is the mount point; the fs type follows " - ".
std::pair<std::string, std::string> PointAndType(const std::string& line) {
  std::istringstream ss(line);
  std::string f[5];
  for (auto& x : f) ss >> x;
  auto dash = line.find(" - ");
  std::istringstream rest(line.substr(dash + 3));
  std::string type;
  rest >> type;
  return {f[4], type};
}

// What the default profile puts in a container's namespace, counted by hand
// rather than by Profile::MountsPerContainer(): the overlay root, /proc, /dev,
// /dev/shm, /dev/mqueue and the three /etc binds.
constexpr int kMountsPerContainer = 8;

class FarmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!Privileged(&why)) GTEST_SKIP() << why;
    Sandbox::Enter();
    profile_.layers = 5;
    profile_.depth = 4;
    profile_.files_per_dir = 2;
    image_ = &GetImage({profile_.layers, profile_.depth, profile_.files_per_dir, profile_.binds});
  }
  Profile profile_;
  const Image* image_ = nullptr;
};

TEST_F(FarmTest, EachNamespaceHoldsExactlyTheExpectedMounts) {
  Farm farm(profile_, *image_, 2);
  farm.Grow(20);
  ASSERT_EQ(farm.size(), 20);
  for (const Container& c : farm.containers()) {
    EXPECT_EQ(c.mounts, kMountsPerContainer);
    InContainer(c, [&] {
      std::vector<std::string> lines = ThreadMountinfo();
      ASSERT_EQ(static_cast<int>(lines.size()), kMountsPerContainer);
      std::map<std::string, std::string> by_point;
      for (const auto& l : lines) by_point.insert(PointAndType(l));
      EXPECT_EQ(by_point["/"], "overlay");
      EXPECT_EQ(by_point["/proc"], "proc");
      EXPECT_EQ(by_point["/dev"], "tmpfs");
      EXPECT_EQ(by_point["/dev/shm"], "tmpfs");
      EXPECT_EQ(by_point["/dev/mqueue"], "mqueue");
      EXPECT_EQ(by_point.count("/etc/hosts"), 1u);
      EXPECT_EQ(by_point.count("/etc/resolv.conf"), 1u);
      EXPECT_EQ(by_point.count("/etc/hostname"), 1u);
    });
  }
}

TEST_F(FarmTest, BottomLayerVisibleAndWritesLandInUpper) {
  for (const char* api : {"mount", "fsmount"}) {
    Profile p = profile_;
    p.overlay_api = ParseEnum(kOverlayApis, api, "overlay_api");
    Farm farm(p, *image_, 1);
    farm.Grow(2);
    const Container& c = farm.containers()[1];
    InContainer(c, [&] {
      std::string text;
      ASSERT_TRUE(TryReadFile(image_->deep_path, &text)) << api;
      EXPECT_EQ(text, "mntscale\n");
      WriteFile("/tmp/written-by-test", "hello");
    });
    std::string via_upper;
    EXPECT_TRUE(TryReadFile(c.upper + "/tmp/written-by-test", &via_upper)) << api;
    EXPECT_EQ(via_upper, "hello");
    // The lower layer is untouched.
    struct stat st;
    EXPECT_NE(stat((image_->layer_dirs[0] + "/tmp/written-by-test").c_str(), &st), 0);
  }
}

TEST_F(FarmTest, WorkersSetnsIntoEachContainer) {
  Farm farm(profile_, *image_, 2);
  farm.Grow(20);
  for (const Container& c : farm.containers()) {
    struct stat want;
    ASSERT_EQ(fstat(c.ns_fd, &want), 0);
    InContainer(c, [&] {
      struct stat got;
      ASSERT_EQ(fstatat(Sandbox::Enter().proc_fd(), "thread-self/ns/mnt", &got, 0), 0);
      EXPECT_EQ(got.st_ino, want.st_ino) << "container " << c.index;
    });
  }
}

TEST_F(FarmTest, RunnerWorkersRunInTheirContainers) {
  Farm farm(profile_, *image_, 2);
  farm.Grow(4);
  for (WorkerMode mode : {WorkerMode::kThread, WorkerMode::kProcess}) {
    RunSpec spec;
    spec.mode = mode;
    spec.warmup_s = 0.01;
    spec.window_s = 0.05;
    spec.windows = 2;
    Topology topo = Topology::Host();
    auto slots = PlanPlacement(topo, PlacementSpec::Parse("spread,share"), 4);
    for (int i = 0; i < 4; ++i) {
      WorkerPlan w;
      w.slot = slots[i];
      w.container = &farm.containers()[i];
      w.op = FindOp("stat");
      w.path = image_->deep_path;  // exists only inside the containers
      spec.workers.push_back(w);
    }
    RunResult r = ::mntscale::Run(spec);
    EXPECT_TRUE(r.error.empty()) << r.error;
    EXPECT_GT(r.ops, 0u) << ModeName(mode);
    for (const auto& w : r.workers) EXPECT_GT(w.ops, 0u) << "worker " << w.worker;
  }
}

TEST_F(FarmTest, TeardownReturnsMountCountToStart) {
  // The census reads each namespace this process holds, the farm's fd-only
  // ones included, from inside it; a leaked container fd keeps its namespace
  // and its mounts in the count. The base namespace every farm copies from
  // is kept for the process's life: made first, it is in both counts.
  BaseNamespace();
  const MountCensus before = OwnNamespaceMounts();
  {
    Farm farm(profile_, *image_, 2);
    farm.Grow(20);
    const MountCensus built = OwnNamespaceMounts();
    EXPECT_EQ(built.namespaces, before.namespaces + 20);
    EXPECT_EQ(built.mounts, before.mounts + 20 * kMountsPerContainer);
    long in_containers = 0;
    for (const Container& c : farm.containers()) {
      InContainer(c, [&] { in_containers += CountOwnMounts(); });
    }
    EXPECT_EQ(in_containers, 20 * kMountsPerContainer);
    EXPECT_EQ(farm.MountsHeld(), in_containers);
    farm.Teardown();
  }
  const MountCensus after = OwnNamespaceMounts();
  EXPECT_EQ(after.namespaces, before.namespaces) << "namespaces still held after teardown";
  EXPECT_EQ(after.mounts, before.mounts);
  // The mounts counted are the harness's own namespace and the containers'
  // (above): the freeing of struct mounts after the RCU grace period is a
  // system-wide slab figure, which the run reports (slab_after), not a test.
}

TEST_F(FarmTest, SharedNamespaceHoldsEveryContainer) {
  Profile p = profile_;
  p.ns_mode = NsMode::kShared;
  Farm farm(p, *image_, 2);
  farm.Grow(5);
  InContainer(farm.containers()[3], [&] {
    std::string text;
    EXPECT_TRUE(TryReadFile(image_->deep_path, &text));
  });
  std::thread t([&] {
    Check(unshare(CLONE_FS), "unshare", "CLONE_FS");
    Check(setns(farm.containers()[0].ns_fd, CLONE_NEWNS), "setns", "shared");
    // base tmpfs + 5 containers x 8 mounts
    EXPECT_EQ(static_cast<int>(ThreadMountinfo().size()), 1 + 5 * kMountsPerContainer);
  });
  t.join();
  // Regression: MountsHeld said 0 in shared mode (the mitigations scenario's
  // shared-ns variant recorded mounts_held: 0).
  EXPECT_EQ(farm.MountsHeld(), 1 + 5 * p.MountsPerContainer());
}

// Regression: Grow stopped its clock only after a progress loop that slept
// 100 ms between checks, so every build read at least 0.1 s. A few minimal
// containers build in milliseconds; the figure must say so.
TEST_F(FarmTest, GrowIsTimedByItsBuildersNotByTheProgressPoller) {
  Profile p = profile_;
  p.layers = 1;
  p.binds = 0;
  const Image& img = GetImage({p.layers, p.depth, p.files_per_dir, p.binds});
  Farm farm(p, img, 2);
  // The last progress call comes after every builder has stamped its end, and
  // it takes a while: a clock stopped by the poller would include it, a clock
  // stopped by the builders cannot. An ordering of events, not a threshold.
  using Clock = std::chrono::steady_clock;
  std::vector<Clock::time_point> call_starts;
  const auto t0 = Clock::now();
  double grow_s = farm.Grow(4, [&](int done, int total) {
    call_starts.push_back(Clock::now());
    if (done == total) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  });
  ASSERT_GE(call_starts.size(), 1u);
  const double last_call_s = std::chrono::duration<double>(call_starts.back() - t0).count();
  EXPECT_LE(grow_s, last_call_s) << "grow " << grow_s << " s includes the progress poller";
  EXPECT_GT(grow_s, 0);
}

// True once `pid`'s namespace holds more mounts than the host's `host_table`
// and its builder threads run: read from the child itself, not from a
// system-wide slab count.
bool Building(pid_t pid, const std::string& host_table) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::string text;
  if (!TryReadFile(proc + "/mountinfo", &text)) return false;
  if (std::count(text.begin(), text.end(), '\n') <=
      std::count(host_table.begin(), host_table.end(), '\n')) {
    return false;
  }
  std::string status;
  if (!TryReadFile(proc + "/status", &status)) return false;
  const size_t at = status.find("\nThreads:");
  return at != std::string::npos && std::atoi(status.c_str() + at + 9) > 1;
}

// The host side: this test never enters a sandbox itself.
TEST(HostIsolation, SigkillDuringFarmBuildLeavesHostMountTableUnchanged) {
  REQUIRE_ROOT();
  std::string before = ReadFile("/proc/self/mountinfo");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl(MNTSCALE_BINARY, MNTSCALE_BINARY, "run", "--scenario", "farm_build", "--set",
          "containers=3000", "--quiet", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill it while it is building: once its namespace holds mounts the host
  // does not have.
  std::string own_ns = "/proc/" + std::to_string(pid) + "/ns/mnt";
  struct stat host_ns;
  stat("/proc/self/ns/mnt", &host_ns);
  bool building = false;
  for (int i = 0; i < 400 && !building; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    struct stat st;
    building =
        stat(own_ns.c_str(), &st) == 0 && st.st_ino != host_ns.st_ino && Building(pid, before);
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(building) << "the child never started building";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_EQ(ReadFile("/proc/self/mountinfo"), before);
  // Its work directory is left empty, not mounted, and the next run reaps it.
  struct stat st;
  std::string dir = "/tmp/.mntscale-" + std::to_string(pid);
  if (stat(dir.c_str(), &st) == 0) {
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(rmdir(dir.c_str()), 0) << "stale work dir is not empty";
  }
}

// On a systemd host / is a shared mount: a namespace copied from it stays a
// peer, and every mount made in it would reach the host unless the sandbox
// first makes its copy private (MS_REC|MS_PRIVATE). This builds such a
// parent: a child whose own namespace has / shared, and a peer namespace that
// sees whatever the parent's peer group sees. A run there must leave both
// mount tables unchanged, while it runs and after.
TEST(HostIsolation, SharedRootParentSeesNoMountOfARun) {
  REQUIRE_ROOT();
  const std::string out = "/tmp/.mntscale-hostiso-" + std::to_string(getpid()) + ".json";
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The stand-in host: private from the real host, then / shared within it.
    if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0 ||
        mount("none", "/", nullptr, MS_REC | MS_SHARED, nullptr) < 0) {
      _exit(77);
    }
    int ready[2];
    if (pipe(ready) < 0) _exit(4);
    pid_t peer = fork();
    if (peer == 0) {  // a peer namespace: gets every mount the parent's group gets
      if (unshare(CLONE_NEWNS) < 0) _exit(4);
      (void)!write(ready[1], "r", 1);
      pause();
      _exit(0);
    }
    char c;
    if (peer < 0 || read(ready[0], &c, 1) != 1) _exit(4);
    const std::string peer_table_path = "/proc/" + std::to_string(peer) + "/mountinfo";
    const std::string parent_before = ReadFile("/proc/self/mountinfo");
    const std::string peer_before = ReadFile(peer_table_path);
    if (parent_before.find(" / / ") == std::string::npos ||
        parent_before.find("shared:") == std::string::npos) {
      _exit(77);  // / did not become shared: nothing to prove here
    }
    pid_t run = fork();
    if (run == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      execl(MNTSCALE_BINARY, MNTSCALE_BINARY, "run", "--scenario", "farm_build", "--set",
            "containers=20", "--quiet", "--out", out.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    bool leaked = false;
    int status = 0;
    for (;;) {  // checked while the run holds its mounts, then once after
      const bool ended = waitpid(run, &status, WNOHANG) == run;
      leaked = leaked || ReadFile("/proc/self/mountinfo") != parent_before ||
               ReadFile(peer_table_path) != peer_before;
      if (ended) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    kill(peer, SIGKILL);
    waitpid(peer, nullptr, 0);
    if (leaked) _exit(1);
    _exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 3);
  }
  int status = 0;
  waitpid(child, &status, 0);
  unlink(out.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "could not make / shared in a namespace";
  EXPECT_NE(WEXITSTATUS(status), 1) << "a mount of the run reached the shared parent or its peer";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the run failed (3) or the test could not set up (4)";
}

}  // namespace
}  // namespace mntscale
