// Pure logic of the wait tracer: pairing contention_begin/end per task (with
// the window's edges), off-CPU intervals from switches, tracefs format
// parsing, and naming synthetic lock and blocked chains with the shipped
// bucket file.
#include <gtest/gtest.h>
#include <linux/perf_event.h>

#include <string>
#include <vector>

#include "../../harness/observe/attribution_internal.h"
#include "../../harness/observe/waits_internal.h"

namespace mntscale {
namespace {

using waits::OffCpuTracker;
using waits::WaitPairer;

TEST(WaitPairer, BeginEndIsOneWait) {
  WaitPairer p;
  p.Begin(100, 0xa, "namespace_sem", "do_lock_mount rwsem:W");
  p.End(350, 0xa);
  p.Finish(1000);
  ASSERT_EQ(p.waits().size(), 1u);
  EXPECT_EQ(p.waits()[0].ns, 250u);
  EXPECT_EQ(p.waits()[0].bucket, "namespace_sem");
  EXPECT_EQ(p.waits()[0].site, "do_lock_mount rwsem:W");
  EXPECT_EQ(p.unmatched_ends(), 0u);
  EXPECT_EQ(p.open_at_end(), 0u);
}

TEST(WaitPairer, EndWhoseBeginPrecededTheWindowIsUnmatched) {
  WaitPairer p;
  p.End(50, 0xa);  // began before tracing was enabled
  p.Begin(100, 0xa, "rcu_wait", "exp_funnel_lock mutex");
  p.End(200, 0xa);
  p.Finish(1000);
  ASSERT_EQ(p.waits().size(), 1u);
  EXPECT_EQ(p.waits()[0].ns, 100u);
  EXPECT_EQ(p.unmatched_ends(), 1u);
}

TEST(WaitPairer, BeginStillOpenAtWindowEndIsNotAWait) {
  WaitPairer p;
  p.Begin(900, 0xa, "namespace_sem", "s");
  p.Finish(1000);
  EXPECT_TRUE(p.waits().empty());
  EXPECT_EQ(p.open_at_end(), 1u);
  EXPECT_EQ(p.open_ns(), 100u);
}

TEST(WaitPairer, MutexSpinThenSleepIsOneWait) {
  // __mutex_lock logs begin(SPIN|MUTEX), then begin(MUTEX) before sleeping,
  // and one end: perf lock contention counts one contention.
  WaitPairer p;
  p.Begin(100, 0xa, "rcu_wait", "exp_funnel_lock mutex");
  p.Begin(110, 0xa, "rcu_wait", "exp_funnel_lock mutex");
  p.End(500, 0xa);
  p.Finish(1000);
  ASSERT_EQ(p.waits().size(), 1u);
  EXPECT_EQ(p.waits()[0].ns, 400u);
  EXPECT_EQ(p.merged_begins(), 1u);
}

TEST(WaitPairer, NestedSpinlockInsideAMutexWait) {
  WaitPairer p;
  p.Begin(100, 0xa, "rcu_wait", "mutex");
  p.Begin(120, 0xb, "other", "spin");  // the mutex's wait_lock
  p.End(130, 0xb);
  p.End(400, 0xa);
  p.Finish(1000);
  ASSERT_EQ(p.waits().size(), 2u);
  EXPECT_EQ(p.waits()[0].ns, 10u);
  EXPECT_EQ(p.waits()[1].ns, 300u);
  EXPECT_EQ(p.dropped_begins(), 0u);
}

TEST(WaitPairer, LostEndDropsTheInnerBegin) {
  WaitPairer p;
  p.Begin(100, 0xa, "x", "s");
  p.Begin(120, 0xb, "y", "s");  // its end was lost (ring full)
  p.End(400, 0xa);
  p.Finish(1000);
  ASSERT_EQ(p.waits().size(), 1u);
  EXPECT_EQ(p.waits()[0].bucket, "x");
  EXPECT_EQ(p.dropped_begins(), 1u);
  EXPECT_EQ(p.open_at_end(), 0u);
}

TEST(OffCpuTracker, BlockedAndPreemptedIntervals) {
  OffCpuTracker t(1000);
  t.Switch(1100, "namespace_sem");
  t.Out(1101, false);
  t.In(1400);
  t.Switch(1500, waits::kPreempted);
  t.Out(1500, true);
  t.In(1550);
  t.Finish(2000);
  EXPECT_EQ(t.off_ns().at("namespace_sem"), 300u);
  EXPECT_EQ(t.off_ns().at(waits::kPreempted), 50u);
  EXPECT_EQ(t.on_cpu_ns(), 100u + 100u + 450u);
  EXPECT_EQ(t.switches(), 2u);
  uint64_t sum = t.on_cpu_ns();
  for (const auto& [k, v] : t.off_ns()) sum += v;
  EXPECT_EQ(sum, 1000u);  // on + off = the window
}

TEST(OffCpuTracker, OffAtWindowStartIsUnknown) {
  OffCpuTracker t(1000);
  t.In(1200);  // first thing seen: switched in, so it was off before
  t.Finish(2000);
  EXPECT_EQ(t.off_ns().at(waits::kOffUnknown), 200u);
  EXPECT_EQ(t.on_cpu_ns(), 800u);
}

TEST(OffCpuTracker, OffAtWindowEndIsClipped) {
  OffCpuTracker t(1000);
  t.Switch(1900, "rcu_wait");
  t.Out(1900, false);
  t.Finish(2000);
  EXPECT_EQ(t.off_ns().at("rcu_wait"), 100u);
  EXPECT_EQ(t.on_cpu_ns(), 900u);
}

TEST(OffCpuTracker, SwitchRecordWithoutTracepointSampleUsesThePreemptFlag) {
  OffCpuTracker t(0);
  t.Out(100, true);
  t.In(200);
  t.Out(300, false);
  t.In(400);
  t.Finish(500);
  EXPECT_EQ(t.off_ns().at(waits::kPreempted), 100u);
  EXPECT_EQ(t.off_ns().at(waits::kOffUnknown), 100u);
}

TEST(OffCpuTracker, NoSwitchesMeansOnCpuThroughout) {
  OffCpuTracker t(1000);
  t.Finish(3000);
  EXPECT_EQ(t.on_cpu_ns(), 2000u);
  EXPECT_TRUE(t.off_ns().empty());
}

TEST(FindField, ReadsOffsetsFromATracefsFormat) {
  const std::string fmt =
      "name: sched_switch\nID: 372\nformat:\n"
      "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
      "\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n"
      "\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;\n"
      "\tfield:void * lock_addr;\toffset:8;\tsize:8;\tsigned:0;\n";
  auto s = waits::FindField(fmt, "prev_state");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->offset, 32u);
  EXPECT_EQ(s->size, 8u);
  auto c = waits::FindField(fmt, "prev_comm");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->size, 16u);
  auto l = waits::FindField(fmt, "lock_addr");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->offset, 8u);
  EXPECT_FALSE(waits::FindField(fmt, "state"));
}

// A preempted task is runnable: prev_state 0, or TASK_REPORT_MAX (0x100 on
// 6.x) with a zero low byte. Blocked states (TASK_INTERRUPTIBLE 1,
// TASK_UNINTERRUPTIBLE 2, ...) are waits for the buckets.
TEST(SwitchedOutRunnable, PreemptionIsNotABlockedWait) {
  EXPECT_TRUE(waits::SwitchedOutRunnable(0));
  EXPECT_TRUE(waits::SwitchedOutRunnable(0x100));
  EXPECT_FALSE(waits::SwitchedOutRunnable(1));
  EXPECT_FALSE(waits::SwitchedOutRunnable(2));
  EXPECT_FALSE(waits::SwitchedOutRunnable(0x102));
}

TEST(LockType, PerfLockNames) {
  EXPECT_EQ(waits::LockType(32), "mutex");
  EXPECT_EQ(waits::LockType(1 | 32), "mutex");
  EXPECT_EQ(waits::LockType(1), "spinlock");
  EXPECT_EQ(waits::LockType(4), "rwsem:W");
  EXPECT_EQ(waits::LockType(2), "rwsem:R");
  EXPECT_EQ(waits::LockType(1 | 2), "rwlock:R");
  EXPECT_EQ(waits::LockType(16 | 2), "pcpu-sem:R");
}

TEST(LockCaller, SkipsLockPrimitives) {
  std::vector<std::string_view> f = {"__mutex_lock", "exp_funnel_lock", "synchronize_rcu_expedited",
                                     "namespace_unlock"};
  EXPECT_EQ(waits::LockCaller(f), "exp_funnel_lock");
  f = {"native_queued_spin_lock_slowpath", "_raw_spin_lock", "mntput_no_expire"};
  EXPECT_EQ(waits::LockCaller(f), "mntput_no_expire");
}


// Synthetic chains, as contention_begin and sched_switch deliver them, named
// by the shipped bucket file.
class ShippedBuckets : public ::testing::Test {
 protected:
  void SetUp() override {
    buckets_ =
        attribution::BucketSet::Load(MNTSCALE_SOURCE_DIR "/harness/data/attribution_buckets.json");
  }
  std::string Name(std::vector<std::string_view> frames) {
    return attribution::ClassifyFrames(buckets_, frames);
  }
  attribution::BucketSet buckets_;
};

TEST_F(ShippedBuckets, RcuExpeditedMutexUnderNamespaceUnlockIsRcuWait) {
  // What perf lock contention reports as "mutex namespace_unlock+0x289" on 6.18.
  EXPECT_EQ(Name({"__mutex_lock", "exp_funnel_lock", "synchronize_rcu_expedited",
                  "namespace_unlock", "path_umount", "__x64_sys_umount"}),
            "rcu_wait");
}

TEST_F(ShippedBuckets, WriterQueuedOnNamespaceSemIsNamespaceSem) {
  EXPECT_EQ(Name({"rwsem_down_write_slowpath", "down_write", "do_lock_mount", "path_mount",
                  "__x64_sys_mount"}),
            "namespace_sem");
  EXPECT_EQ(Name({"__schedule", "schedule", "rwsem_down_write_slowpath", "down_write",
                  "path_umount", "__x64_sys_umount"}),
            "namespace_sem");
  EXPECT_EQ(Name({"rwsem_down_read_slowpath", "down_read", "m_start", "seq_read_iter"}),
            "namespace_sem");
}

TEST_F(ShippedBuckets, MountLockSpinIsMountLock) {
  EXPECT_EQ(Name({"native_queued_spin_lock_slowpath", "_raw_spin_lock", "__legitimize_mnt",
                  "try_to_unlazy", "link_path_walk"}),
            "mount_lock");
  EXPECT_EQ(
      Name({"native_queued_spin_lock_slowpath", "_raw_spin_lock", "mntput_no_expire", "path_put"}),
      "mount_lock");
}

TEST_F(ShippedBuckets, GenericSpinlockOutsideMountCodeIsNotAMountBucket) {
  std::string b = Name({"native_queued_spin_lock_slowpath", "_raw_spin_lock_irqsave",
                        "try_to_wake_up", "exit_to_user_mode_loop"});
  EXPECT_EQ(b, attribution::kOtherKernelBucket);
  EXPECT_FALSE(buckets_.IsMountBucket(b));
}

}  // namespace
}  // namespace mntscale
