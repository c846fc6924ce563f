// Counters: event names -> perf_event_attr through libpfm4, opened per worker
// thread, split into user and kernel, read outside the hot loop at each
// window boundary and scaled for multiplexing. Without libpfm4 only the
// software events are known; everything else is "unsupported".
#include "mntscale/observe/counters.h"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <sstream>

#include "counters_internal.h"
#include "mntscale/sys/sys.h"

#ifdef HAVE_LIBPFM
#include <perfmon/pfmlib_perf_event.h>
#endif

namespace mntscale {
namespace counters {

std::optional<Scaled> ScaleCount(const Reading& d) {
  if (d.running == d.enabled) {
    return Scaled{static_cast<double>(d.value), 1.0};
  }
  if (d.running == 0) return std::nullopt;  // enabled, never on a counter
  double ratio = static_cast<double>(d.running) / static_cast<double>(d.enabled);
  return Scaled{static_cast<double>(d.value) / ratio, ratio};
}

void ScaledSum::Add(const Reading& d) {
  std::optional<Scaled> s = ScaleCount(d);
  if (!s)
    unknown_ = true;
  else
    value_ += s->value;
  enabled_ += d.enabled;
  running_ += d.running;
}

std::optional<double> ScaledSum::value() const {
  if (unknown_) return std::nullopt;
  return value_;
}

double ScaledSum::scaling() const {
  if (enabled_ == 0) return 1.0;
  return static_cast<double>(running_) / static_cast<double>(enabled_);
}

Reading Delta(const Reading& a, const Reading& b) {
  return {b.value - a.value, b.enabled - a.enabled, b.running - a.running};
}

}  // namespace counters

namespace {

using counters::Reading;
using counters::ScaledSum;

enum class Plm { kBoth, kUser, kKernel };

// An encoded event, or why it cannot be encoded.
struct Encoding {
  perf_event_attr attr;
  std::string error;
  bool unknown = false;  // no encoder knows the name (a typo), not "cannot count here"
};

const char* const kSoftwareEvents[] = {"context-switches", "cpu-migrations", "page-faults",
                                       "task-clock"};

#ifdef HAVE_LIBPFM

// pfm_initialize once per process; its result is the library's state.
int PfmInit() {
  static const int rc = pfm_initialize();
  return rc;
}

Encoding Encode(const std::string& name, Plm plm) {
  Encoding e;
  memset(&e.attr, 0, sizeof(e.attr));
  if (int rc = PfmInit(); rc != PFM_SUCCESS) {
    e.error = std::string("libpfm4: pfm_initialize: ") + pfm_strerror(rc);
    return e;
  }
  pfm_perf_encode_arg_t arg;
  memset(&arg, 0, sizeof(arg));
  arg.attr = &e.attr;
  arg.size = sizeof(arg);
  int levels = plm == Plm::kUser ? PFM_PLM3 : plm == Plm::kKernel ? PFM_PLM0 : PFM_PLM0 | PFM_PLM3;
  int rc = pfm_get_os_event_encoding(name.c_str(), levels, PFM_OS_PERF_EVENT_EXT, &arg);
  if (rc != PFM_SUCCESS) {
    e.error = "libpfm4: " + name + ": " + pfm_strerror(rc);
    e.unknown = rc == PFM_ERR_NOTFOUND || rc == PFM_ERR_ATTR || rc == PFM_ERR_ATTR_VAL ||
                rc == PFM_ERR_ATTR_SET || rc == PFM_ERR_FEATCOMB;
  }
  e.attr.size = sizeof(e.attr);
  return e;
}

// Cross-socket cache-line traffic per core PMU, as libpfm4 names the PMU.
// Checked against libpfm4 4.13's tables (LIBPFM_FORCE_PMU=<pmu>).
struct CrossSocketRow {
  const char* pmu;
  std::vector<const char*> events;
};
const std::vector<CrossSocketRow>& CrossSocketTable() {
  static const std::vector<CrossSocketRow> kTable = {
      // Loads that missed L3 and hit a modified line in the other socket.
      {"hsw_ep",
       {"MEM_LOAD_UOPS_L3_MISS_RETIRED:REMOTE_HITM", "MEM_LOAD_UOPS_L3_MISS_RETIRED:REMOTE_FWD"}},
      {"bdw_ep",
       {"MEM_LOAD_UOPS_L3_MISS_RETIRED:REMOTE_HITM", "MEM_LOAD_UOPS_L3_MISS_RETIRED:REMOTE_FWD"}},
      {"skx", {"MEM_LOAD_L3_MISS_RETIRED:REMOTE_HITM", "MEM_LOAD_L3_MISS_RETIRED:REMOTE_FWD"}},
      {"clx", {"MEM_LOAD_L3_MISS_RETIRED:REMOTE_HITM", "MEM_LOAD_L3_MISS_RETIRED:REMOTE_FWD"}},
      {"icx", {"MEM_LOAD_L3_MISS_RETIRED:REMOTE_HITM", "MEM_LOAD_L3_MISS_RETIRED:REMOTE_FWD"}},
      {"spr", {"MEM_LOAD_L3_MISS_RETIRED:REMOTE_HITM", "MEM_LOAD_L3_MISS_RETIRED:REMOTE_FWD"}},
      // Data-cache fills served by a cache or DRAM in the other socket.
      {"amd64_fam17h_zen2",
       {"DATA_CACHE_REFILLS_FROM_SYSTEM:LS_MABRESP_RMT_CACHE",
        "DATA_CACHE_REFILLS_FROM_SYSTEM:LS_MABRESP_RMT_DRAM"}},
      {"amd64_fam19h_zen3",
       {"ANY_DATA_CACHE_FILLS_FROM_SYSTEM:EXT_CACHE_RMT",
        "ANY_DATA_CACHE_FILLS_FROM_SYSTEM:MEM_IO_RMT"}},
      {"amd64_fam19h_zen4",
       {"ANY_DATA_CACHE_FILLS_FROM_SYSTEM:FAR_CACHE_NEAR_FAR",
        "ANY_DATA_CACHE_FILLS_FROM_SYSTEM:DRAM_IO_FAR"}},
  };
  return kTable;
}

struct PmuInfo {
  std::string name, desc;
  int type;
  int nevents;
};

std::vector<PmuInfo> ActivePmus() {
  std::vector<PmuInfo> out;
  if (PfmInit() != PFM_SUCCESS) return out;
  for (int i = PFM_PMU_NONE; i < PFM_PMU_MAX; ++i) {
    pfm_pmu_info_t info;
    memset(&info, 0, sizeof(info));
    info.size = sizeof(info);
    if (pfm_get_pmu_info(static_cast<pfm_pmu_t>(i), &info) != PFM_SUCCESS) {
      continue;
    }
    if (!info.is_present) continue;
    out.push_back({info.name, info.desc ? info.desc : "", info.type, info.nevents});
  }
  return out;
}

std::vector<std::string> CrossSocketEvents() {
  std::vector<std::string> out;
  for (const PmuInfo& p : ActivePmus()) {
    if (p.type != PFM_PMU_TYPE_CORE) continue;
    for (const CrossSocketRow& row : CrossSocketTable()) {
      if (p.name != row.pmu) continue;
      for (const char* ev : row.events) out.push_back(p.name + "::" + ev);
    }
  }
  return out;
}

std::string PmuSummary() {
  std::ostringstream os;
  if (int rc = PfmInit(); rc != PFM_SUCCESS) {
    os << "libpfm4: pfm_initialize: " << pfm_strerror(rc) << "\n";
    return os.str();
  }
  for (const PmuInfo& p : ActivePmus()) {
    bool known = false;
    for (const CrossSocketRow& row : CrossSocketTable()) known |= p.name == row.pmu;
    os << "pmu " << p.name << " (" << p.desc << "): " << p.nevents << " events in libpfm4";
    if (p.type == PFM_PMU_TYPE_CORE && !known) {
      os << "; no cross-socket events known for this PMU";
    }
    os << "\n";
  }
  return os.str();
}

#else  // !HAVE_LIBPFM

// Without libpfm4 only perf's software events can be named.
Encoding Encode(const std::string& name, Plm plm) {
  struct Row {
    const char* name;
    const char* perf_name;
    uint64_t config;
  };
  static const Row kRows[] = {
      {"task-clock", "PERF_COUNT_SW_TASK_CLOCK", PERF_COUNT_SW_TASK_CLOCK},
      {"cpu-clock", "PERF_COUNT_SW_CPU_CLOCK", PERF_COUNT_SW_CPU_CLOCK},
      {"context-switches", "PERF_COUNT_SW_CONTEXT_SWITCHES", PERF_COUNT_SW_CONTEXT_SWITCHES},
      {"cpu-migrations", "PERF_COUNT_SW_CPU_MIGRATIONS", PERF_COUNT_SW_CPU_MIGRATIONS},
      {"page-faults", "PERF_COUNT_SW_PAGE_FAULTS", PERF_COUNT_SW_PAGE_FAULTS},
  };
  Encoding e;
  memset(&e.attr, 0, sizeof(e.attr));
  e.attr.size = sizeof(e.attr);
  for (const Row& r : kRows) {
    if (name == r.name || name == r.perf_name) {
      e.attr.type = PERF_TYPE_SOFTWARE;
      e.attr.config = r.config;
      e.attr.exclude_user = plm == Plm::kKernel;
      e.attr.exclude_kernel = plm == Plm::kUser;
      return e;
    }
  }
  e.error = "built without libpfm4";
  return e;
}

std::vector<std::string> CrossSocketEvents() { return {}; }
std::string PmuSummary() { return "pmu detection: unsupported: built without libpfm4\n"; }

#endif  // HAVE_LIBPFM

// Why a user/kernel split would be fake for this event, or "" if it is real.
// Measured on 6.18: task-clock and cpu-clock count the same time whatever
// exclude_user/exclude_kernel say; context switches and migrations are
// recorded from scheduler context, so their :u half is always 0.
std::string SplitCaveat(const perf_event_attr& a) {
  if (a.type != PERF_TYPE_SOFTWARE) return "";
  switch (a.config) {
    case PERF_COUNT_SW_TASK_CLOCK:
    case PERF_COUNT_SW_CPU_CLOCK:
      return "not available: the kernel counts cpu/task-clock time regardless "
             "of exclude_user/exclude_kernel; see rusage for user/sys time";
    case PERF_COUNT_SW_CONTEXT_SWITCHES:
    case PERF_COUNT_SW_CPU_MIGRATIONS:
    case PERF_COUNT_SW_CGROUP_SWITCHES:
      return "not meaningful: recorded from scheduler context, always kernel";
    default:
      return "";
  }
}

std::string OpenHint(const perf_event_attr& a, int err) {
  bool hw = a.type == PERF_TYPE_HARDWARE || a.type == PERF_TYPE_HW_CACHE ||
            a.type == PERF_TYPE_RAW || a.type >= PERF_TYPE_MAX;
  if (hw && (err == ENOENT || err == EOPNOTSUPP || err == ENODEV)) {
    return "no hardware PMU visible to this kernel (common in VMs)";
  }
  if (err == EACCES || err == EPERM) {
    return "needs root (CAP_PERFMON) or a lower kernel.perf_event_paranoid";
  }
  if (err == EINVAL) return "the kernel rejected this encoding";
  return "";
}

// Opens one counter on `tid`; returns the fd or throws SysError.
Fd OpenCounter(const std::string& name, perf_event_attr attr, pid_t tid) {
  attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
  attr.disabled = 0;
  attr.inherit = 0;
  long fd = syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    throw SysError("perf_event_open", name + (tid ? ", tid " + std::to_string(tid) : ""), err,
                   OpenHint(attr, err));
  }
  return Fd(static_cast<int>(fd));
}

// User and system CPU time of one thread in clock ticks, from
// /proc/<tid>/task/<tid>/stat (utime, stime: fields 14 and 15, clock ticks).
// Works for threads and for worker processes alike.
std::optional<std::pair<uint64_t, uint64_t>> ThreadCpuTime(pid_t tid) {
  std::string s;
  std::string path = "/proc/" + std::to_string(tid) + "/task/" + std::to_string(tid) + "/stat";
  if (!TryReadFile(path, &s)) return std::nullopt;
  size_t paren = s.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream is(s.substr(paren + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && (is >> field); ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  if (!is) return std::nullopt;
  return std::make_pair(utime, stime);
}

class CounterObserver : public RunObserver {
 public:
  explicit CounterObserver(const CounterConfig& config) : config_(config) {
    if (config_.events.empty()) config_.events = DefaultEvents();
  }

  void OnWorkersReady(const std::vector<pid_t>& tids) override {
    tids_ = tids;
    events_.clear();
    cputime_.assign(tids.size(), {});
    for (const std::string& name : config_.events) events_.push_back(Open(name));
  }

  void OnMeasureStart() override {
    snapshots_ = 0;
    windows_ = 0;
    for (Event& e : events_) {
      for (Counter& c : e.counters) c.snaps.clear();
    }
    for (auto& t : cputime_) t.clear();
    Snapshot();
  }

  void OnWindowEnd(int) override {
    if (snapshots_ == 0) return;  // no OnMeasureStart
    Snapshot();
    windows_ = snapshots_ - 1;
  }

  void OnMeasureEnd() override {
    if (snapshots_ == 0) return;
    Snapshot();
  }

  void Report(nlohmann::json* entry) override {
    nlohmann::json& out = (*entry)["counters"];
    out = nlohmann::json::object();
    for (const Event& e : events_) out[e.name] = ReportEvent(e);
    out["rusage"] = ReportCpuTime();
  }

 private:
  struct Counter {
    Fd fd;
    Plm plm;
    std::vector<std::optional<Reading>> snaps;  // nullopt: read failed
  };
  struct Event {
    std::string name;
    std::string unsupported;
    std::string split_note;  // why there is no user/kernel split
    std::vector<Counter> counters;
  };

  Event Open(const std::string& name) {
    Event e;
    e.name = name;
    Encoding both = Encode(name, Plm::kBoth);
    if (!both.error.empty()) {
      e.unsupported = both.error;
      return e;
    }
    std::vector<std::pair<Plm, perf_event_attr>> halves;
    if (config_.split_user_kernel) {
      e.split_note = SplitCaveat(both.attr);
      if (e.split_note.empty()) {
        Encoding u = Encode(name, Plm::kUser), k = Encode(name, Plm::kKernel);
        // A name with its own :u/:k modifier overrides the requested levels.
        if (!u.error.empty() || !k.error.empty() || !u.attr.exclude_kernel || u.attr.exclude_user ||
            !k.attr.exclude_user || k.attr.exclude_kernel) {
          e.split_note = "not applied: the event name sets its own privilege levels";
        } else {
          halves = {{Plm::kUser, u.attr}, {Plm::kKernel, k.attr}};
        }
      }
    } else {
      e.split_note = "not requested";
    }
    if (halves.empty()) halves = {{Plm::kBoth, both.attr}};
    try {
      for (pid_t tid : tids_) {
        for (const auto& [plm, attr] : halves) {
          e.counters.push_back({OpenCounter(name, attr, tid), plm, {}});
        }
      }
    } catch (const SysError& err) {
      e.counters.clear();  // all workers or none
      e.unsupported = err.what();
    }
    return e;
  }

  void Snapshot() {
    for (Event& e : events_) {
      for (Counter& c : e.counters) {
        uint64_t buf[3];
        if (read(c.fd.get(), buf, sizeof(buf)) == sizeof(buf)) {
          c.snaps.push_back(Reading{buf[0], buf[1], buf[2]});
        } else {
          c.snaps.push_back(std::nullopt);
        }
      }
    }
    for (size_t i = 0; i < tids_.size(); ++i) {
      cputime_[i].push_back(ThreadCpuTime(tids_[i]));
    }
    ++snapshots_;
  }

  // Sums the counters of one privilege half between snapshots a and b.
  // nullopt when any reading is missing or any counter never ran.
  struct Sum {
    std::optional<double> value;
    double scaling = 1.0;
  };
  static Sum SumBetween(const Event& e, Plm plm, size_t a, size_t b, bool any_plm) {
    ScaledSum sum;
    bool missing = false;
    for (const Counter& c : e.counters) {
      if (!any_plm && c.plm != plm) continue;
      if (b >= c.snaps.size() || !c.snaps[a] || !c.snaps[b]) {
        missing = true;
        continue;
      }
      sum.Add(counters::Delta(*c.snaps[a], *c.snaps[b]));
    }
    if (missing) return {std::nullopt, sum.scaling()};
    return {sum.value(), sum.scaling()};
  }

  static nlohmann::json Number(const std::optional<double>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  }

  nlohmann::json ReportEvent(const Event& e) const {
    if (!e.unsupported.empty()) return {{"unsupported", e.unsupported}};
    if (snapshots_ < 2) {
      return {{"unsupported", "not measured: no OnMeasureStart/OnMeasureEnd"}};
    }
    size_t last = snapshots_ - 1;
    Sum total = SumBetween(e, Plm::kBoth, 0, last, true);
    if (!total.value) {
      return {{"unsupported",
               "not counted: a read failed or the event never got a hardware "
               "counter (time_running = 0)"},
              {"scaling", total.scaling}};
    }
    nlohmann::json j = {{"value", *total.value}, {"scaling", total.scaling}};
    if (e.split_note.empty()) {
      j["user"] = Number(SumBetween(e, Plm::kUser, 0, last, false).value);
      j["kernel"] = Number(SumBetween(e, Plm::kKernel, 0, last, false).value);
    } else {
      j["split"] = e.split_note;
    }
    nlohmann::json windows = nlohmann::json::array();
    for (size_t w = 0; w < windows_; ++w) {
      windows.push_back(Number(SumBetween(e, Plm::kBoth, w, w + 1, true).value));
    }
    j["windows"] = windows;
    return j;
  }

  nlohmann::json ReportCpuTime() const {
    if (snapshots_ < 2) return {{"unsupported", "not measured"}};
    const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    auto between = [&](size_t a, size_t b) -> std::optional<std::pair<double, double>> {
      uint64_t u = 0, s = 0;
      for (const auto& t : cputime_) {
        if (b >= t.size() || !t[a] || !t[b]) return std::nullopt;
        u += t[b]->first - t[a]->first;
        s += t[b]->second - t[a]->second;
      }
      return std::make_pair(u / hz, s / hz);
    };
    auto total = between(0, snapshots_ - 1);
    if (!total) {
      return {{"unsupported", "a worker's /proc/<tid>/task/<tid>/stat could not be read"}};
    }
    nlohmann::json windows = nlohmann::json::array();
    for (size_t w = 0; w < windows_; ++w) {
      auto v = between(w, w + 1);
      windows.push_back(v ? nlohmann::json{{"user", v->first}, {"kernel", v->second}}
                          : nlohmann::json(nullptr));
    }
    return {{"value", total->first + total->second},
            {"user", total->first},
            {"kernel", total->second},
            {"unit", "s"},
            {"source", "/proc/<tid>/task/<tid>/stat utime/stime (clock ticks)"},
            {"windows", windows}};
  }

  CounterConfig config_;
  std::vector<pid_t> tids_;
  std::vector<Event> events_;
  std::vector<std::vector<std::optional<std::pair<uint64_t, uint64_t>>>> cputime_;
  size_t snapshots_ = 0, windows_ = 0;
};

}  // namespace

std::vector<std::string> DefaultEvents() {
  // cycles, instructions and cache-misses are perf's generic hardware events:
  // the kernel maps them per vendor (cache-misses is LLC misses on Intel).
  std::vector<std::string> events = {"cycles", "instructions", "cache-misses"};
  for (const std::string& e : CrossSocketEvents()) events.push_back(e);
  for (const char* e : kSoftwareEvents) events.push_back(e);
  return events;
}

std::string ListEvents() {
  std::ostringstream os;
  std::vector<std::string> names = DefaultEvents();
  names.push_back("cpu-clock");
  for (const std::string& name : names) {
    os << name << ": ";
    Encoding e = Encode(name, Plm::kBoth);
    if (!e.error.empty()) {
      os << "unsupported: " << e.error << "\n";
      continue;
    }
    try {
      OpenCounter(name, e.attr, 0);
      os << "supported\n";
    } catch (const SysError& err) {
      os << "unsupported: " << err.what() << "\n";
    }
  }
  os << PmuSummary();
  return os.str();
}

void ValidateEvents(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (name.empty()) throw UsageError("--events has an empty event name");
    Encoding e = Encode(name, Plm::kBoth);
    if (e.unknown) {
      throw UsageError("unknown event '" + name + "' (" + e.error +
                       "); `mntscale run --events list` shows this machine's events");
    }
  }
}

std::unique_ptr<RunObserver> MakeCounterObserver(const CounterConfig& config) {
  return std::make_unique<CounterObserver>(config);
}

}  // namespace mntscale
