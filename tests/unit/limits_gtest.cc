// model/limits.h: the one rule `run` (PreflightLimits) and `capacity` (its
// first density and every density it tries) share. Pure: limits are given,
// never read from this machine. The callers' messages are checked end to end
// in tests/smoke/limits_refused.sh.
#include "mntscale/model/limits.h"

#include <gtest/gtest.h>

namespace mntscale {
namespace {

KernelLimits Roomy() {
  KernelLimits k;
  k.mount_max = 100000;
  k.ns_max = 10000;
  k.nofile_cur = 1 << 20;
  k.nofile_max = 1 << 20;
  k.mem_available_kb = 24L << 20;
  return k;
}

TEST(Limits, NothingPassedWhenTheDemandFits) {
  EXPECT_FALSE(FirstLimitPassed({300, 12, false, 0}, Roomy()));
  EXPECT_FALSE(FirstLimitPassed({1, 1, true, 0}, Roomy()));
}

TEST(Limits, SharedNamespaceHoldsEveryContainersMounts) {
  auto lim = FirstLimitPassed({10000, 12, true, 0}, Roomy());
  ASSERT_TRUE(lim);
  EXPECT_EQ(lim->name, "fs.mount-max");
  EXPECT_EQ(lim->need, 120000);
  EXPECT_EQ(lim->at, 10000);
  EXPECT_NE(lim->Message().find("120000 mounts in one namespace (shared), past fs.mount-max = 100000"),
            std::string::npos)
      << lim->Message();
  // The same count in namespaces of their own holds 12 mounts in each.
  EXPECT_FALSE(FirstLimitPassed({9000, 12, false, 0}, Roomy()));
}

TEST(Limits, NamespacesKeep64SpareAndCountTheExtras) {
  // 9,936 + 64 = 10,000 fits; one more does not.
  EXPECT_FALSE(FirstLimitPassed({9936, 12, false, 0}, Roomy()));
  auto lim = FirstLimitPassed({9937, 12, false, 0}, Roomy());
  ASSERT_TRUE(lim);
  EXPECT_EQ(lim->name, "user.max_mnt_namespaces");
  EXPECT_EQ(lim->value, 10000);
  // capacity's churn and runtime namespaces count as well.
  lim = FirstLimitPassed({9000, 12, false, 1000}, Roomy());
  ASSERT_TRUE(lim);
  EXPECT_EQ(lim->name, "user.max_mnt_namespaces");
  // A shared namespace is one namespace, whatever the count.
  EXPECT_FALSE(FirstLimitPassed({20000, 1, true, 0}, Roomy()));
}

TEST(Limits, TheRuntimesNamespaceHoldsOneRootfsPerContainer) {
  KernelLimits k = Roomy();
  k.mount_max = 5000;
  k.ns_max = 1000000;
  // Without extras (a plain run) the largest table is one container's.
  EXPECT_FALSE(FirstLimitPassed({6000, 12, false, 0}, k));
  auto lim = FirstLimitPassed({6000, 12, false, 100}, k);
  ASSERT_TRUE(lim);
  EXPECT_EQ(lim->name, "fs.mount-max");
  EXPECT_EQ(lim->need, 6100);
}

TEST(Limits, FileDescriptorsAndMemory) {
  KernelLimits k = Roomy();
  k.nofile_cur = 2047;
  EXPECT_FALSE(FirstLimitPassed({511, 1, false, 0}, k));  // 2 * 511 + 1024 = 2046
  auto lim = FirstLimitPassed({512, 1, false, 0}, k);
  ASSERT_TRUE(lim);
  EXPECT_EQ(lim->name, "RLIMIT_NOFILE");
  EXPECT_NE(lim->Message().find("need 2048 file descriptors"), std::string::npos) << lim->Message();
  k = Roomy();
  k.mem_available_kb = 64 * 1000;
  EXPECT_FALSE(FirstLimitPassed({1000, 1, false, 0}, k));
  lim = FirstLimitPassed({1001, 1, false, 0}, k);
  ASSERT_TRUE(lim);
  EXPECT_EQ(lim->name, "MemAvailable");
  EXPECT_EQ(lim->value, 64 * 1000 * 1024L);
}

TEST(Limits, AnUnreadableLimitDoesNotLimit) {
  KernelLimits k;  // every field -1
  EXPECT_FALSE(FirstLimitPassed({1000000, 1000, true, 1000}, k));
}

TEST(Limits, JsonKeepsItsThreeFields) {
  KernelLimit l{"fs.mount-max", 100000, 42, 7, false};
  EXPECT_EQ(l.ToJson(), (nlohmann::json{{"name", "fs.mount-max"}, {"value", 100000}, {"at", 42}}));
}

}  // namespace
}  // namespace mntscale
