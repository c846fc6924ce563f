// Kernel-time attribution: cpu-clock samples with kernel call chains on each
// worker, resolved through /proc/kallsyms and classified into the buckets of
// harness/data/attribution_buckets.json.
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>

#include "attribution_internal.h"
#include "mntscale/observe/attribution.h"
#include "mntscale/observe/counters.h"
#include "mntscale/sys/sys.h"
#include "perf_ring.h"

namespace mntscale {

namespace {

using attribution::BucketSet;
using attribution::Classification;
using attribution::KernelSymbols;

constexpr int kDataPagesLog2 = 7;  // 512 KiB per worker: ~2 s at 997 Hz
constexpr int kMaxStack = 64;
constexpr size_t kTopSymbols = 20;
constexpr size_t kTopUnmatched = 10;

perf_event_attr SamplingAttr(int frequency_hz) {
  perf_event_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.freq = 1;
  attr.sample_freq = static_cast<uint64_t>(frequency_hz);
  attr.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_CALLCHAIN;
  attr.disabled = 1;  // enabled at OnMeasureStart: warm-up is not sampled
  // User samples only need to be counted as "user"; their stacks would just
  // fill the ring.
  attr.exclude_callchain_user = 1;
  attr.sample_max_stack = kMaxStack;
  attr.wakeup_events = 0;
  return attr;
}

std::string OpenHint(int err) {
  return PerfOpenHint(err, "kernel call chains need root (CAP_PERFMON) or paranoid <= 1",
                      "sample rate above kernel.perf_event_max_sample_rate, or "
                      "sample_max_stack above kernel.perf_event_max_stack");
}

// One worker's sampling event: cpu-clock samples {ip, pid/tid, callchain}.
class Ring {
 public:
  Ring(pid_t tid, const perf_event_attr& attr)
      : ring_(tid, attr, kDataPagesLog2, "cpu-clock sampling", OpenHint) {}

  void Enable(bool on) { ring_.Enable(on); }

  // Calls on_sample(chain) for each sample and returns records lost.
  template <typename F>
  uint64_t Drain(F&& on_sample) {
    uint64_t lost = 0;
    std::vector<uint64_t> chain;
    ring_.Drain([&](const perf_event_header& hdr, const char* p, const char* end) {
      if (hdr.type == PERF_RECORD_LOST && end - p >= 16) {
        uint64_t n;
        memcpy(&n, p + 8, 8);
        lost += n;
      } else if (hdr.type == PERF_RECORD_SAMPLE && end - p >= 24) {
        uint64_t ip, nr;
        memcpy(&ip, p, 8);
        memcpy(&nr, p + 16, 8);  // ip, pid/tid, nr
        p += 24;
        nr = std::min<uint64_t>(nr, static_cast<uint64_t>(end - p) / 8);
        chain.resize(nr);
        if (nr) memcpy(chain.data(), p, nr * 8);
        if (chain.empty()) {
          // No chain (e.g. the unwinder failed): the IP and mode still say
          // kernel or user.
          bool kernel = (hdr.misc & PERF_RECORD_MISC_CPUMODE_MASK) == PERF_RECORD_MISC_KERNEL;
          chain = {kernel ? static_cast<uint64_t>(PERF_CONTEXT_KERNEL)
                          : static_cast<uint64_t>(PERF_CONTEXT_USER),
                   ip};
        }
        on_sample(std::span<const uint64_t>(chain));
      }
    });
    return lost;
  }

 private:
  PerfRing ring_;
};

class KernelSampler : public RunObserver {
 public:
  KernelSampler(const SamplerConfig& config, std::string buckets_path, BucketSet buckets,
                KernelSymbols symbols)
      : config_(config),
        buckets_path_(std::move(buckets_path)),
        buckets_(std::move(buckets)),
        symbols_(std::move(symbols)) {}

  void OnWorkersReady(const std::vector<pid_t>& tids) override {
    rings_.clear();
    error_.clear();
    perf_event_attr attr = SamplingAttr(config_.frequency_hz);
    try {
      for (pid_t tid : tids) rings_.push_back(std::make_unique<Ring>(tid, attr));
      worker_counts_.assign(rings_.size(), {});
    } catch (const std::exception& e) {
      rings_.clear();  // all workers or none: a partial view would mislead
      error_ = e.what();
    }
  }

  void OnMeasureStart() override {
    for (auto& r : rings_) r->Drain([](std::span<const uint64_t>) {});
    for (auto& r : rings_) r->Enable(true);
    measuring_ = true;
  }

  void OnWindowEnd(int) override { DrainAll(); }

  void OnMeasureEnd() override {
    for (auto& r : rings_) r->Enable(false);
    DrainAll();
    measuring_ = false;
  }

  void Report(nlohmann::json* entry) override {
    nlohmann::json& a = (*entry)["attribution"];
    if (!error_.empty()) {
      a = {{"unsupported", error_}};
      return;
    }
    uint64_t kernel = samples_ - bucket_counts_[attribution::kUserBucket];
    a["frequency_hz"] = config_.frequency_hz;
    a["samples"] = samples_;
    a["kernel_samples"] = kernel;
    a["lost"] = lost_;
    uint64_t mount = 0;
    nlohmann::json fractions = nlohmann::json::object();
    nlohmann::json counts = nlohmann::json::object();
    nlohmann::json mount_names = nlohmann::json::array();
    for (const std::string& name : buckets_.AllNames()) {
      uint64_t n = bucket_counts_[name];
      counts[name] = n;
      if (samples_) fractions[name] = static_cast<double>(n) / samples_;
      if (buckets_.IsMountBucket(name)) {
        mount += n;
        mount_names.push_back(name);
      }
    }
    if (kernel) {
      a["mount_pressure_share"] = static_cast<double>(mount) / kernel;
    } else {
      a["mount_pressure_share"] = nullptr;  // unknown, not zero
      a["note"] = "no kernel samples";
    }
    a["buckets"] = fractions;
    a["bucket_samples"] = counts;
    a["mount_buckets"] = mount_names;
    nlohmann::json per_worker = nlohmann::json::array();
    for (const auto& wc : worker_counts_) {
      nlohmann::json w = nlohmann::json::object();
      for (const auto& [name, n] : wc) w[name] = n;
      per_worker.push_back(w);
    }
    a["worker_bucket_samples"] = per_worker;  // in worker order
    a["top_symbols"] = Top(leaf_counts_, kTopSymbols);
    a["unmatched_top"] = Top(unmatched_counts_, kTopUnmatched);
    a["classification"] = "deepest (leaf-most) frame matching a bucket";
    a["buckets_file"] = buckets_path_;
    a["scope"] =
        "on-CPU time only (cpu-clock): sleeping on locks or RCU "
        "grace periods is not sampled";
  }

 private:
  void DrainAll() {
    if (!measuring_) return;
    for (size_t i = 0; i < rings_.size(); ++i) {
      lost_ += rings_[i]->Drain([this, i](std::span<const uint64_t> chain) {
        Classification c = attribution::Classify(buckets_, symbols_, chain);
        ++samples_;
        ++bucket_counts_[c.bucket];
        ++worker_counts_[i][c.bucket];
        if (!c.leaf_symbol.empty()) {
          ++leaf_counts_[c.leaf_symbol];
          if (c.bucket == attribution::kOtherKernelBucket) {
            ++unmatched_counts_[c.leaf_symbol];
          }
        }
      });
    }
  }

  static nlohmann::json Top(const std::unordered_map<std::string, uint64_t>& m, size_t n) {
    std::vector<std::pair<std::string, uint64_t>> v(m.begin(), m.end());
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < v.size() && i < n; ++i) {
      out.push_back({{"symbol", v[i].first}, {"samples", v[i].second}});
    }
    return out;
  }

  SamplerConfig config_;
  std::string buckets_path_;
  BucketSet buckets_;
  KernelSymbols symbols_;
  std::vector<std::unique_ptr<Ring>> rings_;
  std::string error_;
  bool measuring_ = false;
  uint64_t samples_ = 0, lost_ = 0;
  std::unordered_map<std::string, uint64_t> bucket_counts_, leaf_counts_, unmatched_counts_;
  std::vector<std::map<std::string, uint64_t>> worker_counts_;
};

}  // namespace

std::unique_ptr<RunObserver> MakeKernelSampler(const SamplerConfig& config) {
  if (config.frequency_hz <= 0) {
    throw UsageError("sampling frequency must be positive, got " +
                     std::to_string(config.frequency_hz));
  }
  std::string path = attribution::LocateBucketsFile(config.buckets_file);
  BucketSet buckets = BucketSet::Load(path);
  KernelSymbols symbols = KernelSymbols::Load();
  // Probe on this thread so a machine that cannot sample says so up front.
  perf_event_attr attr = SamplingAttr(config.frequency_hz);
  long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    throw Unsupported(SysError::Format("perf_event_open", "cpu-clock sampling with call chains",
                                       err, OpenHint(err)));
  }
  close(static_cast<int>(fd));
  return std::make_unique<KernelSampler>(config, std::move(path), std::move(buckets),
                                         std::move(symbols));
}

}  // namespace mntscale
