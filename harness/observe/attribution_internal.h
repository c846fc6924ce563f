// Pieces of the kernel sampler that are pure logic (bucket rules, symbol
// table, call-chain classification), exposed for unit tests.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mntscale::attribution {

inline constexpr const char* kUserBucket = "user";
inline constexpr const char* kOtherKernelBucket = "other_kernel";
inline constexpr const char* kUnknownSymbol = "[unknown]";

// "name" matches exactly; "name*" matches any symbol starting with "name".
struct Pattern {
  std::string text;
  bool prefix = false;
  static Pattern Parse(std::string_view s);
  bool Matches(std::string_view symbol) const;
};

// A frame matches a rule when its symbol matches `symbol` and, if `within` is
// not empty, some frame further out (a caller) matches one of `within`. This
// lets generic functions (rwsem slow paths, spinlock slow paths) count for a
// bucket only under the mount code that called them.
struct Rule {
  Pattern symbol;
  std::vector<Pattern> within;
};

struct Bucket {
  std::string name;
  std::vector<Rule> rules;
  bool mount_machinery = false;  // counts toward mount_pressure_share
};

class BucketSet {
 public:
  // Throws Unsupported when the file is missing, UsageError when it is
  // malformed (both name the path).
  static BucketSet Load(const std::string& path);
  // Throws UsageError naming `origin` on a malformed document.
  static BucketSet Parse(const nlohmann::json& doc, const std::string& origin);

  const std::vector<Bucket>& buckets() const { return buckets_; }
  // All bucket names in report order: the file's buckets, then other_kernel
  // and user.
  std::vector<std::string> AllNames() const;
  bool IsMountBucket(const std::string& name) const;

 private:
  std::vector<Bucket> buckets_;
};

// "foo.isra.0" -> "foo", "foo.constprop.0.cold" -> "foo", "foo.cold" -> "foo".
// Compiler clones keep the source function's name before the first '.'.
std::string_view StripCompilerSuffix(std::string_view symbol);

// Kernel text symbols sorted by address; Resolve is a binary search for the
// greatest symbol address <= addr.
class KernelSymbols {
 public:
  // Reads /proc/kallsyms (or `path`). Throws Unsupported when addresses are
  // hidden (all zeros: kernel.kptr_restrict, or not root) or the file is
  // unreadable.
  static KernelSymbols Load(const std::string& path = "/proc/kallsyms");
  static KernelSymbols FromEntries(std::vector<std::pair<uint64_t, std::string>> entries);

  // nullptr when addr is below the first symbol.
  const std::string* Resolve(uint64_t addr) const;
  size_t size() const { return addrs_.size(); }

 private:
  std::vector<uint64_t> addrs_;
  std::vector<std::string> names_;
};

struct Classification {
  std::string bucket;       // a bucket name, other_kernel or user
  std::string leaf_symbol;  // stripped leaf kernel symbol; empty for user
};

// Classifies one sample's call chain as perf delivers it: leaf first, with
// PERF_CONTEXT_* markers (values >= PERF_CONTEXT_MAX) separating kernel and
// user parts. A sample is "user" when its first frame is a user frame. A
// kernel sample goes to the bucket of its DEEPEST matching frame, i.e. the
// frame closest to the leaf: that frame names the mechanism the CPU was
// actually in (__legitimize_mnt under link_path_walk is mount_lock, not
// path_walk). Frames after the leaf are return addresses and are resolved at
// addr - 1 so a call at the very end of a function stays in that function.
Classification Classify(const BucketSet& buckets, const KernelSymbols& symbols,
                        std::span<const uint64_t> chain);

// The kernel frames of a chain, leaf first, resolved and stripped; empty for
// a user sample. The views point into `symbols` (or kUnknownSymbol).
std::vector<std::string_view> KernelFrames(const KernelSymbols& symbols,
                                           std::span<const uint64_t> chain);
// The bucket of the deepest frame matching a rule, else other_kernel.
std::string ClassifyFrames(const BucketSet& buckets, std::span<const std::string_view> frames);

// The bucket data file: `configured` if set, else the source tree's or the
// one beside the executable. Throws Unsupported naming the paths tried.
std::string LocateBucketsFile(const std::string& configured);

}  // namespace mntscale::attribution
