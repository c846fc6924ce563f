// A worker's CPU is what the kernel says, not what the JSON reports: read
// each worker thread's affinity while the run is measuring and compare it
// with the placement plan. Run as root (the workers enter a sandbox).
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "mntscale/observe/observer.h"
#include "mntscale/run/ops.h"
#include "mntscale/run/runner.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/run/topology.h"

namespace mntscale {
namespace {

// The CPUs a thread may run on, as sched_getaffinity reports them, and the
// same from /proc/<tid>/status for a second, independent reading.
std::vector<int> Affinity(pid_t tid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(tid, sizeof set, &set) != 0) return {-errno};
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

std::string CpusAllowedList(pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Cpus_allowed_list:", 0) == 0) {
      size_t v = line.find_first_not_of(" \t", 18);
      return v == std::string::npos ? "" : line.substr(v);
    }
  }
  return "";
}

// Takes the readings once the measurement has started, so they are of the
// threads doing the work, not of threads about to be pinned.
class AffinityProbe : public RunObserver {
 public:
  void OnWorkersReady(const std::vector<pid_t>& tids) override { tids_ = tids; }
  void OnMeasureStart() override {
    for (pid_t t : tids_) {
      cpus_.push_back(Affinity(t));
      lists_.push_back(CpusAllowedList(t));
    }
  }
  void OnWindowEnd(int) override {}
  void OnMeasureEnd() override {}
  void Report(nlohmann::json*) override {}
  std::vector<pid_t> tids_;
  std::vector<std::vector<int>> cpus_;
  std::vector<std::string> lists_;
};

TEST(WorkerAffinity, EachWorkerRunsOnlyOnItsPlannedCpu) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_SYS_ADMIN) for the sandbox";
  Sandbox::Enter();
  Topology topo = Topology::Host();
  const int n = static_cast<int>(topo.pus().size());
  if (n < 2) GTEST_SKIP() << "one CPU: every placement is the same CPU, nothing to tell apart";
  for (WorkerMode mode : {WorkerMode::kThread, WorkerMode::kProcess}) {
    for (const char* placement : {"spread", "compact"}) {
      std::vector<Slot> slots = PlanPlacement(topo, PlacementSpec::Parse(placement), n);
      RunSpec spec;
      spec.mode = mode;
      spec.warmup_s = 0.01;
      spec.window_s = 0.05;
      spec.windows = 1;
      for (const Slot& s : slots) {
        WorkerPlan w;
        w.slot = s;
        w.op = FindOp("stat");
        w.path = "/";
        spec.workers.push_back(w);
      }
      AffinityProbe probe;
      spec.observers.push_back(&probe);
      RunResult r = ::mntscale::Run(spec);
      ASSERT_TRUE(r.error.empty()) << r.error;
      ASSERT_EQ(probe.cpus_.size(), slots.size());
      for (size_t i = 0; i < slots.size(); ++i) {
        const int want = slots[i].pu.os_index;
        EXPECT_EQ(probe.cpus_[i], std::vector<int>{want})
            << ModeName(mode) << " " << placement << " worker " << i << " tid " << probe.tids_[i];
        EXPECT_EQ(probe.lists_[i], std::to_string(want))
            << ModeName(mode) << " " << placement << " worker " << i;
      }
    }
  }
}

}  // namespace
}  // namespace mntscale
