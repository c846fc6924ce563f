// observe/decomposition.h: the time decomposition is pure arithmetic over
// typed inputs, computed once every observer has reported.
#include "mntscale/observe/decomposition.h"

#include <gtest/gtest.h>

namespace mntscale {
namespace {

WaitTimes TwoTasks() {
  WaitTimes w;
  w.wall_s = 2.0;
  w.is_mount_bucket = [](const std::string& b) { return b == "mount_lock" || b == "rcu_wait"; };
  TracedTask reader;
  reader.tid = 10;
  reader.sched_on_cpu_s = 1.5;
  reader.traced_on_cpu_s = 1.49;
  reader.off_cpu_s = {{"preempted", 0.1}, {"unknown", 0.05}, {"other_sleep", 0.3}};
  reader.switches_out = 100;
  TracedTask writer;
  writer.tid = 11;
  writer.traced_on_cpu_s = 0.1;  // no schedstat
  writer.off_cpu_s = {{"rcu_wait", 1.9}};
  writer.switches_out = 50;
  w.tasks = {reader, writer};
  return w;
}

TEST(Decomposition, WallIsTheSumOfItsPartsAndTheResidual) {
  const WaitTimes w = TwoTasks();
  DecompositionInput in;
  in.waits = &w;
  in.roles = {"reader", "writer"};
  in.runner = std::vector<RunnerClocks>{{1.6, 0.4, 1.2}, {0.12, 0.0, 0.12}};
  in.bucket_samples = std::vector<std::map<std::string, uint64_t>>{
      {{"user", 25}, {"mount_lock", 50}, {"other_kernel", 25}}, {{"rcu_wait", 10}}};
  const nlohmann::json d = Decompose(in);
  EXPECT_EQ(d["kernel_split"], "samples");
  const auto& r = d["workers"][0];
  EXPECT_EQ(r["on_cpu_source"], "schedstat");
  // schedstat's 1.5 s split by the runner's 0.4 / 1.6 user share.
  EXPECT_NEAR(r["user_s"].get<double>(), 0.375, 1e-9);
  EXPECT_NEAR(r["kernel_s"]["mount_lock"].get<double>(), 1.125 * 50 / 75, 1e-9);
  EXPECT_NEAR(r["blocked_s"]["other_sleep"].get<double>(), 0.3, 1e-9);
  EXPECT_NEAR(r["residual_s"].get<double>(), 2.0 - (1.5 + 0.3 + 0.1 + 0.05), 1e-9);
  EXPECT_TRUE(r["within_tolerance"].get<bool>());
  const auto& wr = d["workers"][1];
  EXPECT_EQ(wr["on_cpu_source"], "runner thread clock");
  const auto& role = d["roles"]["writer"];
  EXPECT_NEAR(role["mount_off_cpu_share"].get<double>(), 1.9 / 2.0, 1e-9);
  EXPECT_NEAR(role["mount_pressure_share"].get<double>(), (0.12 + 1.9) / 2.0, 1e-9);
  EXPECT_EQ(role["switches_out"], 50);
}

TEST(Decomposition, WithoutSamplesTheMountShareIsUnknownNotZero) {
  const WaitTimes w = TwoTasks();
  DecompositionInput in;
  in.waits = &w;
  in.roles = {"worker", "worker"};
  in.kernel_split_unsupported = "cpu-clock sampling not enabled";
  const nlohmann::json d = Decompose(in);
  EXPECT_EQ(d["kernel_split"], "unsupported: cpu-clock sampling not enabled");
  EXPECT_TRUE(d["roles"]["worker"]["mount_pressure_share"].is_null());
  // No runner clocks, no samples: on-CPU time is not split.
  EXPECT_TRUE(d["workers"][0].contains("on_cpu_s"));
  EXPECT_EQ(d["workers"][1]["on_cpu_source"], "switch records");
  EXPECT_EQ(d["roles"]["worker"]["workers"], 2);
}

TEST(Decomposition, UnsupportedOffCpuSaysWhy) {
  WaitTimes w = TwoTasks();
  w.offcpu_unsupported = "tracepoint sched:sched_switch absent on this kernel";
  DecompositionInput in;
  in.waits = &w;
  in.roles = {"a", "b"};
  const nlohmann::json d = Decompose(in);
  EXPECT_EQ(d["unsupported"], "off-CPU time: tracepoint sched:sched_switch absent on this kernel");
  EXPECT_FALSE(d.contains("roles"));
}

TEST(Decomposition, InputFromTheEntryOnceEveryObserverReported) {
  const WaitTimes w = TwoTasks();
  nlohmann::json entry = {
      {"workers",
       {{{"role", "reader"}, {"cpu_s", 1.6}, {"user_s", 0.4}, {"sys_s", 1.2}},
        {{"role", ""}, {"cpu_s", 0}, {"user_s", 0}, {"sys_s", 0}}}},
      {"attribution",
       {{"worker_bucket_samples", {{{"user", 1}, {"mount_lock", 3}}, {{"rcu_wait", 2}}}}}}};
  const DecompositionInput in = DecompositionInputFrom(entry, w);
  EXPECT_EQ(in.roles, (std::vector<std::string>{"reader", "worker"}));
  ASSERT_TRUE(in.runner);
  EXPECT_DOUBLE_EQ((*in.runner)[0].user_s, 0.4);
  ASSERT_TRUE(in.bucket_samples);
  EXPECT_EQ((*in.bucket_samples)[0].at("mount_lock"), 3u);
  entry["attribution"] = {{"unsupported", "perf_event_paranoid is 3"}};
  EXPECT_EQ(DecompositionInputFrom(entry, w).kernel_split_unsupported, "perf_event_paranoid is 3");
}

TEST(Decomposition, Tolerance) {
  EXPECT_TRUE(WithinTolerance(0.1, 2.0, 1, 0));           // 5% of 2 s
  EXPECT_FALSE(WithinTolerance(0.103, 2.0, 1, 0));
  EXPECT_TRUE(WithinTolerance(-0.103, 2.0, 1, 100));      // + 20 us per switch x 100
}

// The tolerance can say no: a residual past it, either sign, is not within.
TEST(WithinTolerance, SaysNoPastTheBound) {
  // 1 s wall, 1 worker, 100 switches: 0.05 + 0.002 + 0.002 = 54 ms.
  EXPECT_TRUE(WithinTolerance(0.0, 1.0, 1, 100));
  EXPECT_TRUE(WithinTolerance(-0.053, 1.0, 1, 100));
  EXPECT_FALSE(WithinTolerance(0.055, 1.0, 1, 100));
  EXPECT_FALSE(WithinTolerance(-0.055, 1.0, 1, 100));
  EXPECT_FALSE(WithinTolerance(0.5, 1.0, 2, 0));
}

}  // namespace
}  // namespace mntscale
