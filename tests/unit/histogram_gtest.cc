// Pure logic of the latency histogram: buckets and quantiles.
#include <gtest/gtest.h>

#include <cstdint>

#include "mntscale/sys/histogram.h"

namespace mntscale {
namespace {

TEST(HistogramQuantiles, WithinOneBucket) {
  Histogram h;
  for (uint64_t v = 1; v <= 10000; ++v) h.Record(v * 100);
  EXPECT_EQ(h.count(), 10000u);
  EXPECT_EQ(h.max(), 1000000u);
  double p50 = static_cast<double>(h.Quantile(0.5));
  EXPECT_NEAR(p50, 500000, 500000 * 0.07);
  double p99 = static_cast<double>(h.Quantile(0.99));
  EXPECT_NEAR(p99, 990000, 990000 * 0.07);
  for (int b = 1; b < Histogram::kBuckets - 1; ++b) {
    EXPECT_EQ(Histogram::Bucket(Histogram::BucketUpper(b)), b);
    EXPECT_EQ(Histogram::Bucket(Histogram::BucketUpper(b) + 1), b + 1);
  }
}

}  // namespace
}  // namespace mntscale
