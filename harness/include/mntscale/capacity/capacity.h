// Capacity (issue 18): the largest container count N* at which this host
// still meets stated objectives, found by measurement. This header is the
// pure logic (objectives, statistics, verdicts, the search); the measurement
// of one density on the real kernel is CapacityProbe (capacity_probe.cc).
// The output format is in docs/capacity.md.
#pragma once

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mntscale/model/limits.h"
#include "mntscale/sys/histogram.h"
#include "mntscale/model/profile.h"
#include "mntscale/run/topology.h"

namespace mntscale {

// The metrics an objective may bound (units in the names).
// path_walk_per_cpu_s is walks per second the walker spent on a CPU
// (schedstat's sum_exec_runtime): the kernel's cost, without the share of
// the CPU another actor took.
inline constexpr const char* kCapacityMetrics[] = {
    "start_p50_s",         "start_p99_s",     "health_stat_p99_ms",      "path_walk_per_worker",
    "path_walk_per_cpu_s", "path_walk_ratio", "path_walk_per_cpu_ratio", "mountinfo_read_s"};
bool IsCapacityMetric(const std::string& name);

// A quantile metric is read from every sample of a density pooled (the
// invocations' Invocation::samples[samples]), never averaged over
// invocations' quantiles.
struct QuantileMetric {
  const char* metric;
  const char* samples;  // key in Invocation::samples (nanoseconds)
  double q;
  double scale;  // metric units per ns
};
const QuantileMetric* QuantileOf(const std::string& metric);  // nullptr: a mean metric
// A ratio metric is its base metric over the base's mean at the lowest
// density; nullptr for others.
const char* RatioBase(const std::string& metric);

// The distribution-free interval for the q-quantile of n samples: the
// 1-based order statistics [lo, hi] with P(X(lo) <= x_q <= X(hi)) >= the
// confidence, by binomial(n, q). ok is false when n is too small for one.
struct RankInterval {
  long lo = 0, hi = 0;
  bool ok = false;
};
RankInterval QuantileRanks(long n, double q, double confidence);
// The fewest samples for which QuantileRanks is ok (367 for a p99 at 95%).
long SamplesNeeded(double q, double confidence);

// One bound: METRIC<=NUMBER or METRIC>=NUMBER.
struct Slo {
  std::string metric;
  bool at_most = true;  // "<=" (else ">=")
  double bound = 0;
  std::string text;  // as given
  const char* op() const { return at_most ? "<=" : ">="; }
  nlohmann::json ToJson() const;
};
// Each argument is comma-separated bounds. UsageError naming the piece for an
// unknown metric, a missing or doubled operator, a bound that is not a finite
// number, the same metric bounded twice the same way, or no bound at all.
std::vector<Slo> ParseSlos(const std::vector<std::string>& args);
// Objectives that parse but mean nothing here, refused before anything is
// built (UsageError naming the objective): a negative bound (every metric is
// >= 0), a time bounded <= 0, an empty range on one metric (lower >= upper,
// and start_p50_s above start_p99_s), and a metric this churn rate or these
// workers never produce (start_* at --churn-rate 0).
void CheckSlosMeaningful(const std::vector<Slo>& slos, double churn_rate, int path_walk_workers,
                         int health_workers);

// Student-t two-sided critical value for df degrees of freedom (df >= 1) at
// confidence 0.90, 0.95 or 0.99 (others: UsageError).
double TCritical(int df, double confidence);

struct MetricStats {
  double mean = 0, lo = 0, hi = 0;  // t-interval over invocations
  int n = 0;                        // lo/hi meaningful when n >= 2
  // Quantile metrics: mean is the pooled quantile and [lo, hi] its order-
  // statistic interval over `samples` pooled samples; fewer than `needed`
  // leave it undecided.
  long samples = -1;  // -1: a mean metric
  long needed = 0;
  nlohmann::json ToJson() const;
};
MetricStats Summarize(const std::vector<double>& xs, double confidence);

enum class Verdict { kPass, kFail, kUndecided };
const char* VerdictName(Verdict v);
// The interval entirely on one side of the bound decides; otherwise (or with
// fewer than two invocations) undecided.
Verdict Judge(const Slo& slo, const MetricStats& s);

// What one invocation at a density measured. A metric the invocation could
// not measure (no start finished in the window) is absent, never 0.
struct Invocation {
  std::map<std::string, double> values;
  std::map<std::string, Histogram> samples;  // "start_ns", "health_stat_ns"
  bool noisy = false;
  double walker_on_cpu_share = -1;  // path walkers' on-CPU seconds per second of wall; -1: unknown
  double at_s = -1;                 // when it began, seconds into the search; -1: unknown
  nlohmann::json attribution;  // null: none for this invocation
  nlohmann::json ToJson() const;
};

struct SearchConfig {
  int start = 10;
  double growth = 2.0;
  double precision = 0.1;  // until N*'s interval is within precision * N* either side
  int resamples = 1000;    // bootstrap replicates of the fit
  uint64_t seed = 1;       // the bootstrap's, so a file's interval can be recomputed
  int max_containers = 2000;
  double budget_s = 600;
  int invocations = 3;
  int max_invocations = 6;
  double confidence = 0.95;
  nlohmann::json ToJson() const;
};
// UsageError naming the value for impossible counts (start < 1, growth <= 1,
// precision outside (0,1), invocations < 2, max_invocations < invocations,
// max_containers < start, budget <= 0).
void ValidateSearchConfig(const SearchConfig& c);

// KernelLimit and the limits check are model/limits.h (one rule for run and capacity).

struct Density {
  int containers = 0;
  std::string phase;  // grow | bisect
  double seconds = 0;
  std::vector<Invocation> invocations;
  std::map<std::string, MetricStats> metrics;
  std::map<std::string, Verdict> verdicts;
  Verdict verdict = Verdict::kUndecided;
  nlohmann::json attribution;  // null: not asked for
  nlohmann::json ToJson() const;
};

// One objective's monotone fit against N (capacity_fit.cc).
struct ObjectiveFit {
  std::string metric, text;
  std::vector<std::pair<int, double>> curve;  // density -> fitted value, densities used
  std::optional<double> crossing;   // where the fit meets the bound; nullopt: missed at the lowest
  bool met_throughout = false;      // met at every density used: crossing is the largest of them
  std::optional<int> undecided_at;  // lowest density it could not be judged at (caps crossing)
  std::string undecided_why;
  std::optional<double> lo, hi;  // its own bootstrap interval; hi nullopt: past the densities
  // Mean metrics: the invocations' relative scatter about their density's
  // mean (the residuals the bootstrap draws from, all densities); nan else.
  double scatter = std::nan("");
  nlohmann::json ToJson() const;
};

// N* from every invocation of every density at once: each objective's metric
// is fitted monotone in N (isotonic regression by pool-adjacent-violators,
// non-decreasing for a <= bound, non-increasing for a >=), N* is the smallest
// crossing of the fits, interpolated linearly between the two densities that
// bracket it and never past the largest density measured. The interval is
// the percentile interval of N* over `resamples` bootstrap replicates that
// each resample the invocations within every density (a ratio's reference
// density too), seeded. A density where an objective cannot be judged (too
// few samples for its quantile, not measured) caps N* at the density below.
struct CapacityEstimate {
  std::optional<int> n_star, n_lo, n_hi;  // n_lo nullopt: below the lowest density
  bool n_hi_open = false;                 // the interval reaches past the largest density measured
  bool met_throughout = false;            // no objective's fit crosses: N* is the largest density
  std::string failed_metric;     // the objective whose fit crosses lowest (never an undecided one)
  std::string undecided_metric;  // the objective whose undecided density caps N*, when it does
  std::vector<ObjectiveFit> objectives;
  int resamples = 0;
  uint64_t seed = 0;
  nlohmann::json ToJson() const;
};
struct FitOptions {
  double confidence = 0.95;
  int resamples = 1000;
  uint64_t seed = 1;
};
CapacityEstimate EstimateCapacity(const std::vector<Slo>& slos,
                                  const std::vector<Density>& densities, const FitOptions& opt);
// Pool-adjacent-violators: the weighted least-squares non-decreasing fit of
// ys (in x order).
std::vector<double> IsotonicFit(const std::vector<double>& ys, const std::vector<double>& weights);
// Where the fitted values g at densities ns meet slo's bound (see
// CapacityEstimate); *met_all when every density meets it.
std::optional<double> FitCrossing(const std::vector<int>& ns, const std::vector<double>& g,
                                  const Slo& slo, bool* met_all);

struct SearchResult {
  std::optional<int> n_star, above;  // N* (the estimate's point) and the density measured above it
  std::string ended_by;              // slo | kernel-limit | max-containers | budget | interrupted
  std::string failed_metric;         // the objective whose fit crosses its bound at N*
  CapacityEstimate estimate;
  bool precise = false;  // the interval reached --precision
  double precision = 0.1;  // the --precision it aimed at
  // A ratio's reference density measured again after the rest, so that a
  // host that sped up or slowed down during the search widens the interval
  // instead of reading as an effect of N (issue 22).
  bool reference_remeasured = false;
  std::optional<KernelLimit> limit;
  std::vector<Density> densities;    // in the order measured
  nlohmann::json ToJson(double confidence, const std::string& sentence) const;
};

// Thrown by a measurement that ran into a kernel limit the pre-check did
// not foresee (ENOSPC from mount or unshare, EMFILE, ENOMEM): the search
// ends by "kernel-limit" at that density instead of failing.
class LimitReached : public std::runtime_error {
 public:
  explicit LimitReached(KernelLimit l) : std::runtime_error("limit " + l.name), limit(std::move(l)) {}
  KernelLimit limit;
};
// The limit a failed system call ran into, when its errno names one.
std::optional<KernelLimit> LimitOfError(const std::string& call, int err, int n);

// The hooks the search drives; all but measure are optional.
struct SearchHooks {
  // One invocation at n containers (index 0.. within the density). Throws
  // Interrupted to end the search.
  std::function<Invocation(int n, int index)> measure;
  std::function<std::optional<KernelLimit>(int n)> limit;
  std::function<double()> elapsed_s;                   // since the search began
  std::function<void(const SearchResult&)> on_density;  // after each density (write the file)
};

// Grows geometrically from start until a density does not pass, a kernel
// limit or max_containers or the budget ends it, then bisects between the
// last pass and the first non-pass to the precision. path_walk_ratio is
// derived from path_walk_per_worker relative to the lowest density measured.
// An undecided density is never counted as a pass.
SearchResult RunCapacitySearch(const SearchConfig& cfg, const std::vector<Slo>& slos,
                               const SearchHooks& hooks);

// How steady the machine itself was over the search, from the control loop
// every invocation runs on the walker's PU (capacity_probe.cc): its rate's CV
// between invocations and its drift within one; "unsupported" without it.
nlohmann::json Steadiness(const SearchResult& r);

// The answer sentence for the report and stderr.
std::string CapacitySentence(const SearchResult& r, const std::vector<Slo>& slos,
                             const std::string& profile);

// Rough seconds one density costs at n containers (invocations x window plus
// the farm build), for refusing a budget too small for one.
double EstimateDensitySeconds(int n, int invocations, double window_s);

// Where each actor of a density runs: path walkers first on PUs of their
// own, then health readers, then the churn thread, on the PUs the walkers
// left (spread); when the machine has fewer PUs than actors, the later ones
// wrap round those PUs and share them.
struct ActorSlot {
  std::string actor;  // path_walk | health | churn
  int index = 0;      // within its actor kind
  Slot slot;
};
std::vector<ActorSlot> PlanCapacityActors(const Topology& topo, int walkers, int health);
// {"actors": [{actor, index, pu}], "shared_pus": [{pu, actors: ["health 0", "churn 0"]}]}
nlohmann::json CapacityPlacementJson(const std::vector<ActorSlot>& plan);

class Session;

// The measurement of one density on the real kernel (capacity_probe.cc): the
// session's farm holds n containers of its profile; the runtime's namespace
// holds one overlay rootfs per container, as containerd's does; a churn
// thread starts and stops containers at churn_rate per second as the start
// storm does them (layers idmapped per strategy in the runtime's namespace,
// the overlay mounted there, unshare, binds, proc, dev, pivot_root); health
// readers stat a file in existing containers, path-walk workers run through
// Session::Measure (with its --attribute/--waits observers), and one full
// mountinfo read of the runtime's namespace is timed at the end.
struct ProbeConfig {
  double churn_rate = 2.0;       // starts (and stops) per second
  IdmapStrategy idmap = IdmapStrategy::kNone;
  int path_walk_workers = 1;
  int health_workers = 1;
};

class CapacityProbe {
 public:
  CapacityProbe(Session& s, ProbeConfig cfg);  // builds the runtime namespace and layers
  ~CapacityProbe();
  CapacityProbe(const CapacityProbe&) = delete;
  CapacityProbe& operator=(const CapacityProbe&) = delete;
  Invocation Measure(int n, int index);
  int layers() const;
  const std::vector<ActorSlot>& placement() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What a capacity result says about its search besides the densities: the
// `capacity` object of the output (docs/capacity.md), written after every
// density and once at the end.
struct CapacityRun {
  std::string profile;
  int mounts_per_container = 0;
  double churn_rate = 0;
  IdmapStrategy idmap = IdmapStrategy::kNone;
  int layers = 0;
  int path_walk_workers = 0, health_workers = 0;
  nlohmann::json placement;
  std::vector<Slo> slos;
  SearchConfig search;
  double window_s = 0;
};
nlohmann::json CapacityDocument(const CapacityRun& run, const SearchResult& r, bool complete,
                                double elapsed_s);
// The one-paragraph summary `capacity` ends with on stderr.
std::string CapacitySummary(const CapacityRun& run, const SearchResult& r, double elapsed_s,
                            const std::string& out);

}  // namespace mntscale
