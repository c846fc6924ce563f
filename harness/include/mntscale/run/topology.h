// Machine topology (hwloc) and placement plans: which PU each worker runs on.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace mntscale {

struct Pu {
  int os_index;  // the CPU number the kernel uses (sched_setaffinity)
  int core;      // logical index of its core, machine-wide
  int package;   // logical index of its socket
  int numa;      // NUMA node os index (-1 when none is known)
  int smt_rank;  // 0 for the first PU of its core, 1 for its sibling, ...
};

struct TopologySummary {
  std::string source;  // "host", "synthetic:<string>", "xml:<path>"
  std::string name;    // the value Load() resolved ("epyc-9654-2s"), or ""
  int packages = 0, numa_nodes = 0, cores = 0, pus = 0;
  std::string cpu_model;  // from hwloc's CPUModel info, or /proc/cpuinfo
  std::string cpu_vendor;
};

// The most PUs a non-host topology may have. The largest real machines have
// under 2,000 (a 32-socket HPE Superdome Flex: 1,792; a 2-socket EPYC 9965:
// 768); hwloc's cost grows steeply past this (4,096 PUs: 0.3 s, 16,384:
// 7.8 s), so larger inputs are refused before hwloc sees them.
inline constexpr long kMaxTopologyPus = 4096;

// The PUs an hwloc synthetic string describes (the product of its level
// counts), saturated at kMaxTopologyPus + 1; computed without hwloc. Throws
// UsageError when a level has no count.
long SyntheticPuCount(const std::string& desc);

class Topology {
 public:
  // The machine we run on.
  static Topology Host();
  // A description such as "pack:2 numa:4 core:24 pu:2" (hwloc synthetic).
  static Topology Synthetic(const std::string& desc);
  // An hwloc XML export.
  static Topology Xml(const std::string& path);
  // Resolves a --topology argument: "host", a file path (XML, or a text file
  // holding a synthetic string, '#' comments allowed), a name of a file in
  // topologies/ (with or without extension), or a synthetic string.
  // Throws UsageError naming the value when it cannot be loaded.
  static Topology Load(const std::string& spec);

  const std::vector<Pu>& pus() const { return pus_; }
  const TopologySummary& summary() const { return summary_; }
  bool is_host() const { return summary_.source == "host"; }

 private:
  std::vector<Pu> pus_;
  TopologySummary summary_;
  friend class TopologyBuilder;
};

// One worker's place.
struct Slot {
  int worker;
  Pu pu;
};

// A parsed --placement value: "compact", "spread", "socket:N", each optionally
// combined with "smt-off" as "spread,smt-off" (or "smt-off" alone == compact
// with one PU per core).
struct PlacementSpec {
  enum Kind { kCompact, kSpread, kSocket } kind = kSpread;
  int socket = -1;
  bool smt_off = false;
  bool allow_sharing = false;  // ",share": more workers than PUs wrap round
  std::string ToString() const;
  static PlacementSpec Parse(const std::string& s);  // throws UsageError
};

// Maps workers 0..n-1 to PUs. Throws UsageError when the plan has fewer PUs
// than workers (unless allow_sharing) or names a socket that does not exist.
std::vector<Slot> PlanPlacement(const Topology& topo, const PlacementSpec& spec, int workers);

// Human-readable table: worker -> socket / NUMA / core / PU, plus per-socket
// counts.
std::string FormatPlan(const Topology& topo, const PlacementSpec& spec,
                       const std::vector<Slot>& plan);

// Pins the calling thread to slot.pu.os_index and, where the machine has more
// than one NUMA node, binds its memory to slot.pu.numa (libnuma). Throws
// SysError on failure.
void PinCurrentThread(const Slot& slot, bool bind_memory);

}  // namespace mntscale
