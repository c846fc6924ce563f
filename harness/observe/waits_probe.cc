#include "waits_probe.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "mntscale/model/sandbox.h"
#include "mntscale/model/userns.h"
#include "mntscale/sys/sys.h"
#include "perf_ring.h"

namespace mntscale::waits {
namespace {

// Where tracefs is, mounting it in the sandbox's namespace if needed.
// Throws Unsupported with the reason.
std::string TracefsRoot() {
  static std::string root;
  if (!root.empty()) return root;
  for (const char* c : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    if (access((std::string(c) + "/events").c_str(), R_OK) == 0) return root = c;
  }
  if (Rootless()) {
    throw Unsupported(
        "rootless mode: tracefs cannot be mounted from a user namespace, and tracepoint "
        "events need CAP_PERFMON in the initial one");
  }
  if (!Sandbox::Entered()) {
    throw Unsupported(
        "tracefs is not mounted and the harness is not in its private mount namespace: "
        "mntscale mounts tracefs only there, never on the host");
  }
  std::string dir = Sandbox::Enter().workdir() + "/.tracefs";
  if (mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST) {
    throw Unsupported(SysError::Format("mkdir", dir, errno, ""));
  }
  if (mount("tracefs", dir.c_str(), "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0) {
    int err = errno;
    throw Unsupported("no tracefs: " + SysError::Format("mount", "tracefs on " + dir, err,
                                                        "kernel without CONFIG_TRACING, or "
                                                        "no CAP_SYS_ADMIN"));
  }
  return root = dir;
}

std::optional<Tracepoint> ReadTracepoint(const std::string& root, const std::string& sys,
                                         const std::string& name) {
  std::string base = root + "/events/" + sys + "/" + name;
  Tracepoint tp;
  std::string id;
  if (!TryReadFile(base + "/id", &id) || !TryReadFile(base + "/format", &tp.format)) {
    return std::nullopt;
  }
  tp.id = std::strtoull(id.c_str(), nullptr, 10);
  return tp;
}

}  // namespace

std::string OpenHint(int err) {
  constexpr char kUnknown[] = "tracepoint id unknown to perf on this kernel";
  if (err == ENOENT) return kUnknown;
  return PerfOpenHint(err,
                      "tracepoint events with kernel call chains need root (CAP_PERFMON and "
                      "CAP_SYS_ADMIN for tracepoints) or paranoid <= -1",
                      kUnknown);
}

perf_event_attr TraceAttr(uint64_t id, bool context_switches) {
  perf_event_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_TRACEPOINT;
  attr.config = id;
  attr.sample_period = 1;
  attr.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CALLCHAIN | PERF_SAMPLE_RAW;
  attr.disabled = 1;
  attr.exclude_callchain_user = 1;
  attr.sample_max_stack = kMaxStack;
  attr.use_clockid = 1;
  attr.clockid = CLOCK_MONOTONIC;  // comparable with MonotonicNs()
  attr.sample_id_all = 1;          // switch records carry pid/tid and time
  attr.context_switch = context_switches ? 1 : 0;
  return attr;
}

Plan Probe() {
  Plan p;
  p.tracefs = TracefsRoot();  // throws: nothing works without it
  p.begin = ReadTracepoint(p.tracefs, "lock", "contention_begin");
  p.end = ReadTracepoint(p.tracefs, "lock", "contention_end");
  p.sched = ReadTracepoint(p.tracefs, "sched", "sched_switch");
  if (!p.begin || !p.end) {
    p.locks_unsupported =
        "tracepoint lock:contention_begin/end absent on this kernel (needs Linux >= 5.19)";
  } else {
    auto a = FindField(p.begin->format, "lock_addr");
    auto f = FindField(p.begin->format, "flags");
    auto e = FindField(p.end->format, "lock_addr");
    if (!a || !f || !e || a->size != 8 || e->size != 8 || f->size != 4) {
      p.locks_unsupported = "lock:contention_begin/end have an unknown format on this kernel";
    } else {
      p.lock_addr = *a;
      p.lock_flags = *f;
      p.end_lock_addr = *e;
    }
  }
  if (!p.sched) {
    p.offcpu_unsupported = "tracepoint sched:sched_switch absent on this kernel";
  } else if (auto s = FindField(p.sched->format, "prev_state");
             !s || (s->size != 8 && s->size != 4)) {
    p.offcpu_unsupported = "sched:sched_switch has no prev_state field on this kernel";
  } else {
    p.prev_state = *s;
  }
  // Probe one event on this thread so perf_event_paranoid speaks up front.
  for (auto* tp : {&p.sched, &p.begin}) {
    if (!*tp) continue;
    perf_event_attr attr = TraceAttr((*tp)->id, false);
    long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      throw Unsupported(SysError::Format(
          "perf_event_open", "tracepoint id " + std::to_string((*tp)->id), err, OpenHint(err)));
    }
    close(static_cast<int>(fd));
  }
  if (!p.locks_unsupported.empty() && !p.offcpu_unsupported.empty()) {
    throw Unsupported(p.locks_unsupported + "; " + p.offcpu_unsupported);
  }
  return p;
}

}  // namespace mntscale::waits
