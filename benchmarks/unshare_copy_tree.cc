// unshare_copy_tree: unshare(CLONE_NEWNS) copies the caller's whole mount
// tree (copy_tree: one clone_mnt per mount under namespace_sem and
// lock_mount_hash), so its cost is O(mounts in the copied namespace). Shared
// mounts add the copy to each peer group; a new user namespace marks every
// copy locked and turns shared into slave. Readers elsewhere see the
// write-side sections as mount_lock sequence bumps.
#include <sched.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <chrono>

#include "mntscale/background.h"
#include "mntscale/churn.h"
#include "mntscale/sandbox.h"
#include "mntscale/session.h"
#include "mntscale/sys.h"

namespace mntscale {
namespace {

// One unshare in a forked child, which is single-threaded (CLONE_NEWUSER
// refuses a multithreaded caller) and whose exit drops the copy. Returns
// how long the unshare took in ns, or throws.
uint64_t TimedUnshare(int ns_fd, int flags, int pu) {
  int pipefd[2];
  Check(pipe2(pipefd, O_CLOEXEC), "pipe2", "unshare timing");
  pid_t pid = fork();
  if (pid < 0) Check(-1, "fork", "unshare child");
  if (pid == 0) {
    // Async-signal-safe calls only: the parent has threads.
    if (pu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(pu, &set);
      sched_setaffinity(0, sizeof set, &set);
    }
    int64_t out = -EINVAL;
    if (setns(ns_fd, CLONE_NEWNS) < 0) {
      out = -errno;
    } else {
      uint64_t t0 = MonotonicNs();
      int rc = unshare(flags);
      out = rc < 0 ? -errno : static_cast<int64_t>(MonotonicNs() - t0);
    }
    (void)!write(pipefd[1], &out, sizeof out);
    _exit(0);
  }
  close(pipefd[1]);
  int64_t out = -EIO;
  ssize_t n = read(pipefd[0], &out, sizeof out);
  close(pipefd[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (n != sizeof out) out = -EIO;
  if (out < 0) {
    errno = static_cast<int>(-out);
    Check(-1, "unshare", flags & CLONE_NEWUSER ? "CLONE_NEWUSER|CLONE_NEWNS" : "CLONE_NEWNS",
          out == -ENOSPC ? "user.max_mnt_namespaces or fs.mount-max" : "");
  }
  return static_cast<uint64_t>(out);
}

void UnshareCopyTree(Session& s, const Point& p, Entry& e) {
  const int m = p.Int("mounts");
  const bool userns = p.Int("userns") != 0;
  const bool readers = p.Int("readers") != 0;
  const int flags = CLONE_NEWNS | (userns ? CLONE_NEWUSER : 0);
  ScratchNs source = NamespaceWithMounts(m, p.Str("propagation"));
  int in_ns = 0;
  source.Run([&] { in_ns = CountOwnMounts(); });

  // The unsharer on the last PU, a reader (if any) on the first.
  const auto& pus = s.topology().pus();
  const int unshare_pu = pus.size() > 1 ? pus.back().os_index : -1;
  std::unique_ptr<BackgroundReaders> bg;
  if (readers) {
    Farm& farm = s.FarmFor(s.config().profile, 1);
    std::vector<WorkerPlan> plans =
        s.Workers(p, &farm, FindOp("stat"), farm.image().deep_path, 1, "compact");
    bg = std::make_unique<BackgroundReaders>(std::move(plans));
    std::this_thread::sleep_for(std::chrono::duration<double>(s.config().window_s));
    bg->SetPhase(1);
  }
  // As many unshares as fit in the measurement time, at least five.
  const double budget_s = s.config().window_s * s.config().windows;
  Histogram lat;
  std::vector<double> samples;
  TimedUnshare(source.fd(), flags, unshare_pu);  // warm the slabs
  auto t0 = std::chrono::steady_clock::now();
  double spent_s = 0;
  while (samples.size() < 5 ||
         (std::chrono::steady_clock::now() - t0 < std::chrono::duration<double>(budget_s) &&
          samples.size() < 2000)) {
    if (s.interrupted().load()) throw Interrupted();
    uint64_t ns = TimedUnshare(source.fd(), flags, unshare_pu);
    lat.Record(ns);
    samples.push_back(ns);
    spent_s += ns * 1e-9;
  }
  if (bg) {
    bg->SetPhase(2);
    std::this_thread::sleep_for(std::chrono::duration<double>(s.config().window_s));
    bg->Stop();
  }
  std::sort(samples.begin(), samples.end());
  const double median_ns = samples[samples.size() / 2];
  e.FromEvents(samples.size(), spent_s, &lat);
  e.Set("mounts_in_ns", in_ns);
  e.Set("per_unshare_ns", median_ns);
  e.Set("per_mount_ns", median_ns / in_ns);
  if (bg) {
    for (auto [phase, name] : {std::pair{0, "idle"}, {1, "unshare"}}) {
      e.Set(std::string("reader_latency_ns_") + name, bg->Latency("reader", phase).ToJson());
      e.Set(std::string("reader_ops_per_sec_") + name, bg->OpsPerSec("reader", phase));
    }
  }
}

}  // namespace

MNTSCALE_SCENARIO(
    unshare_copy_tree,
    {
        .name = "unshare_copy_tree",
        .mechanism = "copy_tree in unshare(CLONE_NEWNS): one clone_mnt per mount of the copied "
                     "namespace under namespace_sem and lock_mount_hash",
        .expect = "per unshare linear in mounts (about 1.8 us per mount); shared and userns "
                  "add a constant per mount",
        .axes = {axes::Mounts("100,1000,5000,20000"),
                 EnumAxis("propagation", "private,shared", {"private", "shared"}),
                 BoolAxis("userns", "0,1"),
                 BoolAxis("readers", "0,1")},
        .run = UnshareCopyTree,
    });

}  // namespace mntscale
