// The quietness record counts the harness's own other actors (capacity's
// churn and health readers) on a measured CPU as other tasks (issue 22):
// before, every thread of the process counted as the workers' own, so a
// health reader spinning on the walker's CPU never made a point noisy.
// Real scheduler accounting (/proc/stat, schedstat); no mounts.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "mntscale/quietness.h"

namespace mntscale {
namespace {

TEST(CapacityActors, AnotherActorOnTheMeasuredCpuIsNotTheWorkersOwn) {
  cpu_set_t mine;
  ASSERT_EQ(sched_getaffinity(0, sizeof mine, &mine), 0);
  int cpu = -1;
  for (int c = 0; c < CPU_SETSIZE && cpu < 0; ++c) {
    if (CPU_ISSET(c, &mine)) cpu = c;
  }
  ASSERT_GE(cpu, 0);
  std::atomic<bool> stop{false};
  std::atomic<pid_t> tid{0};
  // The "health reader": pinned to the measured CPU, spinning.
  std::thread spinner([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof one, &one);
    tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
    while (!stop.load(std::memory_order_relaxed)) {
    }
  });
  while (!tid.load()) std::this_thread::yield();

  std::unique_ptr<RunObserver> q = MakeQuietnessObserver({cpu}, {tid.load()});
  q->OnWorkersReady({});  // no workers of its own: the actor is the only load we add
  q->OnMeasureStart();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  q->OnMeasureEnd();
  stop.store(true);
  spinner.join();
  nlohmann::json e;
  q->Report(&e);
  const nlohmann::json& f = e["quietness"];
  const double actors = f["harness_actors_s"], own = f["own_run_s"], other = f["other_run_s"];
  // The spinner ran on that CPU for a good part of the window (other
  // helpers' load can take some of it, never all).
  EXPECT_GT(actors, 0.15) << f.dump();
  // ... and its time is not the workers' own: it shows as other tasks'.
  EXPECT_LT(own, actors) << f.dump();
  EXPECT_GE(other, 0.8 * actors - 0.03) << f.dump();  // /proc/stat is in ticks
}

// The other way round: the actor runs on another CPU while a foreign
// process takes the measured one. Before issue 22 the actor's run time was
// subtracted from the measured CPU's busy time as "own", which hid the
// neighbour (a walker at half a CPU was never flagged noisy).
TEST(CapacityActors, AnActorElsewhereDoesNotHideANeighbour) {
  cpu_set_t mine;
  ASSERT_EQ(sched_getaffinity(0, sizeof mine, &mine), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &mine)) cpus.push_back(c);
  }
  if (cpus.size() < 2) GTEST_SKIP() << "needs two CPUs, this process may use " << cpus.size();
  auto pin = [](int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof one, &one);
  };
  const pid_t neighbour = fork();
  ASSERT_GE(neighbour, 0);
  if (neighbour == 0) {
    pin(cpus[0]);
    for (;;) {
    }
  }
  std::atomic<bool> stop{false};
  std::atomic<pid_t> tid{0};
  std::thread actor([&] {
    pin(cpus[1]);
    tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
    while (!stop.load(std::memory_order_relaxed)) {
    }
  });
  while (!tid.load()) std::this_thread::yield();
  std::unique_ptr<RunObserver> q = MakeQuietnessObserver({cpus[0]}, {tid.load()});
  q->OnWorkersReady({});
  q->OnMeasureStart();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  q->OnMeasureEnd();
  stop.store(true);
  actor.join();
  kill(neighbour, SIGKILL);
  waitpid(neighbour, nullptr, 0);
  nlohmann::json e;
  q->Report(&e);
  const nlohmann::json& f = e["quietness"];
  EXPECT_GT(f["harness_actors_s"].get<double>(), 0.15) << f.dump();
  EXPECT_LT(f["own_run_s"].get<double>(), 0.1) << f.dump();  // the main thread slept
  EXPECT_GT(f["other_share"].get<double>(), 0.15) << f.dump();
  EXPECT_TRUE(e.contains("noisy")) << f.dump();
}

}  // namespace
}  // namespace mntscale
