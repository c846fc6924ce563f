// The capacity result's `capacity` object and the summary line (capacity.h).
#include <cstdio>
#include <string>

#include "mntscale/capacity/capacity.h"

namespace mntscale {

nlohmann::json CapacityDocument(const CapacityRun& run, const SearchResult& r, bool complete,
                                double elapsed_s) {
  nlohmann::json cap = {{"version", 2},
                        {"complete", complete},
                        {"profile", run.profile},
                        {"mounts_per_container", run.mounts_per_container}};
  cap["churn"] = {{"starts_per_s", run.churn_rate},
                  {"strategy", IdmapStrategyAxisName(run.idmap)},
                  {"layers", run.layers}};
  cap["workers"] = {{"path_walk", run.path_walk_workers}, {"health", run.health_workers}};
  cap["placement"] = run.placement;
  cap["slo"] = nlohmann::json::array();
  for (const Slo& s : run.slos) cap["slo"].push_back(s.ToJson());
  cap["search"] = run.search.ToJson();
  cap["search"]["window_s"] = run.window_s;
  cap["densities"] = nlohmann::json::array();
  for (const Density& d : r.densities) cap["densities"].push_back(d.ToJson());
  SearchResult shown = r;
  if (!complete && shown.ended_by.empty()) shown.ended_by = "interrupted";
  cap["result"] =
      shown.ToJson(run.search.confidence, CapacitySentence(shown, run.slos, run.profile));
  cap["elapsed_s"] = elapsed_s;
  return cap;
}

std::string CapacitySummary(const CapacityRun& run, const SearchResult& r, double elapsed_s,
                            const std::string& out) {
  std::string curve;
  int noisy = 0, invocations = 0;
  for (const Density& d : r.densities) {
    for (const Invocation& inv : d.invocations) noisy += inv.noisy, ++invocations;
    curve += (curve.empty() ? "" : ", ") + std::to_string(d.containers) + " " +
             VerdictName(d.verdict);
  }
  char buf[512];
  snprintf(buf, sizeof buf,
           "%s with %s churn at %g starts/s; measured %zu densities (", run.profile.c_str(),
           IdmapStrategyAxisName(run.idmap), run.churn_rate, r.densities.size());
  std::string s = buf;
  snprintf(buf, sizeof buf,
           ") in %.0f s, %d of %d invocations on a busy machine (noisy); the search ended by %s; "
           "results in ",
           elapsed_s, noisy, invocations, r.ended_by.c_str());
  return s + curve + buf + out + ". " + CapacitySentence(r, run.slos, run.profile);
}

}  // namespace mntscale
