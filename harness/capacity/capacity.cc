#include "mntscale/capacity/capacity.h"

#include "mntscale/sys/text.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "mntscale/run/runner.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

// A percentage as people write it: 35%, 9.1%.
std::string Pct(double fraction) {
  char buf[32];
  const double v = 100 * fraction;
  snprintf(buf, sizeof buf, std::fabs(v) >= 10 ? "%.0f%%" : "%.1f%%", v);
  return buf;
}

std::string Num(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

bool IsCapacityMetric(const std::string& name) {
  for (const char* m : kCapacityMetrics) {
    if (name == m) return true;
  }
  return false;
}

nlohmann::json Slo::ToJson() const {
  return {{"metric", metric}, {"op", op()}, {"bound", bound}, {"text", text}};
}

std::vector<Slo> ParseSlos(const std::vector<std::string>& args) {
  std::vector<Slo> out;
  std::set<std::string> seen;
  std::string names;
  for (const char* m : kCapacityMetrics) names += std::string(names.empty() ? "" : ", ") + m;
  for (const std::string& arg : args) {
    size_t pos = 0;
    while (pos <= arg.size()) {
      size_t comma = arg.find(',', pos);
      if (comma == std::string::npos) comma = arg.size();
      const std::string piece = Trim(arg.substr(pos, comma - pos));
      pos = comma + 1;
      if (piece.empty()) throw UsageError("--slo '" + arg + "': an empty objective");
      size_t le = piece.find("<="), ge = piece.find(">=");
      if ((le == std::string::npos) == (ge == std::string::npos) ||
          piece.find_first_of("<>=", (le != std::string::npos ? le : ge) + 2) != std::string::npos) {
        throw UsageError("--slo '" + piece + "': expected METRIC<=NUMBER or METRIC>=NUMBER");
      }
      Slo s;
      s.at_most = le != std::string::npos;
      const size_t at = s.at_most ? le : ge;
      s.metric = Trim(piece.substr(0, at));
      s.text = piece;
      if (!IsCapacityMetric(s.metric)) {
        throw UsageError("--slo '" + piece + "': unknown metric '" + s.metric +
                         "' (metrics: " + names + ")");
      }
      const std::string num = Trim(piece.substr(at + 2));
      char* end = nullptr;
      errno = 0;
      s.bound = num.empty() ? 0 : std::strtod(num.c_str(), &end);
      if (num.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(s.bound)) {
        throw UsageError("--slo '" + piece + "': the bound '" + num + "' is not a finite number");
      }
      if (!seen.insert(s.metric + s.op()).second) {
        throw UsageError("--slo '" + piece + "': " + s.metric + " is already bounded " + s.op());
      }
      out.push_back(s);
    }
  }
  if (out.empty()) throw UsageError("--slo: at least one objective is needed");
  return out;
}

void CheckSlosMeaningful(const std::vector<Slo>& slos, double churn_rate, int path_walk_workers,
                         int health_workers) {
  auto refuse = [](const Slo& s, const std::string& why) {
    throw UsageError("--slo '" + s.text + "' " + why);
  };
  auto is_time = [](const std::string& m) {
    return m != "path_walk_per_worker" && m != "path_walk_ratio";
  };
  std::map<std::string, const Slo*> at_least, at_most;
  for (const Slo& s : slos) {
    // Every metric is a time, a rate or a ratio: never below 0, and a time
    // is never 0.
    if (s.bound < 0) {
      refuse(s, std::string("can never be decided usefully: ") + s.metric +
                    " is never negative, so the bound " +
                    (s.at_most ? "can never hold" : "always holds"));
    }
    if (s.at_most && s.bound == 0 && is_time(s.metric)) {
      refuse(s, "can never hold: " + s.metric + " is a time, always above 0");
    }
    if (churn_rate <= 0 && s.metric.rfind("start_", 0) == 0) {
      refuse(s,
             "can never be measured: --churn-rate 0 starts no container; give a churn rate "
             "above 0 or drop the start objective");
    }
    if (path_walk_workers <= 0 && s.metric.rfind("path_walk_", 0) == 0) {
      refuse(s, "can never be measured: no path-walk worker runs");
    }
    if (health_workers <= 0 && s.metric == "health_stat_p99_ms") {
      refuse(s, "can never be measured: no health reader runs");
    }
    (s.at_most ? at_most : at_least)[s.metric] = &s;
  }
  // An empty range on one metric, or on a quantile pair (p50 <= p99 always).
  auto empty = [&](const std::string& low_metric, const std::string& high_metric) {
    auto lo = at_least.find(low_metric);
    auto hi = at_most.find(high_metric);
    if (lo == at_least.end() || hi == at_most.end() || lo->second->bound < hi->second->bound)
      return;
    throw UsageError("--slo '" + lo->second->text + "' and '" + hi->second->text +
                     "' can never both hold: " +
                     (low_metric == high_metric ? "the range on " + low_metric + " is empty"
                                                : "start_p50_s is never above start_p99_s") +
                     " (a measured interval must lie above the one and below the other)");
  };
  for (const char* m : kCapacityMetrics) empty(m, m);
  empty("start_p50_s", "start_p99_s");
}

double TCritical(int df, double confidence) {
  // Two-sided quantiles of Student's t, df 1..30, then the normal's.
  static const double k90[] = {6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812,
                               1.796, 1.782, 1.771, 1.761, 1.753, 1.746, 1.740, 1.734, 1.729, 1.725,
                               1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697};
  static const double k95[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                               2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                               2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  static const double k99[] = {63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169,
                               3.106,  3.055, 3.012, 2.977, 2.947, 2.921, 2.898, 2.878, 2.861, 2.845,
                               2.831,  2.819, 2.807, 2.797, 2.787, 2.779, 2.771, 2.763, 2.756, 2.750};
  const double* t;
  double z;
  if (std::fabs(confidence - 0.90) < 1e-9) {
    t = k90, z = 1.645;
  } else if (std::fabs(confidence - 0.95) < 1e-9) {
    t = k95, z = 1.960;
  } else if (std::fabs(confidence - 0.99) < 1e-9) {
    t = k99, z = 2.576;
  } else {
    throw UsageError("confidence must be 0.9, 0.95 or 0.99, got " + Num(confidence));
  }
  if (df < 1) throw std::logic_error("TCritical: df < 1");
  return df <= 30 ? t[df - 1] : z;
}

nlohmann::json MetricStats::ToJson() const {
  nlohmann::json j = {{"mean", mean}, {"n", n}};
  if (samples >= 0) {
    // A pooled quantile: "mean" is the quantile itself.
    j["method"] = "order statistics over pooled samples";
    j["samples"] = samples;
    j["needed"] = needed;
    if (samples >= needed) j["ci"] = {lo, hi};
    return j;
  }
  if (n >= 2) j["ci"] = {lo, hi};
  return j;
}

MetricStats Summarize(const std::vector<double>& xs, double confidence) {
  MetricStats s;
  s.n = static_cast<int>(xs.size());
  if (xs.empty()) return s;
  double sum = 0;
  for (double x : xs) sum += x;
  s.mean = sum / s.n;
  s.lo = s.hi = s.mean;
  if (s.n < 2) return s;
  double ss = 0;
  for (double x : xs) ss += (x - s.mean) * (x - s.mean);
  const double half = TCritical(s.n - 1, confidence) * std::sqrt(ss / (s.n - 1) / s.n);
  s.lo = s.mean - half;
  s.hi = s.mean + half;
  return s;
}

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kPass: return "pass";
    case Verdict::kFail: return "fail";
    default: return "undecided";
  }
}

Verdict Judge(const Slo& slo, const MetricStats& s) {
  if (s.samples >= 0 ? s.samples < s.needed || s.n < 1 : s.n < 2) return Verdict::kUndecided;
  if (slo.at_most) {
    if (s.hi <= slo.bound) return Verdict::kPass;
    if (s.lo > slo.bound) return Verdict::kFail;
  } else {
    if (s.lo >= slo.bound) return Verdict::kPass;
    if (s.hi < slo.bound) return Verdict::kFail;
  }
  return Verdict::kUndecided;
}

nlohmann::json Invocation::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : values) j[k] = v;
  j["noisy"] = noisy;
  if (walker_on_cpu_share >= 0) j["path_walk_on_cpu_share"] = walker_on_cpu_share;
  if (at_s >= 0) j["at_s"] = at_s;
  // The pooled quantiles' evidence: how many samples each invocation added.
  for (const auto& [k, h] : samples) j["samples"][k] = h.count();
  return j;
}

nlohmann::json SearchConfig::ToJson() const {
  return {{"max_containers", max_containers},
          {"budget_s", budget_s},
          {"precision", precision},
          {"growth", growth},
          {"start", start},
          {"invocations", invocations},
          {"max_invocations", max_invocations},
          {"confidence", confidence},
          {"resamples", resamples},
          {"seed", seed}};
}

void ValidateSearchConfig(const SearchConfig& c) {
  auto bad = [](const std::string& what) { throw UsageError(what); };
  if (c.start < 1) bad("--start must be at least 1, got " + std::to_string(c.start));
  if (!(c.growth > 1) || !std::isfinite(c.growth))
    bad("--growth must be greater than 1, got " + Num(c.growth));
  if (!(c.precision > 0 && c.precision < 1))
    bad("--precision must be between 0 and 1 (relative), got " + Num(c.precision));
  if (c.invocations < 2)
    bad("--invocations must be at least 2 (a confidence interval needs two), got " +
        std::to_string(c.invocations));
  if (c.max_invocations < c.invocations)
    bad("--max-invocations (" + std::to_string(c.max_invocations) +
        ") must be at least --invocations (" + std::to_string(c.invocations) + ")");
  if (c.max_containers < c.start)
    bad("--max-containers (" + std::to_string(c.max_containers) + ") is below --start (" +
        std::to_string(c.start) + ")");
  if (!(c.budget_s > 0) || !std::isfinite(c.budget_s))
    bad("--budget must be a positive number of seconds, got " + Num(c.budget_s));
  TCritical(1, c.confidence);
}

std::optional<KernelLimit> LimitOfError(const std::string& call, int err, int n) {
  if (err == ENOSPC) {
    // unshare/setns/clone: too many mount namespaces; mount calls: fs.mount-max.
    if (call == "unshare" || call == "clone" || call == "setns")
      return KernelLimit{"user.max_mnt_namespaces", ReadSysctl("user.max_mnt_namespaces"), n};
    return KernelLimit{"fs.mount-max", ReadSysctl("fs.mount-max"), n};
  }
  if (err == EMFILE || err == ENFILE) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    return KernelLimit{"RLIMIT_NOFILE", static_cast<long>(rl.rlim_cur), n};
  }
  if (err == ENOMEM) return KernelLimit{"MemAvailable", MemAvailableKb() * 1024, n};
  return std::nullopt;
}

nlohmann::json Density::ToJson() const {
  nlohmann::json j = {{"containers", containers}, {"phase", phase}, {"seconds", seconds}};
  j["invocations"] = nlohmann::json::array();
  for (const Invocation& i : invocations) j["invocations"].push_back(i.ToJson());
  j["metrics"] = nlohmann::json::object();
  for (const auto& [k, s] : metrics) j["metrics"][k] = s.ToJson();
  j["verdicts"] = nlohmann::json::object();
  for (const auto& [k, v] : verdicts) j["verdicts"][k] = VerdictName(v);
  j["verdict"] = VerdictName(verdict);
  if (!attribution.is_null()) j["attribution"] = attribution;
  return j;
}

nlohmann::json SearchResult::ToJson(double confidence, const std::string& sentence) const {
  nlohmann::json j;
  j["n_star"] = n_star ? nlohmann::json(*n_star) : nlohmann::json(nullptr);
  j["bracket"] = {j["n_star"], above ? nlohmann::json(*above) : nlohmann::json(nullptr)};
  j["confidence"] = confidence;
  j["ended_by"] = ended_by;
  auto opt = [](const std::optional<int>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  // N_lo is the figure to schedule by: the host sustains at least that many
  // at the stated confidence.
  j["n_lo"] = opt(estimate.n_lo);
  j["n_hi"] = opt(estimate.n_hi);
  j["n_hi_open"] = estimate.n_hi_open;
  j["conservative"] = j["n_lo"];
  j["precise"] = precise;
  j["reference_remeasured"] = reference_remeasured;
  j["precision"] = precision;
  j["steadiness"] = Steadiness(*this);
  j["failed_metric"] = failed_metric.empty() ? nlohmann::json(nullptr) : nlohmann::json(failed_metric);
  j["undecided_metric"] = estimate.undecided_metric.empty()
                              ? nlohmann::json(nullptr)
                              : nlohmann::json(estimate.undecided_metric);
  j["fit"] = estimate.ToJson();
  j["limit"] = limit ? limit->ToJson() : nlohmann::json(nullptr);
  j["sentence"] = sentence;
  return j;
}

nlohmann::json Steadiness(const SearchResult& r) {
  std::vector<double> rates, drifts;
  for (const Density& d : r.densities) {
    for (const Invocation& inv : d.invocations) {
      auto c = inv.values.find("control_stat_per_s");
      auto dr = inv.values.find("control_drift");
      if (c != inv.values.end()) rates.push_back(c->second);
      if (dr != inv.values.end()) drifts.push_back(std::fabs(dr->second));
    }
  }
  if (rates.size() < 2) {
    return {{"unsupported", "no control loop ran (it runs on the path walker's CPU: "
                            "--path-walk-workers 0 has none)"}};
  }
  double mean = 0, var = 0;
  for (double x : rates) mean += x / rates.size();
  for (double x : rates) var += (x - mean) * (x - mean) / (rates.size() - 1);
  std::sort(drifts.begin(), drifts.end());
  return {{"control", "fstatat of 4 tmpfs components that cross no mountpoint, on the path "
                      "walker's PU, 0.2 s right before and right after each window"},
          {"invocations", rates.size()},
          {"control_stat_per_s_mean", mean},
          {"cv_between_invocations", std::sqrt(var) / mean},
          {"drift_within_invocation_p50", drifts[drifts.size() / 2]},
          {"drift_within_invocation_max", drifts.back()}};
}

std::string CapacitySentence(const SearchResult& r, const std::vector<Slo>& slos,
                             const std::string& profile) {
  (void)slos;
  auto containers = [](int n) { return std::to_string(n) + (n == 1 ? " container" : " containers"); };
  const CapacityEstimate& e = r.estimate;
  std::string s = r.n_star ? "This host sustains " + containers(*r.n_star) + " of " + profile +
                                 " at these objectives"
                           : "This host meets these objectives at no density measured for " +
                                 profile;
  if (r.n_star) {
    s += " (" + std::string(e.n_lo ? std::to_string(*e.n_lo) : "below the lowest density") + "–" +
         (e.n_hi ? std::to_string(*e.n_hi) + (e.n_hi_open ? "+" : "") : "?") +
         " at 95%; schedule by " + (e.n_lo ? std::to_string(*e.n_lo) : "none") + ")";
  }
  std::string why;
  for (const ObjectiveFit& o : e.objectives) {
    if (!e.undecided_metric.empty() && o.metric == e.undecided_metric && o.undecided_at) {
      why = o.metric + " could not be decided at " + containers(*o.undecided_at) + " (" +
            o.undecided_why + ")";
      break;
    }
  }
  if (why.empty()) {
    for (const ObjectiveFit& o : e.objectives) {
      if (o.metric != r.failed_metric || o.met_throughout) continue;
      const Slo* slo = nullptr;
      for (const Slo& x : slos) {
        if (x.text == o.text) slo = &x;
      }
      why = o.metric + (slo && slo->at_most ? " exceeds " : " falls below ") +
            (slo ? Num(slo->bound) : "its bound") + " (the fit over " +
            std::to_string(o.curve.size()) + " densities crosses it" +
            (o.crossing ? " at " + std::to_string(static_cast<long>(*o.crossing))
                        : " below the lowest") +
            ")";
      break;
    }
  }
  if (r.ended_by == "kernel-limit" && r.limit) {
    s += "; it is limited by " + r.limit->name + " = " + std::to_string(r.limit->value) +
         ", which " + containers(r.limit->at) + " would pass";
  } else if (r.ended_by == "max-containers") {
    s += "; the search stopped at --max-containers before any objective failed";
  } else if (r.ended_by == "budget" || r.ended_by == "interrupted") {
    s += std::string("; the search was ") +
         (r.ended_by == "budget" ? "cut short by its time budget" : "interrupted");
  }
  if (!why.empty()) s += (r.n_star ? "; beyond it, " : ": ") + why;
  // The fit falls back on noisy invocations where a density has too few
  // quiet ones: say so where it matters, at the densities either side of N*.
  std::optional<int> below;  // the largest density at or under N* (the lowest without one)
  for (const Density& d : r.densities) {
    if (r.n_star ? d.containers <= *r.n_star && (!below || d.containers > *below)
                 : !below || d.containers < *below)
      below = d.containers;
  }
  std::string noisy;
  for (const Density& d : r.densities) {
    if (d.containers != below && d.containers != r.above) continue;
    int quiet = 0;
    for (const Invocation& inv : d.invocations) quiet += !inv.noisy;
    if (quiet < 2) noisy += (noisy.empty() ? "" : " and ") + std::to_string(d.containers);
  }
  if (!noisy.empty())
    s += "; at " + noisy +
         " containers fewer than two invocations ran on a quiet machine "
         "(flagged noisy), so the answer measures this machine's load as much as the kernel";
  // An answer the search could not narrow to --precision says so, and why
  // when the fit is flat against the noise (issue 22: a 10% fall over 2.7
  // decades of N, invocations scattering 8%).
  if (r.n_star && !r.precise && !e.met_throughout) {
    s += "; N* is not resolved to ±" + Num(100 * r.precision) + "% (its interval spans " +
         (e.n_lo ? std::to_string(*e.n_lo) : "below the lowest density") + "–" +
         (e.n_hi ? std::to_string(*e.n_hi) + (e.n_hi_open ? "+" : "") : "?") + ")";
    for (const ObjectiveFit& o : e.objectives) {
      if (o.metric != r.failed_metric || std::isnan(o.scatter) || o.curve.size() < 2) continue;
      const double first = o.curve.front().second, last = o.curve.back().second;
      if (!(first != 0)) break;
      s += ": over the densities measured the fit of " + o.metric + " moves " +
           Pct(std::fabs(last - first) / std::fabs(first)) + " while single invocations scatter " +
           Pct(o.scatter) + " about their density's mean; more invocations (--budget) or a steadier machine "
           "narrow it";
      break;
    }
  }
  // The machine's own speed, which `noisy` (other tasks) cannot see: a VM's
  // host can slow a vCPU by a fifth with nothing else running in the guest.
  const nlohmann::json st = Steadiness(r);
  if (!st.contains("unsupported")) {
    s += "; this machine's own speed (a control loop on the walker's CPU) varied " +
         Pct(st["cv_between_invocations"].get<double>()) + " between invocations (CV) and up to " +
         Pct(st["drift_within_invocation_max"].get<double>()) + " within one";
  }
  return s + ".";
}

double EstimateDensitySeconds(int n, int invocations, double window_s) {
  // Per invocation: the window, a warm-up, readers' and churn start-up;
  // the farm at about 2 ms a container (presets' build_s_per_container).
  constexpr double kSetupS = 0.3, kBuildPerContainerS = 0.002;
  return invocations * (window_s + kSetupS) + n * kBuildPerContainerS;
}

std::vector<ActorSlot> PlanCapacityActors(const Topology& topo, int walkers, int health) {
  // Walkers take PUs of their own first: path_walk_ratio must measure the
  // mount machinery, not a CPU shared with a spinning reader (issue 22).
  PlacementSpec spec = PlacementSpec::Parse("spread");
  spec.allow_sharing = true;
  const int total = walkers + health + 1;
  std::vector<Slot> plan = PlanPlacement(topo, spec, std::max<int>(total, topo.pus().size()));
  std::vector<ActorSlot> out;
  std::set<int> taken;
  for (int i = 0; i < walkers; ++i) {
    out.push_back({"path_walk", i, plan[i]});
    taken.insert(plan[i].pu.os_index);
  }
  std::vector<Slot> rest;
  for (size_t i = walkers; i < plan.size(); ++i) {
    if (!taken.count(plan[i].pu.os_index)) rest.push_back(plan[i]);
  }
  if (rest.empty()) rest.assign(plan.begin(), plan.end());
  for (int i = 0; i < health + 1; ++i) {
    const Slot& sl = rest[i % rest.size()];
    out.push_back({i < health ? "health" : "churn", i < health ? i : 0, sl});
  }
  for (size_t i = 0; i < out.size(); ++i) out[i].slot.worker = static_cast<int>(i);
  return out;
}

nlohmann::json CapacityPlacementJson(const std::vector<ActorSlot>& plan) {
  nlohmann::json actors = nlohmann::json::array();
  std::map<int, std::vector<std::string>> by_pu;
  for (const ActorSlot& a : plan) {
    actors.push_back({{"actor", a.actor}, {"index", a.index}, {"pu", a.slot.pu.os_index}});
    by_pu[a.slot.pu.os_index].push_back(a.actor + " " + std::to_string(a.index));
  }
  nlohmann::json shared = nlohmann::json::array();
  for (const auto& [pu, names] : by_pu) {
    if (names.size() > 1) shared.push_back({{"pu", pu}, {"actors", names}});
  }
  return {{"actors", actors}, {"shared_pus", shared}};
}

}  // namespace mntscale
