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
namespace attribution {

Pattern Pattern::Parse(std::string_view s) {
  Pattern p;
  if (!s.empty() && s.back() == '*') {
    p.prefix = true;
    s.remove_suffix(1);
  }
  p.text = std::string(s);
  return p;
}

bool Pattern::Matches(std::string_view symbol) const {
  if (prefix) return symbol.substr(0, text.size()) == text;
  return symbol == text;
}

std::string_view StripCompilerSuffix(std::string_view symbol) {
  // Kernel symbols never contain '.' except for compiler clones (.isra.N,
  // .constprop.N, .part.N, .cold, .llvm.NNN): the name before it is the
  // source function.
  size_t dot = symbol.find('.');
  if (dot == 0 || dot == std::string_view::npos) return symbol;
  return symbol.substr(0, dot);
}

namespace {

[[noreturn]] void Malformed(const std::string& origin, const std::string& why) {
  throw UsageError("attribution buckets file " + origin + ": " + why);
}

Rule ParseRule(const nlohmann::json& j, const std::string& origin, const std::string& bucket) {
  Rule r;
  if (j.is_string()) {
    r.symbol = Pattern::Parse(j.get<std::string>());
  } else if (j.is_object() && j.contains("symbol") && j["symbol"].is_string()) {
    r.symbol = Pattern::Parse(j["symbol"].get<std::string>());
    if (j.contains("within")) {
      if (!j["within"].is_array()) {
        Malformed(origin, "bucket " + bucket + ": 'within' must be a list");
      }
      for (const auto& w : j["within"]) {
        if (!w.is_string()) {
          Malformed(origin, "bucket " + bucket + ": 'within' holds a non-string");
        }
        r.within.push_back(Pattern::Parse(w.get<std::string>()));
      }
    }
  } else {
    Malformed(origin, "bucket " + bucket + ": a symbol must be a string or {symbol, within}");
  }
  if (r.symbol.text.empty()) {
    Malformed(origin, "bucket " + bucket + ": empty symbol");
  }
  return r;
}

}  // namespace

BucketSet BucketSet::Parse(const nlohmann::json& doc, const std::string& origin) {
  if (!doc.is_object() || !doc.contains("buckets") || !doc["buckets"].is_array()) {
    Malformed(origin, "expected an object with a 'buckets' list");
  }
  BucketSet set;
  for (const auto& b : doc["buckets"]) {
    if (!b.is_object() || !b.contains("name") || !b["name"].is_string()) {
      Malformed(origin, "each bucket needs a string 'name'");
    }
    Bucket bucket;
    bucket.name = b["name"].get<std::string>();
    if (bucket.name == kUserBucket || bucket.name == kOtherKernelBucket) {
      Malformed(origin, "'" + bucket.name + "' is implicit and cannot be defined");
    }
    for (const Bucket& seen : set.buckets_) {
      if (seen.name == bucket.name) {
        Malformed(origin, "bucket " + bucket.name + " defined twice");
      }
    }
    if (b.contains("mount_machinery")) {
      if (!b["mount_machinery"].is_boolean()) {
        Malformed(origin, "bucket " + bucket.name + ": 'mount_machinery' must be true or false");
      }
      bucket.mount_machinery = b["mount_machinery"].get<bool>();
    }
    if (!b.contains("symbols") || !b["symbols"].is_array()) {
      Malformed(origin, "bucket " + bucket.name + " needs a 'symbols' list");
    }
    for (const auto& s : b["symbols"]) {
      bucket.rules.push_back(ParseRule(s, origin, bucket.name));
    }
    set.buckets_.push_back(std::move(bucket));
  }
  if (set.buckets_.empty()) Malformed(origin, "no buckets");
  return set;
}

BucketSet BucketSet::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    int err = errno;
    throw Unsupported("attribution buckets file " + path + ": " + ErrnoName(err) + " (" +
                      strerror(err) + ")");
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    Malformed(path, e.what());
  }
  return Parse(doc, path);
}

std::vector<std::string> BucketSet::AllNames() const {
  std::vector<std::string> names;
  for (const Bucket& b : buckets_) names.push_back(b.name);
  names.push_back(kOtherKernelBucket);
  names.push_back(kUserBucket);
  return names;
}

bool BucketSet::IsMountBucket(const std::string& name) const {
  for (const Bucket& b : buckets_) {
    if (b.name == name) return b.mount_machinery;
  }
  return false;
}

KernelSymbols KernelSymbols::FromEntries(std::vector<std::pair<uint64_t, std::string>> entries) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  KernelSymbols k;
  k.addrs_.reserve(entries.size());
  k.names_.reserve(entries.size());
  for (auto& [addr, name] : entries) {
    k.addrs_.push_back(addr);
    k.names_.push_back(std::move(name));
  }
  return k;
}

KernelSymbols KernelSymbols::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    int err = errno;
    throw Unsupported("cannot read " + path + ": " + ErrnoName(err) + " (" + strerror(err) + ")");
  }
  std::vector<std::pair<uint64_t, std::string>> entries;
  size_t text_symbols = 0;
  std::string line;
  while (std::getline(in, line)) {
    // "ffffffff81000000 T _stext" or "ffffffffc0a01000 t ovl_lookup\t[overlay]"
    std::istringstream ls(line);
    std::string addr_s, type, name;
    if (!(ls >> addr_s >> type >> name) || type.size() != 1) continue;
    if (type[0] != 't' && type[0] != 'T') continue;
    ++text_symbols;
    uint64_t addr = std::strtoull(addr_s.c_str(), nullptr, 16);
    if (addr == 0) continue;
    entries.emplace_back(addr, std::move(name));
  }
  if (text_symbols == 0) {
    throw Unsupported(path + " lists no kernel text symbols");
  }
  if (entries.empty()) {
    std::string restrict_value = "?";
    TryReadFile("/proc/sys/kernel/kptr_restrict", &restrict_value);
    while (!restrict_value.empty() && restrict_value.back() == '\n') {
      restrict_value.pop_back();
    }
    throw Unsupported(path +
                      " shows all addresses as zero: kernel addresses are "
                      "hidden (kernel.kptr_restrict=" +
                      restrict_value + "; needs root and kptr_restrict < 2)");
  }
  return FromEntries(std::move(entries));
}

const std::string* KernelSymbols::Resolve(uint64_t addr) const {
  auto it = std::upper_bound(addrs_.begin(), addrs_.end(), addr);
  if (it == addrs_.begin()) return nullptr;
  return &names_[static_cast<size_t>(it - addrs_.begin()) - 1];
}

std::vector<std::string_view> KernelFrames(const KernelSymbols& symbols,
                                           std::span<const uint64_t> chain) {
  // The chain starts with a context marker; a sample taken in user mode
  // starts with USER.
  std::vector<std::string_view> frames;
  bool have_context = false, in_kernel = false;
  for (uint64_t ip : chain) {
    if (ip >= static_cast<uint64_t>(PERF_CONTEXT_MAX)) {
      have_context = true;
      in_kernel = ip == static_cast<uint64_t>(PERF_CONTEXT_KERNEL);
      continue;
    }
    // No marker: tell user from kernel by the canonical upper half.
    if (!have_context) in_kernel = ip >= 0x8000000000000000ULL;
    if (!in_kernel) break;  // a user leaf, or the user part of the chain
    const std::string* sym = symbols.Resolve(frames.empty() ? ip : ip - 1);
    frames.push_back(sym ? StripCompilerSuffix(*sym) : std::string_view(kUnknownSymbol));
  }
  return frames;
}

std::string ClassifyFrames(const BucketSet& buckets, std::span<const std::string_view> frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    for (const Bucket& b : buckets.buckets()) {
      for (const Rule& r : b.rules) {
        if (!r.symbol.Matches(frames[i])) continue;
        bool ok = r.within.empty();
        for (size_t j = i + 1; !ok && j < frames.size(); ++j) {
          for (const Pattern& w : r.within) {
            if (w.Matches(frames[j])) {
              ok = true;
              break;
            }
          }
        }
        if (ok) return b.name;
      }
    }
  }
  return kOtherKernelBucket;
}

Classification Classify(const BucketSet& buckets, const KernelSymbols& symbols,
                        std::span<const uint64_t> chain) {
  std::vector<std::string_view> frames = KernelFrames(symbols, chain);
  if (frames.empty()) return {kUserBucket, ""};
  return {ClassifyFrames(buckets, frames), std::string(frames.front())};
}

std::string LocateBucketsFile(const std::string& configured) {
  if (!configured.empty()) return configured;
  std::vector<std::string> tried;
#ifdef MNTSCALE_SOURCE_DIR
  tried.push_back(MNTSCALE_SOURCE_DIR "/harness/data/attribution_buckets.json");
#endif
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    tried.push_back((exe.parent_path() / "attribution_buckets.json").string());
  }
  for (const std::string& p : tried) {
    if (access(p.c_str(), R_OK) == 0) return p;
  }
  std::string list;
  for (const std::string& p : tried) list += (list.empty() ? "" : ", ") + p;
  throw Unsupported("attribution buckets file not found (tried " + list +
                    "); pass SamplerConfig.buckets_file");
}

}  // namespace attribution

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
  if (err == EACCES || err == EPERM) {
    std::string paranoid = "?";
    TryReadFile("/proc/sys/kernel/perf_event_paranoid", &paranoid);
    while (!paranoid.empty() && paranoid.back() == '\n') paranoid.pop_back();
    return "kernel.perf_event_paranoid=" + paranoid +
           ": kernel call chains need root (CAP_PERFMON) or paranoid <= 1";
  }
  if (err == EINVAL) {
    return "sample rate above kernel.perf_event_max_sample_rate, or "
           "sample_max_stack above kernel.perf_event_max_stack";
  }
  if (err == ENOMEM) {
    return "perf ring buffer over kernel.perf_event_mlock_kb";
  }
  return "";
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
