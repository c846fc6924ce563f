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

#include "mntscale/counters.h"
#include "mntscale/sys.h"

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
nlohmann::json Drive(RunObserver& obs, Worker& w, int windows,
                     std::chrono::milliseconds window) {
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

// The busy loop runs for the whole ~200 ms measurement; with 2 vCPUs and
// nothing else running it gets about all of it.
TEST(Counters, SoftwareEventsCountABusyLoop) {
  CounterConfig config;
  config.events = {"task-clock", "context-switches", "page-faults"};
  auto obs = MakeCounterObserver(config);
  // Busy for 2 ms, then a short sleep: ~100 voluntary context switches in
  // 200 ms while the thread stays on the CPU ~97% of the time.
  Worker w([] {
    auto until = std::chrono::steady_clock::now() + 2ms;
    while (std::chrono::steady_clock::now() < until) BusyLoop();
    usleep(10);
  });
  auto entry = Drive(*obs, w, 2, 100ms);
  SCOPED_TRACE(entry.dump(2));
  const auto& c = entry.at("counters");

  const auto& tc = c.at("task-clock");
  ASSERT_FALSE(tc.contains("unsupported")) << tc.dump();
  double seconds = tc.at("value").get<double>() / 1e9;
  EXPECT_GT(seconds, 0.1);
  EXPECT_LT(seconds, 0.3);
  EXPECT_DOUBLE_EQ(tc.at("scaling").get<double>(), 1.0);
  EXPECT_TRUE(
      tc.contains("split"));  // task-clock ignores exclude_*: no fake split
  EXPECT_FALSE(tc.contains("user"));
  ASSERT_EQ(tc.at("windows").size(), 2u);
  for (const auto& v : tc.at("windows")) EXPECT_GT(v.get<double>(), 0.03e9);

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
  EXPECT_GT(ru.at("value").get<double>(), 0.05);
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
  auto entry = Drive(*obs, w, 2, 150ms);
  SCOPED_TRACE(entry.dump(2));
  const auto& a = entry.at("attribution");
  if (a.contains("unsupported")) {
    GTEST_SKIP() << a.at("unsupported").get<std::string>();
  }
  EXPECT_GT(a.at("samples").get<uint64_t>(), 50u);
  EXPECT_GT(a.at("kernel_samples").get<uint64_t>(), 0u);
  EXPECT_FALSE(a.at("top_symbols").empty());
  EXPECT_GT(a.at("bucket_samples").at("path_walk").get<uint64_t>(), 0u);
  EXPECT_TRUE(a.at("mount_pressure_share").is_number());
}

}  // namespace
}  // namespace mntscale
