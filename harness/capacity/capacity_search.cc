// The capacity search (capacity.h): densities measured, judged against the
// objectives and refined until N*'s interval is within the asked precision
// or the budget, a kernel limit or --max-containers ends it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "mntscale/capacity/capacity.h"
#include "mntscale/run/runner.h"
#include "mntscale/sys/sys.h"

namespace mntscale {

namespace {

// Judges d against the objectives (evidence: the answer is the fit's);
// ratios from the baseline means, quantiles from the pooled samples.
void Decide(const std::vector<Slo>& slos, double confidence,
            const std::map<std::string, double>& baseline, Density* d) {
  std::map<std::string, std::vector<double>> xs;
  for (Invocation& inv : d->invocations) {
    for (const char* ratio : {"path_walk_ratio", "path_walk_per_cpu_ratio"}) {
      auto base = baseline.find(RatioBase(ratio));
      auto v = inv.values.find(RatioBase(ratio));
      if (v != inv.values.end() && base != baseline.end() && base->second > 0)
        inv.values[ratio] = v->second / base->second;
    }
    for (const auto& [k, v] : inv.values) xs[k].push_back(v);
  }
  d->metrics.clear();
  for (const auto& [k, v] : xs) d->metrics[k] = Summarize(v, confidence);
  for (const char* m : kCapacityMetrics) {
    const QuantileMetric* q = QuantileOf(m);
    if (!q) continue;
    Histogram pooled;
    int with = 0;
    for (const Invocation& inv : d->invocations) {
      auto it = inv.samples.find(q->samples);
      if (it == inv.samples.end()) continue;
      pooled.Merge(it->second);
      ++with;
    }
    if (!with) continue;
    MetricStats st;
    st.n = with;
    st.samples = static_cast<long>(pooled.count());
    st.needed = SamplesNeeded(q->q, confidence);
    st.mean = pooled.Quantile(q->q) * q->scale;
    const RankInterval r = QuantileRanks(st.samples, q->q, confidence);
    st.lo = r.ok ? pooled.AtRank(r.lo) * q->scale : st.mean;
    st.hi = r.ok ? pooled.AtRank(r.hi) * q->scale : st.mean;
    d->metrics[m] = st;
  }
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

// How often a ratio's reference density is measured again during refinement.
constexpr double kReferenceEveryS = 30;

SearchResult RunCapacitySearch(const SearchConfig& cfg, const std::vector<Slo>& slos,
                               const SearchHooks& hooks) {
  SearchResult r;
  r.precision = cfg.precision;
  auto elapsed = [&] { return hooks.elapsed_s ? hooks.elapsed_s() : 0.0; };
  const FitOptions fit{cfg.confidence, cfg.resamples, cfg.seed};
  double last_density_s = 0, last_invocation_s = 0;
  bool has_ratio = false;
  for (const Slo& s : slos) has_ratio |= RatioBase(s.metric) != nullptr;
  // Time kept back for measuring a ratio's reference again at the end.
  auto reserve = [&] { return has_ratio ? cfg.invocations * last_invocation_s : 0.0; };

  // Per-density verdicts (evidence), then the fit over all densities.
  auto refit = [&] {
    const Density* lowest = nullptr;
    for (const Density& d : r.densities) {
      if (!lowest || d.containers < lowest->containers) lowest = &d;
    }
    std::map<std::string, double> baseline;  // the ratios' reference means
    for (const char* base : {"path_walk_per_worker", "path_walk_per_cpu_s"}) {
      std::vector<double> xs;
      for (const Invocation& inv : lowest->invocations) {
        auto it = inv.values.find(base);
        if (it != inv.values.end()) xs.push_back(it->second);
      }
      if (!xs.empty()) baseline[base] = Summarize(xs, cfg.confidence).mean;
    }
    for (Density& d : r.densities) Decide(slos, cfg.confidence, baseline, &d);
    r.estimate = EstimateCapacity(slos, r.densities, fit);
    r.n_star = r.estimate.n_star;
    r.failed_metric = r.estimate.failed_metric;
    r.above.reset();
    for (const Density& d : r.densities) {
      if ((!r.n_star || d.containers > *r.n_star) && (!r.above || d.containers < *r.above))
        r.above = d.containers;
    }
    if (hooks.on_density) hooks.on_density(r);
  };
  // One more invocation of r.densities[di]; false when the search must end.
  auto invoke = [&](size_t di) -> bool {
    const double t0 = elapsed();
    try {
      Invocation inv = hooks.measure(r.densities[di].containers,
                                     static_cast<int>(r.densities[di].invocations.size()));
      inv.at_s = t0;
      r.densities[di].invocations.push_back(std::move(inv));
    } catch (const Interrupted&) {
      r.ended_by = "interrupted";
      return false;
    } catch (const LimitReached& l) {
      r.limit = l.limit;
      r.ended_by = "kernel-limit";
      return false;
    }
    Density& d = r.densities[di];
    last_invocation_s = elapsed() - t0;
    d.seconds += last_invocation_s;
    // The knee's attribution: the last invocation's that has one.
    if (!d.invocations.back().attribution.is_null())
      d.attribution = d.invocations.back().attribution;
    return true;
  };
  auto new_density = [&](int n, const char* phase) -> bool {
    if (hooks.limit) {
      if (auto lim = hooks.limit(n)) {
        r.limit = lim;
        r.ended_by = "kernel-limit";
        return false;
      }
    }
    if (elapsed() + last_density_s + reserve() > cfg.budget_s) {
      r.ended_by = "budget";
      return false;
    }
    Density d;
    d.containers = n;
    d.phase = phase;
    r.densities.push_back(std::move(d));
    for (int i = 0; i < cfg.invocations; ++i) {
      if (!invoke(r.densities.size() - 1)) {
        r.densities.pop_back();  // a density half measured is no evidence
        if (!r.densities.empty()) refit();
        return false;
      }
    }
    last_density_s = r.densities.back().seconds;
    refit();
    return true;
  };
  auto more = [&](size_t di) -> bool {
    if (elapsed() + last_invocation_s + reserve() > cfg.budget_s) {
      r.ended_by = "budget";
      return false;
    }
    if (!invoke(di)) return false;
    refit();
    return true;
  };
  auto index_of = [&](int n) {
    for (size_t i = 0; i < r.densities.size(); ++i) {
      if (r.densities[i].containers == n) return i;
    }
    return r.densities.size();
  };

  // Grow while every objective's fit is met at every density measured;
  // false when the search ended.
  auto grow = [&]() -> bool {
    int n = 0;
    for (const Density& d : r.densities) n = std::max(n, d.containers);
    while (r.estimate.met_throughout && n < cfg.max_containers) {
      const int prev = n;
      n = std::min<long>(cfg.max_containers, std::max<long>(n + 1, std::lround(n * cfg.growth)));
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
      if (!new_density(n, "grow")) return false;
    }
    return true;
  };
  // N*'s interval within --precision of it either side (an interval open
  // above counts only once the search reached --max-containers).
  auto within_precision = [&](const CapacityEstimate& e, int largest) {
    if (!e.n_star || !e.n_lo || !e.n_hi) return false;
    const double tol = std::max(1.0, cfg.precision * *e.n_star);
    return *e.n_star - *e.n_lo <= tol && *e.n_hi - *e.n_star <= tol &&
           !(e.n_hi_open && largest < cfg.max_containers);
  };
  // Refine: measure where the interval narrows most, until it is within
  // --precision of N* or the budget ends it. Returns when the search ends.
  auto refine = [&](bool first) {
    if (first && (!new_density(cfg.start, "grow") || !grow())) return;
    while (true) {
      const CapacityEstimate& e = r.estimate;
      std::vector<int> ns;
      for (const Density& d : r.densities) ns.push_back(d.containers);
      std::sort(ns.begin(), ns.end());
      const int largest = ns.back();
      auto room = [&](int at) {
        const size_t i = index_of(at);
        return i < r.densities.size() &&
               static_cast<int>(r.densities[i].invocations.size()) < cfg.max_invocations;
      };
      if (!e.n_star) {
        // Missed (or undecided) at the lowest density: more of it, or no answer.
        if (!room(ns.front()) || !more(index_of(ns.front()))) return;
        continue;
      }
      const int star = *e.n_star;
      const double tol = std::max(1.0, cfg.precision * star);
      int a = ns.front();
      std::optional<int> b;
      for (int x : ns) {
        if (x <= star) a = x;
        if (x > star && !b) b = x;
      }
      const bool open_above = e.n_hi_open && largest < cfg.max_containers;
      const bool interval_ok = within_precision(e, largest);
      const bool bracket_ok = !b || *b - a <= tol;
      // A density near N* whose invocations were mostly noisy (other tasks on
      // the walkers' CPUs) is measured again before it is trusted, past
      // --max-invocations (up to 3 times it) before the answer is called
      // precise: the fit falls back on noisy invocations there.
      std::vector<int> near = {a};
      if (b) near.push_back(*b);
      if (has_ratio) near.push_back(ns.front());
      int requiet = -1;
      for (int c : near) {
        const Density& d = r.densities[index_of(c)];
        int quiet = 0;
        for (const Invocation& inv : d.invocations) quiet += !inv.noisy;
        if (quiet < 2 && static_cast<int>(d.invocations.size()) < 3 * cfg.max_invocations) {
          requiet = c;
          break;
        }
      }
      if (interval_ok && bracket_ok && requiet < 0) {
        r.precise = true;
        return;
      }
      // A ratio's reference is measured again every kReferenceEveryS, so its
      // invocations span the search and a host that drifts over minutes
      // moves the reference with the densities instead of against them.
      if (has_ratio) {
        double ref_at = -1;
        for (const Invocation& inv : r.densities[index_of(ns.front())].invocations)
          ref_at = std::max(ref_at, inv.at_s);
        if (elapsed() - ref_at > kReferenceEveryS) {
          if (!more(index_of(ns.front()))) return;
          continue;
        }
      }
      if (e.met_throughout && largest < cfg.max_containers) {
        // Re-measured noisy densities now meet the objectives: grow again.
        if (!grow()) return;
        continue;
      }
      if (requiet >= 0) {
        if (!more(index_of(requiet))) return;
        continue;
      }
      if (!e.undecided_metric.empty() && b && room(*b)) {
        // An undecided density caps N*: more samples there.
        if (!more(index_of(*b))) return;
        continue;
      }
      if (open_above) {
        const int up = std::min<long>(
            cfg.max_containers,
            std::max<long>(largest + 1, std::lround(largest * (1 + 4 * cfg.precision))));
        if (!new_density(up, "refine")) return;
        continue;
      }
      if (!bracket_ok && *b - a > 1) {
        // Guided bisection: at the fitted crossing, but at least a quarter of
        // the way in from either side, so the bracket shrinks geometrically.
        const int quarter = std::max(1, (*b - a) / 4);
        const int m = std::clamp(star, a + quarter, *b - quarter);
        if (!new_density(m, "refine")) return;
        continue;
      }
      // The interval is wide from noise: another invocation where it comes
      // from, the densities either side of N* (and a ratio's reference).
      std::vector<int> cands = {a};
      if (b) cands.push_back(*b);
      if (has_ratio) cands.push_back(ns.front());
      int pick = -1;
      size_t fewest = SIZE_MAX;
      for (int c : cands) {
        const size_t have = r.densities[index_of(c)].invocations.size();
        if (room(c) && have < fewest) fewest = have, pick = c;
      }
      if (pick >= 0) {
        if (!more(index_of(pick))) return;
        continue;
      }
      // Every density near N* has its invocations: new evidence inside the
      // interval, in its widest gap between measured densities (never next
      // to one already measured), while the budget lasts.
      const int lo_end = std::max(cfg.start, e.n_lo ? *e.n_lo : ns.front());
      const int hi_end = std::min(cfg.max_containers, e.n_hi ? *e.n_hi : largest);
      std::vector<int> pts = {lo_end, hi_end};
      for (int x : ns) {
        if (x > lo_end && x < hi_end) pts.push_back(x);
      }
      std::sort(pts.begin(), pts.end());
      int gap = 0, m = -1;
      for (size_t i = 0; i + 1 < pts.size(); ++i) {
        if (pts[i + 1] - pts[i] > gap) gap = pts[i + 1] - pts[i], m = pts[i] + gap / 2;
      }
      if (m >= 0 && gap >= std::max(2.0, tol / 2) && index_of(m) == r.densities.size()) {
        if (!new_density(m, "refine")) return;
        continue;
      }
      // No gap worth a density: the densities either side of N* (and the
      // reference) take invocations past --max-invocations, fewest first,
      // until the budget ends.
      int fewer = cands.front();
      for (int x : cands) {
        if (r.densities[index_of(x)].invocations.size() <
            r.densities[index_of(fewer)].invocations.size())
          fewer = x;
      }
      if (!more(index_of(fewer))) return;
    }
  };
  // A ratio's reference, measured again last: a host whose speed drifted
  // during the search then widens the interval instead of reading as an
  // effect of N. Its time was kept back from the budget (reserve). When that
  // widens an interval that had reached --precision, the search goes on.
  for (bool first = true;; first = false) {
    refine(first);
    if (!has_ratio || r.ended_by == "interrupted" || r.densities.size() < 2) break;
    int lowest = r.densities.front().containers;
    for (const Density& d : r.densities) lowest = std::min(lowest, d.containers);
    const std::string ended = r.ended_by;
    bool ok = true;
    for (int i = 0; i < cfg.invocations && ok; ++i) {
      ok = elapsed() + last_invocation_s <= cfg.budget_s * 1.05 && invoke(index_of(lowest));
    }
    if (ok) {
      r.reference_remeasured = true;
      r.ended_by = ended;
    } else if (r.ended_by.empty() || r.ended_by == ended) {
      r.ended_by = ended.empty() ? "budget" : ended;
    }
    refit();
    if (!ok || !ended.empty()) break;
    // Precision is judged again with the reference measured last.
    int largest = 0;
    for (const Density& d : r.densities) largest = std::max(largest, d.containers);
    r.precise = within_precision(r.estimate, largest);
    if (r.precise || !r.n_star) break;
  }
  if (r.ended_by.empty()) {
    r.ended_by = r.estimate.met_throughout ? "max-containers" : "slo";
  }
  return r;
}

}  // namespace mntscale
