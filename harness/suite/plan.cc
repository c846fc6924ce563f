#include "mntscale/suite/plan.h"

#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <map>

#include "mntscale/model/limits.h"
#include "mntscale/observe/counters.h"
#include "mntscale/runtimes/real_runtime.h"
#include "mntscale/sys/sys.h"
#include "mntscale/sys/text.h"

namespace mntscale {
namespace {

// The shorthands and --set, as (axis, list) pairs; --set wins, in order.
std::vector<std::pair<std::string, std::string>> Overrides(const RunRequest& r) {
  std::vector<std::pair<std::string, std::string>> ov = r.axis_options;
  for (const std::string& s : r.sets) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw UsageError("--set wants axis=v1,v2; got '" + s + "'");
    }
    ov.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  for (auto& [axis, list] : ov) {
    if (list.empty()) throw UsageError(axis + ": empty value (want v1,v2,...)");
  }
  return ov;
}

const ScenarioInfo& Scenario(const std::string& name) {
  const ScenarioInfo* s = FindScenario(name);
  if (!s) {
    std::string known;
    for (auto* x : AllScenarios()) known += std::string(known.empty() ? "" : ", ") + x->name;
    throw UsageError("unknown scenario '" + name + "' (known: " + known + ")");
  }
  return *s;
}

// Points of one scenario: the profile's shape as the default of the axes
// that set it, then the overrides it has (topology tokens expanded); then
// each point under each of `placements` (innermost, so the farm grows once
// per density), and placement and counts checked. A topology-sized
// scenario (a token or a placement list) drops the points a placement
// cannot host, with a note; any other refuses them.
PlannedScenario PlanOne(const ScenarioInfo& s,
                        const std::vector<std::pair<std::string, std::string>>& ov,
                        const std::vector<std::string>& placements, const std::string& own_profile,
                        const RunRequest& req, const Topology& topo, Plan* plan) {
  std::vector<std::pair<std::string, std::string>> mine;
  if (!req.profile.empty() || !own_profile.empty()) {
    const Profile pr = own_profile.empty() ? req.cfg.profile : Profile::Load(own_profile);
    if (s.FindAxis("layers")) mine.emplace_back("layers", std::to_string(pr.layers));
    if (s.FindAxis("binds")) mine.emplace_back("binds", std::to_string(pr.binds));
    // The storm's strategy is the profile's idmap ("per-layer" -> per-layer-idmap).
    if (!own_profile.empty() && pr.idmap != IdmapStrategy::kNone && s.FindAxis("strategy")) {
      mine.emplace_back("strategy", IdmapStrategyAxisName(pr.idmap));
    }
  }
  bool sized = !placements.empty();
  for (const auto& o : ov) {
    const Axis* a = s.FindAxis(o.first);
    if (!a) continue;
    bool had = false;
    std::string list = ExpandTopologyTokens(o.first, o.second, topo, &had);
    if (had && a->type != AxisType::kInt) {
      throw UsageError(o.first + "=" + o.second +
                       ": topology tokens (@...) are for whole-number axes; " + o.first + " is " +
                       a->TypeName());
    }
    sized |= had;
    mine.emplace_back(o.first, list);
  }
  std::vector<Point> points = ExpandPoints(s, mine);
  if (!own_profile.empty()) {
    for (Point& p : points) p.values.emplace_back("profile", Profile::Load(own_profile).name);
  }
  if (!placements.empty()) {
    std::vector<Point> each;
    for (const Point& p : points) {
      for (const std::string& pl : placements) {
        Point q = p;
        q.values.emplace_back("placement", PlacementSpec::Parse(pl).ToString());
        each.push_back(std::move(q));
      }
    }
    points = std::move(each);
  }
  PlannedScenario ps{&s, {}};
  std::map<std::string, std::vector<int>> dropped;  // placement -> worker counts
  for (const Point& p : points) {
    if (p.Has("workers")) {
      std::string pl = p.Has("placement") ? p.Str("placement") : req.cfg.placement;
      PlacementSpec spec = PlacementSpec::Parse(pl);
      if (sized && !spec.allow_sharing && p.Int("workers") > PusOf(topo, spec)) {
        dropped[pl].push_back(p.Int("workers"));
        continue;
      }
      if (!req.preview) PlanPlacement(topo, spec, p.Int("workers"));
    }
    if (p.Has("containers"))
      plan->max_containers = std::max(plan->max_containers, p.Int("containers"));
    ps.points.push_back(p);
  }
  for (auto& [pl, workers] : dropped) {
    std::sort(workers.begin(), workers.end());
    workers.erase(std::unique(workers.begin(), workers.end()), workers.end());
    std::string list;
    for (int w : workers) list += (list.empty() ? "" : ",") + std::to_string(w);
    plan->notes.push_back(Format("%s: dropped the points with %s workers under %s: it has %d PUs here",
                              s.name, list.c_str(), pl.c_str(),
                              PusOf(topo, PlacementSpec::Parse(pl))));
  }
  return ps;
}

// An override that no scenario of the plan has would be silently ignored.
void RequireUsed(const std::vector<std::pair<std::string, std::string>>& ov,
                 const std::vector<const ScenarioInfo*>& chosen, const std::string& what) {
  for (const auto& [axis, list] : ov) {
    bool used = false;
    for (const ScenarioInfo* s : chosen) used |= s->FindAxis(axis) != nullptr;
    if (!used) {
      std::string names;
      for (const ScenarioInfo* s : chosen) {
        std::string axes;
        for (const Axis& a : s->axes) axes += (axes.empty() ? "" : ", ") + a.name;
        names += std::string(names.empty() ? "" : "; ") + s->name + ": " + axes;
      }
      throw UsageError("no scenario of " + what + " has the axis '" + axis + "' (given as '" +
                       axis + "=" + list + "'; axes: " + names + ")");
    }
  }
}

PointCost CostOf(const ScenarioInfo& s, const Point& p) {
  if (s.cost) return s.cost(p);
  PointCost c;
  // Paired scenarios measure with and without, `rounds` times.
  if (p.Has("rounds")) c.measurements = 2 * p.Int("rounds");
  return c;
}

}  // namespace

int PusOf(const Topology& topo, const PlacementSpec& sp) {
  int n = 0;
  for (const Pu& pu : topo.pus()) {
    n += (sp.kind != PlacementSpec::kSocket || pu.package == sp.socket) &&
         (!sp.smt_off || pu.smt_rank == 0);
  }
  return n;
}

TopologyToken TopologyToken::Parse(const std::string& item) {
  auto bad = [&](const std::string& why) {
    return UsageError("topology token '" + item + "' " + why +
                      " (known: @pow2, @linear:N, @pus, @socket, @cores; the last three with "
                      "/D or *M)");
  };
  if (!Is(item)) throw bad("does not start with '@'");
  TopologyToken t;
  std::string name = item.substr(1), arg;
  size_t op = name.find_first_of(":/*");
  if (op != std::string::npos) {
    arg = name.substr(op + 1);
    char c = name[op];
    name.resize(op);
    int n = 0;
    auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), n);
    if (arg.empty() || ec != std::errc() || end != arg.data() + arg.size() || n < 1 || n > 4096) {
      throw bad("needs a whole number in 1..4096 after '" + std::string(1, c) + "'");
    }
    if (c == ':' && name != "linear") throw bad("takes no ':N' (only @linear:N does)");
    if (c != ':' && (name == "pow2" || name == "linear")) throw bad("takes no '/D' or '*M'");
    (c == ':' ? t.steps : c == '/' ? t.divide : t.multiply) = n;
  }
  if (name == "pow2") {
    t.kind = kPow2;
  } else if (name == "linear") {
    t.kind = kLinear;
    if (t.steps == 0) throw bad("needs its number of steps: @linear:N");
  } else if (name == "pus") {
    t.kind = kPus;
  } else if (name == "socket") {
    t.kind = kSocket;
  } else if (name == "cores") {
    t.kind = kCores;
  } else {
    throw bad("is unknown");
  }
  return t;
}

std::vector<long> TopologyToken::Expand(const Topology& topo) const {
  const long pus = static_cast<long>(topo.pus().size());
  std::vector<long> out;
  switch (kind) {
    case kPow2:
      for (long n = 1; n < pus; n *= 2) out.push_back(n);
      out.push_back(pus);
      return out;
    case kLinear:
      for (long i = 1; i <= steps; ++i) out.push_back(std::max(1L, pus * i / steps));
      return out;
    case kPus:
      out.push_back(pus);
      break;
    case kSocket:
      out.push_back(PusOf(topo, PlacementSpec::Parse("socket:0")));
      break;
    case kCores:
      out.push_back(PusOf(topo, PlacementSpec::Parse("spread,smt-off")));
      break;
  }
  out[0] = std::max(1L, out[0] * multiply / divide);
  return out;
}

std::string ExpandTopologyTokens(const std::string& axis, const std::string& list,
                                 const Topology& topo, bool* had_token) {
  *had_token = false;
  std::vector<std::string> items = SplitAxisList(axis, list);
  std::vector<long> counts;
  for (const std::string& item : items) *had_token |= TopologyToken::Is(item);
  if (!*had_token) return list;
  for (const std::string& item : items) {
    if (TopologyToken::Is(item)) {
      try {
        for (long n : TopologyToken::Parse(item).Expand(topo)) counts.push_back(n);
      } catch (const UsageError& e) {
        throw UsageError(axis + ": " + e.what());
      }
      continue;
    }
    char* end = nullptr;
    long n = std::strtol(item.c_str(), &end, 10);
    if (*end || item.empty()) {
      throw UsageError(axis + ": '" + item + "' in '" + list +
                       "' is neither a whole number nor a topology token");
    }
    counts.push_back(n);
  }
  std::sort(counts.begin(), counts.end());
  counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
  std::string out;
  for (long n : counts) out += (out.empty() ? "" : ",") + std::to_string(n);
  return out;
}

Preset AdHocPreset() {
  Preset p;
  p.name = "ad-hoc";
  p.description = "the command line's own run";
  p.origin = "command line";
  return p;
}

int Plan::PointCount() const {
  int n = 0;
  for (const auto& s : scenarios) n += static_cast<int>(s.points.size());
  return n;
}

void ApplyPreset(const Preset& p, const std::function<bool(const char*)>& given,
                 RunRequest* r) {
  if (!given("--scenario")) r->scenarios.clear();
  if (!given("--profile")) r->profile = p.profile;
  r->placement_given = given("--placement");
  if (!r->placement_given) r->cfg.placement = p.placement;
  if (!given("--mode")) r->mode = p.mode;
  if (!given("--warmup")) r->cfg.warmup_s = p.warmup_s;
  if (!given("--window")) r->cfg.window_s = p.window_s;
  if (!given("--windows")) r->cfg.windows = p.windows;
  if (!given("--repetitions")) r->cfg.repetitions = p.repetitions;
}

void ResolveRequest(RunRequest* req) {
  req->cfg.mode = ParseMode(req->mode);
  req->cfg.farm = ParseFarmBackend(req->farm);
  if (!req->profile.empty()) req->cfg.profile = Profile::Load(req->profile);
  req->cfg.events.clear();
  req->cfg.counters = false;
  if (req->events.empty()) return;
  req->cfg.counters = true;
  for (const std::string& e : SplitAxisList("--events", req->events)) req->cfg.events.push_back(e);
  if (req->cfg.events.size() == 1 && req->cfg.events[0] == "default") req->cfg.events.clear();
  ValidateEvents(req->cfg.events);  // through libpfm4: an unknown name is a usage error
}

Plan MakePlan(const RunRequest& req, const Topology& topo) {
  Plan plan;
  auto ov = Overrides(req);
  PlacementSpec::Parse(req.cfg.placement);
  if (req.scenarios.empty()) throw UsageError("--scenario: no scenario named");
  std::vector<const ScenarioInfo*> chosen;
  for (const std::string& name : req.scenarios) chosen.push_back(&Scenario(name));
  // --set must name an axis of every chosen scenario; a shorthand one of them.
  for (const auto& [axis, list] : ov) {
    bool shorthand = false;
    for (const auto& o : req.axis_options) shorthand |= o.first == axis;
    for (const ScenarioInfo* s : chosen) {
      if (!shorthand && !s->FindAxis(axis)) ThrowNoAxis(*s, axis);
    }
  }
  RequireUsed(req.axis_options, chosen, "--scenario " + [&] {
    std::string n;
    for (auto* s : chosen) n += (n.empty() ? "" : ",") + std::string(s->name);
    return n;
  }());
  for (const ScenarioInfo* s : chosen) {
    plan.scenarios.push_back(PlanOne(*s, ov, {}, "", req, topo, &plan));
  }
  return plan;
}

Plan MakePresetPlan(const Preset& preset, const RunRequest& req, const Topology& topo) {
  auto cli = Overrides(req);
  PlacementSpec::Parse(req.cfg.placement);
  Plan plan;
  std::vector<const ScenarioInfo*> chosen;
  for (const PresetScenario& ps : preset.scenarios) {
    // --scenario picks some of the preset's scenarios (a rerun of one point).
    if (!req.scenarios.empty() && std::find(req.scenarios.begin(), req.scenarios.end(),
                                            ps.scenario) == req.scenarios.end()) {
      continue;
    }
    try {
      const ScenarioInfo& s = Scenario(ps.scenario);
      chosen.push_back(&s);
      std::vector<std::pair<std::string, std::string>> ov = ps.set;
      for (auto& [axis, list] : ov) {
        if (!s.FindAxis(axis)) ThrowNoAxis(s, axis);
      }
      for (const auto& o : cli) ov.push_back(o);
      plan.scenarios.push_back(
          PlanOne(s, ov, req.placement_given ? std::vector<std::string>{} : ps.placements,
                  ps.profile, req, topo, &plan));
    } catch (const UsageError& e) {
      throw UsageError(preset.origin + ": " + e.what());
    }
  }
  if (plan.scenarios.empty()) {
    throw UsageError("preset " + preset.Id() + " has none of the scenarios asked for");
  }
  RequireUsed(cli, chosen, "preset " + preset.Id());
  return plan;
}

void PreflightLimits(const Plan& plan, const Profile& profile) {
  if (plan.max_containers == 0) return;
  const Demand d{plan.max_containers, profile.MountsPerContainer(), profile.ns_mode == NsMode::kShared, 0};
  if (auto lim = CheckLimits(d)) throw UsageError(lim->Message());
}

Estimate EstimatePlan(const Plan& plan, const SessionConfig& cfg, double build_s_per_container) {
  // Set-up and teardown a point costs besides its windows (worker start,
  // result write, farm shrink), measured on the test machine.
  constexpr double kPointOverheadS = 0.05;
  Estimate est;
  const double per_measurement = cfg.warmup_s + cfg.windows * cfg.window_s;
  std::string farm_key;
  int farm_size = 0;
  for (const auto& ps : plan.scenarios) {
    for (const Point& p : ps.points) {
      ++est.points;
      const PointCost cost = CostOf(*ps.scenario, p);
      est.measure_s += cfg.repetitions * cost.measurements * per_measurement;
      est.overhead_s += cfg.repetitions * kPointOverheadS;
      est.containers_built += cost.own_containers * cfg.repetitions;
      if (!cost.session_farm) {
        farm_key.clear();  // it dropped the session's farm
        farm_size = 0;
        continue;
      }
      if (!p.Has("containers")) continue;
      // Session's rule: one farm at a time, grown or shrunk while its shape
      // (FarmKey) stays the same, built anew when it changes.
      std::string key = FarmKey(ProfileForPoint(cfg.profile, p));
      int n = p.Int("containers");
      if (key != farm_key) {
        est.containers_built += n;
      } else if (n > farm_size) {
        est.containers_built += n - farm_size;
      }
      farm_key = key;
      farm_size = n;
    }
  }
  est.build_s = est.containers_built * build_s_per_container;
  return est;
}

void CheckBudget(const Preset& preset, const Plan& plan, const SessionConfig& cfg,
                 const Topology& topo) {
  if (preset.budget_s <= 0) return;
  const double total = EstimatePlan(plan, cfg, preset.build_s_per_container).total_s();
  if (total > 10 * preset.budget_s) {
    const TopologySummary& t = topo.summary();
    throw UsageError(
        Format("preset %s would take about %.0f s on %s (%d PUs), more than 10x its "
            "budget_s of %.0f s; pick fewer scenarios (--scenario), fewer values "
            "(--set) or shorter windows (--window, --windows, --repetitions)",
            preset.Id().c_str(), total, t.name.empty() ? t.source.c_str() : t.name.c_str(), t.pus,
            preset.budget_s));
  }
}

}  // namespace mntscale
