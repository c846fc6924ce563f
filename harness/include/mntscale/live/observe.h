// `mntscale observe`: mount pressure on a live host, read the way production
// monitoring reads it (issue 25). Read-only: it opens namespace files and
// reads mount tables; it never mounts, unmounts or enters a namespace for
// longer than one read, and it holds no namespace open between intervals (a
// container that exits must not be kept alive by its observer).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mntscale {

// How mount tables are read. listmount/statmount (6.8+, another namespace's
// table by id from 6.11) read numbers; mountinfo is text, one process's view.
enum class CensusSource { kAuto, kListmount, kMountinfo };
CensusSource ParseCensusSource(const std::string& s);  // throws UsageError
const char* CensusSourceName(CensusSource s);

// One mount namespace, found through a process (/proc/PID/ns/mnt) or an open
// file descriptor on it (/proc/PID/fd/N -> mnt:[inode]).
struct NamespaceCount {
  uint64_t inode = 0;     // the nsfs inode: what `lsns` and /proc show
  uint64_t ns_id = 0;     // the kernel's 64-bit namespace id; 0 when unknown
  int pid = -1;           // one process in it, or the holder of the fd
  std::string comm;       // that process's command
  bool held_by_fd = false;  // no process runs in it; an fd keeps it alive
  std::string path;         // /proc/PID/ns/mnt or /proc/PID/fd/N, to open it
  long mounts = 0;
  long overlay = 0;         // overlayfs mounts
  long overlay_layers = 0;  // their lower layers, summed
  long idmapped = 0;        // mounts with an idmapping (MOUNT_ATTR_IDMAP)
  // listmount: mounts listed whose statmount failed other than by ENOENT:
  // counted in mounts, their shape (overlay, layers, idmap) unknown.
  long unreadable_mounts = 0;
  std::string error;        // non-empty: not read, and why
};

struct Census {
  CensusSource source = CensusSource::kAuto;  // the source actually used
  std::string source_why;                      // why that one
  uint64_t host_inode = 0;   // the initial namespace: PID 1's, else kthreadd's
  std::string host_from;     // "pid 1" or "pid 2 (kthreadd)"
  // Processes whose namespace could not be read ("pid 1 (init): EACCES"),
  // the first 20, and how many there were.
  std::vector<std::string> unreadable_processes;
  long unreadable_process_count = 0;
  std::vector<NamespaceCount> namespaces;      // sorted by mounts, largest first
  double read_s = 0;                           // wall time the census took
  // Mount ids per namespace inode (listmount: unique 64-bit ids, never
  // reused; mountinfo: the old 32-bit ids, which are), for interval diffs.
  std::map<uint64_t, std::vector<uint64_t>> ids;
};

// Reads every namespace's mounts. Keeps each mount's shape by id between
// calls, so that once warm it statmounts only mounts it has not seen.
class CensusReader {
 public:
  // Throws UsageError when the process cannot read other namespaces (no
  // CAP_SYS_ADMIN and CAP_SYS_PTRACE), or when the source is unavailable.
  explicit CensusReader(CensusSource source, bool scan_fds = true);
  ~CensusReader();
  Census Read();
  CensusSource source() const { return source_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  CensusSource source_;
};

// Counts mount attach and detach events with fanotify (FAN_MARK_MNTNS,
// 6.15+) on every namespace it is given, from a thread of its own.
class MountEventCounter {
 public:
  // Empty when the kernel has mount events; otherwise why not.
  static std::string Unavailable();
  MountEventCounter();  // throws Unsupported when Unavailable() is not empty
  ~MountEventCounter();
  // Marks the namespaces not yet marked (by inode); returns how many failed.
  int Watch(const std::vector<NamespaceCount>& namespaces);
  struct Counts {
    long attach = 0, detach = 0, overflows = 0;
    int watched = 0;  // namespaces marked so far (some may have died since)
  };
  Counts Take();  // counts since the last Take

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// observe's reading cycle on a thread of its own, for measuring what observe
// costs the host (the observe_cost scenario): an ObserveCycle stepped every
// interval_s, exactly as `mntscale observe --interval` steps it (census,
// marks and drain, or the census diff, and /proc/stat); the destructor stops
// it and closes the fanotify group, which removes its marks.
class ObserveLoop {
 public:
  ObserveLoop(CensusReader* reader, bool events, double interval_s);
  ~ObserveLoop();
  ObserveLoop(const ObserveLoop&) = delete;
  ObserveLoop& operator=(const ObserveLoop&) = delete;
  int censuses() const;  // taken by the thread (the constructor's not counted)
  double cpu_s() const;  // the thread's CPU time so far
  long events() const;   // mounts attached and detached, as the cycle counted them

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// /proc/stat's aggregate line, in ticks.
struct CpuTimes {
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
           steal = 0;
  uint64_t Total() const { return user + nice + system + idle + iowait + irq + softirq + steal; }
};
CpuTimes ReadCpuTimes();
CpuTimes ParseCpuTimes(const std::string& proc_stat);  // pure

// Lower layers of an overlay from its options: "lowerdir=a:b::c" is 3
// (data-only layers after "::" count), "\:" is an escaped colon. Pure.
int OverlayLayers(const std::string& options);

// A capacity result (`mntscale capacity --out FILE`), as observe relates the
// host to it.
struct CapacityRef {
  std::string file, profile, idmap, kernel, machine, cpu;
  int mounts_per_container = 0;
  long n_star = 0, n_lo = 0, n_hi = 0;
  bool n_hi_open = false, found = false;  // found: the search found an N*
  std::string why_none;                  // when not found
};
CapacityRef LoadCapacityRef(const std::string& file);  // throws UsageError

// One interval's reading.
struct ObserveSample {
  double t = 0;           // seconds since the Unix epoch, at the end
  double interval_s = 0;  // 0 for the first, one-shot census
  Census census;
  std::string ops_source;  // "fanotify", "diff" or "" (first census)
  std::string ops_note;    // what the source misses
  double attach_per_s = 0, detach_per_s = 0;
  long attach = 0, detach = 0, overflows = 0;
  // CPU shares of all CPUs over the interval; absent (<0) on the first.
  double user_share = -1, system_share = -1, steal_share = -1, idle_share = -1;
  int cpus = 0;
  std::string kernel, machine, cpu_model;
};

// Mounts attached and detached between censuses a and b, by mount id; a
// namespace that appeared counts all its mounts as attached, one that went
// as detached. Pure.
void CensusDiff(const Census& a, const Census& b, long* attach, long* detach);

// One observe interval after another: the census, the mounts attached and
// detached since the last step (fanotify mount events, or the census diff),
// and the CPU shares from /proc/stat. `mntscale observe` and ObserveLoop
// both step it, so what observe_cost measures is what the command does.
class ObserveCycle {
 public:
  // Takes the first census (the cold start: untimed, not a sample) and, with
  // an event counter, marks every namespace in it. Without one, attach and
  // detach come from census diffs; diff_why says why not fanotify ("" when
  // the diff was asked for). base: the machine fields every sample carries.
  ObserveCycle(CensusReader* reader, std::unique_ptr<MountEventCounter> events,
               std::string diff_why = "", ObserveSample base = {});
  ~ObserveCycle();
  ObserveCycle(const ObserveCycle&) = delete;
  ObserveCycle& operator=(const ObserveCycle&) = delete;
  // The interval since the last step (or the constructor); the sample stays
  // valid until the next step.
  const ObserveSample& Step();

 private:
  CensusReader* reader_;
  std::unique_ptr<MountEventCounter> events_;
  std::string diff_why_;
  ObserveSample base_, sample_;  // sample_.census: the previous census
  CpuTimes cpu0_;
  double last_;
};

// Derived figures, pure.
struct ObserveSummary {
  long namespaces = 0, containers = 0;  // containers: namespaces but the host's
  long mounts_total = 0, host_mounts = 0;
  double mounts_p50 = 0, mounts_p99 = 0, mounts_max = 0;  // over containers
  long overlay = 0, overlay_layers = 0, idmapped = 0, unreadable = 0;
  long unreadable_mounts = 0;  // listed, shape unknown (statmount failed)
};
ObserveSummary Summarize(const Census& c);

// "412 containers of about 30 mounts; capacity (k8s-containerd, per-layer,
// 6.18...) N* 1,800 [1,650–1,900]: 25%", or why no result matches. Pure.
struct CapacityRelation {
  bool matched = false;
  std::string line;
  double utilisation = -1;  // containers / conservative N*
  const CapacityRef* ref = nullptr;
};
CapacityRelation RelateToCapacity(const ObserveSummary& s, const ObserveSample& sample,
                                  const std::vector<CapacityRef>& refs);

nlohmann::json ObserveJson(const ObserveSample& s, const std::vector<CapacityRef>& refs);
// OpenMetrics text for node_exporter's textfile collector (Prometheus text
// exposition format 0.0.4, which the collector reads).
std::string ObserveOpenMetrics(const ObserveSample& s, const std::vector<CapacityRef>& refs);
std::string ObserveText(const ObserveSample& s, const std::vector<CapacityRef>& refs, int top);

}  // namespace mntscale
