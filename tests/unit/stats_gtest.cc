// sys/stats.h and sys/text.h: the one quantile, median and trim every part
// of the harness uses.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "mntscale/sys/stats.h"
#include "mntscale/sys/text.h"

namespace mntscale {
namespace {

TEST(Stats, NearestRankQuantile) {
  const std::vector<uint64_t> v = {5, 1, 4, 2, 3};
  EXPECT_EQ(NearestRankQuantile(v, 0.5), 3u);
  EXPECT_EQ(NearestRankQuantile(v, 0.99), 5u);
  EXPECT_EQ(NearestRankQuantile(v, 0.0), 1u);  // at least the smallest
  EXPECT_EQ(NearestRankQuantile(v, 1.0), 5u);
  EXPECT_EQ(NearestRankQuantile(std::vector<uint64_t>{}, 0.5), 0u);
  // p99 of 100 values is the 99th smallest.
  std::vector<double> h;
  for (int i = 100; i >= 1; --i) h.push_back(i);
  EXPECT_EQ(NearestRankQuantile(h, 0.99), 99.0);
}

TEST(Stats, Median) {
  EXPECT_EQ(Median({3, 1, 2}), 2.0);
  EXPECT_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(Median({}), 0.0);
}

TEST(Text, Trim) {
  EXPECT_EQ(Trim("  a b\t\r\n"), "a b");
  EXPECT_EQ(Trim("\n\v\f "), "");
  EXPECT_EQ(TrimView(" x "), "x");
  EXPECT_EQ(Trim(""), "");
}

}  // namespace
}  // namespace mntscale
