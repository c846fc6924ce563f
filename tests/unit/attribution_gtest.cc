// Pure logic of attribution: call-chain classification on a synthetic symbol
// table, bucket-file loading, kernel symbols.
#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "../../harness/observe/attribution_internal.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

namespace att = attribution;

constexpr uint64_t kKernel = static_cast<uint64_t>(PERF_CONTEXT_KERNEL);
constexpr uint64_t kUser = static_cast<uint64_t>(PERF_CONTEXT_USER);

// Each function gets 0x100 bytes starting at its address.
att::KernelSymbols Symbols() {
  return att::KernelSymbols::FromEntries({
      {0xffffffff81000000, "entry_SYSCALL_64"},
      {0xffffffff81000100, "__x64_sys_newfstatat"},
      {0xffffffff81000200, "filename_lookup"},
      {0xffffffff81000300, "link_path_walk"},
      {0xffffffff81000400, "__legitimize_mnt"},
      {0xffffffff81000500, "try_to_unlazy.isra.0"},
      {0xffffffff81000600, "ovl_lookup.cold"},
      {0xffffffff81000700, "cp_new_stat"},
      {0xffffffff81000800, "rwsem_down_write_slowpath"},
      {0xffffffff81000900, "do_lock_mount"},
      {0xffffffff81000a00, "lookup_slow"},
      {0xffffffff81000b00, "__lookup_mnt.constprop.0"},
  });
}

att::BucketSet Buckets() {
  return att::BucketSet::Parse(nlohmann::json::parse(R"({
    "buckets": [
      {"name": "mount_lock", "mount_machinery": true, "symbols": ["__legitimize_mnt"]},
      {"name": "mount_hash", "mount_machinery": true, "symbols": ["__lookup_mnt"]},
      {"name": "namespace_sem", "mount_machinery": true, "symbols": [
        {"symbol": "rwsem_down_write_slowpath", "within": ["do_lock_mount"]}]},
      {"name": "overlay", "symbols": ["ovl_*"]},
      {"name": "path_walk", "symbols": ["link_path_walk", "try_to_unlazy", "filename_lookup"]}
    ]})"),
                               "test");
}

uint64_t At(uint64_t base, uint64_t off = 0x10) { return base + off; }

TEST(Classify, DeepestMatchingFrameWins) {
  // leaf __legitimize_mnt <- try_to_unlazy <- link_path_walk <- syscall
  std::vector<uint64_t> chain = {kKernel,
                                 At(0xffffffff81000400),
                                 At(0xffffffff81000500),
                                 At(0xffffffff81000300),
                                 At(0xffffffff81000100),
                                 kUser,
                                 0x401000};
  auto c = att::Classify(Buckets(), Symbols(), chain);
  EXPECT_EQ(c.bucket, "mount_lock");
  EXPECT_EQ(c.leaf_symbol, "__legitimize_mnt");
}

TEST(Classify, UnlistedLeafCountsForNearestListedCaller) {
  // cp_new_stat is unlisted; its caller link_path_walk (synthetic) is.
  std::vector<uint64_t> chain = {kKernel, At(0xffffffff81000700), At(0xffffffff81000300)};
  auto c = att::Classify(Buckets(), Symbols(), chain);
  EXPECT_EQ(c.bucket, "path_walk");
  EXPECT_EQ(c.leaf_symbol, "cp_new_stat");
}

TEST(Classify, StripsCompilerSuffixes) {
  std::vector<uint64_t> chain = {kKernel, At(0xffffffff81000500), At(0xffffffff81000100)};
  EXPECT_EQ(att::Classify(Buckets(), Symbols(), chain).bucket, "path_walk");
  chain = {kKernel, At(0xffffffff81000b00), At(0xffffffff81000300)};
  auto c = att::Classify(Buckets(), Symbols(), chain);
  EXPECT_EQ(c.bucket, "mount_hash");
  EXPECT_EQ(c.leaf_symbol, "__lookup_mnt");
  EXPECT_EQ(att::StripCompilerSuffix("foo.constprop.0.cold"), "foo");
  EXPECT_EQ(att::StripCompilerSuffix("foo"), "foo");
}

TEST(Classify, PrefixPattern) {
  std::vector<uint64_t> chain = {kKernel, At(0xffffffff81000600), At(0xffffffff81000a00),
                                 At(0xffffffff81000300)};
  EXPECT_EQ(att::Classify(Buckets(), Symbols(), chain).bucket, "overlay");
}

TEST(Classify, WithinRuleNeedsTheCaller) {
  std::vector<uint64_t> chain = {kKernel, At(0xffffffff81000800), At(0xffffffff81000900)};
  EXPECT_EQ(att::Classify(Buckets(), Symbols(), chain).bucket, "namespace_sem");
  // The same rwsem slow path under a path walk is not namespace_sem.
  chain = {kKernel, At(0xffffffff81000800), At(0xffffffff81000a00), At(0xffffffff81000300)};
  EXPECT_EQ(att::Classify(Buckets(), Symbols(), chain).bucket, "path_walk");
}

TEST(Classify, UnknownIsOtherKernel) {
  std::vector<uint64_t> chain = {kKernel, At(0xffffffff81000700), At(0xffffffff81000000)};
  auto c = att::Classify(Buckets(), Symbols(), chain);
  EXPECT_EQ(c.bucket, "other_kernel");
  EXPECT_EQ(c.leaf_symbol, "cp_new_stat");
  // Below the first symbol: unresolvable, still never a crash.
  chain = {kKernel, 0xffffffff80000000};
  c = att::Classify(Buckets(), Symbols(), chain);
  EXPECT_EQ(c.bucket, "other_kernel");
  EXPECT_EQ(c.leaf_symbol, att::kUnknownSymbol);
}

TEST(Classify, UserAddressesAreUser) {
  std::vector<uint64_t> chain = {kUser, 0x401000, 0x402000};
  auto c = att::Classify(Buckets(), Symbols(), chain);
  EXPECT_EQ(c.bucket, "user");
  EXPECT_TRUE(c.leaf_symbol.empty());
  chain = {0x401000};  // no context marker: the address says user
  EXPECT_EQ(att::Classify(Buckets(), Symbols(), chain).bucket, "user");
  EXPECT_EQ(att::Classify(Buckets(), Symbols(), {}).bucket, "user");
}

TEST(Classify, ReturnAddressAtFunctionEndStaysInCaller) {
  // A caller frame's return address equal to the next symbol's start
  // belongs to the caller (resolved at addr - 1).
  std::vector<uint64_t> chain = {kKernel, At(0xffffffff81000700), 0xffffffff81000400};
  EXPECT_EQ(att::Classify(Buckets(), Symbols(), chain).bucket, "path_walk");
}

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/mntscale_buckets_XXXXXX";
    int fd = mkstemp(tmpl);
    path_ = tmpl;
    if (fd >= 0) {
      (void)!write(fd, text.data(), text.size());
      close(fd);
    }
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(BucketFile, MissingFileIsUnsupportedWithPath) {
  try {
    att::BucketSet::Load("/nonexistent/buckets.json");
    FAIL() << "expected Unsupported";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/buckets.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("ENOENT"), std::string::npos);
  }
}

TEST(BucketFile, MalformedFilesAreUsageErrors) {
  const char* bad[] = {
      "{not json",
      R"({"buckets": {}})",
      R"({"buckets": []})",
      R"({"buckets": [{"symbols": ["a"]}]})",
      R"({"buckets": [{"name": "x"}]})",
      R"({"buckets": [{"name": "x", "symbols": [1]}]})",
      R"({"buckets": [{"name": "x", "symbols": [{"symbol": "a", "within": "b"}]}]})",
      R"({"buckets": [{"name": "user", "symbols": ["a"]}]})",
      R"({"buckets": [{"name": "x", "symbols": ["a"]}, {"name": "x", "symbols": ["b"]}]})",
  };
  for (const char* text : bad) {
    TempFile f(text);
    try {
      att::BucketSet::Load(f.path());
      ADD_FAILURE() << "accepted: " << text;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(f.path()), std::string::npos);
    }
  }
}

TEST(BucketFile, ShippedFileLoadsWithTheMountBuckets) {
  auto set = att::BucketSet::Load(std::string(MNTSCALE_SOURCE_DIR) +
                                  "/harness/data/attribution_buckets.json");
  for (const char* b :
       {"mount_lock", "mount_hash", "namespace_sem", "rcu_wait", "ns_copy_teardown"}) {
    EXPECT_TRUE(set.IsMountBucket(b)) << b;
  }
  EXPECT_FALSE(set.IsMountBucket("overlay"));
  EXPECT_FALSE(set.IsMountBucket("path_walk"));
  auto names = set.AllNames();
  EXPECT_EQ(names.back(), "user");
  EXPECT_EQ(names[names.size() - 2], "other_kernel");
}

TEST(KernelSymbols, ZeroAddressesAreUnsupported) {
  TempFile f("0000000000000000 T _stext\n0000000000000000 t link_path_walk\n");
  try {
    att::KernelSymbols::Load(f.path());
    FAIL() << "expected Unsupported";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("kptr_restrict"), std::string::npos);
  }
}

TEST(KernelSymbols, ParsesModulesAndSkipsData) {
  TempFile f(
      "ffffffff81000000 T _stext\n"
      "ffffffff82000000 D some_data\n"
      "ffffffffc0001000 t ovl_lookup\t[overlay]\n");
  auto syms = att::KernelSymbols::Load(f.path());
  EXPECT_EQ(syms.size(), 2u);
  ASSERT_NE(syms.Resolve(0xffffffffc0001010), nullptr);
  EXPECT_EQ(*syms.Resolve(0xffffffffc0001010), "ovl_lookup");
  EXPECT_EQ(*syms.Resolve(0xffffffff82000010), "_stext");
}

}  // namespace
}  // namespace mntscale
