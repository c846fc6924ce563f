// Counters and the kernel sampler on real threads, driving the observers the
// way the runner does: OnWorkersReady, OnMeasureStart, OnWindowEnd...,
// OnMeasureEnd, Report.
#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <thread>

#include "mntscale/observe/attribution.h"
#include "mntscale/observe/counters.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

using namespace std::chrono_literals;

// A worker thread that reports its tid, waits for go, runs `work` until
// stop, like a harness worker.
class Worker {
 public:
  explicit Worker(std::function<void()> work) {
    std::promise<pid_t> tid;
    auto tid_future = tid.get_future();
    thread_ = std::thread([this, work, tid = std::move(tid)]() mutable {
      tid.set_value(static_cast<pid_t>(syscall(SYS_gettid)));
      while (!go_.load()) std::this_thread::yield();
      while (!stop_.load()) work();
    });
    tid_ = tid_future.get();
  }
  ~Worker() { Stop(); }
  pid_t tid() const { return tid_; }
  void Go() { go_ = true; }
  void Stop() {
    go_ = true;
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::thread thread_;
  pid_t tid_ = 0;
  std::atomic<bool> go_{false}, stop_{false};
};

// Runs the observer over `windows` windows of `window` each.
nlohmann::json Drive(RunObserver& obs, Worker& w, int windows, std::chrono::milliseconds window) {
  obs.OnWorkersReady({w.tid()});
  w.Go();
  obs.OnMeasureStart();
  for (int i = 0; i < windows; ++i) {
    std::this_thread::sleep_for(window);
    obs.OnWindowEnd(i);
  }
  obs.OnMeasureEnd();
  w.Stop();
  nlohmann::json entry = nlohmann::json::object();
  obs.Report(&entry);
  return entry;
}

void BusyLoop() {
  volatile uint64_t x = 0;
  for (int i = 0; i < 1000; ++i) x = x + i;
}

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

// The worker spins until it has used 200 ms of its own CPU time, so the
// expected task-clock holds even when other processes share the 2 vCPUs.
// It sleeps briefly every 2 ms for ~100 voluntary context switches.
TEST(Counters, SoftwareEventsCountABusyLoop) {
  CounterConfig config;
  config.events = {"task-clock", "context-switches", "page-faults"};
  auto obs = MakeCounterObserver(config);
  std::atomic<bool> go{false}, done{false}, release{false};
  std::promise<pid_t> tid_promise;
  std::thread worker([&] {
    tid_promise.set_value(static_cast<pid_t>(syscall(SYS_gettid)));
    while (!go.load()) usleep(100);
    double start = ThreadCpuSeconds();
    while (ThreadCpuSeconds() - start < 0.2) {
      auto until = std::chrono::steady_clock::now() + 2ms;
      while (std::chrono::steady_clock::now() < until) BusyLoop();
      usleep(10);
    }
    done = true;
    // Stay alive until measured, like a runner's worker: /proc/<tid> and
    // the final counter reads need the thread.
    while (!release.load()) usleep(1000);
  });
  obs->OnWorkersReady({tid_promise.get_future().get()});
  obs->OnMeasureStart();
  go = true;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  obs->OnWindowEnd(0);
  obs->OnMeasureEnd();
  release = true;
  worker.join();
  ASSERT_TRUE(done.load()) << "the busy loop did not get 200 ms of CPU in 10 s";
  nlohmann::json entry = nlohmann::json::object();
  obs->Report(&entry);
  SCOPED_TRACE(entry.dump(2));
  const auto& c = entry.at("counters");

  const auto& tc = c.at("task-clock");
  ASSERT_FALSE(tc.contains("unsupported")) << tc.dump();
  double seconds = tc.at("value").get<double>() / 1e9;
  EXPECT_GT(seconds, 0.1);
  EXPECT_LT(seconds, 0.3);
  EXPECT_DOUBLE_EQ(tc.at("scaling").get<double>(), 1.0);
  // task-clock ignores exclude_user/exclude_kernel: no fake split.
  EXPECT_TRUE(tc.contains("split"));
  EXPECT_FALSE(tc.contains("user"));
  ASSERT_EQ(tc.at("windows").size(), 1u);
  EXPECT_GT(tc.at("windows")[0].get<double>(), 0.1e9);

  const auto& cs = c.at("context-switches");
  ASSERT_FALSE(cs.contains("unsupported")) << cs.dump();
  EXPECT_GT(cs.at("value").get<double>(), 10);

  // page-faults honours the split.
  const auto& pf = c.at("page-faults");
  ASSERT_FALSE(pf.contains("unsupported")) << pf.dump();
  EXPECT_TRUE(pf.contains("user"));
  EXPECT_TRUE(pf.contains("kernel"));

  const auto& ru = c.at("rusage");
  ASSERT_FALSE(ru.contains("unsupported")) << ru.dump();
  EXPECT_GT(ru.at("value").get<double>(), 0.1);
}

bool HaveHardwarePmu() {
  perf_event_attr a;
  memset(&a, 0, sizeof(a));
  a.size = sizeof(a);
  a.type = PERF_TYPE_HARDWARE;
  a.config = PERF_COUNT_HW_CPU_CYCLES;
  long fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
  if (fd >= 0) close(static_cast<int>(fd));
  return fd >= 0;
}

TEST(Counters, HardwareEventWithoutPmuIsUnsupportedAndRunCompletes) {
  if (HaveHardwarePmu()) GTEST_SKIP() << "this machine has a hardware PMU";
  CounterConfig config;
  config.events = {"cycles", "task-clock"};
  auto obs = MakeCounterObserver(config);
  Worker w(BusyLoop);
  auto entry = Drive(*obs, w, 1, 50ms);
  SCOPED_TRACE(entry.dump(2));
  const auto& cycles = entry.at("counters").at("cycles");
  ASSERT_TRUE(cycles.contains("unsupported"));
  EXPECT_FALSE(cycles.at("unsupported").get<std::string>().empty());
  EXPECT_FALSE(cycles.contains("value"));  // never a zero
  EXPECT_TRUE(entry.at("counters").at("task-clock").contains("value"));
}

TEST(Counters, ListEventsSaysWhatIsSupported) {
  std::string list = ListEvents();
  SCOPED_TRACE(list);
  EXPECT_NE(list.find("task-clock: supported"), std::string::npos);
  if (!HaveHardwarePmu()) {
    EXPECT_NE(list.find("cycles: unsupported"), std::string::npos);
  }
}

TEST(KernelSampler, StatLoopCollectsKernelSamples) {
  std::unique_ptr<RunObserver> obs;
  try {
    obs = MakeKernelSampler(SamplerConfig{});
  } catch (const Unsupported& e) {
    GTEST_SKIP() << e.what();
  }
  Worker w([] {
    struct stat st;
    stat("/usr/bin/env", &st);
  });
  auto entry = Drive(*obs, w, 2, 250ms);
  SCOPED_TRACE(entry.dump(2));
  const auto& a = entry.at("attribution");
  if (a.contains("unsupported")) {
    GTEST_SKIP() << a.at("unsupported").get<std::string>();
  }
  EXPECT_GT(a.at("samples").get<uint64_t>(), 20u);
  EXPECT_GT(a.at("kernel_samples").get<uint64_t>(), 0u);
  EXPECT_FALSE(a.at("top_symbols").empty());
  EXPECT_GT(a.at("bucket_samples").at("path_walk").get<uint64_t>(), 0u);
  EXPECT_TRUE(a.at("mount_pressure_share").is_number());
}

}  // namespace
}  // namespace mntscale
