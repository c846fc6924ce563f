// Placement on machines we do not have: hwloc synthetic topologies stand in
// for 2-socket EPYC and Xeon hosts, so these run on a 1-socket VM.
#include <gtest/gtest.h>
#include <hwloc.h>
#include <sched.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "mntscale/sys/sys.h"
#include "mntscale/run/topology.h"

namespace mntscale {
namespace {

// EPYC-like NPS2: 2 sockets x 2 NUMA nodes x 24 cores x SMT2 = 192 PUs.
constexpr char kEpyc[] = "pack:2 numa:2 core:24 pu:2";
// Xeon-like (r5.metal): 2 sockets x 24 cores x HT = 96 PUs.
constexpr char kXeon[] = "pack:2 numa:1 core:24 pu:2";

std::vector<Slot> Plan(const Topology& t, const std::string& placement, int workers) {
  return PlanPlacement(t, PlacementSpec::Parse(placement), workers);
}

// The UsageError message fn throws, or "" (and a test failure) if it does not.
std::string UsageMessage(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected UsageError";
  return "";
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "topology_gtest.XXXXXX";
    if (!mkdtemp(tmpl.data())) ADD_FAILURE() << "mkdtemp " << tmpl;
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

class PlacementTest : public ::testing::TestWithParam<const char*> {
 protected:
  Topology topo_ = Topology::Synthetic(GetParam());
  int per_socket_ = topo_.summary().pus / topo_.summary().packages;
  int cores_per_socket_ = topo_.summary().cores / topo_.summary().packages;
};

INSTANTIATE_TEST_SUITE_P(TwoSocket, PlacementTest, ::testing::Values(kEpyc, kXeon));

TEST(TopologyTest, SyntheticSummary) {
  Topology epyc = Topology::Synthetic(kEpyc);
  const TopologySummary& s = epyc.summary();
  EXPECT_EQ(s.source, std::string("synthetic:") + kEpyc);
  EXPECT_EQ(s.packages, 2);
  EXPECT_EQ(s.numa_nodes, 4);
  EXPECT_EQ(s.cores, 96);
  EXPECT_EQ(s.pus, 192);
  EXPECT_EQ(epyc.pus().size(), 192u);
  EXPECT_FALSE(epyc.is_host());

  std::set<int> os;
  for (const Pu& pu : epyc.pus()) {
    os.insert(pu.os_index);
    EXPECT_GE(pu.numa, 0);
    EXPECT_LT(pu.smt_rank, 2);
    // Sockets own NUMA nodes 0-1 and 2-3.
    EXPECT_EQ(pu.numa / 2, pu.package);
  }
  EXPECT_EQ(os.size(), 192u) << "os_index must be unique";

  Topology xeon = Topology::Synthetic(kXeon);
  EXPECT_EQ(xeon.summary().packages, 2);
  EXPECT_EQ(xeon.summary().numa_nodes, 2);
  EXPECT_EQ(xeon.summary().cores, 48);
  EXPECT_EQ(xeon.summary().pus, 96);
}

TEST(TopologyTest, BadSyntheticIsUsageError) {
  std::string msg = UsageMessage([] { Topology::Synthetic("pack:two"); });
  EXPECT_TRUE(Contains(msg, "pack:two")) << msg;
}

TEST_P(PlacementTest, SpreadAlternatesSockets) {
  auto plan = Plan(topo_, "spread", topo_.summary().pus);
  ASSERT_EQ(plan.size(), topo_.pus().size());
  for (const Slot& s : plan) {
    EXPECT_EQ(s.pu.package, s.worker % 2) << "worker " << s.worker;
  }
  // Each socket fills its cores before their SMT siblings.
  std::set<int> cores;
  for (int i = 0; i < 2 * cores_per_socket_; ++i) {
    EXPECT_EQ(plan[i].pu.smt_rank, 0) << "worker " << i;
    EXPECT_TRUE(cores.insert(plan[i].pu.core).second) << "worker " << i;
  }
  EXPECT_EQ(plan[2 * cores_per_socket_].pu.smt_rank, 1);
  std::set<int> os;
  for (const Slot& s : plan) os.insert(s.pu.os_index);
  EXPECT_EQ(os.size(), plan.size()) << "no PU used twice";
}

TEST_P(PlacementTest, CompactFillsSocketZeroFirst) {
  auto plan = Plan(topo_, "compact", per_socket_ + 1);
  for (int i = 0; i < per_socket_; ++i) {
    EXPECT_EQ(plan[i].pu.package, 0) << "worker " << i;
  }
  EXPECT_EQ(plan[per_socket_].pu.package, 1);
  // SMT siblings are adjacent: workers 0 and 1 share a core.
  EXPECT_EQ(plan[0].pu.core, plan[1].pu.core);
  EXPECT_EQ(plan[0].pu.smt_rank, 0);
  EXPECT_EQ(plan[1].pu.smt_rank, 1);
  EXPECT_NE(plan[1].pu.core, plan[2].pu.core);
}

TEST_P(PlacementTest, SocketOneNeverTouchesSocketZero) {
  for (const char* p : {"socket:1", "socket:1,smt-off"}) {
    PlacementSpec spec = PlacementSpec::Parse(p);
    int n = spec.smt_off ? cores_per_socket_ : per_socket_;
    auto plan = PlanPlacement(topo_, spec, n);
    ASSERT_EQ(plan.size(), static_cast<size_t>(n));
    for (const Slot& s : plan) {
      EXPECT_EQ(s.pu.package, 1) << p << " worker " << s.worker;
    }
  }
}

TEST_P(PlacementTest, SmtOffNeverSharesACore) {
  for (const char* p :
       {"smt-off", "compact,smt-off", "spread,smt-off", "socket:1,smt-off", "smt-off,socket:0"}) {
    PlacementSpec spec = PlacementSpec::Parse(p);
    ASSERT_TRUE(spec.smt_off) << p;
    int n = spec.kind == PlacementSpec::kSocket ? cores_per_socket_ : topo_.summary().cores;
    auto plan = PlanPlacement(topo_, spec, n);
    std::set<int> cores;
    for (const Slot& s : plan) {
      EXPECT_EQ(s.pu.smt_rank, 0) << p;
      EXPECT_TRUE(cores.insert(s.pu.core).second) << p << ": two workers on core " << s.pu.core;
    }
  }
  EXPECT_EQ(PlacementSpec::Parse("smt-off").kind, PlacementSpec::kCompact);
  auto spread = Plan(topo_, "spread,smt-off", 4);
  EXPECT_EQ(spread[0].pu.package, 0);
  EXPECT_EQ(spread[1].pu.package, 1);
}

TEST_P(PlacementTest, TooManyWorkersNamesTheNumbers) {
  int n = cores_per_socket_;
  std::string msg = UsageMessage([&] { Plan(topo_, "socket:1,smt-off", n + 16); });
  EXPECT_TRUE(Contains(msg, "socket:1,smt-off")) << msg;
  EXPECT_TRUE(Contains(msg, std::to_string(n) + " PUs")) << msg;
  EXPECT_TRUE(Contains(msg, std::to_string(n + 16) + " workers")) << msg;

  int all = topo_.summary().pus;
  msg = UsageMessage([&] { Plan(topo_, "spread", all + 1); });
  EXPECT_TRUE(Contains(msg, std::to_string(all) + " PUs")) << msg;
}

TEST_P(PlacementTest, ShareWrapsRound) {
  int n = cores_per_socket_;
  auto plan = Plan(topo_, "socket:1,smt-off,share", n + 16);
  ASSERT_EQ(plan.size(), static_cast<size_t>(n + 16));
  EXPECT_EQ(plan[n].pu.os_index, plan[0].pu.os_index);
  for (const Slot& s : plan) EXPECT_EQ(s.pu.package, 1);
}

TEST_P(PlacementTest, MissingSocketIsUsageError) {
  std::string msg = UsageMessage([&] { Plan(topo_, "socket:5", 1); });
  EXPECT_TRUE(Contains(msg, "socket 5")) << msg;
  EXPECT_TRUE(Contains(msg, "2 sockets")) << msg;
  UsageMessage([&] { Plan(topo_, "socket:2", 1); });
}

TEST(PlacementSpecTest, UnknownPlacementIsUsageError) {
  std::string msg = UsageMessage([] { PlacementSpec::Parse("diagonal"); });
  EXPECT_TRUE(Contains(msg, "diagonal")) << msg;
  EXPECT_TRUE(Contains(msg, "compact")) << msg;
  EXPECT_TRUE(Contains(msg, "socket:N")) << msg;
  for (const char* bad :
       {"", "spread,compact", "socket:", "socket:x", "socket:-1", "socket:1x", "spread,,smt-off"}) {
    UsageMessage([bad] { PlacementSpec::Parse(bad); });
  }
}

TEST(PlacementSpecTest, ParseAndToStringRoundTrip) {
  for (const char* s : {"compact", "spread", "socket:1", "spread,smt-off", "socket:0,smt-off,share",
                        "compact,share"}) {
    EXPECT_EQ(PlacementSpec::Parse(s).ToString(), s);
  }
  EXPECT_EQ(PlacementSpec::Parse("smt-off").ToString(), "compact,smt-off");
  EXPECT_EQ(PlacementSpec::Parse(" spread , smt-off ").ToString(), "spread,smt-off");
  PlacementSpec p = PlacementSpec::Parse("socket:3");
  EXPECT_EQ(p.kind, PlacementSpec::kSocket);
  EXPECT_EQ(p.socket, 3);
}

TEST(PlacementSpecTest, FormatPlanCountsPerSocket) {
  Topology t = Topology::Synthetic(kXeon);
  PlacementSpec spec = PlacementSpec::Parse("socket:1");
  std::string text = FormatPlan(t, spec, PlanPlacement(t, spec, 3));
  EXPECT_TRUE(Contains(text, "worker")) << text;
  EXPECT_TRUE(Contains(text, "socket 0: 0 workers")) << text;
  EXPECT_TRUE(Contains(text, "socket 1: 3 workers")) << text;
}

TEST(TopologyTest, EveryReferenceFileLoads) {
  const std::map<std::string, int> expected_pus = {
      {"epyc-9654-2s", 384}, {"xeon-r5-metal-2s", 96}, {"m7i-class", 192},
      {"m7a-class", 192},    {"dev-1s", 16},
  };
  std::set<std::string> seen;
  for (const auto& e : std::filesystem::directory_iterator(MNTSCALE_SOURCE_DIR "/topologies")) {
    std::string ext = e.path().extension().string();
    if (ext != ".synthetic" && ext != ".xml") continue;
    std::string name = e.path().stem().string();
    SCOPED_TRACE(name);
    Topology by_name = Topology::Load(name);
    Topology by_path = Topology::Load(e.path().string());
    EXPECT_EQ(by_name.summary().name, name);
    EXPECT_EQ(by_name.pus().size(), by_path.pus().size());
    EXPECT_GT(by_name.summary().pus, 0);
    auto it = expected_pus.find(name);
    if (it != expected_pus.end()) {
      EXPECT_EQ(by_name.summary().pus, it->second);
      EXPECT_EQ(by_name.summary().packages, name == "dev-1s" ? 1 : 2);
    }
    // Every reference machine can run its spread plan at full size.
    EXPECT_EQ(Plan(by_name, "spread", by_name.summary().pus).size(), by_name.pus().size());
    seen.insert(name);
  }
  for (const auto& [name, pus] : expected_pus) {
    EXPECT_TRUE(seen.count(name)) << name << " missing from topologies/";
  }
  EXPECT_EQ(Topology::Load("dev-1s.synthetic").summary().pus, 16);
}

TEST(TopologyTest, LoadResolvesSpecs) {
  EXPECT_EQ(Topology::Load(kXeon).summary().pus, 96);

  TempDir dir;
  std::string file = dir.File("box.txt");
  WriteText(file, "# a comment\n\n  # indented comment\npack:1 core:4 pu:2\n");
  Topology t = Topology::Load(file);
  EXPECT_EQ(t.summary().pus, 8);
  EXPECT_EQ(t.summary().source, "synthetic:pack:1 core:4 pu:2");
  EXPECT_EQ(t.summary().name, file);

  std::string msg = UsageMessage([] { Topology::Load("no-such-machine"); });
  EXPECT_TRUE(Contains(msg, "'no-such-machine'")) << msg;
  EXPECT_TRUE(Contains(msg, "epyc-9654-2s")) << msg << " (lists known names)";

  std::string missing = dir.File("missing.xml");
  msg = UsageMessage([&] { Topology::Load(missing); });
  EXPECT_TRUE(Contains(msg, missing)) << msg;
  EXPECT_TRUE(Contains(msg, "ENOENT")) << msg;

  std::string empty = dir.File("empty.synthetic");
  WriteText(empty, "# only a comment\n");
  msg = UsageMessage([&] { Topology::Load(empty); });
  EXPECT_TRUE(Contains(msg, empty)) << msg;
}

TEST(TopologyTest, HostFindsPus) {
  Topology host = Topology::Host();
  EXPECT_GE(host.pus().size(), 1u);
  EXPECT_GE(host.summary().packages, 1);
  EXPECT_GE(host.summary().cores, 1);
  EXPECT_TRUE(host.is_host());
  EXPECT_TRUE(Topology::Load("host").is_host());
}

TEST(TopologyTest, PinCurrentThreadSetsAffinity) {
  Topology host = Topology::Host();
  Slot slot = Plan(host, "compact", 1).at(0);
  // In a thread of its own, so the test process keeps its affinity.
  std::string error;
  cpu_set_t got;
  CPU_ZERO(&got);
  std::thread([&] {
    try {
      PinCurrentThread(slot, /*bind_memory=*/true);
      if (sched_getaffinity(0, sizeof(got), &got) < 0) error = "getaffinity";
    } catch (const std::exception& e) {
      error = e.what();
    }
  }).join();
  ASSERT_EQ(error, "");
  EXPECT_EQ(CPU_COUNT(&got), 1);
  EXPECT_TRUE(CPU_ISSET(slot.pu.os_index, &got));
}

TEST(TopologyTest, XmlRoundTrip) {
  hwloc_topology_t h;
  ASSERT_EQ(hwloc_topology_init(&h), 0);
  ASSERT_EQ(hwloc_topology_set_synthetic(h, kEpyc), 0);
  ASSERT_EQ(hwloc_topology_load(h), 0);
  TempDir dir;
  std::string xml = dir.File("epyc.xml");
  int rc = hwloc_topology_export_xml(h, xml.c_str(), 0);
  hwloc_topology_destroy(h);
  ASSERT_EQ(rc, 0);

  Topology from_xml = Topology::Xml(xml);
  Topology synthetic = Topology::Synthetic(kEpyc);
  EXPECT_EQ(from_xml.summary().source, "xml:" + xml);
  EXPECT_EQ(from_xml.summary().pus, 192);
  EXPECT_EQ(from_xml.summary().packages, synthetic.summary().packages);
  EXPECT_EQ(from_xml.summary().numa_nodes, synthetic.summary().numa_nodes);
  EXPECT_EQ(from_xml.summary().cores, synthetic.summary().cores);
  // Load() recognises XML by its first character.
  EXPECT_EQ(Topology::Load(xml).summary().source, "xml:" + xml);
}

TEST(TopologyTest, BadXmlIsUsageError) {
  TempDir dir;
  std::string missing = dir.File("nope.xml");
  std::string msg = UsageMessage([&] { Topology::Xml(missing); });
  EXPECT_TRUE(Contains(msg, missing)) << msg;
  EXPECT_TRUE(Contains(msg, "ENOENT")) << msg;

  std::string junk = dir.File("junk.xml");
  WriteText(junk, "<not-hwloc>\n");
  msg = UsageMessage([&] { Topology::Xml(junk); });
  EXPECT_TRUE(Contains(msg, junk)) << msg;
}

// A Core nested in a Core, beside a PU with no Core: hwloc's per-type core
// count is then -1, and numbering core-less PUs after it indexed a vector at
// -1 (fuzz_topology_xml found it). Every PU gets a core of its own numbering
// and an SMT rank within it.
TEST(TopologyTest, XmlWithNestedCoresAndCorelessPu) {
  Topology t = Topology::Xml(MNTSCALE_SOURCE_DIR
                             "/fuzz/regressions/topology_xml/nested-core-without-core-pu.xml");
  ASSERT_EQ(t.pus().size(), 4u);
  std::map<int, int> per_core;
  for (const Pu& pu : t.pus()) {
    EXPECT_GE(pu.core, 0);
    EXPECT_EQ(pu.smt_rank, per_core[pu.core]++);
  }
  EXPECT_EQ(t.summary().cores, static_cast<int>(per_core.size()));
  // The core-less PU 0 is a core of its own, shared with no other PU.
  EXPECT_EQ(per_core[t.pus()[0].core], 1);
  EXPECT_EQ(Plan(t, "spread,share", 2).size(), 2u);
}

}  // namespace
}  // namespace mntscale
