// unshare_copy_tree: unshare(CLONE_NEWNS) copies the caller's whole mount
// tree (copy_tree: one clone_mnt per mount under namespace_sem and
// lock_mount_hash), so its cost is O(mounts in the copied namespace). Shared
// mounts add the copy to each peer group; a new user namespace marks every
// copy locked and turns shared into slave. Readers elsewhere see the
// write-side sections as mount_lock sequence bumps.
#include <sched.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include "mntscale/run/background.h"
#include "mntscale/run/churn.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

// One unshare in a forked child, which is single-threaded (CLONE_NEWUSER
// refuses a multithreaded caller), inherits the actor's pinning, and whose
// exit drops the copy. The child times the unshare itself; its start and end
// become the event's span.
void TimedUnshare(int ns_fd, int flags, EventContext* ctx) {
  int pipefd[2];
  Check(pipe2(pipefd, O_CLOEXEC), "pipe2", "unshare timing");
  pid_t pid = fork();
  if (pid < 0) Check(-1, "fork", "unshare child");
  if (pid == 0) {
    // Async-signal-safe calls only: the parent may have threads.
    int64_t out[2] = {-EINVAL, 0};
    if (setns(ns_fd, CLONE_NEWNS) < 0) {
      out[0] = -errno;
    } else {
      uint64_t t0 = MonotonicNs();
      int rc = unshare(flags);
      uint64_t t1 = MonotonicNs();
      out[0] = rc < 0 ? -errno : static_cast<int64_t>(t0);
      out[1] = static_cast<int64_t>(t1);
    }
    (void)!write(pipefd[1], out, sizeof out);
    _exit(0);
  }
  close(pipefd[1]);
  int64_t out[2] = {-EIO, 0};
  ssize_t n = read(pipefd[0], out, sizeof out);
  close(pipefd[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (n != sizeof out) out[0] = -EIO;
  if (out[0] < 0) {
    errno = static_cast<int>(-out[0]);
    Check(-1, "unshare", flags & CLONE_NEWUSER ? "CLONE_NEWUSER|CLONE_NEWNS" : "CLONE_NEWNS",
          out[0] == -ENOSPC ? "user.max_mnt_namespaces or fs.mount-max" : "");
  }
  if (ctx) ctx->SetSpan(static_cast<uint64_t>(out[0]), static_cast<uint64_t>(out[1]));
}

void UnshareCopyTree(Session& s, const Point& p, Entry& e) {
  const int m = p.Int("mounts");
  const bool userns = p.Int("userns") != 0;
  const bool readers = p.Int("readers") != 0;
  const int flags = CLONE_NEWNS | (userns ? CLONE_NEWUSER : 0);
  ScratchNs source = NamespaceWithMounts(m, ParseEnum(kPropagations, p.Str("propagation"), "propagation"));
  int in_ns = 0;
  source.Run([&] { in_ns = CountOwnMounts(); });

  // A reader (if any) on the first PU of a compact plan, the unsharer on the
  // next.
  std::unique_ptr<BackgroundReaders> bg;
  if (readers) {
    Farm& farm = s.FarmFor(s.config().profile, 1);
    std::vector<WorkerPlan> plans =
        s.Workers(p, &farm, FindOp("stat"), farm.image().deep_path, 1, "compact");
    bg = std::make_unique<BackgroundReaders>(std::move(plans), s.config().mode);
    std::this_thread::sleep_for(std::chrono::duration<double>(s.config().window_s));
    bg->SetPhase(1);
  }
  // As many unshares as fit in the measurement time, at least five.
  EventSpec spec;
  spec.actors = s.Slots(p, 1, "compact", 1);
  spec.events = 2000;
  spec.min_events = 5;
  spec.budget_s = s.config().window_s * s.config().windows;
  spec.setup = [&](EventContext&) { TimedUnshare(source.fd(), flags, nullptr); };  // warm the slabs
  spec.event = [&](EventContext& c) { TimedUnshare(source.fd(), flags, &c); };
  EventResult r = s.Events(spec, &e);
  if (bg) {
    bg->SetPhase(2);
    std::this_thread::sleep_for(std::chrono::duration<double>(s.config().window_s));
    bg->Stop();
  }
  std::vector<uint64_t> samples;
  for (const EventTime& t : r.times) samples.push_back(t.ns());
  std::sort(samples.begin(), samples.end());
  const double median_ns = samples[samples.size() / 2];
  e.FromEvents(r.events, r.sum_s, &r.latency);
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
        .claims = {claims::Linear("per_unshare_ns", "mounts", 0.95, 100, 5000, "ns/mount",
                                  "unshare(CLONE_NEWNS) is linear in the copied namespace's "
                                  "mounts (copy_tree: 0.1-5 µs per mount)")
                       .Where({{"propagation", "private"}, {"userns", "0"}, {"readers", "0"}})},
    });

}  // namespace mntscale
