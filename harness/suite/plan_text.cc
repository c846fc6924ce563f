// `mntscale plan`'s text: what a preset or an ad-hoc run would do, and where
// workers go under each placement (plan_text.h).
#include "mntscale/suite/plan_text.h"

#include <algorithm>
#include <map>

#include "mntscale/sys/text.h"

namespace mntscale {
namespace {

std::vector<std::string> PlacementsOf(const Topology& topo) {
  std::vector<std::string> out = {"compact", "spread"};
  for (int s = 0; s < topo.summary().packages; ++s) out.push_back("socket:" + std::to_string(s));
  out.push_back("smt-off");
  return out;
}

std::string PerSocket(const Topology& topo, const std::vector<Slot>& slots) {
  std::vector<int> n(std::max(topo.summary().packages, 1), 0);
  for (const Slot& s : slots) ++n[s.pu.package];
  std::string out;
  for (size_t i = 0; i < n.size(); ++i) out += (i ? "/" : "") + std::to_string(n[i]);
  return out;
}

std::string MachineLine(const Topology& topo) {
  const TopologySummary& t = topo.summary();
  return Format("%s: %d sockets, %d NUMA nodes, %d cores, %d PUs\n",
             t.name.empty() ? t.source.c_str() : t.name.c_str(), t.packages, t.numa_nodes,
             t.cores, t.pus);
}

}  // namespace

std::string FormatPlacements(const Topology& topo, int workers) {
  std::string out = MachineLine(topo);
  for (const std::string& pl : PlacementsOf(topo)) {
    PlacementSpec sp = PlacementSpec::Parse(pl);
    int n = workers > 0 ? workers : PusOf(topo, sp);
    std::vector<Slot> slots;
    try {
      slots = PlanPlacement(topo, sp, n);
    } catch (const UsageError& e) {
      out += Format("\n%-10s %d workers: impossible: %s\n", pl.c_str(), n, e.what());
      continue;
    }
    std::map<int, int> numa, per_core;
    for (const Slot& s : slots) {
      ++numa[s.pu.numa];
      ++per_core[s.pu.core];
    }
    int smt_shared = 0;
    for (auto& [core, k] : per_core) smt_shared += k > 1 ? k : 0;
    std::string numas;
    for (auto& [node, k] : numa)
      numas += (numas.empty() ? "" : " ") + std::to_string(node) + ":" + std::to_string(k);
    out += Format("\n%-10s %d workers  per socket %s  per NUMA node %s  cores %zu  on SMT siblings %d\n",
               pl.c_str(), n, PerSocket(topo, slots).c_str(), numas.c_str(), per_core.size(),
               smt_shared);
    std::string first;
    for (size_t i = 0; i < slots.size() && i < 8; ++i) {
      first += Format(" w%d:s%d/c%d/pu%d", slots[i].worker, slots[i].pu.package, slots[i].pu.core,
                   slots[i].pu.os_index);
    }
    out += Format("%-10s first:%s%s\n", "", first.c_str(), slots.size() > 8 ? " ..." : "");
  }
  return out;
}

std::string FormatPresetPlan(const Preset& preset, const Plan& plan, const RunRequest& req,
                             const Topology& topo) {
  const SessionConfig& cfg = req.cfg;
  std::string out = Format("preset %s (%s)\n  %s\n", preset.Id().c_str(), preset.origin.c_str(),
                        preset.description.c_str());
  out += "machine " + MachineLine(topo);
  out += Format("profile %s, mode %s, run placement %s; %d repetitions x (%.2g s warm-up + %d x %.2g s)\n\n",
             cfg.profile.name.c_str(), req.mode.c_str(), cfg.placement.c_str(), cfg.repetitions,
             cfg.warmup_s, cfg.windows, cfg.window_s);
  std::vector<std::string> placements = PlacementsOf(topo);
  int width = 5;
  for (const auto& ps : plan.scenarios) {
    for (const Point& p : ps.points)
      width = std::max(width, static_cast<int>(p.Name(ps.scenario->name).size()));
  }
  out += Format("%-*s  workers per socket under each placement\n%-*s ", width, "point", width, "");
  for (const auto& pl : placements) out += Format(" %12s", pl.c_str());
  out += "\n";
  for (const auto& ps : plan.scenarios) {
    for (const Point& p : ps.points) {
      out += Format("%-*s ", width, p.Name(ps.scenario->name).c_str());
      for (const auto& pl : placements) {
        std::string cell = "-";
        if (p.Has("workers")) {
          try {
            cell = PerSocket(topo, PlanPlacement(topo, PlacementSpec::Parse(pl), p.Int("workers")));
          } catch (const UsageError&) {
            cell = "too many";
          }
        }
        out += Format(" %12s", cell.c_str());
      }
      out += "\n";
    }
  }
  for (const std::string& n : plan.notes) out += "note: " + n + "\n";
  Estimate est = EstimatePlan(plan, cfg, preset.build_s_per_container);
  const double per_measurement = cfg.warmup_s + cfg.windows * cfg.window_s;
  out += Format("\n%d points x %d repetitions, %.2f s per measurement (warm-up + windows) = %.0f s measuring\n",
             est.points, cfg.repetitions, per_measurement, est.measure_s);
  out += Format("%ld containers built x %.4f s (estimated per container) = %.0f s building\n",
             est.containers_built, preset.build_s_per_container, est.build_s);
  out += Format("%.0f s of per-point set-up and teardown\n", est.overhead_s);
  const double total = est.total_s();
  out += Format("expected run time: about %.0f s (%dm%02ds) per invocation\n", total,
             static_cast<int>(total) / 60, static_cast<int>(total) % 60);
  if (preset.budget_s > 0) {
    out += Format("budget %.0f s (%dm%02ds) per invocation: the estimate is %.0f%% of it\n",
               preset.budget_s, static_cast<int>(preset.budget_s) / 60,
               static_cast<int>(preset.budget_s) % 60, 100 * total / preset.budget_s);
  }
  if (preset.invocations > 1) {
    const double all = total * preset.invocations;
    out += Format("%d independent invocations (ci/nightly; compare's sampling unit): about %.0f s (%dm%02ds)\n",
               preset.invocations, all, static_cast<int>(all) / 60, static_cast<int>(all) % 60);
  }
  return out;
}

std::string PlanCommand(const Preset* preset, RunRequest req, const Topology& topo,
                        bool placement_given, bool scenario_given) {
  bool adhoc = scenario_given || !req.sets.empty();
  int workers = 0;
  for (auto& [axis, list] : req.axis_options) adhoc |= axis != "workers";
  if (!adhoc && !req.axis_options.empty()) {
    workers = std::stoi(axes::Workers("").Check(req.axis_options[0].second));
  }
  if (preset || adhoc) {
    Preset adhoc_preset = AdHocPreset();
    if (!preset) preset = &adhoc_preset;
    ResolveRequest(&req);
    // Points that do not fit a placement show as "too many", not as an error.
    RunRequest preview = req;
    preview.preview = true;
    Plan p = preset->scenarios.empty() ? MakePlan(preview, topo)
                                       : MakePresetPlan(*preset, preview, topo);
    CheckBudget(*preset, p, req.cfg, topo);
    return FormatPresetPlan(*preset, p, req, topo);
  }
  if (!placement_given) return FormatPlacements(topo, workers);
  PlacementSpec spec = PlacementSpec::Parse(req.cfg.placement);
  int n = workers > 0 ? workers : PusOf(topo, spec);
  return FormatPlan(topo, spec, PlanPlacement(topo, spec, n));
}

}  // namespace mntscale
