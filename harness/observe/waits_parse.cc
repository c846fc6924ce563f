// The wait tracer's pure parts (waits_internal.h): pairing lock waits,
// following a task on and off CPU, tracepoint formats, lock types and the
// caller of a lock. Unit-tested in tests/unit/waits_gtest.cc.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "attribution_internal.h"
#include "waits_internal.h"

namespace mntscale {
namespace waits {

void WaitPairer::Begin(uint64_t t_ns, uint64_t lock, std::string bucket, std::string site) {
  for (const Open& o : open_) {
    if (o.lock == lock) {
      ++merged_begins_;
      return;
    }
  }
  open_.push_back({lock, t_ns, std::move(bucket), std::move(site)});
}

void WaitPairer::End(uint64_t t_ns, uint64_t lock) {
  for (size_t i = open_.size(); i-- > 0;) {
    if (open_[i].lock != lock) continue;
    Open& o = open_[i];
    waits_.push_back({std::move(o.bucket), std::move(o.site), t_ns > o.t_ns ? t_ns - o.t_ns : 0});
    dropped_begins_ += open_.size() - i - 1;
    open_.resize(i);
    return;
  }
  ++unmatched_ends_;
}

void WaitPairer::Finish(uint64_t window_end_ns) {
  for (const Open& o : open_) {
    ++open_at_end_;
    if (window_end_ns > o.t_ns) open_ns_ += window_end_ns - o.t_ns;
  }
  open_.clear();
}

void OffCpuTracker::Switch(uint64_t t_ns, std::string label) {
  Clip(&t_ns);
  pending_ = std::move(label);
  pending_t_ = t_ns;
}

void OffCpuTracker::Out(uint64_t t_ns, bool preempt_flag) {
  Clip(&t_ns);
  if (!seen_) since_ = start_;  // on CPU from the window's start
  seen_ = true;
  if (off_) return;  // a second out without an in: keep the first
  ++switches_;
  // The tracepoint fires just before the switch record; its time is when
  // the task stopped running.
  uint64_t t = !pending_.empty() && pending_t_ <= t_ns ? pending_t_ : t_ns;
  if (t > since_) on_ns_ += t - since_;
  off_label_ = !pending_.empty() ? pending_ : preempt_flag ? kPreempted : kOffUnknown;
  pending_.clear();
  off_ = true;
  since_ = t;
}

void OffCpuTracker::In(uint64_t t_ns) {
  Clip(&t_ns);
  if (!seen_) {
    // Off CPU since before the window: why is unknown.
    seen_ = true;
    off_ = true;
    off_label_ = kOffUnknown;
    since_ = start_;
  }
  if (!off_) return;
  if (t_ns > since_) off_ns_[off_label_] += t_ns - since_;
  off_ = false;
  since_ = t_ns;
}

void OffCpuTracker::Finish(uint64_t window_end_ns) {
  if (!seen_) {
    // No switch in the whole window: it ran throughout (a task that slept
    // throughout would have been switched in to end its sleep).
    on_ns_ += window_end_ns > start_ ? window_end_ns - start_ : 0;
    seen_ = true;
    since_ = window_end_ns;
    return;
  }
  if (window_end_ns > since_) {
    if (off_) {
      off_ns_[off_label_] += window_end_ns - since_;
    } else {
      on_ns_ += window_end_ns - since_;
    }
  }
  since_ = window_end_ns;
}

std::optional<Field> FindField(std::string_view format, std::string_view name) {
  size_t pos = 0;
  while ((pos = format.find("field:", pos)) != std::string_view::npos) {
    size_t semi = format.find(';', pos);
    if (semi == std::string_view::npos) break;
    std::string_view decl = format.substr(pos + 6, semi - pos - 6);
    // "unsigned int flags", "char prev_comm[16]", "void * lock_addr"
    size_t br = decl.find('[');
    std::string_view ident = decl.substr(0, br);
    while (!ident.empty() && ident.back() == ' ') ident.remove_suffix(1);
    size_t sp = ident.find_last_of(" *");
    ident = sp == std::string_view::npos ? ident : ident.substr(sp + 1);
    size_t line_end = format.find('\n', semi);
    std::string_view rest = format.substr(semi, line_end - semi);
    pos = semi;
    if (ident != name) continue;
    size_t o = rest.find("offset:"), s = rest.find("size:");
    if (o == std::string_view::npos || s == std::string_view::npos) return std::nullopt;
    Field f;
    f.offset = std::strtoul(std::string(rest.substr(o + 7)).c_str(), nullptr, 10);
    f.size = std::strtoul(std::string(rest.substr(s + 5)).c_str(), nullptr, 10);
    return f;
  }
  return std::nullopt;
}

bool SwitchedOutRunnable(int64_t prev_state) { return (prev_state & 0xff) == 0; }

std::string LockType(uint32_t flags) {
  // include/trace/events/lock.h: LCB_F_SPIN 1, READ 2, WRITE 4, RT 8,
  // PERCPU 16, MUTEX 32; the names are perf lock's.
  constexpr uint32_t kSpin = 1, kRead = 2, kWrite = 4, kRt = 8, kPercpu = 16, kMutex = 32;
  if (flags & kMutex) return "mutex";
  if (flags & kRt) return "rtmutex";
  if (flags & kPercpu) return flags & kRead ? "pcpu-sem:R" : "pcpu-sem:W";
  if (flags & kSpin) {
    if (flags & kRead) return "rwlock:R";
    if (flags & kWrite) return "rwlock:W";
    return "spinlock";
  }
  if (flags & kRead) return "rwsem:R";
  if (flags & kWrite) return "rwsem:W";
  return "unknown";
}

std::string_view LockCaller(std::span<const std::string_view> frames) {
  static const attribution::Pattern kLockFrames[] = {
      attribution::Pattern::Parse("__mutex_lock*"),
      attribution::Pattern::Parse("mutex_lock*"),
      attribution::Pattern::Parse("__ww_mutex_lock*"),
      attribution::Pattern::Parse("rt_mutex*"),
      attribution::Pattern::Parse("rwsem_*"),
      attribution::Pattern::Parse("__down_*"),
      attribution::Pattern::Parse("down_read*"),
      attribution::Pattern::Parse("down_write*"),
      attribution::Pattern::Parse("percpu_down_*"),
      attribution::Pattern::Parse("percpu_rwsem_*"),
      attribution::Pattern::Parse("__percpu_down_*"),
      attribution::Pattern::Parse("_raw_*"),
      attribution::Pattern::Parse("queued_*"),
      attribution::Pattern::Parse("native_queued_*"),
      attribution::Pattern::Parse("__pv_queued_*"),
      attribution::Pattern::Parse("osq_lock"),
      attribution::Pattern::Parse("do_raw_*"),
      attribution::Pattern::Parse("__schedule"),
      attribution::Pattern::Parse("schedule*"),
      attribution::Pattern::Parse("perf_trace_*"),
      attribution::Pattern::Parse("trace_contention_*"),
  };
  for (std::string_view f : frames) {
    bool lock = false;
    for (const auto& p : kLockFrames) {
      if (p.Matches(f)) {
        lock = true;
        break;
      }
    }
    if (!lock) return f;
  }
  return frames.empty() ? std::string_view(attribution::kUnknownSymbol) : frames.back();
}

}  // namespace waits

}  // namespace mntscale
