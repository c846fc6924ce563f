// `mntscale observe` against real namespaces (issue 25): an exact census of a
// farm on both sources, fanotify event counts against a churn that counts its
// own calls, a host table left unchanged, and a refusal without privileges.
// Run as root.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "mntscale/run/churn.h"
#include "mntscale/model/farm.h"
#include "mntscale/model/idmap.h"
#include "mntscale/live/observe.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

#define REQUIRE_ROOT() \
  if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_SYS_ADMIN) for real namespaces"

// What this process holds: its own namespace and every namespace it keeps an
// fd on. The rest of the host is not the test's to count.
struct Mine {
  long namespaces = 0, mounts = 0, overlay = 0, layers = 0;
};
Mine Held(const Census& c) {
  Mine m;
  for (const NamespaceCount& n : c.namespaces) {
    if (n.pid != getpid()) continue;
    EXPECT_EQ(n.error, "") << n.path;
    ++m.namespaces;
    m.mounts += n.mounts;
    m.overlay += n.overlay;
    m.layers += n.overlay_layers;
  }
  return m;
}

std::string Shell(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// With a farm of N containers held, the census finds exactly N more
// namespaces and N x mounts-per-container more mounts, on both sources (the
// mountinfo source enters each fd-held namespace with a child to read it).
TEST(ObserveCensus, ExactForAFarmOnBothSources) {
  REQUIRE_ROOT();
  Sandbox::Enter();
  Profile profile;
  profile.layers = 5;
  profile.depth = 2;
  profile.files_per_dir = 1;
  const Image& image = GetImage({profile.layers, profile.depth, profile.files_per_dir, profile.binds});
  BaseNamespace();
  for (CensusSource src : {CensusSource::kListmount, CensusSource::kMountinfo}) {
    CensusReader reader(src);
    ASSERT_EQ(reader.source(), src);
    Mine before = Held(reader.Read());
    Farm farm(profile, image, 2);
    for (int n : {1, 100, 1000}) {
      farm.Grow(n);
      long per = farm.containers()[0].mounts;
      ASSERT_GT(per, 1);
      for (const Container& c : farm.containers()) ASSERT_EQ(c.mounts, per);
      Mine now = Held(reader.Read());
      const char* name = CensusSourceName(src);
      EXPECT_EQ(now.namespaces - before.namespaces, n) << name << " N=" << n;
      EXPECT_EQ(now.mounts - before.mounts, n * per) << name << " N=" << n;
      // One overlay root per container, of the profile's layers.
      EXPECT_EQ(now.overlay - before.overlay, n) << name << " N=" << n;
      EXPECT_EQ(now.layers - before.layers, n * profile.layers) << name << " N=" << n;
    }
  }
}

// Idmapped mounts are counted as such on both sources: statmount's
// MOUNT_ATTR_IDMAP and mountinfo's "idmapped" option.
TEST(ObserveCensus, CountsIdmappedMountsOnBothSources) {
  REQUIRE_ROOT();
  Sandbox::Enter();
  constexpr int kIdmapped = 7;
  ScratchNs ns = NamespaceWithMounts(0, Propagation::kPrivate);
  std::string err;
  std::atomic<long> ops{0};
  ns.Run([&] {
    try {
      for (int i = 0; i < kIdmapped; ++i) {
        std::string dir = "/i" + std::to_string(i);
        MkdirP(dir);
        Fd m = CloneIdmapped("/src", ContainerUserNamespace(), &ops);
        AttachMount(m, dir, &ops);
      }
    } catch (const Unsupported& e) {
      err = e.what();
    }
  });
  if (!err.empty()) GTEST_SKIP() << err;
  struct stat st;
  ASSERT_EQ(fstat(ns.fd(), &st), 0);
  for (CensusSource src : {CensusSource::kListmount, CensusSource::kMountinfo}) {
    CensusReader reader(src);
    Census c = reader.Read();
    const NamespaceCount* found = nullptr;
    for (const NamespaceCount& n : c.namespaces) {
      if (n.inode == st.st_ino) found = &n;
    }
    ASSERT_NE(found, nullptr) << CensusSourceName(src);
    EXPECT_EQ(found->error, "");
    EXPECT_EQ(found->idmapped, kIdmapped) << CensusSourceName(src);
    EXPECT_EQ(found->mounts, 2 + kIdmapped) << CensusSourceName(src);  // root, /src, the clones
  }
}

// A child in a namespace of its own mounts and unmounts a tmpfs K times and
// counts its calls; the fanotify counter, which marked that namespace, sees
// the same number of attaches and detaches (the issue asks within 1%; a
// marked namespace loses none).
TEST(ObserveEvents, AttachAndDetachMatchAChurnsOwnCount) {
  REQUIRE_ROOT();
  std::string why = MountEventCounter::Unavailable();
  if (!why.empty()) GTEST_SKIP() << "unsupported: " << why;
  Sandbox::Enter();
  std::string dir = "/tmp/observe-churn";
  MkdirP(dir);
  int go[2], done[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(done), 0);
  constexpr long kOps = 2000;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr)) {
      _exit(10);
    }
    char c;
    if (write(done[1], "r", 1) != 1 || read(go[0], &c, 1) != 1) _exit(11);
    long mounts = 0, umounts = 0;
    for (long i = 0; i < kOps; ++i) {
      mounts += mount("none", dir.c_str(), "tmpfs", 0, "size=4k") == 0;
      umounts += umount2(dir.c_str(), 0) == 0;
    }
    long counts[2] = {mounts, umounts};
    if (write(done[1], counts, sizeof(counts)) != sizeof(counts)) _exit(12);
    pause();
    _exit(0);
  }
  char r;
  ASSERT_EQ(read(done[0], &r, 1), 1);
  CensusReader reader(CensusSource::kAuto);
  MountEventCounter events;
  Census c = reader.Read();
  bool found = false;
  for (const NamespaceCount& n : c.namespaces) found |= n.pid == child;
  ASSERT_TRUE(found) << "the churn's namespace was not found";
  EXPECT_EQ(events.Watch(c.namespaces), 0);
  events.Take();
  ASSERT_EQ(write(go[1], "g", 1), 1);
  long counts[2] = {0, 0};
  ASSERT_EQ(read(done[0], counts, sizeof(counts)), static_cast<ssize_t>(sizeof(counts)));
  MountEventCounter::Counts got = events.Take();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(counts[0], kOps);
  EXPECT_EQ(counts[1], kOps);
  EXPECT_EQ(got.overflows, 0);
  EXPECT_EQ(got.attach, counts[0]);
  EXPECT_EQ(got.detach, counts[1]);
}

// observe reads; it never mounts. The host's table (this process has not
// entered the sandbox) is the same after two intervals on each source.
TEST(ObserveSafety, HostMountTableUnchanged) {
  REQUIRE_ROOT();
  std::string before = ReadFile("/proc/self/mountinfo");
  for (const char* src : {"listmount", "mountinfo"}) {
    int rc = 0;
    std::string out = Shell(std::string(MNTSCALE_BINARY) + " observe --interval 0.2 --count 2 --source " +
                              src + " 2>&1",
                          &rc);
    EXPECT_EQ(rc, 0) << out;
  }
  EXPECT_EQ(ReadFile("/proc/self/mountinfo"), before);
}

// Without CAP_SYS_ADMIN and CAP_SYS_PTRACE, observe says what it needs and
// exits 2 before reading anything.
TEST(ObserveSafety, RefusesWithoutPrivileges) {
  REQUIRE_ROOT();
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    dup2(out[1], STDERR_FILENO);
    dup2(out[1], STDOUT_FILENO);
    // Gone from the bounding set, so exec cannot give them back to root.
    prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0);
    prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0);
    execl(MNTSCALE_BINARY, MNTSCALE_BINARY, "observe", "--interval", "0.1", nullptr);
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) text.append(buf, n);
  int st = 0;
  waitpid(child, &st, 0);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 2) << text;
  EXPECT_NE(text.find("CAP_SYS_ADMIN"), std::string::npos) << text;
}

}  // namespace
}  // namespace mntscale
