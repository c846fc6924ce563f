// Other tasks' time on the worker CPUs = the CPUs' non-idle time in
// /proc/stat minus the run time of our own tasks (/proc/<tid>/schedstat,
// which exists without CONFIG_SCHEDSTATS). Workers are pinned, so their run
// time was spent on those CPUs; /proc/stat is in clock ticks, so a share
// below a few ticks per CPU is not resolved and the threshold sits well above.
// Own time is counted wherever it ran (schedstat has no per-CPU split), so the
// harness's unpinned threads can hide up to their own time of a neighbour's;
// the machine-wide share subtracts the same own time from all CPUs' time.
#include "mntscale/observe/quietness.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

struct CpuTicks {
  double busy_s = 0, steal_s = 0;
};

// Ticks of the given CPUs; of every CPU when `cpus` is null.
CpuTicks ReadCpuTicks(const std::set<int>* cpus, int* count = nullptr) {
  CpuTicks t;
  if (count) *count = 0;
  std::string stat;
  if (!TryReadFile("/proc/stat", &stat)) return t;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::istringstream in(stat);
  std::string line;
  while (std::getline(in, line)) {
    int cpu = -1;
    unsigned long long user, nice, system, idle, iowait, irq, softirq, steal;
    // "cpu  ..." is the sum of all: sscanf's %d would read its first field as a CPU.
    if (line.size() < 4 || line.compare(0, 3, "cpu") != 0 || !isdigit(line[3])) continue;
    if (sscanf(line.c_str(), "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &user, &nice,
               &system, &idle, &iowait, &irq, &softirq, &steal) != 9 ||
        (cpus && !cpus->count(cpu))) {
      continue;
    }
    if (count) ++*count;
    t.busy_s += (user + nice + system + irq + softirq) / hz;
    t.steal_s += steal / hz;
  }
  return t;
}

// Run time in seconds of a task, from the first field of its schedstat.
double TaskRunSeconds(const std::string& dir) {
  std::string s;
  if (!TryReadFile(dir + "/schedstat", &s)) return 0;
  return std::strtoull(s.c_str(), nullptr, 10) / 1e9;
}

std::vector<pid_t> NumericEntries(const std::string& dir) {
  std::vector<pid_t> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] >= '0' && e->d_name[0] <= '9') out.push_back(std::atoi(e->d_name));
    }
    closedir(d);
  }
  return out;
}

// This process and its descendants (through /proc/PID/task/TID/children,
// CONFIG_PROC_CHILDREN; without it only this process).
std::vector<pid_t> OwnProcesses() {
  std::vector<pid_t> out = {getpid()};
  std::set<pid_t> seen(out.begin(), out.end());
  for (size_t i = 0; i < out.size() && out.size() < 100000; ++i) {
    const std::string base = "/proc/" + std::to_string(out[i]) + "/task/";
    for (pid_t tid : NumericEntries(base)) {
      std::string children;
      if (!TryReadFile(base + std::to_string(tid) + "/children", &children)) continue;
      std::istringstream in(children);
      pid_t child;
      while (in >> child) {
        if (seen.insert(child).second) out.push_back(child);
      }
    }
  }
  return out;
}

// Clock ticks of this process's reaped children (utime + stime of those it
// waited for): an actor that exited during the window keeps counting as own.
double ReapedChildrenSeconds() {
  std::string stat;
  if (!TryReadFile("/proc/self/stat", &stat)) return 0;
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  double cutime = 0, cstime = 0;
  // Fields from 3 (state) on; cutime and cstime are fields 16 and 17.
  for (int i = 3; i <= 17 && in >> field; ++i) {
    if (i == 16) cutime = std::strtod(field.c_str(), nullptr);
    if (i == 17) cstime = std::strtod(field.c_str(), nullptr);
  }
  return (cutime + cstime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double RunSeconds(const std::vector<pid_t>& tids) {
  double total = 0;
  for (pid_t t : tids) total += TaskRunSeconds("/proc/" + std::to_string(t));
  return total;
}

// The workers, this process's other threads and its descendants, except
// `foreign` (the harness's other actors: a churn, health readers).
double OwnRunSeconds(const std::vector<pid_t>& tids, const std::vector<pid_t>& foreign) {
  std::set<pid_t> seen(tids.begin(), tids.end());
  seen.insert(foreign.begin(), foreign.end());
  const std::set<pid_t> other(foreign.begin(), foreign.end());
  double total = ReapedChildrenSeconds();
  for (pid_t t : tids) {
    if (!other.count(t)) total += TaskRunSeconds("/proc/" + std::to_string(t));
  }
  for (pid_t pid : OwnProcesses()) {
    const std::string base = "/proc/" + std::to_string(pid) + "/task/";
    for (pid_t tid : NumericEntries(base)) {
      if (seen.insert(tid).second) total += TaskRunSeconds(base + std::to_string(tid));
    }
  }
  return total;
}

std::set<int> WithSiblings(const std::vector<int>& cpus) {
  std::set<int> out;
  for (int c : cpus) {
    for (int s : SmtSiblings(c)) out.insert(s);
  }
  return out;
}

class QuietnessObserver : public RunObserver {
 public:
  QuietnessObserver(std::vector<int> cpus, std::vector<pid_t> foreign)
      : cpus_(WithSiblings(cpus)), foreign_(std::move(foreign)) {}
  void OnWorkersReady(const std::vector<pid_t>& tids) override { tids_ = tids; }
  void OnMeasureStart() override {
    t0_ = std::chrono::steady_clock::now();
    own0_ = OwnRunSeconds(tids_, foreign_);
    actors0_ = RunSeconds(foreign_);
    ticks0_ = ReadCpuTicks(&cpus_);
    machine0_ = ReadCpuTicks(nullptr);
    started_ = true;
  }
  void OnWindowEnd(int) override {}
  void OnMeasureEnd() override {
    if (!started_) return;
    CpuTicks t1 = ReadCpuTicks(&cpus_);
    CpuTicks m1 = ReadCpuTicks(nullptr, &q_.machine_cpus);
    q_.machine_busy_s = m1.busy_s - machine0_.busy_s;
    q_.own_s = OwnRunSeconds(tids_, foreign_) - own0_;
    q_.actors_s = RunSeconds(foreign_) - actors0_;
    q_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    q_.busy_s = t1.busy_s - ticks0_.busy_s;
    q_.steal_s = t1.steal_s - ticks0_.steal_s;
    q_.cpus = static_cast<int>(cpus_.size());
    q_.cpus_online = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
    std::string load;
    if (TryReadFile("/proc/loadavg", &load)) q_.load_1m = std::strtod(load.c_str(), nullptr);
    ended_ = true;
  }
  void Report(nlohmann::json* entry) override {
    if (ended_) ReportQuietness(q_, entry);
  }

 private:
  std::set<int> cpus_;
  std::vector<pid_t> tids_;
  std::vector<pid_t> foreign_;
  std::chrono::steady_clock::time_point t0_;
  double own0_ = 0, actors0_ = 0;
  CpuTicks ticks0_, machine0_;
  Quietness q_;
  bool started_ = false, ended_ = false;
};

double Round(double v, double unit) { return std::round(v / unit) / (1 / unit); }

}  // namespace

double Quietness::OtherShare() const {
  double cap = cpus * seconds;
  return cap > 0 ? std::max(0.0, busy_s - own_s) / cap : 0;
}

double Quietness::StealShare() const {
  double cap = cpus * seconds;
  return cap > 0 ? std::max(0.0, steal_s) / cap : 0;
}

double Quietness::MachineOtherShare() const {
  double cap = machine_cpus * seconds;
  // The harness's other actors are part of the run, not noise, wherever they
  // ran; on a worker CPU OtherShare counts them.
  return cap > 0 ? std::max(0.0, machine_busy_s - own_s - actors_s) / cap : 0;
}

bool Quietness::Noisy() const {
  return OtherShare() > kNoisyOtherShare || StealShare() > kNoisyStealShare ||
         MachineOtherShare() > kNoisyMachineShare;
}

std::vector<int> SmtSiblings(int cpu) {
  std::string list;
  std::vector<int> out;
  if (TryReadFile(
          "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/thread_siblings_list",
          &list)) {
    std::istringstream in(list);
    std::string range;
    while (std::getline(in, range, ',')) {
      int lo = -1, hi = -1;
      int n = sscanf(range.c_str(), "%d-%d", &lo, &hi);
      if (n < 1 || lo < 0) continue;
      if (n == 1) hi = lo;
      for (int c = lo; c <= hi && c < lo + 1024; ++c) out.push_back(c);
    }
  }
  if (std::find(out.begin(), out.end(), cpu) == out.end()) out.push_back(cpu);
  return out;
}

nlohmann::json Quietness::ToJson() const {
  return {{"seconds", Round(seconds, 1e-4)},
          {"worker_cpus", cpus},
          {"cpu_busy_s", Round(busy_s, 1e-4)},
          {"own_run_s", Round(own_s, 1e-4)},
          {"harness_actors_s", Round(actors_s, 1e-4)},
          {"other_run_s", Round(std::max(0.0, busy_s - own_s), 1e-4)},
          {"other_share", Round(OtherShare(), 1e-4)},
          {"steal_s", Round(steal_s, 1e-4)},
          {"steal_share", Round(StealShare(), 1e-4)},
          {"machine_cpus", machine_cpus},
          {"machine_busy_s", Round(machine_busy_s, 1e-4)},
          {"machine_other_share", Round(MachineOtherShare(), 1e-4)},
          {"load_1m", load_1m},
          {"cpus_online", cpus_online}};
}

void ReportQuietness(const Quietness& q, nlohmann::json* entry) {
  nlohmann::json fig = q.ToJson();
  (*entry)["quietness"] = fig;
  if (!q.Noisy()) return;
  std::string why;
  char buf[160];
  if (q.OtherShare() > kNoisyOtherShare) {
    snprintf(buf, sizeof buf, "other tasks ran %.0f%% of the worker CPUs' time (limit %.0f%%)",
             100 * q.OtherShare(), 100 * kNoisyOtherShare);
    why = buf;
  }
  if (q.StealShare() > kNoisyStealShare) {
    snprintf(buf, sizeof buf, "%sthe hypervisor stole %.0f%% (limit %.0f%%)",
             why.empty() ? "" : "; ", 100 * q.StealShare(), 100 * kNoisyStealShare);
    why += buf;
  }
  if (q.MachineOtherShare() > kNoisyMachineShare) {
    snprintf(buf, sizeof buf,
             "%sother tasks ran %.0f%% of the whole machine's CPU time (limit %.0f%%)",
             why.empty() ? "" : "; ", 100 * q.MachineOtherShare(), 100 * kNoisyMachineShare);
    why += buf;
  }
  fig["reason"] = why;
  (*entry)["noisy"] = fig;
}

std::unique_ptr<RunObserver> MakeQuietnessObserver(std::vector<int> cpus,
                                                   std::vector<pid_t> foreign) {
  return std::make_unique<QuietnessObserver>(std::move(cpus), std::move(foreign));
}

}  // namespace mntscale
