// The order statistics the harness reports: one nearest-rank quantile and one
// median, so every figure called "p99" or "median" means the same thing.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace mntscale {

// The nearest-rank q-quantile (q in 0..1) of values in any order: the
// ceil(q * n)-th smallest, at least the smallest; T{} for no values.
template <typename T>
T NearestRankQuantile(std::vector<T> v, double q) {
  if (v.empty()) return T{};
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

// The median: the middle value, or the mean of the two middle ones; 0 for none.
inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace mntscale
