// The runner: W pinned workers, each inside its container, a synchronised
// start, warm-up, then fixed measurement windows. All method lives here so a
// scenario cannot get timing, pinning or false sharing wrong.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "mntscale/model/farm.h"
#include "mntscale/sys/histogram.h"
#include "mntscale/observe/observer.h"
#include "mntscale/run/ops.h"
#include "mntscale/run/topology.h"
#include "mntscale/run/worker_pool.h"

namespace mntscale {

const char* ModeName(WorkerMode m);
WorkerMode ParseMode(const std::string& s);  // throws UsageError

struct WorkerPlan {
  Slot slot{};
  const Container* container = nullptr;  // nullptr: stays in the sandbox namespace
  const OpInfo* op = nullptr;
  std::string path, path2;
  std::string role = "reader";
  bool measured = true;  // counts toward the point's throughput and latency
  // Runs inside the worker after it entered its container, before the start
  // barrier; may set ctx.fd/scratch. Throws on failure.
  std::function<void(OpContext&)> setup;
  std::function<void(OpContext&)> cleanup;
};

struct RunSpec {
  std::vector<WorkerPlan> workers;
  WorkerMode mode = WorkerMode::kThread;
  double warmup_s = 0.3;
  double window_s = 0.5;
  int windows = 5;
  bool latency = false;     // time each op of measured workers
  bool bind_memory = true;  // libnuma binding where there are >1 nodes
  std::vector<RunObserver*> observers;
  const std::atomic<bool>* interrupt = nullptr;  // set by SIGINT
  // The harness's own other actors (a churn, health readers): the quietness
  // record never counts them as the workers' own, so on a measured CPU their
  // time is another task's (it takes the CPU from the workers all the same).
  std::vector<pid_t> foreign_tids;
  // Other actors the observers follow beside the workers (their tids come
  // after the workers' in OnWorkersReady) under a role of their own; the
  // runner neither starts nor measures them.
  std::vector<std::pair<pid_t, std::string>> observed_actors;
};

struct WorkerResult {
  int worker = 0;
  Slot slot{};
  int container = -1;
  int mounts_in_ns = 0;  // mounts the worker's namespace held when it started
  std::string role;
  bool measured = true;
  uint64_t ops = 0;
  double cpu_s = 0, user_s = 0, sys_s = 0;
};

struct RunResult {
  double measured_s = 0;
  uint64_t ops = 0;             // measured workers, measurement windows only
  std::vector<double> windows;  // measured workers' ops/s per window
  std::map<std::string, double> role_ops_per_s;
  double cpu_s = 0, user_s = 0, sys_s = 0;  // measured workers
  Histogram latency;
  std::vector<WorkerResult> workers;
  std::string error;  // an op failed in the hot loop: "stat(/d0/..): ENOENT ..."
  double ops_per_s() const { return measured_s > 0 ? ops / measured_s : 0; }
};

class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

// Runs the workers. Throws SysError/runtime_error when a worker cannot be set
// up, Interrupted when spec.interrupt is set during the run.
RunResult Run(const RunSpec& spec);

// The same op on the same path in a plain loop on the calling thread, for
// `seconds`, after entering plan.container and pinning to plan.slot (on a
// private thread). Returns ops/s. The yardstick for the runner's overhead.
double BareLoop(const WorkerPlan& plan, double seconds);

// Enters a container from the calling thread: unshare(CLONE_FS), setns, and
// chroot when the container is reached by chroot.
void EnterContainer(const Container& c);

// Makes the calling thread plan's worker number `worker`: pins it, enters
// its container, and returns the op context after plan.setup ran. Every
// loop that runs a WorkerPlan (runner workers, background readers, the bare
// loop) starts here. Throws on failure.
OpContext EnterWorker(const WorkerPlan& plan, int worker, bool bind_memory);

}  // namespace mntscale
