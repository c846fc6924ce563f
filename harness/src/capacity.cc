#include "mntscale/capacity.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "mntscale/runner.h"
#include "mntscale/sys.h"

namespace mntscale {
namespace {

std::string Num(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

long MemAvailableKbNow() {
  std::string meminfo;
  if (!TryReadFile("/proc/meminfo", &meminfo)) return 0;
  auto pos = meminfo.find("MemAvailable:");
  return pos == std::string::npos ? 0 : std::strtol(meminfo.c_str() + pos + 13, nullptr, 10);
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
  if (s.n < 2) return Verdict::kUndecided;
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
  return j;
}

nlohmann::json SearchConfig::ToJson() const {
  return {{"max_containers", max_containers}, {"budget_s", budget_s}, {"precision", precision},
          {"growth", growth}, {"start", start}, {"invocations", invocations},
          {"max_invocations", max_invocations}, {"confidence", confidence}};
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

nlohmann::json KernelLimit::ToJson() const {
  return {{"name", name}, {"value", value}, {"at", at}};
}

std::optional<KernelLimit> KernelLimitAt(int n, int mounts_per_container, bool shared_ns,
                                         int extra) {
  const long mount_max = ReadSysctl("fs.mount-max");
  const long ns_max = ReadSysctl("user.max_mnt_namespaces");
  // The runtime's namespace holds one rootfs per container (and the shared
  // namespace every container's mounts): the largest single table.
  const long in_one_ns = std::max<long>(shared_ns ? 1L * n * mounts_per_container : 0,
                                        static_cast<long>(n) + extra);
  if (mount_max > 0 && in_one_ns > mount_max) return KernelLimit{"fs.mount-max", mount_max, n};
  if (ns_max >= 0 && !shared_ns && n + extra + 64 > ns_max)
    return KernelLimit{"user.max_mnt_namespaces", ns_max, n};
  // An fd per namespace and a second while the mount census counts them
  // (seen: 12,007 nsfs fds at 6,000 containers; EMFILE at 10,240 under 20,000).
  const rlim_t want = static_cast<rlim_t>(2L * (n + extra) + 1024);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < want) {
    struct rlimit up = rl;
    up.rlim_cur = want;
    if (up.rlim_max < want) up.rlim_max = want;
    if (setrlimit(RLIMIT_NOFILE, &up) != 0)
      return KernelLimit{"RLIMIT_NOFILE", static_cast<long>(rl.rlim_max), n};
  }
  // About 64 KiB of kernel and tmpfs memory per container (plan.cc's figure).
  const long avail_kb = MemAvailableKbNow();
  if (avail_kb > 0 && 64L * (n + extra) > avail_kb)
    return KernelLimit{"MemAvailable", avail_kb * 1024, n};
  return std::nullopt;
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
  if (err == ENOMEM) return KernelLimit{"MemAvailable", MemAvailableKbNow() * 1024, n};
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
  j["failed_metric"] = failed_metric.empty() ? nlohmann::json(nullptr) : nlohmann::json(failed_metric);
  j["limit"] = limit ? limit->ToJson() : nlohmann::json(nullptr);
  j["sentence"] = sentence;
  return j;
}

namespace {

// Judges d against the objectives; path_walk_ratio from the baseline mean.
void Decide(const std::vector<Slo>& slos, double confidence, double baseline, Density* d) {
  std::map<std::string, std::vector<double>> xs;
  for (Invocation& inv : d->invocations) {
    auto pw = inv.values.find("path_walk_per_worker");
    if (pw != inv.values.end() && baseline > 0) inv.values["path_walk_ratio"] = pw->second / baseline;
    for (const auto& [k, v] : inv.values) xs[k].push_back(v);
  }
  d->metrics.clear();
  for (const auto& [k, v] : xs) d->metrics[k] = Summarize(v, confidence);
  d->verdicts.clear();
  bool fail = false, undecided = false;
  for (const Slo& s : slos) {
    auto it = d->metrics.find(s.metric);
    // A metric no invocation measured cannot be judged: undecided, never pass.
    Verdict v = it == d->metrics.end() ? Verdict::kUndecided : Judge(s, it->second);
    // Two bounds on one metric: the worse verdict stands.
    auto [pos, fresh] = d->verdicts.emplace(s.metric, v);
    if (!fresh && (v == Verdict::kFail || (v == Verdict::kUndecided && pos->second == Verdict::kPass)))
      pos->second = v;
    fail |= v == Verdict::kFail;
    undecided |= v == Verdict::kUndecided;
  }
  d->verdict = fail ? Verdict::kFail : undecided ? Verdict::kUndecided : Verdict::kPass;
}

}  // namespace

SearchResult RunCapacitySearch(const SearchConfig& cfg, const std::vector<Slo>& slos,
                               const SearchHooks& hooks) {
  SearchResult r;
  auto elapsed = [&] { return hooks.elapsed_s ? hooks.elapsed_s() : 0.0; };
  double baseline = 0;  // path_walk_per_worker's mean at the lowest density
  int lowest = 0;
  double last_cost = 0;
  // Measures one density; false when the search must end (set ended_by).
  auto measure = [&](int n, const char* phase) -> bool {
    if (hooks.limit) {
      if (auto lim = hooks.limit(n)) {
        r.limit = lim;
        r.ended_by = "kernel-limit";
        return false;
      }
    }
    if (elapsed() + last_cost > cfg.budget_s) {
      r.ended_by = "budget";
      return false;
    }
    Density d;
    d.containers = n;
    d.phase = phase;
    const double t0 = elapsed();
    try {
      for (int i = 0; i < cfg.max_invocations; ++i) {
        d.invocations.push_back(hooks.measure(n, i));
        if (i + 1 < cfg.invocations) continue;
        if (!lowest || n < lowest) {
          // This density is the baseline (the lowest so far): re-derive it.
          std::vector<double> pw;
          for (const Invocation& inv : d.invocations) {
            auto it = inv.values.find("path_walk_per_worker");
            if (it != inv.values.end()) pw.push_back(it->second);
          }
          baseline = pw.empty() ? 0 : Summarize(pw, cfg.confidence).mean;
        }
        Decide(slos, cfg.confidence, baseline, &d);
        if (d.verdict != Verdict::kUndecided) break;
        if (elapsed() > cfg.budget_s) break;  // stays undecided: never guessed
      }
    } catch (const Interrupted&) {
      r.ended_by = "interrupted";
      return false;
    } catch (const LimitReached& l) {
      r.limit = l.limit;
      r.ended_by = "kernel-limit";
      return false;
    }
    if (!lowest || n < lowest) lowest = n;
    d.seconds = elapsed() - t0;
    last_cost = d.seconds;
    // The knee's attribution: the last invocation's that has one.
    for (auto it = d.invocations.rbegin(); it != d.invocations.rend(); ++it) {
      if (!it->attribution.is_null()) {
        d.attribution = it->attribution;
        break;
      }
    }
    r.densities.push_back(std::move(d));
    if (hooks.on_density) hooks.on_density(r);
    return true;
  };
  auto record_nonpass = [&](const Density& d) {
    r.above = d.containers;
    r.failed_metric.clear();
    for (Verdict want : {Verdict::kFail, Verdict::kUndecided}) {
      for (const Slo& s : slos) {
        if (d.verdicts.at(s.metric) == want && r.failed_metric.empty()) r.failed_metric = s.metric;
      }
    }
  };

  // Grow.
  int n = cfg.start;
  bool found_nonpass = false;
  while (true) {
    if (!measure(n, "grow")) return r;
    const Density& d = r.densities.back();
    if (d.verdict != Verdict::kPass) {
      record_nonpass(d);
      found_nonpass = true;
      break;
    }
    r.n_star = n;
    if (n >= cfg.max_containers) {
      r.ended_by = "max-containers";
      return r;
    }
    const int prev = n;
    n = std::min<long>(cfg.max_containers,
                       std::max<long>(n + 1, std::lround(n * cfg.growth)));
    // Past a kernel limit, the largest density under it is measured last
    // (the limit is a pure check, nothing is built to find it).
    if (hooks.limit && n > prev + 1 && hooks.limit(n)) {
      int lo = prev, hi = n;
      while (hi - lo > 1) {
        const int mid = lo + (hi - lo) / 2;
        (hooks.limit(mid) ? hi : lo) = mid;
      }
      n = lo > prev ? lo : hi;  // hi == prev + 1: the limit, met right above
    }
  }
  // Bisect between the last pass and the first non-pass.
  if (found_nonpass && r.n_star) {
    while (*r.above - *r.n_star > std::max(1.0, cfg.precision * *r.n_star)) {
      const int mid = *r.n_star + (*r.above - *r.n_star) / 2;
      if (!measure(mid, "bisect")) return r;
      const Density& d = r.densities.back();
      if (d.verdict == Verdict::kPass) {
        r.n_star = mid;
      } else {
        record_nonpass(d);
      }
    }
  }
  r.ended_by = "slo";
  return r;
}

std::string CapacitySentence(const SearchResult& r, const std::vector<Slo>& slos,
                             const std::string& profile) {
  auto containers = [](int n) { return std::to_string(n) + (n == 1 ? " container" : " containers"); };
  std::string s = r.n_star ? "This host sustains " + containers(*r.n_star) + " of " + profile +
                                 " at these objectives"
                           : "This host meets these objectives at no density measured for " +
                                 profile;
  const Density* above = nullptr;
  for (const Density& d : r.densities) {
    if (r.above && d.containers == *r.above) above = &d;
  }
  std::string why;
  if (above && !r.failed_metric.empty()) {
    for (const Slo& slo : slos) {
      if (slo.metric != r.failed_metric) continue;
      auto m = above->metrics.find(slo.metric);
      const bool undecided = above->verdicts.at(slo.metric) == Verdict::kUndecided;
      why = slo.metric + (undecided ? " could not be decided against " + Num(slo.bound)
                                    : (slo.at_most ? " exceeds " : " falls below ") + Num(slo.bound));
      if (m != above->metrics.end()) {
        why += " (measured " + Num(m->second.mean) + " at " + std::to_string(above->containers) + ")";
      } else {
        why += " (not measured at " + std::to_string(above->containers) + ")";
      }
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
  return s + ".";
}

double EstimateDensitySeconds(int n, int invocations, double window_s) {
  // Per invocation: the window, a warm-up, readers' and churn start-up;
  // the farm at about 2 ms a container (presets' build_s_per_container).
  constexpr double kSetupS = 0.3, kBuildPerContainerS = 0.002;
  return invocations * (window_s + kSetupS) + n * kBuildPerContainerS;
}

}  // namespace mntscale
