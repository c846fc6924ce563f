// Pure logic of counters: multiplexing scaling. Attribution (call-chain
// classification, bucket files, kernel symbols) is in attribution_gtest.cc.
#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "../../harness/observe/attribution_internal.h"
#include "../../harness/observe/counters_internal.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

using counters::Reading;
using counters::ScaleCount;
using counters::ScaledSum;

TEST(ScaleCount, NoMultiplexingIsExact) {
  auto s = ScaleCount({1000, 500, 500});
  ASSERT_TRUE(s);
  EXPECT_DOUBLE_EQ(s->value, 1000);
  EXPECT_DOUBLE_EQ(s->scaling, 1.0);
}

TEST(ScaleCount, ScalesWhenRunningBelowEnabled) {
  // On the PMU a quarter of the time: the estimate is 4x the raw count.
  auto s = ScaleCount({1000, 400, 100});
  ASSERT_TRUE(s);
  EXPECT_DOUBLE_EQ(s->value, 4000);
  EXPECT_DOUBLE_EQ(s->scaling, 0.25);
}

TEST(ScaleCount, ThreadThatNeverRanCountsZero) {
  auto s = ScaleCount({0, 0, 0});
  ASSERT_TRUE(s);
  EXPECT_DOUBLE_EQ(s->value, 0);
}

TEST(ScaleCount, NeverOnACounterIsUnknownNotZero) { EXPECT_FALSE(ScaleCount({0, 1000, 0})); }

TEST(ScaledSum, SumsScaledValuesAndAggregatesScaling) {
  ScaledSum sum;
  sum.Add({100, 200, 100});  // 200
  sum.Add({300, 200, 200});  // 300
  ASSERT_TRUE(sum.value());
  EXPECT_DOUBLE_EQ(*sum.value(), 500);
  EXPECT_DOUBLE_EQ(sum.scaling(), 300.0 / 400.0);
  sum.Add({0, 100, 0});
  EXPECT_FALSE(sum.value());
}

TEST(ScaledSum, DeltaOfTwoReadings) {
  Reading d = counters::Delta({10, 100, 50}, {30, 300, 100});
  EXPECT_EQ(d.value, 20u);
  EXPECT_EQ(d.enabled, 200u);
  EXPECT_EQ(d.running, 50u);
  auto s = ScaleCount(d);
  ASSERT_TRUE(s);
  EXPECT_DOUBLE_EQ(s->value, 80);
}

}  // namespace
}  // namespace mntscale
