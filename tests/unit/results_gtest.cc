// Pure logic: result documents, aggregates, error messages, context. Profiles
// are in profile_preset_gtest.cc, histograms in histogram_gtest.cc, sweep
// expansion in plan_gtest.cc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <tuple>

#include "mntscale/model/profile.h"
#include "mntscale/suite/results.h"
#include "mntscale/suite/scenario.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

nlohmann::json Iteration(const std::string& name, int rep, double ips) {
  return {{"name", name},
          {"run_name", name},
          {"run_type", "iteration"},
          {"repetitions", 3},
          {"repetition_index", rep},
          {"threads", 2},
          {"iterations", 1000},
          {"real_time", 1e9 / ips},
          {"cpu_time", 1e9 / ips},
          {"time_unit", "ns"},
          {"items_per_second", ips},
          {"scenario", "path_walk"},
          {"params", {{"containers", 10}}}};
}

TEST(ResultDocument, RoundTripsThroughJsonText) {
  ResultSink sink("", {{"kernel", {{"release", "6.18"}}}});
  sink.Add(Iteration("p/containers:10", 0, 100));
  sink.Add(Iteration("p/containers:10", 1, 110));
  nlohmann::json doc = sink.Document(true, "");
  nlohmann::json back = nlohmann::json::parse(doc.dump(2));
  EXPECT_EQ(back, doc);
  EXPECT_EQ(back["schema_version"], kSchemaVersion);
  EXPECT_EQ(back["schema"], "mntscale-result");
  EXPECT_TRUE(back["complete"].get<bool>());
  EXPECT_FALSE(back.contains("incomplete_reason"));
}

TEST(ResultDocument, IncompleteCarriesItsReason) {
  ResultSink sink("", nlohmann::json::object());
  nlohmann::json doc = sink.Document(false, "interrupted by signal");
  EXPECT_FALSE(doc["complete"].get<bool>());
  EXPECT_EQ(doc["incomplete_reason"], "interrupted by signal");
}

TEST(ResultDocument, AggregatesFollowGoogleBenchmark) {
  std::vector<nlohmann::json> e = {Iteration("p", 0, 100), Iteration("p", 1, 200),
                                   Iteration("p", 2, 300)};
  auto agg = ResultSink::Aggregates(e);
  ASSERT_EQ(agg.size(), 4u);
  EXPECT_EQ(agg[0]["name"], "p_mean");
  EXPECT_EQ(agg[0]["run_type"], "aggregate");
  EXPECT_EQ(agg[0]["aggregate_name"], "mean");
  EXPECT_DOUBLE_EQ(agg[0]["items_per_second"].get<double>(), 200);
  EXPECT_DOUBLE_EQ(agg[1]["items_per_second"].get<double>(), 200);  // median
  EXPECT_DOUBLE_EQ(agg[2]["items_per_second"].get<double>(), 100);  // stddev
  EXPECT_EQ(agg[3]["aggregate_name"], "cv");
}

TEST(ResultDocument, SkippedPointsGetNoAggregateAndNoNumbers) {
  nlohmann::json skipped = {{"name", "q"},
                            {"run_name", "q"},
                            {"run_type", "iteration"},
                            {"skipped", "unsupported: listmount needs Linux >= 6.8"}};
  auto agg = ResultSink::Aggregates({skipped, skipped});
  EXPECT_TRUE(agg.empty());
}

// A fake /sys and /proc tree for PlatformContext.
struct FakeRoot {
  std::filesystem::path dir;
  FakeRoot() {
    char tmpl[] = "/tmp/mntscale-platform-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  ~FakeRoot() { std::filesystem::remove_all(dir); }
  void Put(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel) << text;
  }
};

TEST(PlatformContext, ReadsEveryFieldFromSysAndProc) {
  FakeRoot r;
  r.Put("proc/cpuinfo", "processor\t: 0\nmicrocode\t: 0x2b000620\n\nprocessor\t: 1\n");
  r.Put("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 mitigations=off\n");
  const std::string cpu = "sys/devices/system/cpu/";
  r.Put(cpu + "smt/control", "on\n");
  r.Put(cpu + "smt/active", "1\n");
  r.Put(cpu + "online", "0-1,3\n");
  for (const char* n : {"0", "1", "3"})
    r.Put(cpu + "cpu" + n + "/cpufreq/scaling_governor", "performance\n");
  r.Put(cpu + "vulnerabilities/spectre_v2", "Mitigation: Enhanced IBRS\n");
  r.Put(cpu + "vulnerabilities/meltdown", "Not affected\n");
  nlohmann::json c = PlatformContext((r.dir / "sys").string(), (r.dir / "proc").string());
  EXPECT_EQ(c["microcode"], "0x2b000620");
  EXPECT_EQ(c["smt"]["control"], "on");
  EXPECT_EQ(c["smt"]["active"], true);
  EXPECT_EQ(c["governor"],
            nlohmann::json({{"0", "performance"}, {"1", "performance"}, {"3", "performance"}}));
  EXPECT_EQ(c["mitigations"]["spectre_v2"], "Mitigation: Enhanced IBRS");
  EXPECT_EQ(c["mitigations"]["meltdown"], "Not affected");
  EXPECT_EQ(c["cmdline"], "BOOT_IMAGE=/vmlinuz root=/dev/sda1 mitigations=off");
}

TEST(PlatformContext, MissingFieldsCarryAReasonNeverAValue) {
  FakeRoot r;
  r.Put("sys/devices/system/cpu/online", "0-1\n");  // but no cpufreq
  nlohmann::json c = PlatformContext((r.dir / "sys").string(), (r.dir / "proc").string());
  for (const char* k : {"microcode", "governor", "mitigations", "cmdline"}) {
    EXPECT_FALSE(c.contains(k)) << k;
    ASSERT_TRUE(c.contains(std::string(k) + "_unsupported")) << k;
    EXPECT_EQ(c[std::string(k) + "_unsupported"].get<std::string>().rfind("unsupported: ", 0), 0u);
  }
  EXPECT_NE(c["governor_unsupported"].get<std::string>().find("no cpufreq"), std::string::npos);
  EXPECT_TRUE(c["smt"].contains("control_unsupported"));
  EXPECT_TRUE(c["smt"].contains("active_unsupported"));
}

TEST(PlatformContext, HostHasEveryFieldOrItsReason) {
  nlohmann::json c = PlatformContext("/sys", "/proc");
  for (const char* k : {"microcode", "governor", "mitigations", "cmdline"}) {
    EXPECT_TRUE(c.contains(k) != c.contains(std::string(k) + "_unsupported")) << k;
  }
  EXPECT_TRUE(c["smt"].contains("control") != c["smt"].contains("control_unsupported"));
}

TEST(MachineName, RefusesEmptyAndAbsurdNames) {
  EXPECT_TRUE(ValidMachineName("m7i-48xl.smt_off"));
  for (const char* bad : {"", "a b", "../x", "-x", "a/b", "x\n"})
    EXPECT_FALSE(ValidMachineName(bad)) << bad;
  EXPECT_FALSE(ValidMachineName(std::string(65, 'a')));
}

TEST(SysErrorMessage, NamesCallArgumentErrnoAndHint) {
  SysError e("mount", "overlay, /c17/rootfs", EINVAL, "lowerdir list longer than one page");
  EXPECT_STREQ(e.what(),
               "mount(overlay, /c17/rootfs): EINVAL (Invalid argument) \u2014 lowerdir list "
               "longer than one page");
  EXPECT_EQ(e.err(), EINVAL);
  EXPECT_EQ(e.call(), "mount");
}

TEST(SysErrorMessage, KnownHintsApplyWhenNoneIsGiven) {
  SysError e("setns", "container 3", EINVAL);
  EXPECT_NE(std::string(e.what()).find("unshare(CLONE_FS) first"), std::string::npos);
  SysError plain("read", "/x", EIO);
  EXPECT_STREQ(plain.what(), "read(/x): EIO (Input/output error)");
}

TEST(SysErrorMessage, CheckSavesErrno) {
  errno = 0;
  try {
    Check(open("/nonexistent/mntscale", O_RDONLY), "open", "/nonexistent/mntscale");
    FAIL() << "no throw";
  } catch (const SysError& e) {
    EXPECT_EQ(e.err(), ENOENT);
    EXPECT_EQ(ErrnoName(e.err()), "ENOENT");
  }
}

// The context's CPU fields come from Google Benchmark's CPUInfo, which reads
// sysfs: they must match the machine, never be placeholders (0 MHz, []).
TEST(Context, CachesMatchSysfsAndNothingIsAPlaceholder) {
  nlohmann::json c = BenchmarkCpuContext();
  std::multiset<std::tuple<int, std::string, long>> want, got;
  for (int i = 0;; ++i) {
    std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::string level, type, size;
    if (!TryReadFile(dir + "level", &level)) break;
    TryReadFile(dir + "type", &type);
    TryReadFile(dir + "size", &size);  // "48K"
    long bytes = std::strtol(size.c_str(), nullptr, 10) * (size.find('M') != std::string::npos ? 1 << 20 : 1024);
    type.erase(type.find_last_not_of("\n") + 1);
    want.insert({std::atoi(level.c_str()), type, bytes});
  }
  if (want.empty()) GTEST_SKIP() << "no /sys/devices/system/cpu/cpu0/cache on this machine";
  for (const auto& k : c["caches"]) {
    got.insert({k["level"].get<int>(), k["type"].get<std::string>(), k["size"].get<long>()});
  }
  EXPECT_EQ(got, want);
  EXPECT_TRUE(c.contains("mhz_per_cpu") ? c["mhz_per_cpu"].get<long>() > 0
                                        : c.contains("mhz_per_cpu_unsupported"));
  EXPECT_TRUE(c.contains("cpu_scaling_enabled") || c.contains("cpu_scaling_unsupported"));
  EXPECT_EQ(c["load_avg"].size(), 3u);
  EXPECT_EQ(c["num_cpus"].get<long>(), sysconf(_SC_NPROCESSORS_ONLN));
}

}  // namespace
}  // namespace mntscale
