// Latency histogram: log-linear buckets (16 per power of two), fixed size so
// it can live in shared memory for process-mode workers. Merged after a run.
#pragma once

#include <time.h>

#include <cstdint>
#include <nlohmann/json.hpp>

namespace mntscale {

// CLOCK_MONOTONIC in ns (vDSO, ~20 ns): the clock every latency sample uses.
inline uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

class Histogram {
 public:
  static constexpr int kSub = 16;
  static constexpr int kGroups = 40;  // up to ~2^40 ns
  static constexpr int kBuckets = kSub * kGroups;

  void Record(uint64_t ns) {
    ++counts_[Bucket(ns)];
    if (ns > max_) max_ = ns;
    ++n_;
  }
  void Merge(const Histogram& o);
  void Clear();
  uint64_t count() const { return n_; }
  uint64_t max() const { return max_; }
  // The q-quantile (0..1), as the upper edge of its bucket (<= 6.25% high).
  uint64_t Quantile(double q) const;
  // The rank-th smallest sample (1-based), as the upper edge of its bucket.
  uint64_t AtRank(uint64_t rank) const;
  // {"p50", "p90", "p99", "p999", "max", "count"} in ns.
  nlohmann::json ToJson() const;

  static int Bucket(uint64_t ns);
  static uint64_t BucketUpper(int b);

 private:
  uint64_t counts_[kBuckets] = {};
  uint64_t max_ = 0;
  uint64_t n_ = 0;
};

}  // namespace mntscale
