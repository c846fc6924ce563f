// issue 23: the "noisy" flag against real neighbours -- a CPU-bound loop on
// the worker's CPU, on its sibling (the SMT sibling, or every other vCPU when
// the kernel reports none), and in another cgroup -- and the harness's own
// child processes counted as its own. The neighbours are real busy loops
// pinned with sched_setaffinity; nothing depends on the machine's speed: a
// loop sharing a CPU with the worker gets a fair share of it whatever the
// clock rate, and the own-time check compares against the tasks' own figures.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "mntscale/observe/quietness.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

[[noreturn]] void Spin() {
  alarm(120);  // never outlives a crashed test by long
  volatile unsigned long x = 0;
  for (;;) x = x + 1;
}

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  sched_getaffinity(0, sizeof set, &set);
  std::vector<int> out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

// A busy loop pinned to `cpu`. `own` false: double-forked into its own
// session, so it is not a descendant of this process (a neighbour); true: a
// direct child (one of the harness's own actors). `cgroup` non-empty: the
// loop moves itself into that cgroup directory before spinning.
class BusyLoop {
 public:
  BusyLoop(int cpu, bool own, const std::string& cgroup = "") {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_t first = fork();
    if (first == 0) {
      close(fds[0]);
      if (!own) {
        setsid();
        if (fork() != 0) _exit(0);
      } else {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
      }
      PinTo(cpu);
      if (!cgroup.empty()) {
        std::ofstream(cgroup + "/cgroup.procs") << getpid() << std::flush;
      }
      pid_t me = getpid();
      if (write(fds[1], &me, sizeof me) != sizeof me) _exit(1);
      close(fds[1]);
      Spin();
    }
    close(fds[1]);
    if (read(fds[0], &pid_, sizeof pid_) != sizeof pid_) pid_ = -1;
    close(fds[0]);
    if (!own) waitpid(first, nullptr, 0);  // the intermediate; init reaps the loop
    child_ = own ? first : -1;
  }
  ~BusyLoop() {
    if (pid_ > 0) kill(pid_, SIGKILL);
    if (child_ > 0) waitpid(child_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1, child_ = -1;
};

// A spinning worker thread pinned to `cpu`, as the runner's workers are.
class Worker {
 public:
  explicit Worker(int cpu) {
    thread_ = std::thread([this, cpu] {
      PinTo(cpu);
      tid_.store(static_cast<pid_t>(syscall(SYS_gettid)));
      volatile unsigned long x = 0;
      while (!stop_.load(std::memory_order_relaxed)) x = x + 1;
    });
    while (tid_.load() == 0) std::this_thread::yield();
  }
  ~Worker() {
    stop_ = true;
    thread_.join();
  }
  pid_t tid() const { return tid_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<pid_t> tid_{0};
  std::thread thread_;
};

double RunSeconds(pid_t tid) {
  std::string s;
  if (!TryReadFile("/proc/" + std::to_string(tid) + "/schedstat", &s)) return 0;
  return std::strtoull(s.c_str(), nullptr, 10) / 1e9;
}

// The quietness record of 0.6 s of a worker on `cpu`.
nlohmann::json Measure(int cpu, const Worker& w) {
  auto obs = MakeQuietnessObserver({cpu});
  obs->OnWorkersReady({w.tid()});
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the loops settle
  obs->OnMeasureStart();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  obs->OnMeasureEnd();
  nlohmann::json e;
  obs->Report(&e);
  return e;
}

TEST(QuietnessNeighbour, OnTheWorkersCpuIsNoisy) {
  const int cpu = AllowedCpus().front();
  Worker w(cpu);
  BusyLoop loop(cpu, false);
  ASSERT_GT(loop.pid(), 0);
  nlohmann::json e = Measure(cpu, w);
  ASSERT_TRUE(e.contains("noisy")) << e.dump();
  // The loop got its fair share of the worker's CPU: about half of it.
  EXPECT_GT(e["noisy"]["other_share"].get<double>(), kNoisyOtherShare) << e.dump();
  EXPECT_NE(e["noisy"]["reason"].get<std::string>().find("worker CPUs"), std::string::npos)
      << e.dump();
}

TEST(QuietnessNeighbour, OnTheSiblingCpuIsNoisy) {
  std::vector<int> cpus = AllowedCpus();
  if (cpus.size() < 2) GTEST_SKIP() << "one CPU: no sibling to put a neighbour on";
  const int cpu = cpus.front();
  std::vector<int> siblings;
  for (int s : SmtSiblings(cpu)) {
    if (s != cpu && std::find(cpus.begin(), cpus.end(), s) != cpus.end()) siblings.push_back(s);
  }
  // Without an SMT sibling (a VM's vCPUs are reported as cores), a loop on
  // every other vCPU: they share host cores the kernel does not show, and
  // the whole machine's share catches them.
  const bool smt = !siblings.empty();
  if (!smt) siblings.assign(cpus.begin() + 1, cpus.end());
  Worker w(cpu);
  std::vector<std::unique_ptr<BusyLoop>> loops;
  for (int s : siblings) loops.push_back(std::make_unique<BusyLoop>(s, false));
  nlohmann::json e = Measure(cpu, w);
  ASSERT_TRUE(e.contains("noisy")) << "siblings " << siblings.size() << ": " << e.dump();
  if (smt) {
    // The sibling is watched with the worker's CPU.
    EXPECT_GE(e["noisy"]["worker_cpus"].get<int>(), 2) << e.dump();
  } else {
    EXPECT_GT(e["noisy"]["machine_other_share"].get<double>(), kNoisyMachineShare) << e.dump();
    EXPECT_NE(e["noisy"]["reason"].get<std::string>().find("whole machine"), std::string::npos)
        << e.dump();
  }
}

// The cgroup v2 hierarchy's mount point, or "" (hybrid hosts mount it at
// /sys/fs/cgroup/unified).
std::string Cgroup2Root() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream f(line);
    std::string id, parent, dev, root, mnt;
    f >> id >> parent >> dev >> root >> mnt;
    return mnt;
  }
  return "";
}

TEST(QuietnessNeighbour, InAnotherCgroupIsNoisy) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make a cgroup";
  const std::string root = Cgroup2Root();
  if (root.empty()) GTEST_SKIP() << "no cgroup2 hierarchy mounted";
  const std::string dir = root + "/mntscale-quietness-" + std::to_string(getpid());
  if (mkdir(dir.c_str(), 0755) != 0)
    GTEST_SKIP() << "cannot make " << dir << ": " << strerror(errno);
  const int cpu = AllowedCpus().front();
  nlohmann::json e;
  std::string where;
  {
    Worker w(cpu);
    BusyLoop loop(cpu, false, dir);
    ASSERT_GT(loop.pid(), 0);
    TryReadFile("/proc/" + std::to_string(loop.pid()) + "/cgroup", &where);
    e = Measure(cpu, w);
  }
  for (int i = 0; i < 100 && rmdir(dir.c_str()) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // until the killed loop is gone
  }
  EXPECT_NE(where.find("mntscale-quietness-"), std::string::npos)
      << "loop not in the new cgroup: " << where;
  ASSERT_TRUE(e.contains("noisy")) << e.dump();
  EXPECT_GT(e["noisy"]["other_share"].get<double>(), kNoisyOtherShare) << e.dump();
}

// The harness's own actors (children in --mode process) are not noise: their
// run time counts as own, whatever CPU they share with the workers.
TEST(QuietnessNeighbour, OwnChildProcessCountsAsOwn) {
  const int cpu = AllowedCpus().front();
  Worker w(cpu);
  BusyLoop child(cpu, true);
  ASSERT_GT(child.pid(), 0);
  auto obs = MakeQuietnessObserver({cpu});
  obs->OnWorkersReady({w.tid()});
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const double w0 = RunSeconds(w.tid()), c0 = RunSeconds(child.pid());
  obs->OnMeasureStart();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  obs->OnMeasureEnd();
  const double worker_s = RunSeconds(w.tid()) - w0, child_s = RunSeconds(child.pid()) - c0;
  nlohmann::json e;
  obs->Report(&e);
  ASSERT_GT(child_s, 0.02) << "the child did not run";
  // Own time holds the worker's and the child's (read around the observer's
  // reads, so a little more of both than it saw; hence the 0.9).
  EXPECT_GE(e["quietness"]["own_run_s"].get<double>(), 0.9 * (worker_s + child_s) - 0.01)
      << e.dump();
}

TEST(QuietnessRule, MachineShareAndSiblings) {
  Quietness q;
  q.seconds = 1;
  q.cpus = 1;
  q.busy_s = 1.0;
  q.own_s = 1.0;  // the worker had its CPU to itself
  q.machine_cpus = 2;
  q.machine_busy_s = 1.05;
  EXPECT_FALSE(q.Noisy());
  q.machine_busy_s = 2.0;  // a loop on the other vCPU
  EXPECT_NEAR(q.MachineOtherShare(), 0.5, 1e-9);
  EXPECT_TRUE(q.Noisy());
  nlohmann::json e;
  ReportQuietness(q, &e);
  ASSERT_TRUE(e.contains("noisy"));
  EXPECT_NE(e["noisy"]["reason"].get<std::string>().find("whole machine"), std::string::npos);
  EXPECT_EQ(e["quietness"]["machine_other_share"].get<double>(), 0.5);
  std::vector<int> s = SmtSiblings(0);
  EXPECT_NE(std::find(s.begin(), s.end(), 0), s.end());
}

// Issue 22: the harness's other actors (capacity's churn and health readers,
// named `foreign`) are never the workers' own. On a measured CPU their time is
// another task's: a health reader spinning on the walker's CPU once went
// unflagged because every thread of the process counted as own.
TEST(QuietnessActors, AnotherActorOnTheMeasuredCpuIsNotTheWorkersOwn) {
  const std::vector<int> cpus = AllowedCpus();
  ASSERT_FALSE(cpus.empty());
  Worker actor(cpus[0]);  // the "health reader": pinned to the measured CPU, spinning
  std::unique_ptr<RunObserver> q = MakeQuietnessObserver({cpus[0]}, {actor.tid()});
  q->OnWorkersReady({});  // no workers of its own: the actor is the only load we add
  q->OnMeasureStart();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  q->OnMeasureEnd();
  nlohmann::json e;
  q->Report(&e);
  const nlohmann::json& f = e["quietness"];
  const double actors = f["harness_actors_s"], own = f["own_run_s"], other = f["other_run_s"];
  // The actor ran on that CPU for a good part of the window (other load can
  // take some of it, never all), and its time shows as other tasks'.
  EXPECT_GT(actors, 0.15) << f.dump();
  EXPECT_LT(own, actors) << f.dump();
  EXPECT_GE(other, 0.8 * actors - 0.03) << f.dump();  // /proc/stat is in ticks
}

// The other way round: the actor runs on another CPU while a neighbour (not
// a descendant) takes the measured one. Counting the actor's time as own once
// hid the neighbour: a walker at half a CPU was never flagged. Machine-wide,
// the actor is the run's own load, not noise.
TEST(QuietnessActors, AnActorElsewhereDoesNotHideANeighbour) {
  const std::vector<int> cpus = AllowedCpus();
  if (cpus.size() < 2) GTEST_SKIP() << "needs two CPUs, this process may use " << cpus.size();
  BusyLoop neighbour(cpus[0], /*own=*/false);
  ASSERT_GT(neighbour.pid(), 0);
  Worker actor(cpus[1]);
  std::unique_ptr<RunObserver> q = MakeQuietnessObserver({cpus[0]}, {actor.tid()});
  q->OnWorkersReady({});
  q->OnMeasureStart();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  q->OnMeasureEnd();
  nlohmann::json e;
  q->Report(&e);
  const nlohmann::json& f = e["quietness"];
  EXPECT_GT(f["harness_actors_s"].get<double>(), 0.15) << f.dump();
  EXPECT_LT(f["own_run_s"].get<double>(), 0.1) << f.dump();  // the main thread slept
  EXPECT_GT(f["other_share"].get<double>(), 0.15) << f.dump();
  EXPECT_TRUE(e.contains("noisy")) << f.dump();
}

// An actor alone on the other CPU is the run's own load: not noise machine-wide.
TEST(QuietnessActors, AnActorElsewhereIsNotMachineNoise) {
  Quietness q;
  q.seconds = 1.0;
  q.cpus = 1;
  q.busy_s = 1.0;
  q.own_s = 1.0;
  q.actors_s = 1.0;  // the health reader spinning on the other vCPU
  q.machine_cpus = 2;
  q.machine_busy_s = 2.0;
  EXPECT_NEAR(q.MachineOtherShare(), 0.0, 1e-9);
  EXPECT_FALSE(q.Noisy());
}

}  // namespace
}  // namespace mntscale
