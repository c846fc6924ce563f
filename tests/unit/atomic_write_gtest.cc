// Results are written atomically: a reader racing the writer sees the old
// document or the new one, never a torn or empty file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "mntscale/suite/results.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

// Version k: a header naming k and the body length, a body of one repeated
// letter, and a trailer; any mix of two versions or a prefix is detectable.
std::string Version(int k, size_t body) {
  return "v" + std::to_string(k) + " " + std::to_string(body) + "\n" +
         std::string(body, static_cast<char>('a' + k % 26)) + "\nend\n";
}

bool Whole(const std::string& s, std::string* why) {
  int k = -1;
  size_t body = 0;
  if (sscanf(s.c_str(), "v%d %zu\n", &k, &body) != 2 || k < 0) {
    *why = "no header: " + s.substr(0, 40);
    return false;
  }
  if (s != Version(k, body)) {
    *why = "torn: version " + std::to_string(k) + ", " + std::to_string(s.size()) + " bytes";
    return false;
  }
  return true;
}

std::string TempDir() {
  char tmpl[] = "/tmp/mntscale-atomic.XXXXXX";
  const char* d = mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d ? d : "";
}

TEST(AtomicWrite, ReaderRacingTheWriterNeverSeesAPartialFile) {
  const std::string dir = TempDir();
  const std::string path = dir + "/r.json";
  // A bounded number of reads, not a time window: the writer keeps replacing
  // the file until the reader has made its reads, however slow either is.
  constexpr int kReads = 200;
  std::atomic<bool> done{false};
  std::atomic<int> versions{0};
  std::thread writer([&] {
    for (int k = 0; !done.load() || k < 20; ++k) {
      // Sizes vary so a reader mixing two versions cannot match either.
      WriteFileAtomic(path, Version(k, (256u << 10) + (k % 7) * 4096));
      versions = k + 1;
    }
  });
  int reads = 0, bad = 0;
  std::string first_bad;
  while (reads < kReads) {
    std::string s;
    if (!TryReadFile(path, &s)) continue;  // not written yet
    ++reads;
    std::string why;
    if (!Whole(s, &why) && bad++ == 0) first_bad = why;
  }
  done = true;
  writer.join();
  EXPECT_EQ(bad, 0) << bad << " of " << reads << " reads saw a partial file; first: " << first_bad;
  std::string last;
  ASSERT_TRUE(TryReadFile(path, &last));
  EXPECT_EQ(last, Version(versions - 1, (256u << 10) + ((versions - 1) % 7) * 4096));
  // The temp file beside it is gone: renamed, not left behind.
  EXPECT_EQ(system(("test $(ls -A " + dir + " | wc -l) -eq 1").c_str()), 0);
  system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace mntscale
