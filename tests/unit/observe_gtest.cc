// The pure parts of `mntscale observe` (issue 25): overlay layer counts from
// options, /proc/stat, the summary, the relation to a capacity result, and
// the OpenMetrics text.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>
#include <cstring>

#include "mntscale/live/observe.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

TEST(ObserveParse, OverlayLayers) {
  EXPECT_EQ(OverlayLayers("rw,lowerdir=/a:/b:/c,upperdir=/u,workdir=/w"), 3);
  EXPECT_EQ(OverlayLayers("lowerdir=/a"), 1);
  // Data-only layers follow "::"; they are layers too.
  EXPECT_EQ(OverlayLayers("rw,lowerdir=/a:/b::/d1::/d2,upperdir=/u"), 4);
  // An escaped colon is part of a path.
  EXPECT_EQ(OverlayLayers("lowerdir=/a\\:x:/b,upperdir=/u"), 2);
  // "xlowerdir=" is another option; no lowerdir at all is 0.
  EXPECT_EQ(OverlayLayers("rw,xlowerdir=/a:/b"), 0);
  EXPECT_EQ(OverlayLayers("rw,relatime"), 0);
}

TEST(ObserveParse, CpuTimes) {
  CpuTimes t = ParseCpuTimes(
      "cpu  100 5 40 800 10 1 2 7 0 0\ncpu0 50 2 20 400 5 0 1 3 0 0\nintr 1\n");
  EXPECT_EQ(t.user, 100u);
  EXPECT_EQ(t.nice, 5u);
  EXPECT_EQ(t.system, 40u);
  EXPECT_EQ(t.idle, 800u);
  EXPECT_EQ(t.iowait, 10u);
  EXPECT_EQ(t.steal, 7u);
  EXPECT_EQ(t.Total(), 965u);
}

NamespaceCount Ns(uint64_t inode, long mounts, long overlay = 0, long layers = 0) {
  NamespaceCount n;
  n.inode = inode;
  n.mounts = mounts;
  n.overlay = overlay;
  n.overlay_layers = layers;
  n.pid = static_cast<int>(inode);
  n.comm = "c" + std::to_string(inode);
  return n;
}

ObserveSample Host(int containers, int mounts_each) {
  ObserveSample s;
  s.kernel = "6.18.44-fc-v1098";
  s.cpu_model = "AMD EPYC";
  s.census.host_inode = 1;
  s.census.namespaces.push_back(Ns(1, 25));
  for (int i = 0; i < containers; ++i) s.census.namespaces.push_back(Ns(100 + i, mounts_each, 1, 8));
  NamespaceCount bad = Ns(99, 0);
  bad.error = "open /proc/99/ns/mnt: EACCES";
  s.census.namespaces.push_back(bad);
  return s;
}

TEST(ObserveSummary, CountsContainersApartFromTheHostAndUnreadable) {
  ObserveSummary s = Summarize(Host(412, 30).census);
  EXPECT_EQ(s.namespaces, 413);
  EXPECT_EQ(s.containers, 412);
  EXPECT_EQ(s.unreadable, 1);
  EXPECT_EQ(s.host_mounts, 25);
  EXPECT_EQ(s.mounts_total, 25 + 412 * 30);
  EXPECT_EQ(s.mounts_p50, 30);
  EXPECT_EQ(s.mounts_max, 30);
  EXPECT_EQ(s.overlay, 412);
  EXPECT_EQ(s.overlay_layers, 412 * 8);
  EXPECT_EQ(s.unreadable_mounts, 0);
}

TEST(ObserveSummary, MountsWhoseShapeIsUnknownAreSaidNotCountedPlain) {
  ObserveSample sample = Host(3, 30);
  sample.census.namespaces[1].unreadable_mounts = 2;  // statmount failed on 2 listed mounts
  ObserveSummary s = Summarize(sample.census);
  EXPECT_EQ(s.unreadable_mounts, 2);
  EXPECT_EQ(s.mounts_total, 25 + 3 * 30);  // still listed, still counted
  nlohmann::json j = ObserveJson(sample, {});
  EXPECT_EQ(j["census"]["unreadable_mounts"], 2);
  EXPECT_NE(ObserveText(sample, {}, 5).find("2 mounts unreadable by statmount"), std::string::npos);
}

CapacityRef Ref(const std::string& kernel = "6.18.44-fc-v1098", int mounts = 30) {
  CapacityRef r;
  r.file = "cap.json";
  r.profile = "k8s-containerd";
  r.idmap = "per-layer-idmap";
  r.kernel = kernel;
  r.cpu = "AMD EPYC";
  r.mounts_per_container = mounts;
  r.n_star = 1800;
  r.n_lo = 1650;
  r.n_hi = 1900;
  r.found = true;
  return r;
}

TEST(ObserveCapacity, UtilisationAgainstTheConservativeNStar) {
  ObserveSample s = Host(412, 30);
  std::vector<CapacityRef> refs = {Ref()};
  CapacityRelation rel = RelateToCapacity(Summarize(s.census), s, refs);
  ASSERT_TRUE(rel.matched) << rel.line;
  EXPECT_NEAR(rel.utilisation, 412.0 / 1650, 1e-9);
  EXPECT_EQ(rel.line,
            "412 containers of about 30 mounts; capacity (k8s-containerd, per-layer-idmap, "
            "6.18.44-fc-v1098) N* 1,800 [1,650–1,900]: 25% of the conservative 1,650");
}

TEST(ObserveCapacity, SaysWhyNoResultMatches) {
  ObserveSample s = Host(412, 30);
  struct Case {
    CapacityRef ref;
    std::string says;
  };
  CapacityRef other_cpu = Ref();
  other_cpu.cpu = "Intel Xeon";
  for (const Case& c : {Case{Ref("6.1.0-40-cloud-amd64"), "kernel 6.1.0-40-cloud-amd64"},
                        Case{other_cpu, "CPU Intel Xeon"},
                        Case{Ref("6.18.44-fc-v1098", 60), "profile shape: 60 mounts"}}) {
    CapacityRelation rel = RelateToCapacity(Summarize(s.census), s, {c.ref});
    EXPECT_FALSE(rel.matched) << rel.line;
    EXPECT_NE(rel.line.find("no capacity result matches"), std::string::npos) << rel.line;
    EXPECT_NE(rel.line.find(c.says), std::string::npos) << rel.line;
    EXPECT_LT(rel.utilisation, 0);
  }
  // The same kernel series with another build still matches (6.18.x).
  CapacityRelation rel = RelateToCapacity(Summarize(s.census), s, {Ref("6.18.2-generic")});
  EXPECT_TRUE(rel.matched) << rel.line;
}

TEST(ObserveCapacity, LoadsACapacityResultAndRefusesOtherFiles) {
  std::string dir = ::testing::TempDir() + "observe_gtest." + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::string good = dir + "/cap.json", bad = dir + "/run.json";
  WriteFile(good, R"({"capacity": {"profile": "k8s-containerd", "mounts_per_container": 30,
    "churn": {"strategy": "per-layer-idmap"},
    "result": {"n_star": 2700, "n_lo": 1029, "n_hi": 3028, "n_hi_open": false}},
    "context": {"kernel": {"release": "6.18.44-fc-v1098"}, "cpu": {"model": "AMD EPYC"},
                "machine": {"name": "vm"}}})");
  WriteFile(bad, R"({"benchmarks": []})");
  CapacityRef r = LoadCapacityRef(good);
  EXPECT_TRUE(r.found);
  EXPECT_EQ(r.n_star, 2700);
  EXPECT_EQ(r.n_lo, 1029);
  EXPECT_EQ(r.mounts_per_container, 30);
  EXPECT_EQ(r.kernel, "6.18.44-fc-v1098");
  EXPECT_EQ(r.idmap, "per-layer-idmap");
  try {
    LoadCapacityRef(bad);
    ADD_FAILURE() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("not a capacity result"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

// Every sample line belongs to a metric with HELP and TYPE before it, names
// are mntscale_observe_*, and a label value with quotes is escaped.
TEST(ObserveOpenMetrics, EveryMetricHasHelpAndType) {
  ObserveSample s = Host(3, 30);
  s.kernel = "6.18 \"test\"";
  s.ops_source = "fanotify";
  s.attach_per_s = 2.5;
  s.user_share = 0.5;
  s.system_share = 0.25;
  s.steal_share = 0;
  s.idle_share = 0.25;
  std::string text = ObserveOpenMetrics(s, {});
  std::istringstream in(text);
  std::string line;
  std::set<std::string> help, type;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      help.insert(line.substr(7, line.find(' ', 7) - 7));
    } else if (line.rfind("# TYPE ", 0) == 0) {
      type.insert(line.substr(7, line.find(' ', 7) - 7));
    } else {
      std::string name = line.substr(0, line.find_first_of("{ "));
      EXPECT_EQ(name.rfind("mntscale_observe_", 0), 0u) << line;
      EXPECT_TRUE(help.count(name)) << line;
      EXPECT_TRUE(type.count(name)) << line;
      ++samples;
    }
  }
  EXPECT_GT(samples, 15);
  EXPECT_NE(text.find("kernel=\"6.18 \\\"test\\\"\""), std::string::npos) << text;
  EXPECT_NE(text.find("mntscale_observe_container_namespaces 3\n"), std::string::npos);
  EXPECT_NE(text.find("mntscale_observe_mount_attach_rate 2.5\n"), std::string::npos);
}

}  // namespace
}  // namespace mntscale

namespace {
// A fanotify event as the kernel lays it out: the metadata head, then (for
// a mount event) one info record {u8 type, u8 pad, u16 len, u64 mnt_id}.
std::string FanEvent(uint64_t mask, uint64_t mnt_id, bool info) {
  mntscale::FanotifyEventHead h{};
  h.metadata_len = sizeof(h);
  h.event_len = sizeof(h) + (info ? 12 : 0);
  h.mask = mask;
  std::string s(reinterpret_cast<const char*>(&h), sizeof(h));
  if (info) {
    char rec[12] = {static_cast<char>(mntscale::kFanEventInfoTypeMnt), 0, 12, 0};
    memcpy(rec + 4, &mnt_id, 8);
    s.append(rec, sizeof rec);
  }
  return s;
}
}  // namespace

TEST(ObserveFanotify, EachEventWithItsMountIdAndATornTailLeftAlone) {
  using namespace mntscale;
  std::string buf = FanEvent(kFanMntAttach, 41, true) + FanEvent(kFanMntDetach, 42, true) +
                    FanEvent(kFanQOverflow, 0, false);
  const std::string torn = FanEvent(kFanMntAttach, 43, true).substr(0, 30);
  buf += torn;  // a head whose event runs past the buffer: not an event
  std::vector<FanotifyEvent> seen;
  int n = ForEachFanotifyEvent(buf.data(), buf.size(),
                               [&](const FanotifyEvent& e) { seen.push_back(e); });
  ASSERT_EQ(n, 3);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].mask, kFanMntAttach);
  EXPECT_EQ(seen[0].mnt_id, 41u);
  EXPECT_EQ(seen[1].mask, kFanMntDetach);
  EXPECT_EQ(seen[1].mnt_id, 42u);
  EXPECT_EQ(seen[2].mask, kFanQOverflow);
  EXPECT_EQ(seen[2].mnt_id, 0u);  // no info record, no id
  // A length shorter than the head stops the walk instead of looping.
  std::string bad = FanEvent(kFanMntAttach, 7, true);
  uint32_t zero = 0;
  memcpy(bad.data(), &zero, 4);
  EXPECT_EQ(ForEachFanotifyEvent(bad.data(), bad.size(), [](const FanotifyEvent&) {}), 0);
}

TEST(ObserveCycle, CensusDiffCountsMountsByIdAndWholeNamespaces) {
  using namespace mntscale;
  Census a, b;
  a.ids[1] = {10, 11, 12};  // namespace 1: 12 goes, 13 comes
  b.ids[1] = {10, 11, 13};
  a.ids[2] = {20, 21};      // namespace 2 goes with its 2 mounts
  b.ids[3] = {30, 31, 32};  // namespace 3 comes with its 3
  long attach = 0, detach = 0;
  CensusDiff(a, b, &attach, &detach);
  EXPECT_EQ(attach, 1 + 3);
  EXPECT_EQ(detach, 1 + 2);
  attach = detach = 0;
  CensusDiff(b, b, &attach, &detach);
  EXPECT_EQ(attach + detach, 0);
}
