// The planning module: typed axes, expansion, validation before anything is
// built, and the time estimate's farm-reuse rule (the one Session uses).
#include <gtest/gtest.h>

#include "mntscale/suite/plan.h"
#include "mntscale/suite/scenario.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

void Nop(Session&, const Point&, Entry&) {}

PointCost OwnFarm(const Point& p) {
  return {.measurements = 0, .own_containers = p.Int("containers"), .session_farm = false};
}

// Two scenarios of the test binary's own, registered like real ones.
MNTSCALE_SCENARIO(plan_walk,
                  {.name = "plan_walk",
                   .mechanism = "test",
                   .expect = "test",
                   .axes = {axes::Layers("10"), axes::Containers("1,10"), axes::Workers("1"),
                            axes::Op("stat"), IntAxis("peers", "1", 1, 100).Alias("N"),
                            EnumAxis("idmap", "none", {"none", "per-layer-idmap"})
                                .ValueAlias("per-layer", "per-layer-idmap"),
                            BoolAxis("churn", "0"), axes::Rounds("1")},
                   .run = Nop});
MNTSCALE_SCENARIO(plan_build, {.name = "plan_build",
                               .mechanism = "test",
                               .expect = "test",
                               .axes = {axes::Containers("100")},
                               .run = Nop,
                               .cost = OwnFarm});

MNTSCALE_SCENARIO(plan_storm,
                  {.name = "plan_storm",
                   .mechanism = "test",
                   .expect = "test",
                   .axes = {EnumAxis("strategy", "none", {"none", "per-layer-idmap"})
                                .ValueAlias("per-layer", "per-layer-idmap"),
                            IntAxis("layers", "5", 1, 100), IntAxis("parallel", "2", 1, 4096)},
                   .run = Nop});

Topology Machine() { return Topology::Load("pack:2 core:4 pu:2"); }

RunRequest Req(std::vector<std::string> sets, std::string scenario = "plan_walk") {
  RunRequest r;
  r.scenarios = {scenario};
  r.sets = std::move(sets);
  return r;
}

TEST(TypedAxes, ChecksAndCanonicalisesEveryType) {
  Axis i = IntAxis("n", "1", 1, 10);
  EXPECT_EQ(i.Check("7"), "7");
  EXPECT_THROW(i.Check("0"), UsageError);
  EXPECT_THROW(i.Check("11"), UsageError);
  EXPECT_THROW(i.Check("1.5"), UsageError);
  EXPECT_THROW(i.Check("4294967297"), UsageError);  // no silent wrap to 1
  EXPECT_THROW(i.Check(""), UsageError);
  Axis b = BoolAxis("b", "0");
  EXPECT_EQ(b.Check("true"), "1");
  EXPECT_EQ(b.Check("off"), "0");
  EXPECT_THROW(b.Check("2"), UsageError);
  Axis d = DurationAxis("d", "1s", 1, 60000);
  EXPECT_EQ(d.Check("250ms"), "250ms");
  EXPECT_EQ(d.Check("2s"), "2000ms");
  EXPECT_THROW(d.Check("2"), UsageError);
  EXPECT_THROW(d.Check("2h"), UsageError);
  EXPECT_THROW(d.Check("61s"), UsageError);
  Axis op = axes::Op("stat");
  EXPECT_EQ(op.Check("statx"), "statx");
  EXPECT_THROW(op.Check("bogus"), UsageError);
}

TEST(TypedAxes, MessageNamesTheAxisAndTheRange) {
  try {
    axes::Containers("1").Check("0");
    FAIL() << "accepted 0 containers";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("containers = 0 is impossible: allowed 1..1000000"),
              std::string::npos)
        << e.what();
  }
}

TEST(Plan, AliasesAndValueAliasesBecomeCanonicalNames) {
  Plan p = MakePlan(Req({"N=3", "idmap=per-layer", "containers=1", "churn=yes"}), Machine());
  ASSERT_EQ(p.PointCount(), 1);
  EXPECT_EQ(p.scenarios[0].points[0].Name("plan_walk"),
            "plan_walk/layers:10/containers:1/workers:1/op:stat/peers:3/idmap:per-layer-idmap/"
            "churn:1/rounds:1");
}

TEST(Plan, RefusesBadValuesBeforeAnythingIsBuilt) {
  const Topology t = Machine();
  for (const char* bad :
       {"containers=0", "containers=", "containers=1,,2", "workers=0", "workers=17", "op=bogus",
        "layers=501", "peers=x", "churn=2", "idmap=parent", "nosuchaxis=1", "=1", "containers"}) {
    EXPECT_THROW(MakePlan(Req({bad}), t), UsageError) << bad;
  }
  RunRequest r = Req({});
  r.axis_options = {{"binds", "5"}};  // plan_walk has no binds: never silently ignored
  EXPECT_THROW(MakePlan(r, t), UsageError);
  r.axis_options = {};
  r.scenarios = {"no_such_scenario"};
  EXPECT_THROW(MakePlan(r, t), UsageError);
}

TEST(Plan, WorkersAreCheckedAgainstThePlacement) {
  RunRequest r = Req({"workers=16"});
  EXPECT_NO_THROW(MakePlan(r, Machine()));
  r.cfg.placement = "socket:1";
  EXPECT_THROW(MakePlan(r, Machine()), UsageError);  // 8 PUs on socket 1
  r.cfg.placement = "socket:1,share";
  EXPECT_NO_THROW(MakePlan(r, Machine()));
}

TEST(Plan, PresetAxisOptionsApplyOnlyWhereTheAxisExists) {
  Preset pr;
  pr.name = "t";
  pr.version = 1;
  pr.origin = "test";
  pr.scenarios = {{"plan_walk", {{"containers", "1"}}}, {"plan_build", {}}};
  RunRequest r;
  r.scenarios.clear();
  r.axis_options = {{"containers", "5"}};
  Plan p = MakePresetPlan(pr, r, Machine());
  ASSERT_EQ(p.scenarios.size(), 2u);
  EXPECT_EQ(p.scenarios[0].points[0].Int("containers"), 5);
  EXPECT_EQ(p.scenarios[1].points[0].Int("containers"), 5);
  r.axis_options = {{"op", "statx"}};
  EXPECT_EQ(MakePresetPlan(pr, r, Machine()).scenarios[1].points[0].Name("plan_build"),
            "plan_build/containers:100");
  r.axis_options = {{"binds", "1"}};  // no scenario of the preset has it
  EXPECT_THROW(MakePresetPlan(pr, r, Machine()), UsageError);
}

// procurement-v1's path_walk workers and placements, planned on plan_walk
// (the test binary has no real scenarios) on a topologies/ machine.
Plan ProcurementWalk(const std::string& machine) {
  Preset proc = Preset::Load(MNTSCALE_SOURCE_DIR "/presets/procurement-v1.json");
  const PresetScenario& walk = proc.scenarios.at(0);
  EXPECT_EQ(walk.scenario, "path_walk");
  std::string workers;
  for (const auto& [axis, list] : walk.set) {
    if (axis == "workers") workers = list;
  }
  Preset pr;
  pr.name = "t";
  pr.version = 1;
  pr.origin = "test";
  pr.scenarios = {{"plan_walk", {{"containers", "1"}, {"workers", workers}}, walk.placements}};
  RunRequest r;
  r.scenarios.clear();
  return MakePresetPlan(pr, r, Topology::Load(MNTSCALE_SOURCE_DIR "/topologies/" + machine));
}

std::vector<int> WorkersUnder(const Plan& p, const std::string& placement) {
  std::vector<int> out;
  for (const Point& pt : p.scenarios.at(0).points) {
    if (pt.Str("placement") == placement) out.push_back(pt.Int("workers"));
  }
  return out;
}

TEST(TopologyTokens, ProcurementWorkersOnEpyc2s) {
  // 384 PUs, 192 cores, 192 PUs per socket: @pow2 1..256 and 384, @linear:16
  // every 24, @socket and @cores 192; deduplicated and sorted.
  const std::vector<int> all = {1,   2,   4,   8,   16,  24,  32,  48,  64,  72,  96,  120, 128,
                                144, 168, 192, 216, 240, 256, 264, 288, 312, 336, 360, 384};
  const std::vector<int> half(all.begin(), all.begin() + 16);  // up to 192
  Plan p = ProcurementWalk("epyc-9654-2s.synthetic");
  EXPECT_EQ(WorkersUnder(p, "spread"), all);
  EXPECT_EQ(WorkersUnder(p, "compact"), all);
  EXPECT_EQ(WorkersUnder(p, "socket:0"), half);        // 192 PUs: 216..384 dropped
  EXPECT_EQ(WorkersUnder(p, "spread,smt-off"), half);  // 192 cores
  EXPECT_EQ(p.PointCount(), 2 * 25 + 2 * 16);
  ASSERT_EQ(p.notes.size(), 2u);
  EXPECT_NE(p.notes[0].find("216,240,256,264,288,312,336,360,384 workers under socket:0"),
            std::string::npos)
      << p.notes[0];
}

TEST(TopologyTokens, ProcurementWorkersOnXeonR5Metal2s) {
  // 96 PUs, 48 cores, 48 PUs per socket: @pow2 1..64 and 96, @linear:16
  // every 6, @socket and @cores 48.
  const std::vector<int> all = {1,  2,  4,  6,  8,  12, 16, 18, 24, 30, 32, 36,
                                42, 48, 54, 60, 64, 66, 72, 78, 84, 90, 96};
  const std::vector<int> half(all.begin(), all.begin() + 14);  // up to 48
  Plan p = ProcurementWalk("xeon-r5-metal-2s.synthetic");
  EXPECT_EQ(WorkersUnder(p, "spread"), all);
  EXPECT_EQ(WorkersUnder(p, "compact"), all);
  EXPECT_EQ(WorkersUnder(p, "socket:0"), half);
  EXPECT_EQ(WorkersUnder(p, "spread,smt-off"), half);
  EXPECT_EQ(p.notes.size(), 2u);
}

TEST(TopologyTokens, EachTokenAlone) {
  auto one = [](const char* list, const char* machine) {
    bool had = false;
    return ExpandTopologyTokens(
        "workers", list, Topology::Load(std::string(MNTSCALE_SOURCE_DIR "/topologies/") + machine),
        &had);
  };
  EXPECT_EQ(one("@pow2", "xeon-r5-metal-2s.synthetic"), "1,2,4,8,16,32,64,96");  // and all PUs
  EXPECT_EQ(one("@linear:4", "xeon-r5-metal-2s.synthetic"), "24,48,72,96");
  EXPECT_EQ(one("@pus", "epyc-9654-2s.synthetic"), "384");
  EXPECT_EQ(one("@socket", "epyc-9654-2s.synthetic"), "192");
  EXPECT_EQ(one("@cores", "epyc-9654-2s.synthetic"), "192");  // SMT siblings once
  EXPECT_EQ(one("@cores", "m7a-class.synthetic"), "192");     // no SMT: every PU
  EXPECT_EQ(one("@socket", "m7a-class.synthetic"), "96");
  EXPECT_EQ(one("@pow2", "dev-1s.synthetic"), "1,2,4,8,16");
}

// A PU count that is not a multiple of the steps: 12 PUs in 16 steps still
// climbs to every PU (a truncated step of 12 / 16 = 0 reached only 1 worker).
TEST(TopologyTokens, LinearStepsNeedNotDivideThePus) {
  bool had = false;
  const std::string got = ExpandTopologyTokens(
      "workers", "@linear:16", Topology::Synthetic("pack:1 numa:1 core:6 pu:2"), &had);
  EXPECT_TRUE(had);
  std::vector<long> n;
  for (size_t at = 0; at < got.size();) {
    size_t comma = got.find(',', at);
    if (comma == std::string::npos) comma = got.size();
    n.push_back(std::stol(got.substr(at, comma - at)));
    at = comma + 1;
  }
  ASSERT_FALSE(n.empty()) << got;
  EXPECT_EQ(n.front(), 1) << got;
  EXPECT_EQ(n.back(), 12) << got;
  EXPECT_GE(n.size(), 6u) << got;
}

TEST(TopologyTokens, ScalarsTakeDivisorsAndMultipliers) {
  Topology t = Topology::Load("pack:2 core:4 pu:2");  // 16 PUs, 8 cores, 8 per socket
  bool had = false;
  EXPECT_EQ(ExpandTopologyTokens("n", "@cores/4,@cores*5,@pus,3,@socket", t, &had), "2,3,8,16,40");
  EXPECT_TRUE(had);
  EXPECT_EQ(ExpandTopologyTokens("n", "2,1", t, &had), "2,1");  // no token: untouched
  EXPECT_FALSE(had);
  EXPECT_EQ(ExpandTopologyTokens("n", "@cores/64", t, &had), "1");  // never 0
  for (const char* bad : {"@bogus", "@linear", "@pow2/2", "@cores:3", "@cores/0", "@", "x,@pus"}) {
    EXPECT_THROW(ExpandTopologyTokens("n", bad, t, &had), UsageError) << bad;
  }
}

TEST(TopologyTokens, OnlyWholeNumberAxesAndExplicitRequestsStillRefuse) {
  RunRequest r = Req({"idmap=@pus"});
  EXPECT_THROW(MakePlan(r, Machine()), UsageError);  // an enum axis
  // A token makes the scenario topology-sized: too many workers are dropped.
  r = Req({"workers=@pow2"});
  r.cfg.placement = "socket:1";
  Plan p = MakePlan(r, Machine());
  EXPECT_EQ(p.PointCount(), 8);  // 1,2,4,8 x containers 1,10; 16 dropped
  EXPECT_EQ(p.notes.size(), 1u);
  r = Req({"workers=16"});  // a plain count is still refused
  r.cfg.placement = "socket:1";
  EXPECT_THROW(MakePlan(r, Machine()), UsageError);
}

TEST(Plan, AScenariosOwnProfileShapesItsPoints) {
  Preset pr;
  pr.name = "t";
  pr.version = 1;
  pr.origin = "test";
  pr.scenarios = {{"plan_storm", {{"parallel", "@cores"}}, {}, "netflix-50-layer-idmap"}};
  RunRequest r;
  r.scenarios.clear();
  Plan p = MakePresetPlan(pr, r, Machine());
  ASSERT_EQ(p.PointCount(), 1);
  const Point& pt = p.scenarios[0].points[0];
  EXPECT_EQ(
      pt.Name("plan_storm"),
      "plan_storm/strategy:per-layer-idmap/layers:50/parallel:8/profile:netflix-50-layer-idmap");
  EXPECT_EQ(ProfileForPoint(Profile(), pt).name, "netflix-50-layer-idmap");  // the session's too
}

TEST(Plan, BudgetRefusesTenTimesOver) {
  Preset pr;
  pr.name = "t";
  pr.version = 1;
  pr.origin = "test";
  pr.scenarios = {{"plan_walk", {{"containers", "1"}}}};
  RunRequest r;
  r.scenarios.clear();
  Plan p = MakePresetPlan(pr, r, Machine());
  r.cfg.warmup_s = 0;
  r.cfg.window_s = 1;
  r.cfg.windows = 10;
  r.cfg.repetitions = 1;  // 2 measurements (rounds 1, paired) x 10 s
  pr.budget_s = 2.5;
  EXPECT_NO_THROW(CheckBudget(pr, p, r.cfg, Machine()));  // 8x: printed, not refused
  pr.budget_s = 1.9;
  EXPECT_THROW(CheckBudget(pr, p, r.cfg, Machine()), UsageError);
}

// The estimate grows a farm of one shape and rebuilds it when the shape
// changes: the same FarmKey rule as Session.
TEST(Plan, EstimateFollowsSessionsFarmReuse) {
  SessionConfig cfg;
  cfg.warmup_s = 1;
  cfg.window_s = 1;
  cfg.windows = 2;
  cfg.repetitions = 1;
  Plan grow = MakePlan(Req({"containers=10,100,50"}), Machine());
  Estimate e = EstimatePlan(grow, cfg, 0.01);
  EXPECT_EQ(e.points, 3);
  EXPECT_EQ(e.containers_built, 100);          // 10, then +90, then shrink
  EXPECT_DOUBLE_EQ(e.measure_s, 3 * 2 * 3.0);  // rounds=1: with and without
  Plan shapes = MakePlan(Req({"containers=10", "layers=1,2,1"}), Machine());
  EXPECT_EQ(EstimatePlan(shapes, cfg, 0.01).containers_built, 30);  // each shape change rebuilds
  // The profile's name is not part of the shape.
  cfg.profile.name = "renamed";
  EXPECT_EQ(EstimatePlan(grow, cfg, 0.01).containers_built, 100);
  // A scenario that builds its own farm costs its containers every repetition.
  cfg.repetitions = 2;
  Plan own = MakePlan(Req({}, "plan_build"), Machine());
  Estimate o = EstimatePlan(own, cfg, 0.01);
  EXPECT_EQ(o.containers_built, 200);
  EXPECT_DOUBLE_EQ(o.measure_s, 0);
}

// Every repetition measures every point again: the estimate scales with them.
TEST(Plan, EstimateCountsEveryRepetition) {
  SessionConfig cfg;
  cfg.warmup_s = 1;
  cfg.window_s = 1;
  cfg.windows = 2;
  cfg.repetitions = 1;
  Plan p = MakePlan(Req({"containers=10,100"}), Machine());
  const Estimate one = EstimatePlan(p, cfg, 0.01);
  cfg.repetitions = 3;
  const Estimate three = EstimatePlan(p, cfg, 0.01);
  EXPECT_GT(one.measure_s, 0);
  EXPECT_DOUBLE_EQ(three.measure_s, 3 * one.measure_s);
  EXPECT_DOUBLE_EQ(three.overhead_s, 3 * one.overhead_s);
}

TEST(Plan, FarmKeyIgnoresTheNameButNotTheShape) {
  Profile a, b;
  b.name = "other";
  EXPECT_EQ(FarmKey(a), FarmKey(b));
  b.layers = a.layers + 1;
  EXPECT_NE(FarmKey(a), FarmKey(b));
}

TEST(ListJson, CarriesTypesDefaultsAliasesAndClaims) {
  nlohmann::json j = ListJson();
  EXPECT_EQ(j["schema"], "mntscale-list/1");
  const nlohmann::json* walk = nullptr;
  for (const auto& s : j["scenarios"]) {
    if (s["name"] == "plan_walk") walk = &s;
  }
  ASSERT_NE(walk, nullptr);
  const auto& ax = (*walk)["axes"];
  EXPECT_EQ(ax[1]["name"], "containers");
  EXPECT_EQ(ax[1]["type"], "int");
  EXPECT_EQ(ax[1]["default"], nlohmann::json({"1", "10"}));
  EXPECT_EQ(ax[1]["farm"], true);
  EXPECT_EQ(ax[4]["aliases"], nlohmann::json({"N"}));
  EXPECT_EQ(ax[5]["value_aliases"]["per-layer"], "per-layer-idmap");
  EXPECT_EQ(ax[6]["type"], "bool");
}


TEST(SweepExpansion, CartesianProductWithOverrides) {
  ScenarioInfo s{.name = "x",
                 .mechanism = "",
                 .expect = "",
                 .axes = {axes::Containers("1,10"), axes::Workers("1,2")},
                 .run = nullptr};
  auto pts = ExpandPoints(s, {{"workers", "4"}});
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_EQ(pts[0].Name("x"), "x/containers:1/workers:4");
  EXPECT_EQ(pts[1].Int("containers"), 10);
  EXPECT_EQ(pts[1].Params()["workers"], 4);
}

}  // namespace
}  // namespace mntscale
