// Real runtimes (issue 16): the farm's container built from a runtime profile
// matches the runtime's own container mount for mount (mount point, fs type,
// ro/rw, propagation; IDs and sources ignored). Run as root; a runtime that
// cannot run on this host is a SKIP with its reason.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "mntscale/model/farm.h"
#include "mntscale/runtimes/runtime.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {


// The mount table of one container the farm builds from p.
std::vector<std::string> FarmKeys(Profile p) {
  p.layers = 2;  // layers are not visible mounts; keep the image small
  p.depth = 2;
  p.files_per_dir = 1;
  const Image& img = GetImage({p.layers, p.depth, p.files_per_dir, p.binds});
  Farm farm(p, img, 1);
  farm.Grow(1);
  EXPECT_EQ(farm.containers()[0].mounts, p.MountsPerContainer()) << p.name;
  return MountKeys(ReadNamespaceMounts(farm.containers()[0].ns_fd));
}

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root for real mounts and runtimes";
    Sandbox::Enter();
  }
  // A capture, or a SKIP naming why this runtime cannot run here.
  bool Capture(const std::string& runtime, const std::string& spec, CaptureResult* cap) {
    if (FindRuntime(runtime).empty()) {
      ADD_FAILURE() << runtime << " is not installed; scripts/setup.sh installs it";
      return false;
    }
    try {
      *cap = CaptureRuntimeMounts({ParseRuntime(runtime), spec, 2});
      return true;
    } catch (const Unsupported& e) {
      skip_ = e.what();
      return false;
    }
  }
  std::string skip_;
};

// The shipped profiles reproduce the tables they were captured from.
TEST_F(RuntimeTest, ShippedProfilesReproduceTheirCapturedTable) {
  for (const char* name : {"runc-default", "k8s-containerd", "containerd-default"}) {
    Profile p = Profile::Load(name);
    ASSERT_TRUE(p.captured.contains("mounts")) << name << " has no captured table";
    auto want = MountKeys(p.captured["mounts"]);
    EXPECT_EQ(static_cast<int>(want.size()), p.MountsPerContainer()) << name;
    auto got = FarmKeys(p);
    EXPECT_EQ(want, got) << name << MountKeysDiff(want, got);
  }
}

// Live: runc's default container now, and the farm built from its capture.
TEST_F(RuntimeTest, FarmMatchesRuncDefaultMountForMount) {
  CaptureResult cap;
  if (!Capture("runc", "", &cap)) {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    return;
  }
  auto want = MountKeys(cap.mounts);
  EXPECT_GE(want.size(), 10u);
  Profile p = ProfileFromCapture(cap, "live-runc", 2);
  auto got = FarmKeys(p);
  EXPECT_EQ(want, got) << MountKeysDiff(want, got);
  // And the shipped runc-default, where this host has the layout it was
  // captured on (the cgroup hierarchy decides the cgroup mounts).
  Profile shipped = Profile::Load("runc-default");
  if (shipped.cgroup == p.cgroup) {
    auto ship = MountKeys(shipped.captured["mounts"]);
    EXPECT_EQ(ship, want) << "runc-default differs from runc here" << MountKeysDiff(ship, want);
  }
}

// Live: runc given containerd's pod-container spec (profiles/specs/).
TEST_F(RuntimeTest, FarmMatchesRuncWithContainerdPodSpec) {
  CaptureResult cap;
  if (!Capture("runc", std::string(MNTSCALE_SOURCE_DIR) + "/profiles/specs/k8s-containerd.json",
               &cap)) {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    return;
  }
  auto want = MountKeys(cap.mounts);
  auto got = FarmKeys(ProfileFromCapture(cap, "live-k8s", 2));
  EXPECT_EQ(want, got) << MountKeysDiff(want, got);
}

TEST_F(RuntimeTest, FarmMatchesCrunDefaultOrSaysWhyNot) {
  CaptureResult cap;
  if (!Capture("crun", "", &cap)) {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    return;
  }
  auto want = MountKeys(cap.mounts);
  auto got = FarmKeys(ProfileFromCapture(cap, "live-crun", 2));
  EXPECT_EQ(want, got) << MountKeysDiff(want, got);
}

// --farm runc: the runtime's own containers, entered through the held init,
// hold the table the built-in farm builds from runc's capture.
TEST_F(RuntimeTest, RuntimeFarmContainersMatchTheBuiltInFarm) {
  CaptureResult cap;
  if (!Capture("runc", "", &cap)) {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    return;
  }
  Profile p = ProfileFromCapture(cap, "live-runc", 2);
  p.depth = 2;
  p.files_per_dir = 1;
  const Image& img = GetImage({p.layers, p.depth, p.files_per_dir, p.binds});
  Farm farm(p, img, 1,
            OpenRealRuntime(RuntimeKind::kRunc, Sandbox::Current().workdir() + "/rt-farm"));
  farm.Grow(2);
  ASSERT_EQ(farm.size(), 2);
  for (const Container& c : farm.containers()) {
    EXPECT_EQ(c.mounts, p.MountsPerContainer());
    auto got = MountKeys(ReadNamespaceMounts(c.ns_fd));
    EXPECT_EQ(MountKeys(cap.mounts), got) << MountKeysDiff(MountKeys(cap.mounts), got);
  }
  farm.Shrink(1);
  EXPECT_EQ(farm.size(), 1);
  farm.Teardown();
}

// Parallel runtime commands: with parallel 2 the supervisor runs two at once,
// each with its own exit code and output; one at a time with parallel 1.
// Overlap is proven by events, not wall time: each command leaves a marker and
// waits (at most `wait_ticks` x 50 ms) for the other's. Both see each other
// only if both ran at once; run one at a time, the first can never see the
// second's. `saw` says which commands saw the other's marker.
void TwoMarkers(int parallel, int wait_ticks, std::vector<std::pair<int, std::string>>* got,
                std::vector<bool>* saw) {
  static int serial = 0;
  const std::string dir = Sandbox::Current().workdir() + "/cmd" + std::to_string(serial++);
  RuntimeFarm rt(RuntimeKind::kRunc, dir, parallel);
  got->assign(2, {});
  std::vector<std::thread> th;
  for (int i = 0; i < 2; ++i) {
    th.emplace_back([&, i] {
      std::string out;
      const std::string me = dir + "/marker" + std::to_string(i);
      const std::string other = dir + "/marker" + std::to_string(1 - i);
      const std::string cmd = "touch " + me + "; n=0; while [ ! -e " + other + " ] && [ $n -lt " +
                              std::to_string(wait_ticks) + " ]; do sleep 0.05; n=$((n+1)); done; " +
                              "[ -e " + other + " ] && touch " + me + ".saw; echo out" +
                              std::to_string(i) + "; exit " + std::to_string(3 + i);
      int rc = rt.Command({"sh", "-c", cmd}, &out);
      (*got)[i] = {rc, out};
    });
  }
  for (auto& t : th) t.join();
  saw->assign(2, false);
  struct stat st;
  for (int i = 0; i < 2; ++i) {
    (*saw)[i] = stat((dir + "/marker" + std::to_string(i) + ".saw").c_str(), &st) == 0;
  }
}

TEST_F(RuntimeTest, ParallelCommandsOverlapEachWithItsOwnResult) {
  if (FindRuntime("runc").empty()) GTEST_SKIP() << "runc is not installed";
  std::vector<std::pair<int, std::string>> got;
  std::vector<bool> saw;
  // 600 ticks (30 s) is only reached when the commands do not overlap.
  TwoMarkers(2, 600, &got, &saw);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(got[i].first, 3 + i);
    EXPECT_EQ(got[i].second, "out" + std::to_string(i) + "\n");
    EXPECT_TRUE(saw[i]) << "command " << i << " never saw the other running (parallel=2)";
  }
  TwoMarkers(1, 20, &got, &saw);
  EXPECT_FALSE(saw[0] && saw[1]) << "parallel=1 ran two commands at once";
  EXPECT_EQ(got[1].first, 4);
}

TEST(RuntimeInput, BadInputIsAUsageErrorBeforeAnythingIsBuilt) {
  EXPECT_THROW(ParseRuntime("docker"), UsageError);
  EXPECT_THROW(ValidateCaptureRequest({RuntimeKind::kRunc, "/nonexistent/config.json", 1}), UsageError);
  EXPECT_THROW(ValidateCaptureRequest({RuntimeKind::kRunc, "", 0}), UsageError);
  EXPECT_THROW(ParseFarmBackend("podman"), UsageError);
  EXPECT_EQ(ParseFarmBackend("builtin"), std::nullopt);
  EXPECT_EQ(ParseFarmBackend("crun"), RuntimeKind::kCrun);
}

}  // namespace
}  // namespace mntscale
