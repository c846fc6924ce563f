// The event runner (events.h) on the real kernel, in thread and process
// mode: events timed by the actors, the span and the sum, histograms, a
// background reader beside them, an actor's exception reaching the caller
// with its type, actors pinned to their planned PU, fds kept past the actor.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "mntscale/run/background.h"
#include "mntscale/run/events.h"
#include "mntscale/model/farm.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/model/scratch.h"
#include "mntscale/sys/sys.h"
#include "mntscale/run/topology.h"

namespace mntscale {
namespace {

// What actors write where the test can read it in either mode.
struct Seen {
  std::atomic<int> cpu_mask_of[8];  // the one CPU an actor's affinity allows, or -1
  std::atomic<int> pid[8];
  std::atomic<int> events_of[8];
};

class EventsTest : public ::testing::TestWithParam<WorkerMode> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_SYS_ADMIN) for real mounts";
    Sandbox::Enter();
    void* mem =
        mmap(nullptr, sizeof(Seen), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
    seen_ = new (mem) Seen();
  }
  void TearDown() override {
    if (seen_) munmap(seen_, sizeof(Seen));
  }
  std::vector<Slot> Slots(int n) {
    return PlanPlacement(Topology::Host(), PlacementSpec::Parse("compact,share"), n);
  }
  Seen* seen_ = nullptr;
};

// The one CPU the calling thread may run on, or -1 when it may run on more.
int OnlyCpu() {
  cpu_set_t* set = CPU_ALLOC(4096);
  size_t size = CPU_ALLOC_SIZE(4096);
  CPU_ZERO_S(size, set);
  int only = -1;
  if (sched_getaffinity(0, size, set) == 0 && CPU_COUNT_S(size, set) == 1) {
    for (int c = 0; c < 4096; ++c) {
      if (CPU_ISSET_S(c, size, set)) only = c;
    }
  }
  CPU_FREE(set);
  return only;
}

TEST_P(EventsTest, EventsAreTimedPinnedAndCounted) {
  constexpr int kActors = 2, kEvents = 10;
  EventSpec spec;
  spec.mode = GetParam();
  spec.actors = Slots(kActors);
  spec.events = kEvents;
  Seen* seen = seen_;
  spec.setup = [seen](EventContext& c) {
    seen->cpu_mask_of[c.actor] = OnlyCpu();
    seen->pid[c.actor] = getpid();
  };
  spec.event = [seen](EventContext& c) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    c.ops->fetch_add(3);
    seen->events_of[c.actor].fetch_add(1);
  };
  EventResult r = RunEvents(spec);
  EXPECT_EQ(r.events, static_cast<uint64_t>(kEvents));
  ASSERT_EQ(r.times.size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(r.latency.count(), static_cast<uint64_t>(kEvents));
  EXPECT_GE(r.latency.Quantile(0.5), 2000000u) << "each event sleeps 2 ms";
  EXPECT_EQ(r.ops, 3 * kEvents);
  for (const EventTime& t : r.times) EXPECT_GE(t.ns(), 2000000u);
  // Every event's time is inside the span; the events of an actor do not
  // overlap, so the sum is at most actors x span.
  EXPECT_GT(r.span_s, 0);
  EXPECT_LE(r.sum_s, kActors * r.span_s + 1e-9);
  ASSERT_EQ(r.actors.size(), static_cast<size_t>(kActors));
  int total = 0;
  for (int a = 0; a < kActors; ++a) {
    EXPECT_EQ(seen->cpu_mask_of[a].load(), spec.actors[a].pu.os_index) << "actor " << a;
    EXPECT_EQ(r.actors[a].events, seen->events_of[a].load());
    EXPECT_GT(r.actors[a].tid, 0);
    total += r.actors[a].events;
    if (GetParam() == WorkerMode::kProcess) {
      EXPECT_NE(seen->pid[a].load(), getpid()) << "actor " << a << " is not a process";
      EXPECT_EQ(r.actors[a].tid, seen->pid[a].load());
    } else {
      EXPECT_EQ(seen->pid[a].load(), getpid()) << "actor " << a << " is not a thread";
    }
  }
  EXPECT_EQ(total, kEvents);
}

// One actor, no prepare, events back to back: the span is the sum plus only
// the runner's steps between events.
TEST_P(EventsTest, OneActorSpanAgreesWithSum) {
  EventSpec spec;
  spec.mode = GetParam();
  spec.actors = Slots(1);
  spec.events = 20;
  spec.event = [](EventContext&) { std::this_thread::sleep_for(std::chrono::milliseconds(1)); };
  EventResult r = RunEvents(spec);
  EXPECT_EQ(r.events, 20u);
  EXPECT_LE(r.sum_s, r.span_s);
  EXPECT_NEAR(r.sum_s, r.span_s, 0.2 * r.span_s);
}

// Events of its own per actor (k % actors), each run once.
TEST_P(EventsTest, PerActorEventsStayWithTheirActor) {
  EventSpec spec;
  spec.mode = GetParam();
  spec.actors = Slots(3);
  spec.events = 6;
  spec.shared = false;
  Seen* seen = seen_;
  spec.event = [seen](EventContext& c) {
    if (c.event % 3 != c.actor) seen->events_of[7].fetch_add(1);
    seen->events_of[c.actor].fetch_add(1);
  };
  EventResult r = RunEvents(spec);
  EXPECT_EQ(r.events, 6u);
  EXPECT_EQ(seen->events_of[7].load(), 0) << "an actor ran another's event";
  for (int a = 0; a < 3; ++a) EXPECT_EQ(seen->events_of[a].load(), 2);
}

TEST_P(EventsTest, BudgetStopsAfterMinEvents) {
  EventSpec spec;
  spec.mode = GetParam();
  spec.actors = Slots(1);
  spec.events = 100000;
  spec.min_events = 5;
  spec.budget_s = 0.05;
  spec.event = [](EventContext&) { std::this_thread::sleep_for(std::chrono::milliseconds(5)); };
  EventResult r = RunEvents(spec);
  EXPECT_GE(r.events, 5u);
  EXPECT_LT(r.events, 100u);
}

// An event that reports its own span (work done in a child it forked).
TEST_P(EventsTest, SetSpanReplacesTheRunnersTimestamps) {
  EventSpec spec;
  spec.mode = GetParam();
  spec.actors = Slots(1);
  spec.events = 3;
  spec.event = [](EventContext& c) {
    uint64_t t0 = MonotonicNs();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    c.SetSpan(t0 + 1000, t0 + 5000);  // inside the call
  };
  EventResult r = RunEvents(spec);
  ASSERT_EQ(r.times.size(), 3u);
  for (const EventTime& t : r.times) EXPECT_EQ(t.ns(), 4000u);
}

TEST_P(EventsTest, SysErrorInAnActorReachesTheCaller) {
  EventSpec spec;
  spec.mode = GetParam();
  spec.actors = Slots(2);
  spec.events = 4;
  spec.event = [](EventContext& c) {
    if (c.event == 1) Check(open("/nonexistent/mntscale-event", O_RDONLY), "open", "/nonexistent");
  };
  try {
    RunEvents(spec);
    FAIL() << "no exception";
  } catch (const SysError& e) {
    EXPECT_EQ(e.err(), ENOENT);
    EXPECT_EQ(e.call(), "open");
    EXPECT_NE(std::string(e.what()).find("ENOENT"), std::string::npos) << e.what();
  }
}

TEST_P(EventsTest, SetupFailureReachesTheCaller) {
  EventSpec spec;
  spec.mode = GetParam();
  spec.actors = Slots(2);
  spec.events = 2;
  spec.setup = [](EventContext& c) {
    if (c.actor == 1) throw Unsupported("no such thing here");
  };
  spec.event = [](EventContext&) {};
  EXPECT_THROW(RunEvents(spec), Unsupported);
}

// Each actor keeps a namespace it made; the caller holds it after the run,
// also when the actor was a process that has exited.
TEST_P(EventsTest, KeptFdsOutliveTheActor) {
  EventSpec spec;
  spec.mode = GetParam();
  spec.actors = Slots(2);
  spec.events = 4;
  spec.event = [](EventContext& c) {
    Check(unshare(CLONE_NEWNS), "unshare", "CLONE_NEWNS");
    c.Keep(OpenThreadMountNs());
  };
  EventResult r = RunEvents(spec);
  ASSERT_EQ(r.kept.size(), 4u);
  struct stat own;
  ASSERT_EQ(fstatat(Sandbox::Enter().proc_fd(), "thread-self/ns/mnt", &own, 0), 0);
  for (const Fd& fd : r.kept) {
    struct stat st;
    ASSERT_EQ(fstat(fd.get(), &st), 0);
    EXPECT_NE(st.st_ino, own.st_ino);
    // Still a live namespace: setns into it works.
    OnPrivateThread([&] { Check(setns(fd.get(), CLONE_NEWNS), "setns", "kept namespace"); });
  }
}

// A background reader runs beside the events in the same mode, its latency
// split by the phase the caller sets when the actors are ready.
TEST_P(EventsTest, BackgroundReaderRunsBesideEvents) {
  Profile profile;
  profile.layers = 2;
  Farm farm(profile,
            GetImage({profile.layers, profile.depth, profile.files_per_dir, profile.binds}), 1);
  farm.Grow(1);
  WorkerPlan w;
  w.slot = Slots(1)[0];
  w.container = &farm.containers()[0];
  w.op = FindOp("stat");
  w.path = farm.image().deep_path;
  w.role = "health";
  BackgroundReaders bg({w}, GetParam());
  std::vector<pid_t> tids = bg.tids();
  ASSERT_EQ(tids.size(), 1u);
  // A thread of ours, or (process mode) a child that is not.
  const bool ours = access(("/proc/self/task/" + std::to_string(tids[0])).c_str(), F_OK) == 0;
  EXPECT_EQ(ours, GetParam() == WorkerMode::kThread) << "tid " << tids[0];
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EventSpec spec;
  spec.mode = GetParam();
  spec.actors = Slots(1);
  spec.events = 5;
  spec.on_ready = [&] { bg.SetPhase(1); };
  spec.event = [](EventContext&) { std::this_thread::sleep_for(std::chrono::milliseconds(5)); };
  EventResult r = RunEvents(spec);
  bg.Stop();
  EXPECT_EQ(r.events, 5u);
  EXPECT_GT(bg.Latency("health", 0).count(), 0u);
  EXPECT_GT(bg.Latency("health", 1).count(), 0u);
  EXPECT_GT(bg.OpsPerSec("health", 1), 0);
  EXPECT_EQ(bg.Latency("other", 1).count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, EventsTest,
                         ::testing::Values(WorkerMode::kThread, WorkerMode::kProcess),
                         [](const auto& info) { return std::string(ModeName(info.param)); });

}  // namespace
}  // namespace mntscale
