// capacity.h's pure logic: objectives, verdicts and the search driven by a
// fake measurement (no kernel).
#include "mntscale/capacity.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "mntscale/runner.h"
#include "mntscale/sys.h"

namespace mntscale {
namespace {

TEST(CapacitySlo, ParsesBoundsAcrossArguments) {
  auto s = ParseSlos({"start_p99_s<=5, health_stat_p99_ms<=50", "path_walk_ratio>=0.9"});
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].metric, "start_p99_s");
  EXPECT_TRUE(s[0].at_most);
  EXPECT_DOUBLE_EQ(s[0].bound, 5);
  EXPECT_EQ(s[1].text, "health_stat_p99_ms<=50");
  EXPECT_FALSE(s[2].at_most);
  EXPECT_EQ(s[2].ToJson()["op"], ">=");
}

TEST(CapacitySlo, RefusesBadInputNamingIt) {
  auto msg = [](std::vector<std::string> a) {
    try {
      ParseSlos(a);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(msg({"start_p98_s<=5"}).find("unknown metric 'start_p98_s'"), std::string::npos);
  EXPECT_NE(msg({"start_p99_s<=fast"}).find("'fast' is not a finite number"), std::string::npos);
  EXPECT_NE(msg({"start_p99_s<5"}).find("expected METRIC<=NUMBER"), std::string::npos);
  EXPECT_NE(msg({"start_p99_s<=5>=3"}).find("expected"), std::string::npos);
  EXPECT_NE(msg({"start_p99_s<=inf"}).find("not a finite"), std::string::npos);
  EXPECT_NE(msg({"start_p99_s<="}).find("not a finite"), std::string::npos);
  EXPECT_NE(msg({"start_p99_s<=1,"}).find("empty objective"), std::string::npos);
  EXPECT_NE(msg({"start_p99_s<=1,start_p99_s<=2"}).find("already bounded"), std::string::npos);
  EXPECT_NE(msg({}).find("at least one"), std::string::npos);
}

TEST(CapacityStats, TIntervalAndVerdicts) {
  MetricStats s = Summarize({1.0, 2.0, 3.0}, 0.95);
  EXPECT_DOUBLE_EQ(s.mean, 2.0);
  EXPECT_NEAR(s.hi - s.mean, 4.303 * 1.0 / std::sqrt(3.0), 1e-9);
  Slo le{"start_p99_s", true, 10, "x"}, ge{"path_walk_ratio", false, 10, "y"};
  EXPECT_EQ(Judge(le, s), Verdict::kPass);
  EXPECT_EQ(Judge(ge, s), Verdict::kFail);
  le.bound = 2.5;  // inside the interval
  EXPECT_EQ(Judge(le, s), Verdict::kUndecided);
  EXPECT_EQ(Judge(Slo{"start_p99_s", true, 10, "x"}, Summarize({1.0}, 0.95)), Verdict::kUndecided);
  EXPECT_THROW(TCritical(3, 0.5), UsageError);
}

TEST(CapacityConfig, ImpossibleCountsRefused) {
  SearchConfig c;
  EXPECT_NO_THROW(ValidateSearchConfig(c));
  auto bad = [](auto f) {
    SearchConfig c;
    f(c);
    EXPECT_THROW(ValidateSearchConfig(c), UsageError);
  };
  bad([](SearchConfig& c) { c.start = 0; });
  bad([](SearchConfig& c) { c.growth = 1; });
  bad([](SearchConfig& c) { c.precision = 0; });
  bad([](SearchConfig& c) { c.invocations = 1; });
  bad([](SearchConfig& c) { c.max_invocations = 2; });
  bad([](SearchConfig& c) { c.max_containers = 5; });
  bad([](SearchConfig& c) { c.budget_s = 0; });
}

// A host whose metric is the density itself (plus noise-free jitter): the
// bound k is met up to k.
struct Fake {
  double knee = 137;
  int calls = 0;
  double clock = 0;
  double undecided_at = -1;  // a density whose invocations straddle the bound
  SearchHooks Hooks() {
    SearchHooks h;
    h.measure = [this](int n, int i) {
      ++calls;
      clock += 1;
      Invocation inv;
      double v = n + (i % 2 ? 0.5 : -0.5);
      if (n == undecided_at) v = knee + (i % 2 ? 50 : -50);
      inv.values["mountinfo_read_s"] = v;
      inv.values["path_walk_per_worker"] = 1000.0 / n;
      return inv;
    };
    h.elapsed_s = [this] { return clock; };
    return h;
  }
};

TEST(CapacitySearch, BisectionConvergesInsideTheBracket) {
  Fake f;
  SearchConfig c;
  c.start = 10;
  c.max_containers = 10000;
  c.budget_s = 1e9;
  auto slos = ParseSlos({"mountinfo_read_s<=137"});
  SearchResult r = RunCapacitySearch(c, slos, f.Hooks());
  EXPECT_EQ(r.ended_by, "slo");
  ASSERT_TRUE(r.n_star && r.above);
  EXPECT_LE(*r.n_star, 137);
  EXPECT_GT(*r.above, 137);
  EXPECT_LE(*r.above - *r.n_star, std::max(1.0, 0.1 * *r.n_star));
  EXPECT_EQ(r.failed_metric, "mountinfo_read_s");
  EXPECT_EQ(r.densities.front().phase, "grow");
  EXPECT_EQ(r.densities.back().phase, "bisect");
  // path_walk_ratio relative to the lowest density, 1 there.
  EXPECT_NEAR(r.densities.front().metrics.at("path_walk_ratio").mean, 1.0, 1e-9);
  EXPECT_NEAR(r.densities[1].metrics.at("path_walk_ratio").mean, 0.5, 1e-9);
  std::string s = CapacitySentence(r, slos, "k8s");
  EXPECT_NE(s.find("sustains " + std::to_string(*r.n_star) + " containers of k8s"), std::string::npos)
      << s;
  EXPECT_NE(s.find("mountinfo_read_s exceeds 137"), std::string::npos) << s;
  EXPECT_TRUE(r.ToJson(0.95, s)["bracket"].is_array());
}

TEST(CapacitySearch, UndecidedIsNeverAPass) {
  Fake f;
  f.undecided_at = 80;  // straddles the bound whatever the invocations
  SearchConfig c;
  c.start = 10;
  c.max_containers = 10000;
  c.budget_s = 1e9;
  SearchResult r = RunCapacitySearch(c, ParseSlos({"mountinfo_read_s<=137"}), f.Hooks());
  ASSERT_TRUE(r.n_star && r.above);
  EXPECT_EQ(*r.above, 80);
  EXPECT_LT(*r.n_star, 80);  // the knee (137) is above, but 80 was never decided
  EXPECT_GE(*r.n_star, 40);
  bool seen = false;
  for (const Density& d : r.densities) {
    if (d.containers == 80) {
      seen = true;
      EXPECT_EQ(d.verdict, Verdict::kUndecided);
      EXPECT_EQ(static_cast<int>(d.invocations.size()), c.max_invocations);
    }
  }
  EXPECT_TRUE(seen);
}

TEST(CapacitySearch, EndReasons) {
  auto slos = ParseSlos({"mountinfo_read_s<=1e9"});
  {  // unreachable objective: max-containers
    Fake f;
    SearchConfig c;
    c.start = 10;
    c.max_containers = 100;
    c.budget_s = 1e9;
    SearchResult r = RunCapacitySearch(c, slos, f.Hooks());
    EXPECT_EQ(r.ended_by, "max-containers");
    EXPECT_EQ(r.n_star, 100);
    EXPECT_FALSE(r.above);
    EXPECT_TRUE(r.failed_metric.empty());
  }
  {  // kernel limit
    Fake f;
    SearchConfig c;
    c.max_containers = 100000;
    c.budget_s = 1e9;
    SearchHooks h = f.Hooks();
    h.limit = [](int n) -> std::optional<KernelLimit> {
      if (n > 300) return KernelLimit{"user.max_mnt_namespaces", 350, n};
      return std::nullopt;
    };
    SearchResult r = RunCapacitySearch(c, slos, h);
    EXPECT_EQ(r.ended_by, "kernel-limit");
    ASSERT_TRUE(r.limit);
    EXPECT_EQ(r.limit->name, "user.max_mnt_namespaces");
    // 10..160, then 300, the largest density under the limit; 301 passes it.
    EXPECT_EQ(r.limit->at, 301);
    EXPECT_EQ(r.n_star, 300);
    EXPECT_EQ(r.densities.back().containers, 300);
    EXPECT_NE(CapacitySentence(r, slos, "p").find("limited by user.max_mnt_namespaces = 350"),
              std::string::npos)
        << CapacitySentence(r, slos, "p");
  }
  {  // a limit met while measuring (ENOSPC from mount)
    Fake f;
    SearchConfig c;
    c.budget_s = 1e9;
    SearchHooks h = f.Hooks();
    auto inner = h.measure;
    h.measure = [&](int n, int i) {
      if (n >= 40) throw LimitReached(*LimitOfError("mount", ENOSPC, n));
      return inner(n, i);
    };
    SearchResult r = RunCapacitySearch(c, slos, h);
    EXPECT_EQ(r.ended_by, "kernel-limit");
    ASSERT_TRUE(r.limit);
    EXPECT_EQ(r.limit->name, "fs.mount-max");
    EXPECT_EQ(r.limit->at, 40);
    EXPECT_EQ(r.n_star, 20);
    EXPECT_EQ(LimitOfError("unshare", ENOSPC, 1)->name, "user.max_mnt_namespaces");
    EXPECT_FALSE(LimitOfError("mount", EINVAL, 1));
  }
  {  // budget
    Fake f;
    SearchConfig c;
    c.max_containers = 100000;
    c.budget_s = 10;  // 3 invocations of 1 s each per density
    SearchResult r = RunCapacitySearch(c, slos, f.Hooks());
    EXPECT_EQ(r.ended_by, "budget");
    EXPECT_LE(f.clock, 10);
    EXPECT_EQ(r.densities.size(), 3u);
  }
  {  // interrupted
    Fake f;
    SearchConfig c;
    c.budget_s = 1e9;
    SearchHooks h = f.Hooks();
    auto inner = h.measure;
    h.measure = [&](int n, int i) {
      if (n > 20) throw Interrupted();
      return inner(n, i);
    };
    SearchResult r = RunCapacitySearch(c, slos, h);
    EXPECT_EQ(r.ended_by, "interrupted");
    EXPECT_EQ(r.n_star, 20);
  }
  {  // the first density fails: no N*
    Fake f;
    SearchConfig c;
    c.budget_s = 1e9;
    SearchResult r = RunCapacitySearch(c, ParseSlos({"mountinfo_read_s<=1"}), f.Hooks());
    EXPECT_EQ(r.ended_by, "slo");
    EXPECT_FALSE(r.n_star);
    EXPECT_EQ(r.above, 10);
    EXPECT_EQ(r.densities.size(), 1u);
  }
}

TEST(CapacitySearch, UnmeasuredMetricIsUndecided) {
  Fake f;
  SearchConfig c;
  c.budget_s = 1e9;
  SearchResult r = RunCapacitySearch(c, ParseSlos({"start_p99_s<=5"}), f.Hooks());
  EXPECT_FALSE(r.n_star);
  EXPECT_EQ(r.densities[0].verdict, Verdict::kUndecided);
  EXPECT_EQ(r.failed_metric, "start_p99_s");
}

// issue 28: objectives that parse but can never hold, or never be measured.
TEST(CapacitySlo, MeaninglessObjectivesRefusedNamingThem) {
  auto error = [](const std::string& slos, double churn, int walkers = 1, int readers = 1) {
    try {
      CheckSlosMeaningful(ParseSlos({slos}), churn, walkers, readers);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error("start_p99_s<=5,start_p99_s>=1,path_walk_ratio>=0.9", 2), "");
  EXPECT_NE(error("start_p99_s<=-1", 2).find("'start_p99_s<=-1'"), std::string::npos);
  EXPECT_NE(error("path_walk_ratio>=-1", 2).find("always holds"), std::string::npos);
  EXPECT_NE(error("mountinfo_read_s<=0", 2).find("can never hold"), std::string::npos);
  EXPECT_NE(error("start_p99_s>=5,start_p99_s<=1", 2).find("range on start_p99_s is empty"),
            std::string::npos);
  EXPECT_NE(error("start_p50_s>=5,start_p99_s<=1", 2).find("never above"), std::string::npos);
  EXPECT_EQ(error("start_p50_s>=1,start_p99_s<=5", 2), "");
  EXPECT_NE(error("start_p50_s<=5", 0).find("--churn-rate 0"), std::string::npos);
  EXPECT_EQ(error("health_stat_p99_ms<=50", 0), "");
  EXPECT_NE(error("path_walk_per_worker>=100", 2, 0).find("no path-walk worker"),
            std::string::npos);
  EXPECT_NE(error("health_stat_p99_ms<=50", 2, 1, 0).find("no health reader"), std::string::npos);
}

}  // namespace
}  // namespace mntscale
