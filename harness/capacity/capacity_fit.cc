// N* from all densities at once (capacity.h, EstimateCapacity): a monotone
// fit per objective, its crossing of the bound, and a bootstrap over
// invocations for the interval. Pure: densities in, an estimate out.
//
// Why this and not a verdict per density: near the bound each density's own
// t-interval straddles it, and a search that stops at the first straddle
// answers anywhere between 20 and 2,990 on the same host (issue 22). The
// metrics are monotone in N, so every density informs the crossing.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "mntscale/capacity/capacity.h"

namespace mntscale {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string Num(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// log of the binomial(n, q) probability of k.
double LogPmf(long n, long k, double q) {
  return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) + k * std::log(q) +
         (n - k) * std::log1p(-q);
}

// One objective, prepared: which invocation values it reads and up to which
// density it can be judged.
struct Prep {
  const Slo* slo = nullptr;
  const QuantileMetric* qm = nullptr;
  std::string key;  // the value read (a ratio's base metric)
  bool ratio = false;
  int usable = 0;  // densities [0, usable) can be judged
  std::optional<int> undecided_at;
  std::string why;
};

// Values of key at one density's invocations (those that have it).
std::vector<double> ValuesOf(const std::vector<const Invocation*>& invs, const std::string& key) {
  std::vector<double> xs;
  for (const Invocation* inv : invs) {
    auto it = inv->values.find(key);
    if (it != inv->values.end()) xs.push_back(it->second);
  }
  return xs;
}

long PooledCount(const std::vector<const Invocation*>& invs, const char* samples) {
  long n = 0;
  for (const Invocation* inv : invs) {
    auto it = inv->samples.find(samples);
    if (it != inv->samples.end()) n += static_cast<long>(it->second.count());
  }
  return n;
}

struct Eval {
  std::optional<double> crossing;  // capped; nullopt: missed at the lowest (or nothing usable)
  bool open = false;               // met throughout, not capped: the truth may lie beyond
  bool capped = false;             // an undecided density lowered (or removed) the crossing
  std::optional<double> real;      // uncapped crossing of a fit that does cross (-inf: at lowest)
};

}  // namespace

const QuantileMetric* QuantileOf(const std::string& metric) {
  static const QuantileMetric kQuantiles[] = {{"start_p50_s", "start_ns", 0.50, 1e-9},
                                              {"start_p99_s", "start_ns", 0.99, 1e-9},
                                              {"health_stat_p99_ms", "health_stat_ns", 0.99, 1e-6}};
  for (const QuantileMetric& q : kQuantiles) {
    if (metric == q.metric) return &q;
  }
  return nullptr;
}

const char* RatioBase(const std::string& metric) {
  if (metric == "path_walk_ratio") return "path_walk_per_worker";
  if (metric == "path_walk_per_cpu_ratio") return "path_walk_per_cpu_s";
  return nullptr;
}

RankInterval QuantileRanks(long n, double q, double confidence) {
  RankInterval r;
  if (n < 1 || !(q > 0 && q < 1)) return r;
  const double tail = (1 - confidence) / 2;
  // B = the number of samples below the true quantile ~ binomial(n, q);
  // [X(lo), X(hi)] covers it when lo <= B < hi. lo: the largest with
  // P(B < lo) <= tail; hi: the smallest with P(B < hi) >= 1 - tail.
  if (n > 20000) {                                  // the normal approximation is exact enough here
    const double zc = TCritical(1000, confidence);  // the normal's two-sided quantile
    const double sd = std::sqrt(n * q * (1 - q));
    r.lo = std::max(1L, static_cast<long>(std::floor(n * q - zc * sd)));
    r.hi = std::min(n, static_cast<long>(std::ceil(n * q + zc * sd)) + 1);
    r.ok = n * q - zc * sd >= 1 && n * q + zc * sd + 1 <= n;
    return r;
  }
  double cdf = 0;  // P(B <= k)
  long lo = 0, hi = 0;
  for (long k = 0; k <= n; ++k) {
    const double below = cdf;  // P(B < k)
    if (below <= tail) lo = k;
    if (!hi && below >= 1 - tail && k >= 1) hi = k;
    cdf += std::exp(LogPmf(n, k, q));
  }
  // hi may be n + 1's worth: P(B < n) < 1 - tail means even X(n) is too low.
  r.lo = lo;
  r.hi = hi;
  r.ok = lo >= 1 && hi >= 1 && hi <= n;
  return r;
}

long SamplesNeeded(double q, double confidence) {
  const double tail = (1 - confidence) / 2;
  long n = static_cast<long>(std::ceil(std::log(tail) / std::log(std::max(q, 1 - q))));
  while (n > 1 && QuantileRanks(n - 1, q, confidence).ok) --n;
  while (!QuantileRanks(n, q, confidence).ok) ++n;
  return n;
}

std::vector<double> IsotonicFit(const std::vector<double>& ys, const std::vector<double>& weights) {
  struct Block {
    double sum, w;
    size_t len;
  };
  std::vector<Block> blocks;
  for (size_t i = 0; i < ys.size(); ++i) {
    blocks.push_back({ys[i] * weights[i], weights[i], 1});
    while (blocks.size() > 1) {
      Block& b = blocks.back();
      Block& a = blocks[blocks.size() - 2];
      if (a.sum / a.w <= b.sum / b.w) break;
      a.sum += b.sum, a.w += b.w, a.len += b.len;
      blocks.pop_back();
    }
  }
  std::vector<double> g;
  for (const Block& b : blocks) g.insert(g.end(), b.len, b.sum / b.w);
  return g;
}

std::optional<double> FitCrossing(const std::vector<int>& ns, const std::vector<double>& g,
                                  const Slo& slo, bool* met_all) {
  *met_all = false;
  auto meets = [&](double v) { return slo.at_most ? v <= slo.bound : v >= slo.bound; };
  if (g.empty() || !meets(g[0])) return std::nullopt;
  for (size_t j = 0; j + 1 < g.size(); ++j) {
    if (meets(g[j + 1])) continue;
    // The fit is monotone: the bound lies between g[j] and g[j+1].
    const double t = (slo.bound - g[j]) / (g[j + 1] - g[j]);
    return ns[j] + std::clamp(t, 0.0, 1.0) * (ns[j + 1] - ns[j]);
  }
  *met_all = true;
  return ns.back();
}

nlohmann::json ObjectiveFit::ToJson() const {
  auto opt = [](const std::optional<double>& v) {
    return v ? nlohmann::json(std::floor(*v)) : nlohmann::json(nullptr);
  };
  nlohmann::json curve_j = nlohmann::json::array();
  for (const auto& [n, v] : curve) curve_j.push_back({n, v});
  nlohmann::json j = {{"metric", metric},
                      {"text", text},
                      {"curve", curve_j},
                      {"crossing", opt(crossing)},
                      {"met_throughout", met_throughout},
                      {"interval", {opt(lo), opt(hi)}}};
  if (!std::isnan(scatter)) j["scatter"] = scatter;
  if (undecided_at) j["undecided"] = {{"at", *undecided_at}, {"why", undecided_why}};
  return j;
}

nlohmann::json CapacityEstimate::ToJson() const {
  auto opt = [](const std::optional<int>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  nlohmann::json j = {{"n_star", opt(n_star)},
                      {"n_lo", opt(n_lo)},
                      {"n_hi", opt(n_hi)},
                      {"n_hi_open", n_hi_open},
                      {"met_throughout", met_throughout},
                      {"method",
                       "isotonic fit over every invocation; bootstrap of mean metrics from "
                       "relative residuals pooled over neighbouring densities, of quantiles over "
                       "invocations within densities (percentile interval)"},
                      {"resamples", resamples},
                      {"seed", seed}};
  j["objectives"] = nlohmann::json::array();
  for (const ObjectiveFit& o : objectives) j["objectives"].push_back(o.ToJson());
  return j;
}

CapacityEstimate EstimateCapacity(const std::vector<Slo>& slos,
                                  const std::vector<Density>& densities, const FitOptions& opt) {
  CapacityEstimate est;
  est.resamples = opt.resamples;
  est.seed = opt.seed;
  std::vector<const Density*> ds;
  for (const Density& d : densities) ds.push_back(&d);
  std::sort(ds.begin(), ds.end(),
            [](const Density* a, const Density* b) { return a->containers < b->containers; });
  const size_t k = ds.size();
  std::vector<int> ns;
  // An invocation flagged noisy shares its CPUs with other work; the fit
  // reads the quiet ones where at least two are, so one noisy invocation
  // does not move the answer (it stays in the file).
  std::vector<std::vector<const Invocation*>> use(k);
  for (size_t i = 0; i < k; ++i) {
    ns.push_back(ds[i]->containers);
    for (const Invocation& inv : ds[i]->invocations) {
      if (!inv.noisy) use[i].push_back(&inv);
    }
    if (use[i].size() < 2) {
      use[i].clear();
      for (const Invocation& inv : ds[i]->invocations) use[i].push_back(&inv);
    }
  }

  std::vector<Prep> preps;
  for (const Slo& s : slos) {
    Prep p;
    p.slo = &s;
    p.qm = QuantileOf(s.metric);
    const char* base = RatioBase(s.metric);
    p.ratio = base != nullptr;
    p.key = base ? base : s.metric;
    for (; p.usable < static_cast<int>(k); ++p.usable) {
      const size_t i = p.usable;
      if (p.qm) {
        const long have = PooledCount(use[i], p.qm->samples);
        const long need = SamplesNeeded(p.qm->q, opt.confidence);
        if (have >= need) continue;
        p.why = std::to_string(have) + " samples pooled at " + std::to_string(ns[i]) +
                " containers, a " + Num(100 * p.qm->q) + "th percentile needs " +
                std::to_string(need) + ": raise --window, --invocations" +
                (std::string(p.qm->samples) == "start_ns" ? " or --churn-rate" : "");
      } else {
        const size_t have = ValuesOf(use[i], p.key).size();
        if (have >= 2) continue;
        p.why = p.key + " measured in " + std::to_string(have) + " invocation" +
                (have == 1 ? "" : "s") + " at " + std::to_string(ns[i]) + " containers (2 needed)";
      }
      p.undecided_at = ns[i];
      break;
    }
    preps.push_back(p);
  }

  // Mean metrics are resampled as residuals: every density's invocations
  // about their mean, relative (rates and times scale with their level),
  // widened by sqrt(m/(m-1)) for the m values they come from, and pooled
  // over the density and its nearest neighbours in log N (kPoolDensities,
  // more until kPoolResiduals residuals). A replicate draws each density's
  // values from its pool. With 3 invocations a density's own spread is a
  // poor guess of the noise (three close values claimed [6000, 6000] while
  // 2,560 was undecided, issue 22); neighbours share the noise's size when
  // it changes with N.
  constexpr size_t kPoolDensities = 5, kPoolResiduals = 12;
  std::map<std::string, std::vector<std::vector<double>>> pool;  // key -> per density
  std::map<std::string, std::vector<double>> level;  // key -> mean per density (nan: none)
  std::map<std::string, double> scatter;             // key -> RMS of every residual
  for (const Prep& p : preps) {
    if (p.qm || level.count(p.key)) continue;
    std::vector<double>& lv = level[p.key];
    std::vector<std::vector<double>> own(k);
    for (size_t i = 0; i < k; ++i) {
      const std::vector<double> xs = ValuesOf(use[i], p.key);
      double mean = 0;
      for (double x : xs) mean += x / xs.size();
      lv.push_back(xs.empty() || !(mean != 0) ? std::nan("") : mean);
      if (xs.size() < 2 || !(mean != 0)) continue;
      const double c = std::sqrt(xs.size() / (xs.size() - 1.0));
      for (double x : xs) own[i].push_back(c * (x / mean - 1));
    }
    double sq = 0;
    size_t count = 0;
    for (const std::vector<double>& rs : own) {
      for (double e : rs) sq += e * e, ++count;
    }
    scatter[p.key] = count ? std::sqrt(sq / count) : std::nan("");
    std::vector<std::vector<double>>& pools = pool[p.key];
    pools.assign(k, {});
    for (size_t i = 0; i < k; ++i) {
      std::vector<size_t> order(k);
      for (size_t j = 0; j < k; ++j) order[j] = j;
      auto dist = [&](size_t j) { return std::abs(std::log(double(ns[j]) / ns[i])); };
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t x, size_t y) { return dist(x) < dist(y); });
      size_t used = 0;
      for (size_t j : order) {
        if (own[j].empty()) continue;
        if (used >= kPoolDensities && pools[i].size() >= kPoolResiduals) break;
        pools[i].insert(pools[i].end(), own[j].begin(), own[j].end());
        ++used;
      }
    }
  }
  // A replicate's mean of key at each density (filled per replicate).
  std::map<std::string, std::vector<double>> drawn;

  // One objective's statistic at density i: over the invocations idx (into
  // use[i]) for the point and for quantiles; a replicate's drawn mean for
  // mean metrics (boot).
  auto stat = [&](const Prep& p, size_t i, const std::vector<int>& idx, bool boot) -> double {
    if (p.qm) {
      Histogram h;
      for (int j : idx) {
        auto it = use[i][j]->samples.find(p.qm->samples);
        if (it != use[i][j]->samples.end()) h.Merge(it->second);
      }
      return h.Quantile(p.qm->q) * p.qm->scale;
    }
    if (boot) return drawn[p.key][i];
    double sum = 0;
    int m = 0;
    for (int j : idx) {
      auto it = use[i][j]->values.find(p.key);
      if (it == use[i][j]->values.end()) continue;
      sum += it->second;
      ++m;
    }
    return m ? sum / m : std::nan("");
  };
  auto evaluate = [&](const Prep& p, const std::vector<std::vector<int>>& idx, bool scaled,
                      ObjectiveFit* out) {
    Eval e;
    std::vector<double> ys, ws;
    std::vector<int> xs;
    for (int i = 0; i < p.usable; ++i) {
      double y = stat(p, i, idx[i], scaled);
      if (std::isnan(y)) continue;
      ys.push_back(y);
      xs.push_back(ns[i]);
      ws.push_back(static_cast<double>(idx[i].size()));
    }
    if (p.ratio && !ys.empty()) {
      // The reference is the lowest density, resampled with the rest.
      const double ref = ys[0];
      for (double& y : ys) y = ref > 0 ? y / ref : std::nan("");
      if (!(ref > 0)) ys.clear(), xs.clear(), ws.clear();
    }
    // Fitted in the direction the bound is approached: up for <=, down for >=.
    const double sign = p.slo->at_most ? 1 : -1;
    for (double& y : ys) y *= sign;
    std::vector<double> g = IsotonicFit(ys, ws);
    for (double& y : g) y *= sign;
    bool met_all = false;
    std::optional<double> c = FitCrossing(xs, g, *p.slo, &met_all);
    if (!xs.empty() && !met_all) e.real = c ? *c : -kInf;
    e.crossing = c;
    e.open = met_all && !p.undecided_at;
    if (p.undecided_at) {
      e.capped = !c || met_all || xs.empty();
      if (xs.empty()) e.crossing.reset();
      // Never past a density the objective could not be judged at.
      if (c && !xs.empty() && *c > xs.back()) e.crossing = xs.back(), e.capped = true;
    }
    if (out) {
      out->metric = p.slo->metric;
      out->text = p.slo->text;
      out->curve.clear();
      for (size_t i = 0; i < g.size(); ++i) out->curve.emplace_back(xs[i], g[i]);
      out->crossing = e.crossing;
      out->met_throughout = met_all;
      out->undecided_at = p.undecided_at;
      out->undecided_why = p.why;
    }
    return e;
  };
  auto value = [](const Eval& e) { return e.open ? kInf : e.crossing ? *e.crossing : -kInf; };

  // The point: every invocation once.
  std::vector<std::vector<int>> all(k);
  for (size_t i = 0; i < k; ++i) {
    for (size_t j = 0; j < use[i].size(); ++j) all[i].push_back(static_cast<int>(j));
  }
  std::vector<Eval> point;
  est.objectives.resize(preps.size());
  double best = kInf, best_real = kInf;
  int binding = -1;
  for (size_t o = 0; o < preps.size(); ++o) {
    point.push_back(evaluate(preps[o], all, false, &est.objectives[o]));
    if (scatter.count(preps[o].key)) est.objectives[o].scatter = scatter[preps[o].key];
    const double v = value(point.back());
    if (binding < 0 || v < best) best = v, binding = static_cast<int>(o);
    if (point.back().real && *point.back().real < best_real) {
      best_real = *point.back().real;
      est.failed_metric = preps[o].slo->metric;
    }
  }
  if (binding >= 0 && point[binding].capped &&
      !(point[binding].real && *point[binding].real <= best)) {
    est.undecided_metric = preps[binding].slo->metric;
  }
  if (k == 0 || best == -kInf) {
    est.n_star.reset();
  } else if (best == kInf) {
    est.n_star = ns.back();
    est.met_throughout = true;
  } else {
    est.n_star = static_cast<int>(std::floor(best));
  }

  // The bootstrap: the same resampled invocations for every objective (they
  // come from the same runs), so N* = min over objectives per replicate.
  if (k == 0 || opt.resamples <= 0) return est;
  std::mt19937_64 rng(opt.seed);
  std::vector<double> combined;
  std::vector<std::vector<double>> own(preps.size());
  std::vector<std::vector<int>> idx(k);
  for (int b = 0; b < opt.resamples; ++b) {
    for (size_t i = 0; i < k; ++i) {
      idx[i].resize(use[i].size());
      for (int& j : idx[i]) j = static_cast<int>(rng() % use[i].size());
    }
    for (auto& [key, lv] : level) {
      std::vector<double>& out = drawn[key];
      out.assign(k, std::nan(""));
      for (size_t i = 0; i < k; ++i) {
        const std::vector<double>& rs = pool[key][i];
        const size_t m = ValuesOf(use[i], key).size();
        if (std::isnan(lv[i]) || m == 0) continue;
        double e = 0;
        for (size_t j = 0; j < m && !rs.empty(); ++j) e += rs[rng() % rs.size()] / m;
        out[i] = lv[i] * (1 + e);
      }
    }
    double v = kInf;
    for (size_t o = 0; o < preps.size(); ++o) {
      const double x = value(evaluate(preps[o], idx, true, nullptr));
      own[o].push_back(x);
      v = std::min(v, x);
    }
    combined.push_back(v);
  }
  const double tail = (1 - opt.confidence) / 2;
  auto percentiles = [&](std::vector<double> xs) {
    std::sort(xs.begin(), xs.end());
    const size_t n = xs.size();
    const size_t lo = static_cast<size_t>(std::floor(tail * n));
    const size_t hi = std::min(n - 1, static_cast<size_t>(std::ceil((1 - tail) * n)) - 1);
    return std::make_pair(xs[lo], xs[hi]);
  };
  auto [lo, hi] = percentiles(combined);
  if (lo > -kInf)
    est.n_lo = static_cast<int>(std::floor(std::min(lo, static_cast<double>(ns.back()))));
  if (hi == kInf) {
    est.n_hi = ns.back();
    est.n_hi_open = true;
  } else if (hi > -kInf) {
    est.n_hi = static_cast<int>(std::floor(hi));
  }
  for (size_t o = 0; o < preps.size(); ++o) {
    auto [a, b2] = percentiles(own[o]);
    if (a > -kInf) est.objectives[o].lo = std::min(a, static_cast<double>(ns.back()));
    if (b2 > -kInf && b2 < kInf) est.objectives[o].hi = b2;
  }
  return est;
}

}  // namespace mntscale
