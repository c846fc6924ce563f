// Other tasks' time on the worker CPUs = the CPUs' non-idle time in
// /proc/stat minus the run time of our own tasks (/proc/<tid>/schedstat,
// which exists without CONFIG_SCHEDSTATS). Workers are pinned, so their run
// time was spent on those CPUs; /proc/stat is in clock ticks, so a share
// below a few ticks per CPU is not resolved and the threshold sits well above.
#include "mntscale/quietness.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "mntscale/sys.h"

namespace mntscale {
namespace {

struct CpuTicks {
  double busy_s = 0, steal_s = 0;
};

CpuTicks ReadCpuTicks(const std::set<int>& cpus) {
  CpuTicks t;
  std::string stat;
  if (!TryReadFile("/proc/stat", &stat)) return t;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::istringstream in(stat);
  std::string line;
  while (std::getline(in, line)) {
    int cpu = -1;
    unsigned long long user, nice, system, idle, iowait, irq, softirq, steal;
    if (sscanf(line.c_str(), "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &user, &nice,
               &system, &idle, &iowait, &irq, &softirq, &steal) != 9 ||
        !cpus.count(cpu)) {
      continue;
    }
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

double RunSeconds(const std::vector<pid_t>& tids) {
  double total = 0;
  for (pid_t t : tids) total += TaskRunSeconds("/proc/" + std::to_string(t));
  return total;
}

double OwnRunSeconds(const std::vector<pid_t>& tids, const std::vector<pid_t>& foreign) {
  std::set<pid_t> seen(tids.begin(), tids.end());
  seen.insert(foreign.begin(), foreign.end());
  const std::set<pid_t> other(foreign.begin(), foreign.end());
  double total = 0;
  for (pid_t t : tids) {
    if (!other.count(t)) total += TaskRunSeconds("/proc/" + std::to_string(t));
  }
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      if (seen.insert(std::atoi(e->d_name)).second) {
        total += TaskRunSeconds(std::string("/proc/self/task/") + e->d_name);
      }
    }
    closedir(d);
  }
  return total;
}

class QuietnessObserver : public RunObserver {
 public:
  QuietnessObserver(std::vector<int> cpus, std::vector<pid_t> foreign)
      : cpus_(cpus.begin(), cpus.end()), foreign_(std::move(foreign)) {}
  void OnWorkersReady(const std::vector<pid_t>& tids) override { tids_ = tids; }
  void OnMeasureStart() override {
    t0_ = std::chrono::steady_clock::now();
    own0_ = OwnRunSeconds(tids_, foreign_);
    actors0_ = RunSeconds(foreign_);
    ticks0_ = ReadCpuTicks(cpus_);
    started_ = true;
  }
  void OnWindowEnd(int) override {}
  void OnMeasureEnd() override {
    if (!started_) return;
    CpuTicks t1 = ReadCpuTicks(cpus_);
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
  CpuTicks ticks0_;
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

bool Quietness::Noisy() const {
  return OtherShare() > kNoisyOtherShare || StealShare() > kNoisyStealShare;
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
  fig["reason"] = why;
  (*entry)["noisy"] = fig;
}

std::unique_ptr<RunObserver> MakeQuietnessObserver(std::vector<int> cpus,
                                                   std::vector<pid_t> foreign) {
  return std::make_unique<QuietnessObserver>(std::move(cpus), std::move(foreign));
}

}  // namespace mntscale
