// Placement (topology.h): a --placement value parsed, turned into one PU per
// worker on a topology, and a thread pinned to its PU (and its memory to the
// PU's NUMA node).
#include <numa.h>
#include <numaif.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <charconv>
#include <iomanip>
#include <tuple>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string_view>

#include "mntscale/run/topology.h"
#include "mntscale/sys/sys.h"
#include "mntscale/sys/text.h"

namespace mntscale {
namespace {

constexpr char kPlacementForms[] =
    "valid forms: compact, spread, socket:N, each optionally followed by "
    ",smt-off and/or ,share (e.g. 'spread,smt-off'); 'smt-off' alone means "
    "compact with one PU per core";

// "1 socket", "2 sockets".
std::string Count(int n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

struct CpuSetFree {
  void operator()(cpu_set_t* s) const { CPU_FREE(s); }
};

}  // namespace

std::string PlacementSpec::ToString() const {
  std::string s;
  switch (kind) {
    case kCompact:
      s = "compact";
      break;
    case kSpread:
      s = "spread";
      break;
    case kSocket:
      s = "socket:" + std::to_string(socket);
      break;
  }
  if (smt_off) s += ",smt-off";
  if (allow_sharing) s += ",share";
  return s;
}

PlacementSpec PlacementSpec::Parse(const std::string& s) {
  PlacementSpec p;
  bool have_kind = false;
  auto fail = [&s](const std::string& why) {
    return UsageError("invalid placement '" + s + "': " + why + "; " + kPlacementForms);
  };
  auto set_kind = [&](Kind k, std::string_view part) {
    if (have_kind) {
      throw fail("'" + std::string(part) + "' conflicts with an earlier compact/spread/socket");
    }
    p.kind = k;
    have_kind = true;
  };
  std::string_view rest = s;
  for (;;) {
    size_t comma = rest.find(',');
    std::string_view part = TrimView(rest.substr(0, comma));
    if (part.empty()) {
      throw fail("empty part");
    } else if (part == "compact") {
      set_kind(kCompact, part);
    } else if (part == "spread") {
      set_kind(kSpread, part);
    } else if (part.substr(0, 7) == "socket:") {
      std::string_view num = part.substr(7);
      int n = -1;
      auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
      if (num.empty() || ec != std::errc() || end != num.data() + num.size() || n < 0) {
        throw fail("'" + std::string(part) + "' needs a socket number N >= 0");
      }
      set_kind(kSocket, part);
      p.socket = n;
    } else if (part == "smt-off") {
      p.smt_off = true;
    } else if (part == "share") {
      p.allow_sharing = true;
    } else {
      throw fail("unknown part '" + std::string(part) + "'");
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (!have_kind) p.kind = kCompact;
  return p;
}

std::vector<Slot> PlanPlacement(const Topology& topo, const PlacementSpec& spec, int workers) {
  if (workers < 0) {
    throw UsageError("placement needs a worker count >= 0, got " + std::to_string(workers));
  }
  const int sockets = topo.summary().packages;
  if (spec.kind == PlacementSpec::kSocket && spec.socket >= sockets) {
    throw UsageError("placement '" + spec.ToString() + "' names socket " +
                     std::to_string(spec.socket) + " but the topology has " +
                     Count(sockets, "socket") + " (socket:0.." + std::to_string(sockets - 1) + ")");
  }
  std::vector<Pu> pool;
  for (const Pu& pu : topo.pus()) {
    if (spec.smt_off && pu.smt_rank != 0) continue;
    if (spec.kind == PlacementSpec::kSocket && pu.package != spec.socket) {
      continue;
    }
    pool.push_back(pu);
  }

  std::vector<Pu> order;
  if (spec.kind == PlacementSpec::kSpread) {
    // Per socket, every core's first PU before any sibling, so that a socket
    // takes a second thread per core only once it has none left idle.
    std::vector<std::vector<Pu>> per;
    for (const Pu& pu : pool) {
      if (static_cast<size_t>(pu.package) >= per.size()) {
        per.resize(pu.package + 1);
      }
      per[pu.package].push_back(pu);
    }
    for (auto& v : per) {
      std::sort(v.begin(), v.end(), [](const Pu& a, const Pu& b) {
        return std::tie(a.smt_rank, a.core) < std::tie(b.smt_rank, b.core);
      });
    }
    // Round-robin; a socket that runs out (cgroup-restricted hosts can be
    // uneven) is skipped rather than ending the plan.
    for (size_t round = 0; order.size() < pool.size(); ++round) {
      for (const auto& v : per) {
        if (round < v.size()) order.push_back(v[round]);
      }
    }
  } else {
    order = pool;
    std::sort(order.begin(), order.end(), [](const Pu& a, const Pu& b) {
      return std::tie(a.package, a.core, a.smt_rank) < std::tie(b.package, b.core, b.smt_rank);
    });
  }

  const int n = static_cast<int>(order.size());
  if (workers > 0 && n == 0) {
    throw UsageError("placement '" + spec.ToString() + "' leaves no PU on this topology");
  }
  if (workers > n && !spec.allow_sharing) {
    throw UsageError("placement '" + spec.ToString() + "' has " + std::to_string(n) + " PUs but " +
                     std::to_string(workers) +
                     " workers were asked for; use fewer workers, another "
                     "placement, or add ',share' to put several workers on "
                     "one PU");
  }
  std::vector<Slot> plan;
  plan.reserve(workers);
  for (int i = 0; i < workers; ++i) plan.push_back(Slot{i, order[i % n]});
  return plan;
}

std::string FormatPlan(const Topology& topo, const PlacementSpec& spec,
                       const std::vector<Slot>& plan) {
  const TopologySummary& s = topo.summary();
  std::ostringstream out;
  out << "placement " << spec.ToString() << " on " << (s.name.empty() ? s.source : s.name) << " ("
      << Count(s.packages, "socket") << ", " << Count(s.numa_nodes, "NUMA node") << ", "
      << Count(s.cores, "core") << ", " << Count(s.pus, "PU") << ")\n";
  out << std::setw(6) << "worker" << std::setw(8) << "socket" << std::setw(6) << "numa"
      << std::setw(6) << "core" << std::setw(6) << "pu"
      << "\n";
  std::vector<int> per_socket(std::max(s.packages, 1), 0);
  std::set<int> used;
  int shared = 0;
  for (const Slot& slot : plan) {
    out << std::setw(6) << slot.worker << std::setw(8) << slot.pu.package << std::setw(6)
        << slot.pu.numa << std::setw(6) << slot.pu.core << std::setw(6) << slot.pu.os_index << "\n";
    if (slot.pu.package >= static_cast<int>(per_socket.size())) {
      per_socket.resize(slot.pu.package + 1, 0);
    }
    ++per_socket[slot.pu.package];
    if (!used.insert(slot.pu.os_index).second) ++shared;
  }
  for (size_t i = 0; i < per_socket.size(); ++i) {
    out << "socket " << i << ": " << Count(per_socket[i], "worker") << "\n";
  }
  if (shared > 0) {
    out << shared << " worker" << (shared == 1 ? " shares" : "s share")
        << " a PU with an earlier worker\n";
  }
  return out.str();
}

void PinCurrentThread(const Slot& slot, bool bind_memory) {
  const int cpu = slot.pu.os_index;
  const std::string what = "cpu " + std::to_string(cpu);
  if (cpu < 0) throw SysError("sched_setaffinity", what, EINVAL);
  // CPU_ALLOC rather than cpu_set_t: hosts can have more than 1024 CPUs.
  const int ncpus = std::max(cpu + 1, CPU_SETSIZE);
  std::unique_ptr<cpu_set_t, CpuSetFree> set(CPU_ALLOC(ncpus));
  if (!set) throw SysError("CPU_ALLOC", what, ENOMEM);
  const size_t size = CPU_ALLOC_SIZE(ncpus);
  CPU_ZERO_S(size, set.get());
  CPU_SET_S(cpu, size, set.get());
  if (sched_setaffinity(0, size, set.get()) < 0) {
    int err = errno;
    throw SysError("sched_setaffinity", what, err,
                   err == EINVAL ? "the CPU is offline or outside this "
                                   "cgroup's cpuset; pin only with the host "
                                   "topology"
                                 : "");
  }
  const int node = slot.pu.numa;
  if (!bind_memory || node < 0 || numa_available() < 0 || numa_max_node() <= 0) {
    return;
  }
  // Preferred, not strict bind: the worker's memory should be local to its
  // socket, but a full node must not turn into an OOM kill mid-run. The
  // kernel falls back to another node and numa_miss shows that it did.
  constexpr int kBitsPerLong = 8 * sizeof(unsigned long);
  std::vector<unsigned long> mask(node / kBitsPerLong + 1, 0);
  mask[node / kBitsPerLong] |= 1UL << (node % kBitsPerLong);
  // maxnode counts one past the last bit: the kernel has read it that way
  // since 2.6 and libnuma passes size + 1 too.
  Check(set_mempolicy(MPOL_PREFERRED, mask.data(), mask.size() * kBitsPerLong + 1), "set_mempolicy",
        "MPOL_PREFERRED node " + std::to_string(node));
}

}  // namespace mntscale
