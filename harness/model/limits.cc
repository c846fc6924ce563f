#include "mntscale/model/limits.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "mntscale/sys/sys.h"

namespace mntscale {

Need NeedOf(const Demand& d) {
  Need n;
  // The largest single table: every container's mounts when they share a
  // namespace; otherwise one container's, or the namespace that holds one
  // rootfs per container plus the extras (the runtime's), whichever is larger.
  n.largest_table = std::max(d.shared_ns ? d.containers * d.mounts_per_container
                                         : d.mounts_per_container,
                             d.extra > 0 ? d.containers + d.extra : 0L);
  n.namespaces = d.shared_ns ? 0 : d.containers + d.extra + 64;
  // Seen: 12,007 nsfs fds at 6,000 containers; EMFILE at 10,240 under 20,000.
  n.fds = 2 * (d.containers + d.extra) + 1024;
  n.memory_kb = 64 * (d.containers + d.extra);
  return n;
}

KernelLimits KernelLimits::Read() {
  KernelLimits k;
  k.mount_max = ReadSysctl("fs.mount-max");
  k.ns_max = ReadSysctl("user.max_mnt_namespaces");
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    k.nofile_cur = rl.rlim_cur == RLIM_INFINITY ? -1 : static_cast<long>(rl.rlim_cur);
    k.nofile_max = rl.rlim_max == RLIM_INFINITY ? -1 : static_cast<long>(rl.rlim_max);
  }
  const long mem = MemAvailableKb();
  k.mem_available_kb = mem > 0 ? mem : -1;
  return k;
}

std::optional<KernelLimit> FirstLimitPassed(const Demand& d, const KernelLimits& have) {
  const Need need = NeedOf(d);
  const int at = static_cast<int>(d.containers);
  if (have.mount_max > 0 && need.largest_table > have.mount_max)
    return KernelLimit{"fs.mount-max", have.mount_max, at, need.largest_table, d.shared_ns};
  if (have.ns_max >= 0 && !d.shared_ns && need.namespaces > have.ns_max)
    return KernelLimit{"user.max_mnt_namespaces", have.ns_max, at, need.namespaces, d.shared_ns};
  if (have.nofile_cur >= 0 && need.fds > have.nofile_cur)
    return KernelLimit{"RLIMIT_NOFILE", have.nofile_cur, at, need.fds, d.shared_ns};
  if (have.mem_available_kb > 0 && need.memory_kb > have.mem_available_kb)
    return KernelLimit{"MemAvailable", have.mem_available_kb * 1024, at, need.memory_kb,
                       d.shared_ns};
  return std::nullopt;
}

std::optional<KernelLimit> CheckLimits(const Demand& d) {
  const rlim_t want = static_cast<rlim_t>(NeedOf(d).fds);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
    struct rlimit up = rl;
    up.rlim_cur = want;
    if (up.rlim_max < want) up.rlim_max = want;  // root may raise the hard limit
    setrlimit(RLIMIT_NOFILE, &up);              // when it cannot, the check below says so
  }
  return FirstLimitPassed(d, KernelLimits::Read());
}

nlohmann::json KernelLimit::ToJson() const {
  return {{"name", name}, {"value", value}, {"at", at}};
}

std::string KernelLimit::Message() const {
  const std::string n = std::to_string(at);
  if (name == "fs.mount-max") {
    return n + " containers would put " + std::to_string(need) + " mounts in one namespace" +
           (shared_ns ? " (shared)" : "") + ", past fs.mount-max = " + std::to_string(value);
  }
  if (name == "user.max_mnt_namespaces") {
    return n + " containers need " + std::to_string(need) +
           " mount namespaces (with 64 spare), past user.max_mnt_namespaces = " +
           std::to_string(value);
  }
  if (name == "RLIMIT_NOFILE") {
    return n + " containers need " + std::to_string(need) +
           " file descriptors but RLIMIT_NOFILE is " + std::to_string(value) +
           " and cannot be raised";
  }
  return n + " containers need about " + std::to_string(need / 1024) + " MiB but only " +
         std::to_string(value / (1024 * 1024)) + " MiB is available";
}

long MemAvailableKb() {
  std::string meminfo;
  if (!TryReadFile("/proc/meminfo", &meminfo)) return 0;
  auto pos = meminfo.find("MemAvailable:");
  return pos == std::string::npos ? 0 : std::strtol(meminfo.c_str() + pos + 13, nullptr, 10);
}

}  // namespace mntscale
