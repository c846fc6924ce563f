// The mechanisms propagation_fanout and overlay_layers build on, checked on
// real mounts: N copies of a namespace really hold N peers of one shared
// mount, and an overlay of L layers really shows its bottom layer. Run as root.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "mntscale/model/sandbox.h"
#include "mntscale/model/scratch.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

class ScenariosBTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_SYS_ADMIN) for real mounts";
    Sandbox::Enter();
  }
};

bool HasMountAt(const std::vector<std::string>& mountinfo, const std::string& point) {
  return PeerGroupOf(mountinfo, point) >= 0;
}

TEST_F(ScenariosBTest, PeerGroupHasOnePeerPerNamespace) {
  constexpr int kN = 25;
  ScratchNs ns;
  ns.Run([] {
    Check(mkdir("/shared", 0755), "mkdir", "/shared");
    Check(mount("tmpfs", "/shared", "tmpfs", 0, "size=64k"), "mount", "/shared");
    Check(mount(nullptr, "/shared", nullptr, MS_SHARED, nullptr), "mount", "MS_SHARED");
    Check(mkdir("/shared/x", 0755), "mkdir", "/shared/x");
  });
  std::vector<ScratchNs> copies = ns.Copies(kN - 1);
  ASSERT_EQ(copies.size(), static_cast<size_t>(kN - 1));
  long group = 0;
  ns.Run([&] { group = PeerGroupOf(ThreadMountinfo(), "/shared"); });
  ASSERT_GT(group, 0) << "/shared is not shared in the first namespace";
  std::set<int> fds = {ns.fd()};
  for (const ScratchNs& c : copies) {
    fds.insert(c.fd());
    long g = -2;
    c.Run([&] { g = PeerGroupOf(ThreadMountinfo(), "/shared"); });
    EXPECT_EQ(g, group) << "copy " << c.container().index << " is not in the peer group";
  }
  EXPECT_EQ(fds.size(), static_cast<size_t>(kN)) << "namespaces not distinct";
  // Peers, not just equal ids: a mount in one reaches all N, an umount leaves all.
  ns.Run([] { Check(mount("tmpfs", "/shared/x", "tmpfs", 0, "size=4k"), "mount", "/shared/x"); });
  int seen = 0;
  for (const ScratchNs& c : copies) {
    c.Run([&] { seen += HasMountAt(ThreadMountinfo(), "/shared/x"); });
  }
  EXPECT_EQ(seen, kN - 1) << "the mount did not propagate to every peer";
  ns.Run([] { Check(umount2("/shared/x", 0), "umount2", "/shared/x"); });
  seen = 0;
  for (const ScratchNs& c : copies) {
    c.Run([&] { seen += HasMountAt(ThreadMountinfo(), "/shared/x"); });
  }
  EXPECT_EQ(seen, 0) << "the umount did not propagate to every peer";
}

TEST_F(ScenariosBTest, PrivateMountHasNoPeers) {
  ScratchNs ns;
  ns.Run([] {
    Check(mkdir("/p", 0755), "mkdir", "/p");
    Check(mount("tmpfs", "/p", "tmpfs", 0, "size=64k"), "mount", "/p");
  });
  std::vector<ScratchNs> copies = ns.Copies(3);
  for (const ScratchNs& c : copies) {
    long g = -2;
    c.Run([&] { g = PeerGroupOf(ThreadMountinfo(), "/p"); });
    EXPECT_EQ(g, 0);
  }
}

std::set<std::string> List(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = readdir(d)) names.insert(e->d_name);
  closedir(d);
  return names;
}

void CheckOverlay(const std::string& api, int layers) {
  ScratchNs ns;
  ns.Run([&] {
    OverlayLayers ol = MakeOverlayLayers("/l", layers, 3);
    ASSERT_EQ(ol.dirs.size(), static_cast<size_t>(layers));
    for (const char* d : {"/u", "/w", "/o"}) Check(mkdir(d, 0755), "mkdir", d);
    MountOverlayAt(ParseEnum(kOverlayApis, api, "overlay_api"), ol.dirs, "/u", "/w", "/o");
    EXPECT_EQ(ReadFile("/o/" + ol.file), "mntscale\n") << "bottom-layer file not visible";
    struct stat st;
    EXPECT_EQ(stat(("/o/" + ol.missing).c_str(), &st), -1);
    EXPECT_EQ(errno, ENOENT);
    // The deepest directory merges every layer: each contributes its own file.
    std::string dir = "/o/" + ol.file.substr(0, ol.file.rfind('/'));
    std::set<std::string> names = List(dir);
    for (int l = 0; l < layers; ++l) {
      EXPECT_TRUE(names.count("f" + std::to_string(l))) << "layer " << l << " not merged";
    }
    // The mount is an overlay.
    bool overlay = false;
    for (const std::string& line : ThreadMountinfo()) {
      if (line.find(" /o ") != std::string::npos && line.find(" - overlay ") != std::string::npos)
        overlay = true;
    }
    EXPECT_TRUE(overlay) << "no overlay mounted on /o";
    Check(umount2("/o", 0), "umount2", "/o");
    EXPECT_NE(stat(("/o/" + ol.file).c_str(), &st), 0) << "overlay still visible after umount";
  });
}

TEST_F(ScenariosBTest, OverlayByMountShowsBottomLayer) {
  for (int layers : {1, 5, 20, 100}) {
    SCOPED_TRACE("layers " + std::to_string(layers));
    CheckOverlay("mount", layers);
  }
}

TEST_F(ScenariosBTest, OverlayByFsmountShowsBottomLayer) {
  for (int layers : {1, 5, 20, 100}) {
    SCOPED_TRACE("layers " + std::to_string(layers));
    try {
      CheckOverlay("fsmount", layers);
    } catch (const Unsupported& u) {
      GTEST_SKIP() << u.what();
    }
  }
}

}  // namespace
}  // namespace mntscale
