// The kernel and process limits a container density runs into, in one place:
// `run`'s preflight (plan.cc) and `capacity` (its first density and every
// density it tries) ask the same function, so the two cannot disagree.
#pragma once

#include <sys/resource.h>

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace mntscale {

// What a run holds at once.
struct Demand {
  long containers = 0;            // container mount namespaces
  long mounts_per_container = 0;  // the profile's mounts in each
  bool shared_ns = false;         // every container's mounts in one namespace
  // Namespaces and mounts besides the containers' (capacity's churn, the
  // runtime's namespace); each also costs fds and memory like a container.
  long extra = 0;
};

// What the demand needs of each limit.
struct Need {
  long largest_table = 0;  // mounts in the largest single namespace
  long namespaces = 0;     // mount namespaces, with 64 spare for the process and workers
  long fds = 0;            // an nsfs fd per namespace, a second while the census counts them
  long memory_kb = 0;      // about 64 KiB of kernel and tmpfs memory per container
};
Need NeedOf(const Demand& d);

// The limits as read (-1 when unreadable, which then does not limit).
struct KernelLimits {
  long mount_max = -1;     // fs.mount-max
  long ns_max = -1;        // user.max_mnt_namespaces
  long nofile_cur = -1;    // RLIMIT_NOFILE
  long nofile_max = -1;
  long mem_available_kb = -1;
  static KernelLimits Read();
};

struct KernelLimit {
  std::string name;  // "fs.mount-max", "user.max_mnt_namespaces", "RLIMIT_NOFILE", "MemAvailable"
  long value = 0;    // the limit (RLIMIT_NOFILE: the soft limit that could not be raised; bytes for MemAvailable)
  int at = 0;        // the container count that would pass it
  long need = 0;     // what the demand needs of it, in the limit's unit
  bool shared_ns = false;
  nlohmann::json ToJson() const;     // {name, value, at}
  std::string Message() const;       // "300000 containers x 12 mounts in one namespace would pass ..."
};

// Pure: the first limit `d` passes under `have`, nullopt when none.
std::optional<KernelLimit> FirstLimitPassed(const Demand& d, const KernelLimits& have);

// Reads the limits, raises RLIMIT_NOFILE to what `d` needs where it can (root
// may raise the hard limit too), and returns FirstLimitPassed.
std::optional<KernelLimit> CheckLimits(const Demand& d);

// MemAvailable in KiB from /proc/meminfo, 0 when unreadable.
long MemAvailableKb();

}  // namespace mntscale
