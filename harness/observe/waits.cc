// Wall-time attribution: lock contention (lock:contention_begin/end) and
// off-CPU time (sched:sched_switch plus switch records) on each worker,
// through perf_event_open(PERF_TYPE_TRACEPOINT). Waits and blocked stacks are
// named with the same bucket file as the cpu-clock sampler. tracefs, which
// holds the tracepoint ids, is mounted only inside the harness's private
// mount namespace.
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>

#include "attribution_internal.h"
#include "mntscale/observe/attribution.h"
#include "mntscale/observe/counters.h"
#include "mntscale/observe/decomposition.h"
#include "mntscale/sys/histogram.h"
#include "mntscale/sys/stats.h"
#include "mntscale/sys/sys.h"
#include "perf_ring.h"
#include "waits_internal.h"
#include "waits_probe.h"

namespace mntscale {

namespace {

using attribution::BucketSet;
using attribution::KernelSymbols;

// 4 MiB per task holds a 0.5 s window of a mount/umount writer (~3.5k
// switches and waits a second with chains); 1 MiB each beyond 16 tasks.
constexpr int kDataPagesLog2 = 10;
constexpr int kDataPagesLog2Many = 8;
constexpr size_t kManyTasks = 16;
constexpr size_t kTopSites = 5;

constexpr const char* kOtherLock = "other";
constexpr const char* kOtherSleep = "other_sleep";

// A task's time on CPU so far (ns), from /proc/<tid>/schedstat; false when
// the kernel has no schedstat (CONFIG_SCHED_INFO) or the task is gone.
bool ReadSchedRuntime(pid_t tid, uint64_t* ns) {
  std::string text;
  if (!TryReadFile("/proc/" + std::to_string(tid) + "/schedstat", &text)) return false;
  char* end = nullptr;
  *ns = std::strtoull(text.c_str(), &end, 10);
  return end != text.c_str();
}

using waits::OpenHint;
using waits::Plan;
using waits::Probe;
using waits::TraceAttr;

template <typename T>
T Load(const char* p) {
  T v;
  memcpy(&v, p, sizeof v);
  return v;
}

struct LockStats {
  std::vector<uint64_t> ns;
  std::map<std::string, std::pair<uint64_t, uint64_t>> sites;  // site -> count, total
  std::map<std::string, uint64_t> site_max;

  void Add(const waits::Wait& w) {
    ns.push_back(w.ns);
    auto& s = sites[w.site];
    ++s.first;
    s.second += w.ns;
    site_max[w.site] = std::max(site_max[w.site], w.ns);
  }
  nlohmann::json ToJson() {
    uint64_t total = 0, max = 0;
    for (uint64_t v : ns) {
      total += v;
      max = std::max(max, v);
    }
    nlohmann::json j = {{"count", ns.size()}, {"total_s", total * 1e-9}, {"max_s", max * 1e-9}};
    j["p50_s"] =
        ns.empty() ? nlohmann::json(nullptr) : nlohmann::json(NearestRankQuantile(ns, 0.50) * 1e-9);
    j["p99_s"] =
        ns.empty() ? nlohmann::json(nullptr) : nlohmann::json(NearestRankQuantile(ns, 0.99) * 1e-9);
    std::vector<std::pair<std::string, std::pair<uint64_t, uint64_t>>> v(sites.begin(),
                                                                         sites.end());
    std::sort(v.begin(), v.end(),
              [](const auto& a, const auto& b) { return a.second.second > b.second.second; });
    nlohmann::json top = nlohmann::json::array();
    for (size_t i = 0; i < v.size() && i < kTopSites; ++i) {
      top.push_back({{"site", v[i].first},
                     {"count", v[i].second.first},
                     {"total_s", v[i].second.second * 1e-9},
                     {"max_s", site_max[v[i].first] * 1e-9}});
    }
    j["sites"] = top;
    return j;
  }
};

class WaitTracer : public RunObserver {
 public:
  WaitTracer(Plan plan, std::string buckets_path, BucketSet buckets, KernelSymbols symbols)
      : plan_(std::move(plan)),
        buckets_path_(std::move(buckets_path)),
        buckets_(std::move(buckets)),
        symbols_(std::move(symbols)) {}

  void OnWorkersReady(const std::vector<pid_t>& tids) override {
    tasks_.clear();
    error_.clear();
    try {
      int pages_log2 = tids.size() > kManyTasks ? kDataPagesLog2Many : kDataPagesLog2;
      for (pid_t tid : tids) tasks_.push_back(OpenTask(tid, pages_log2));
    } catch (const std::exception& e) {
      tasks_.clear();  // all workers or none
      error_ = e.what();
    }
  }

  void OnMeasureStart() override {
    for (auto& t : tasks_) t->ring->Drain([](auto&, auto, auto) {});
    for (auto& t : tasks_) t->sched_ok = ReadSchedRuntime(t->tid, &t->sched_start);
    t_start_ = MonotonicNs();
    for (auto& t : tasks_) {
      t->offcpu.emplace(t_start_);
      t->ring->Enable(true);
      for (Fd& fd : t->others) ioctl(fd.get(), PERF_EVENT_IOC_ENABLE, 0);
    }
    measuring_ = true;
  }

  void OnWindowEnd(int) override { DrainAll(); }

  void OnMeasureEnd() override {
    t_end_ = MonotonicNs();
    for (auto& t : tasks_) {
      t->sched_ok = t->sched_ok && ReadSchedRuntime(t->tid, &t->sched_end);
      t->ring->Enable(false);
      for (Fd& fd : t->others) ioctl(fd.get(), PERF_EVENT_IOC_DISABLE, 0);
    }
    DrainAll();
    for (auto& t : tasks_) {
      t->pairer.Finish(t_end_);
      t->offcpu->Finish(t_end_);
    }
    measuring_ = false;
  }

  void Report(nlohmann::json* entry) override {
    nlohmann::json& w = (*entry)["waits"];
    w = nlohmann::json::object();
    if (!error_.empty()) {
      w = {{"unsupported", error_}};
      (*entry)["time_decomposition"] = {{"unsupported", error_}};
      return;
    }
    std::vector<std::string> roles = Roles(*entry);
    w["window_s"] = (t_end_ - t_start_) * 1e-9;
    w["tasks"] = tasks_.size();
    w["tracefs"] = plan_.tracefs;
    w["buckets_file"] = buckets_path_;
    uint64_t lost = 0;
    for (auto& t : tasks_) lost += t->lost;
    w["lost_records"] = lost;
    if (lost) w["note"] = "records were lost (ring full): waits and off-CPU time are partial";
    w["locks"] = LocksJson(roles);
    w["off_cpu"] = OffCpuJson(roles);
    // The decomposition is the session's, once every observer has reported.
    times_ = Times();
    have_times_ = true;
  }

  const WaitTimes* wait_times() const override { return have_times_ ? &times_ : nullptr; }

 private:
  struct Task {
    pid_t tid = 0;
    std::unique_ptr<PerfRing> ring;
    std::vector<Fd> others;  // events writing into ring
    waits::WaitPairer pairer;
    std::optional<waits::OffCpuTracker> offcpu;
    uint64_t lost = 0;
    uint64_t sched_start = 0, sched_end = 0;  // sum_exec_runtime, ns
    bool sched_ok = false;
  };

  std::unique_ptr<Task> OpenTask(pid_t tid, int pages_log2) {
    auto t = std::make_unique<Task>();
    t->tid = tid;
    std::vector<uint64_t> ids;
    if (plan_.offcpu_unsupported.empty()) ids.push_back(plan_.sched->id);
    if (plan_.locks_unsupported.empty()) {
      ids.push_back(plan_.begin->id);
      ids.push_back(plan_.end->id);
    }
    for (size_t i = 0; i < ids.size(); ++i) {
      // The first event owns the ring and, when off-CPU time is traced,
      // emits the switch records.
      perf_event_attr attr = TraceAttr(ids[i], i == 0 && plan_.offcpu_unsupported.empty());
      if (i == 0) {
        t->ring = std::make_unique<PerfRing>(tid, attr, pages_log2,
                                             "tracepoint " + std::to_string(ids[i]), OpenHint);
        continue;
      }
      long fd = syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        throw SysError("perf_event_open",
                       "tracepoint " + std::to_string(ids[i]) + ", tid " + std::to_string(tid), err,
                       OpenHint(err));
      }
      t->others.emplace_back(static_cast<int>(fd));
      if (ioctl(static_cast<int>(fd), PERF_EVENT_IOC_SET_OUTPUT, t->ring->fd()) < 0) {
        throw SysError("ioctl", "PERF_EVENT_IOC_SET_OUTPUT, tid " + std::to_string(tid), errno, "");
      }
    }
    return t;
  }

  void DrainAll() {
    if (!measuring_) return;
    for (auto& t : tasks_) {
      Task& task = *t;
      task.ring->Drain([&](const perf_event_header& hdr, const char* p, const char* end) {
        OnRecord(task, hdr, p, end);
      });
    }
  }

  bool InWindow(uint64_t t) const { return t >= t_start_ && (t_end_ == 0 || t <= t_end_); }

  void OnRecord(Task& task, const perf_event_header& hdr, const char* p, const char* end) {
    if (hdr.type == PERF_RECORD_LOST && end - p >= 16) {
      task.lost += Load<uint64_t>(p + 8);
      return;
    }
    if (hdr.type == PERF_RECORD_SWITCH && end - p >= 16) {
      uint64_t t = Load<uint64_t>(p + 8);  // sample_id: pid, tid, time
      if (!InWindow(t)) return;
      if (hdr.misc & PERF_RECORD_MISC_SWITCH_OUT) {
        task.offcpu->Out(t, hdr.misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT);
      } else {
        task.offcpu->In(t);
      }
      return;
    }
    if (hdr.type != PERF_RECORD_SAMPLE || end - p < 24) return;
    uint64_t t = Load<uint64_t>(p + 8);
    uint64_t nr = Load<uint64_t>(p + 16);
    const char* ips = p + 24;
    nr = std::min<uint64_t>(nr, static_cast<uint64_t>(end - ips) / 8);
    const char* raw = ips + nr * 8;
    if (end - raw < 4) return;
    uint32_t raw_size = Load<uint32_t>(raw);
    raw += 4;
    if (raw_size < 8 || end - raw < static_cast<long>(raw_size)) return;
    if (!InWindow(t)) return;
    uint16_t type = Load<uint16_t>(raw);
    auto field = [&](const waits::Field& f) -> uint64_t {
      if (f.offset + f.size > raw_size) return 0;
      return f.size == 8 ? Load<uint64_t>(raw + f.offset) : Load<uint32_t>(raw + f.offset);
    };
    // Copy the chain: ips is not 8-byte aligned in the record copy.
    chain_.assign(nr, 0);
    if (nr) memcpy(chain_.data(), ips, nr * 8);
    std::span<const uint64_t> chain(chain_);
    if (plan_.sched && type == plan_.sched->id) {
      if (waits::SwitchedOutRunnable(static_cast<int64_t>(field(plan_.prev_state)))) {
        task.offcpu->Switch(t, waits::kPreempted);
      } else {
        std::vector<std::string_view> frames = attribution::KernelFrames(symbols_, chain);
        std::string b = attribution::ClassifyFrames(buckets_, frames);
        task.offcpu->Switch(t, b == attribution::kOtherKernelBucket ? kOtherSleep : b);
      }
    } else if (plan_.begin && type == plan_.begin->id) {
      std::vector<std::string_view> frames = attribution::KernelFrames(symbols_, chain);
      std::string b = attribution::ClassifyFrames(buckets_, frames);
      std::string site = std::string(waits::LockCaller(frames)) + " " +
                         waits::LockType(static_cast<uint32_t>(field(plan_.lock_flags)));
      task.pairer.Begin(t, field(plan_.lock_addr),
                        b == attribution::kOtherKernelBucket ? kOtherLock : b, std::move(site));
    } else if (plan_.end && type == plan_.end->id) {
      task.pairer.End(t, field(plan_.end_lock_addr));
    }
  }

  // Worker roles from the entry's "workers" (runner); "worker" otherwise.
  std::vector<std::string> Roles(const nlohmann::json& entry) const {
    std::vector<std::string> roles(tasks_.size(), "worker");
    if (entry.contains("workers") && entry["workers"].is_array() &&
        entry["workers"].size() == tasks_.size()) {
      for (size_t i = 0; i < tasks_.size(); ++i) {
        const auto& r = entry["workers"][i]["role"];
        if (r.is_string() && !r.get<std::string>().empty()) roles[i] = r.get<std::string>();
      }
    }
    return roles;
  }

  std::vector<std::string> LockBuckets() const {
    std::vector<std::string> names;
    for (const auto& b : buckets_.buckets()) {
      if (b.mount_machinery) names.push_back(b.name);
    }
    names.push_back(kOtherLock);
    return names;
  }

  nlohmann::json LocksJson(const std::vector<std::string>& roles) {
    if (!plan_.locks_unsupported.empty()) return {{"unsupported", plan_.locks_unsupported}};
    std::map<std::string, std::map<std::string, LockStats>> by_role;
    std::map<std::string, LockStats> all;
    uint64_t unmatched = 0, dropped = 0, merged = 0, open = 0, open_ns = 0;
    for (const std::string& r : roles) by_role[r];  // every traced role, waits or not
    for (size_t i = 0; i < tasks_.size(); ++i) {
      const auto& pr = tasks_[i]->pairer;
      for (const auto& wt : pr.waits()) {
        all[wt.bucket].Add(wt);
        by_role[roles[i]][wt.bucket].Add(wt);
      }
      unmatched += pr.unmatched_ends();
      dropped += pr.dropped_begins();
      merged += pr.merged_begins();
      open += pr.open_at_end();
      open_ns += pr.open_ns();
    }
    auto table = [&](std::map<std::string, LockStats>& m) {
      nlohmann::json j = nlohmann::json::object();
      for (const std::string& b : LockBuckets()) j[b] = m[b].ToJson();
      for (auto& [b, s] : m) {
        if (!j.contains(b)) j[b] = s.ToJson();
      }
      return j;
    };
    nlohmann::json j;
    j["buckets"] = table(all);
    j["roles"] = nlohmann::json::object();
    for (auto& [role, m] : by_role) j["roles"][role] = table(m);
    j["unmatched_ends"] = unmatched;
    j["dropped_begins"] = dropped;
    j["merged_begins"] = merged;
    j["open_at_end"] = open;
    j["open_at_end_s"] = open_ns * 1e-9;
    j["events"] = "lock:contention_begin, lock:contention_end";
    j["naming"] =
        "bucket of the deepest frame of the chain at contention_begin matching the bucket file; "
        "site = first non-lock caller and perf lock's lock type";
    j["edges"] =
        "waits open at the window's end (open_at_end) and ends whose begin preceded the window "
        "(unmatched_ends) are not in the counts";
    return j;
  }

  nlohmann::json OffCpuJson(const std::vector<std::string>& roles) {
    if (!plan_.offcpu_unsupported.empty()) return {{"unsupported", plan_.offcpu_unsupported}};
    nlohmann::json j;
    std::map<std::string, std::map<std::string, uint64_t>> by_role;
    std::map<std::string, uint64_t> switches;
    for (size_t i = 0; i < tasks_.size(); ++i) {
      for (const auto& [label, ns] : tasks_[i]->offcpu->off_ns()) by_role[roles[i]][label] += ns;
      switches[roles[i]] += tasks_[i]->offcpu->switches();
    }
    j["roles"] = nlohmann::json::object();
    for (auto& [role, m] : by_role) {
      nlohmann::json r = nlohmann::json::object();
      for (auto& [label, ns] : m) r[label] = ns * 1e-9;
      j["roles"][role] = {{"seconds", r}, {"switches_out", switches[role]}};
    }
    j["events"] = "sched:sched_switch, PERF_RECORD_SWITCH";
    j["labels"] =
        "preempted: switched out runnable (prev_state 0): a busy or shared CPU, noise, not "
        "kernel behaviour; unknown: off CPU since before the window or its switch sample lost; "
        "other_sleep: blocked outside the buckets; else the bucket of the blocked stack";
    return j;
  }

  WaitTimes Times() const {
    WaitTimes w;
    w.wall_s = (t_end_ - t_start_) * 1e-9;
    w.offcpu_unsupported = plan_.offcpu_unsupported;
    w.is_mount_bucket = [this](const std::string& b) { return buckets_.IsMountBucket(b); };
    for (const auto& task : tasks_) {
      TracedTask tt;
      tt.tid = task->tid;
      if (task->sched_ok) tt.sched_on_cpu_s = (task->sched_end - task->sched_start) * 1e-9;
      tt.traced_on_cpu_s = task->offcpu->on_cpu_ns() * 1e-9;
      for (const auto& [label, ns] : task->offcpu->off_ns()) tt.off_cpu_s[label] = ns * 1e-9;
      tt.switches_out = task->offcpu->switches();
      w.tasks.push_back(std::move(tt));
    }
    return w;
  }

  Plan plan_;
  std::string buckets_path_;
  BucketSet buckets_;
  KernelSymbols symbols_;
  std::vector<std::unique_ptr<Task>> tasks_;
  std::vector<uint64_t> chain_;
  std::string error_;
  bool measuring_ = false;
  uint64_t t_start_ = 0, t_end_ = 0;
  WaitTimes times_;
  bool have_times_ = false;
};

}  // namespace

std::unique_ptr<RunObserver> MakeWaitTracer(const WaitConfig& config) {
  Plan plan = Probe();  // first: its reasons (rootless, no tracefs) are the root causes
  std::string path = attribution::LocateBucketsFile(config.buckets_file);
  BucketSet buckets = BucketSet::Load(path);
  KernelSymbols symbols = KernelSymbols::Load();
  return std::make_unique<WaitTracer>(std::move(plan), std::move(path), std::move(buckets),
                                      std::move(symbols));
}

}  // namespace mntscale
