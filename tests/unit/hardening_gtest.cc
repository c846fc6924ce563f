// issue 14: the harness's input limits, output safety, run lock and quietness
// record, as pure logic (no mounts).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "mntscale/sys/datafile.h"
#include "mntscale/suite/preset.h"
#include "mntscale/model/profile.h"
#include "mntscale/observe/quietness.h"
#include "mntscale/suite/results.h"
#include "mntscale/sys/runlock.h"
#include "mntscale/suite/scenario.h"
#include "mntscale/sys/sys.h"
#include "mntscale/run/topology.h"

namespace mntscale {
namespace {

class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/mntscale-hardening.XXXXXX";
    path_ = mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& f) const { return path_ + "/" + f; }

 private:
  std::string path_;
};

std::string MessageOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no UsageError)";
}

TEST(SyntheticPuCount, ProductOfLevels) {
  EXPECT_EQ(SyntheticPuCount("pack:2 numa:1 core:24 pu:2"), 96);
  EXPECT_EQ(SyntheticPuCount("pack:2 numa:1 l3:12 core:8 pu:2"), 384);
  EXPECT_EQ(SyntheticPuCount("2 4 2"), 16);
  EXPECT_EQ(SyntheticPuCount("pack:2(memory=1GB) [numa(memory=1GB)] core:2 pu:1"), 4);
}

TEST(SyntheticPuCount, SaturatesWithoutOverflow) {
  EXPECT_EQ(SyntheticPuCount("pack:99999 core:99999 pu:99999"), kMaxTopologyPus + 1);
  EXPECT_EQ(SyntheticPuCount("pack:1 core:100000 pu:2"), kMaxTopologyPus + 1);
  EXPECT_EQ(SyntheticPuCount("a:9223372036854775807 b:9223372036854775807"), kMaxTopologyPus + 1);
}

TEST(SyntheticPuCount, LevelWithoutCountIsAUsageError) {
  EXPECT_THROW(SyntheticPuCount("pack:x pu:2"), UsageError);
  EXPECT_THROW(SyntheticPuCount("pack:0 pu:2"), UsageError);
  EXPECT_THROW(SyntheticPuCount("   "), UsageError);
  // hwloc reads this as pack:78 l3:12 core:68 pu:1 (63,648 PUs); found by
  // fuzz_topology_synthetic as an out-of-memory behind a product of 12.
  EXPECT_THROW(SyntheticPuCount("pack\371\371\371+ack+:78l3:12 co\371recoae:68pu:1"), UsageError);
  EXPECT_THROW(SyntheticPuCount("pack:2x pu:2"), UsageError);
  EXPECT_THROW(SyntheticPuCount("pack:2(a)b pu:2"), UsageError);
  EXPECT_THROW(SyntheticPuCount("8()8()"), UsageError);       // two levels to hwloc; fuzz-found
  EXPECT_THROW(SyntheticPuCount("()pac:21 12"), UsageError);  // likewise
}

TEST(Topology, HugeSyntheticRefusedBeforeHwloc) {
  auto t0 = std::chrono::steady_clock::now();
  std::string msg = MessageOf([] { Topology::Load("pack:99999 core:99999 pu:99999"); });
  EXPECT_NE(msg.find("more than 4096 PUs"), std::string::npos) << msg;
  // Behaviour, not speed: hwloc would have taken minutes; a generous bound.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

TEST(Topology, HugeTopologyFileRefused) {
  TempDir d;
  std::ofstream(d / "big.synthetic") << "# too big\npack:1 core:100000 pu:2\n";
  std::string msg = MessageOf([&] { Topology::Load(d / "big.synthetic"); });
  EXPECT_NE(msg.find("more than 4096 PUs"), std::string::npos) << msg;
}

TEST(DataFile, DeviceAndFifoRefusedWithoutReading) {
  TempDir d;
  ASSERT_EQ(mkfifo((d / "fifo").c_str(), 0600), 0);
  EXPECT_NE(MessageOf([] { ReadDataFile("/dev/zero", "profile"); }).find("a character device"),
            std::string::npos);
  EXPECT_NE(MessageOf([&] { ReadDataFile(d / "fifo", "profile"); }).find("a FIFO"),
            std::string::npos);
  EXPECT_NE(MessageOf([] { ReadDataFile("/tmp", "profile"); }).find("a directory"),
            std::string::npos);
}

TEST(DataFile, SizeCap) {
  TempDir d;
  std::ofstream(d / "big.json") << std::string(kMaxDataFileBytes + 1, ' ');
  EXPECT_NE(MessageOf([&] { ReadDataFile(d / "big.json", "preset"); }).find("capped at"),
            std::string::npos);
  std::ofstream(d / "ok.json") << "{}";
  EXPECT_EQ(ReadDataFile(d / "ok.json", "preset"), "{}");
}

TEST(JsonInt, RefusesOutOfRangeAsWritten) {
  EXPECT_EQ(JsonInt(nlohmann::json::parse("2147483647"), "x"), 2147483647);
  EXPECT_EQ(JsonInt(nlohmann::json::parse("-5"), "x"), -5);
  for (const char* v : {"4294967306", "-4294967296", "18446744073709551615", "2147483648"}) {
    std::string msg = MessageOf([&] { JsonInt(nlohmann::json::parse(v), "layers"); });
    EXPECT_NE(msg.find(v), std::string::npos) << msg;
  }
  EXPECT_THROW(JsonInt(nlohmann::json::parse("1.5"), "x"), UsageError);
  EXPECT_THROW(JsonInt(nlohmann::json::parse("\"3\""), "x"), UsageError);
}

TEST(JsonInt, ProfileAndPresetShowTheValueAsWritten) {
  std::string msg = MessageOf([] {
    Profile::FromJson(nlohmann::json::parse(R"({"name":"w","layers":4294967306})"), "p.json");
  });
  EXPECT_NE(msg.find("4294967306"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("-727379968"), std::string::npos) << msg;
  msg = MessageOf([] {
    Preset::FromJson(nlohmann::json::parse(R"({"name":"w","version":1,"windows":4294967297,
                                               "scenarios":[{"scenario":"path_walk"}]})"),
                     "s.json");
  });
  EXPECT_NE(msg.find("4294967297"), std::string::npos) << msg;
}

// Every integer field of the data files, not only layers and windows: a value
// past int (4294967297 would wrap to 1) is refused, naming field and value.
TEST(JsonInt, EveryIntegerFieldOfTheDataFilesRefusesAWrap) {
  for (const char* field : {"version", "windows", "repetitions", "invocations"}) {
    nlohmann::json j =
        nlohmann::json::parse(R"({"name":"w","version":1,"scenarios":[{"scenario":"path_walk"}]})");
    j[field] = nlohmann::json::parse("4294967297");
    std::string msg = MessageOf([&] { Preset::FromJson(j, "s.json"); });
    EXPECT_NE(msg.find(std::string("'") + field + "'"), std::string::npos) << field << ": " << msg;
    EXPECT_NE(msg.find("4294967297"), std::string::npos) << field << ": " << msg;
  }
  for (const char* field : {"layers", "depth", "files_per_dir", "binds"}) {
    nlohmann::json j = {{"name", "w"}};
    j[field] = nlohmann::json::parse("4294967297");
    std::string msg = MessageOf([&] { Profile::FromJson(j, "p.json"); });
    EXPECT_NE(msg.find(std::string("'") + field + "'"), std::string::npos) << field << ": " << msg;
    EXPECT_NE(msg.find("4294967297"), std::string::npos) << field << ": " << msg;
  }
}

TEST(TypedAxisRanges, OutOfRangeIsAUsageErrorShowingTheValueAsWritten) {
  std::string msg = MessageOf([] { axes::Containers("1").Check("4294967297"); });
  EXPECT_NE(msg.find("4294967297"), std::string::npos) << msg;
  EXPECT_NE(MessageOf([] { axes::Workers("1").Check("0"); }).find("workers = 0"),
            std::string::npos);
  EXPECT_NE(MessageOf([] { axes::Binds("1").Check("5000"); }).find("binds = 5000"),
            std::string::npos);
}

TEST(OutputPath, RefusesEverythingButARegularFileOrANewPath) {
  TempDir d;
  ASSERT_EQ(mkfifo((d / "fifo").c_str(), 0600), 0);
  ASSERT_EQ(mkdir((d / "dir").c_str(), 0700), 0);
  std::ofstream(d / "target") << "keep";
  ASSERT_EQ(symlink((d / "target").c_str(), (d / "link").c_str()), 0);
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a = {};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s", (d / "sock").c_str());
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  close(s);
  EXPECT_NE(MessageOf([&] { CheckOutputPath(d / "fifo"); }).find("a FIFO"), std::string::npos);
  EXPECT_NE(MessageOf([&] { CheckOutputPath(d / "dir"); }).find("a directory"), std::string::npos);
  EXPECT_NE(MessageOf([&] { CheckOutputPath(d / "link"); }).find("a symbolic link"),
            std::string::npos);
  EXPECT_NE(MessageOf([&] { CheckOutputPath(d / "sock"); }).find("a socket"), std::string::npos);
  EXPECT_NE(MessageOf([] { CheckOutputPath("/dev/null"); }).find("a character device"),
            std::string::npos);
  EXPECT_NE(MessageOf([] { CheckOutputPath(""); }).find("empty"), std::string::npos);
  EXPECT_NE(MessageOf([] { CheckOutputPath("/proc/x.json"); }).find("/proc/x.json"),
            std::string::npos);
  EXPECT_NO_THROW(CheckOutputPath(d / "new.json"));
  EXPECT_NO_THROW(CheckOutputPath(d / "target"));
  EXPECT_FALSE(std::filesystem::exists(d / "new.json"));
  // Nothing left behind by the probe.
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(d / ""))
    n += e.path().filename().string()[0] == '.';
  EXPECT_EQ(n, 0);
}

TEST(RunLock, SecondHolderRefusedWithThePid) {
  TempDir d;
  RunLock first = RunLock::Acquire(d / "lock", false, true);
  std::string msg = MessageOf([&] { RunLock::Acquire(d / "lock", false, true); });
  EXPECT_NE(msg.find("PID " + std::to_string(getpid())), std::string::npos) << msg;
}

TEST(Quietness, NoisyOnlyWhenOthersUsedTheCpus) {
  Quietness q;
  q.seconds = 1;
  q.cpus = 2;
  q.busy_s = 2.0;
  q.own_s = 1.95;
  EXPECT_FALSE(q.Noisy());
  nlohmann::json e;
  ReportQuietness(q, &e);
  EXPECT_TRUE(e.contains("quietness"));
  EXPECT_FALSE(e.contains("noisy"));
  q.own_s = 1.0;  // half of the worker CPUs went to something else
  EXPECT_NEAR(q.OtherShare(), 0.5, 1e-9);
  ReportQuietness(q, &e);
  ASSERT_TRUE(e.contains("noisy"));
  EXPECT_NE(e["noisy"]["reason"].get<std::string>().find("50%"), std::string::npos);
  q.own_s = 2.5;  // tick rounding: never a negative share
  EXPECT_EQ(q.OtherShare(), 0);
  q.steal_s = 0.2;
  EXPECT_TRUE(q.Noisy());
}

TEST(Results, MeasuredAnything) {
  std::vector<nlohmann::json> e = {{{"skipped", "unsupported: x"}, {"error_occurred", true}},
                                   {{"error_occurred", true}, {"error_message", "boom"}}};
  EXPECT_FALSE(MeasuredAnything(e));
  e.push_back({{"items_per_second", 5.0}});
  EXPECT_TRUE(MeasuredAnything(e));
}

}  // namespace
}  // namespace mntscale

namespace mntscale {
namespace {

// Found by hand while writing the fuzz targets: std::stol threw out_of_range
// ("mntscale: stol", exit 1) for --set rounds=99999999999999999999.
TEST(Point, HugeAndNonFiniteValuesNeverThrowOutsideUsageError) {
  Point p;
  p.values = {{"rounds", "99999999999999999999"}, {"rate", "1e999"}, {"x", "nan"}};
  nlohmann::json j = p.Params();
  EXPECT_EQ(j["rounds"], "99999999999999999999");
  EXPECT_EQ(j["rate"], "1e999");
  EXPECT_EQ(j["x"], "nan");
  std::string msg = MessageOf([] { axes::Rounds("1").Check("99999999999999999999"); });
  EXPECT_NE(msg.find("rounds"), std::string::npos) << msg;
  EXPECT_NE(msg.find("99999999999999999999"), std::string::npos) << msg;
}

}  // namespace
}  // namespace mntscale
