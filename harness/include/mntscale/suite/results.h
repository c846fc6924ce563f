// Result files: Google Benchmark-shaped JSON plus mntscale's context. Written
// atomically after every point, so an interrupted run keeps what it finished.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mntscale/run/topology.h"

namespace mntscale {

inline constexpr int kSchemaVersion = 1;

// Exit status of a run in which no point could be measured: every one was
// unsupported, skipped or failed (docs/usage.md, "Exit codes").
inline constexpr int kExitNothingMeasured = 3;

// True when at least one iteration entry holds a measurement (neither
// "skipped" nor "error_occurred").
bool MeasuredAnything(const std::vector<nlohmann::json>& entries);

// Everything a result needs to be compared a year later on another machine.
// `extra` is merged in (config, profile, placement, ...).
nlohmann::json CollectContext(const Topology& topo, const nlohmann::json& extra);
// The CPU fields of Google Benchmark's context (caches, MHz, scaling, load).
nlohmann::json BenchmarkCpuContext();

// What changes syscall cost on the same CPU model: microcode, SMT
// (smt/control, smt/active), each online CPU's cpufreq governor, every
// mitigation in cpu/vulnerabilities, the kernel command line; each missing
// one as "<field>_unsupported": "unsupported: why", never a made-up value.
// `sys` and `proc` are the mount points (tests pass a fake tree).
nlohmann::json PlatformContext(const std::string& sys, const std::string& proc);
// A --machine / MNTSCALE_MACHINE name: 1-64 of [A-Za-z0-9._-], not starting
// with '.' or '-' (it names directories of results).
bool ValidMachineName(const std::string& name);
// Refuses (UsageError) a --machine value, or when it is empty a
// MNTSCALE_MACHINE, that is not a valid machine name.
void CheckMachineName(const std::string& option_value);

// Machine facts used by the context and the pre-flight checks.
std::string KernelRelease();
bool IsVirtualized(std::string* hypervisor);
// The mount hash size: from the boot log, mhash_entries=, or estimated from RAM.
nlohmann::json MountHashInfo();

class ResultSink {
 public:
  // An empty path keeps results in memory only.
  ResultSink(std::string path, nlohmann::json context);
  // Adds one iteration entry and rewrites the file, marked incomplete.
  void Add(nlohmann::json entry);
  void SetContext(const std::string& key, nlohmann::json value);
  // Final write: complete, or incomplete with a reason.
  void Finish(bool complete, const std::string& reason = "");
  nlohmann::json Document(bool complete, const std::string& reason) const;
  const std::vector<nlohmann::json>& entries() const { return entries_; }

  // mean/median/stddev/cv entries over repetitions with the same run_name.
  static std::vector<nlohmann::json> Aggregates(const std::vector<nlohmann::json>& entries);

 private:
  void Write(bool complete, const std::string& reason) const;
  std::string path_;
  nlohmann::json context_;
  std::vector<nlohmann::json> entries_;
};

// The --out pre-check, before anything is built: refuses an empty path, and
// anything already at the path that is not a regular file (a device, FIFO,
// socket, directory or symbolic link), then creates and removes a real file
// in the target directory (root too: access() would say yes to /proc) and
// opens an existing file for writing without changing it. Throws UsageError
// naming the path.
void CheckOutputPath(const std::string& path);
// The part of that check the atomic writer repeats before each rename.
void RefuseNonRegularOutput(const std::string& path);

// No silent overwrite after waiting for the run lock: the stamp (device,
// inode, size, mtime; "" for nothing there) of the output path is taken
// before RunLock::Acquire, and a path that changed meanwhile (the run waited
// on wrote it) is a UsageError naming it.
std::string OutputStamp(const std::string& path);
void RefuseOutputWrittenSince(const std::string& path, const std::string& stamp);

// Where a run without --out writes: results/mntscale-HOST-STAMP-PID.json
// under the working directory (made if missing).
std::string DefaultOutputPath();

}  // namespace mntscale
