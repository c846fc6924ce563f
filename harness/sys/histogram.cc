#include "mntscale/sys/histogram.h"

#include <algorithm>
#include <cstring>

namespace mntscale {

int Histogram::Bucket(uint64_t ns) {
  if (ns < kSub) return static_cast<int>(ns);
  int msb = 63 - __builtin_clzll(ns);  // >= 4
  int group = msb - 3;                 // 1.. ; group 0 is [0,16)
  int sub = static_cast<int>((ns >> (msb - 4)) & (kSub - 1));
  int b = group * kSub + sub;
  return std::min(b, kBuckets - 1);
}

uint64_t Histogram::BucketUpper(int b) {
  if (b < kSub) return static_cast<uint64_t>(b);
  int group = b / kSub, sub = b % kSub;
  int msb = group + 3;
  return ((static_cast<uint64_t>(kSub + sub) + 1) << (msb - 4)) - 1;
}

void Histogram::Merge(const Histogram& o) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  max_ = std::max(max_, o.max_);
  n_ += o.n_;
}

void Histogram::Clear() {
  memset(counts_, 0, sizeof counts_);
  max_ = n_ = 0;
}

uint64_t Histogram::Quantile(double q) const {
  if (n_ == 0) return 0;
  return AtRank(static_cast<uint64_t>(q * static_cast<double>(n_ - 1)) + 1);
}

uint64_t Histogram::AtRank(uint64_t rank) const {
  if (n_ == 0) return 0;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(BucketUpper(i), max_);
  }
  return max_;
}

nlohmann::json Histogram::ToJson() const {
  return {{"p50", Quantile(0.50)},   {"p90", Quantile(0.90)}, {"p99", Quantile(0.99)},
          {"p999", Quantile(0.999)}, {"max", max_},           {"count", n_}};
}

}  // namespace mntscale
