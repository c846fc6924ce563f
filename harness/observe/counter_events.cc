#include "counter_events.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#ifdef HAVE_LIBPFM
#include <perfmon/pfmlib_perf_event.h>
#endif

#include "mntscale/observe/counters.h"

namespace mntscale {
namespace counters {
namespace {

#ifdef HAVE_LIBPFM
// pfm_initialize once per process; its result is the library's state.
int PfmInit() {
  static const int rc = pfm_initialize();
  return rc;
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

#endif  // HAVE_LIBPFM

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

}  // namespace

#ifdef HAVE_LIBPFM

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


}  // namespace counters

using counters::CrossSocketEvents;
using counters::Encode;
using counters::Encoding;
using counters::kSoftwareEvents;
using counters::OpenCounter;
using counters::Plm;
using counters::PmuSummary;

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

}  // namespace mntscale
