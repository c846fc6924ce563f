// The attribution buckets and kernel symbols: patterns of
// harness/data/attribution_buckets.json, /proc/kallsyms resolved, and a
// call chain classified into its bucket. Pure logic, unit-tested through
// attribution_internal.h; the sampler (attribution.cc) and the wait tracer
// (waits.cc) use it.
#include <linux/perf_event.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "attribution_internal.h"
#include "mntscale/observe/attribution.h"
#include "mntscale/sys/sys.h"

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

}  // namespace mntscale
