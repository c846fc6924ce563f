// churn_interference: readers walk a deep path in their own containers while
// writers in other namespaces change their own mount tables. Every mount
// table write takes lock_mount_hash and bumps the global mount_lock sequence;
// an RCU-walk that sampled it fails __legitimize_mnt and redoes the walk in
// ref-walk, and __legitimize_mnt may fall into lock_mount_hash itself. So
// writers that share nothing with the readers still slow them down.
#include <algorithm>
#include <optional>

#include "mntscale/sys/stats.h"
#include "mntscale/run/churn.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

enum class ReaderPlacement { kSameSocket, kOtherSocket };
constexpr EnumName<ReaderPlacement> kReaderPlacements[] = {
    {ReaderPlacement::kSameSocket, "same-socket"}, {ReaderPlacement::kOtherSocket, "other-socket"}};

// A writer kind, or none: the readers alone.
constexpr auto kWriters = WithNone("none", kWriterKinds);

void ChurnInterference(Session& s, const Point& p, Entry& e) {
  const std::optional<WriterKind> kind = p.Enum(kWriters, "writer_op");
  const int readers = p.Int("workers"), containers = p.Int("containers");
  const int writers = kind ? p.Int("writers") : 0;
  const ReaderPlacement placement = p.Enum(kReaderPlacements, "reader_placement");
  if (placement == ReaderPlacement::kOtherSocket && s.topology().summary().packages < 2) {
    throw Unsupported("one socket");
  }
  // Readers in containers [0, containers), each writer in a container of
  // its own after them: nothing is shared but the kernel's globals.
  Farm& farm = s.FarmFor(s.ProfileFor(p), containers + writers);
  const OpInfo* op = FindOp(p.Str("op"));

  std::vector<Slot> reader_slots, writer_slots;
  if (placement == ReaderPlacement::kSameSocket) {
    std::vector<Slot> all = s.Slots(p, readers + writers, "socket:0");
    reader_slots.assign(all.begin(), all.begin() + readers);
    writer_slots.assign(all.begin() + readers, all.end());
  } else {
    reader_slots = s.Slots(p, readers, "socket:0");
    writer_slots = s.Slots(p, writers, "socket:1");
  }
  std::vector<WorkerPlan> base;
  for (int i = 0; i < readers; ++i) {
    WorkerPlan w;
    w.slot = reader_slots[i];
    w.container = &farm.containers()[i % containers];
    w.op = op;
    w.path = farm.image().deep_path;
    base.push_back(std::move(w));
  }
  std::vector<WorkerPlan> with = base;
  for (int i = 0; i < writers; ++i) {
    WorkerPlan w;
    w.slot = writer_slots[i];
    w.slot.worker = readers + i;
    w.container = &farm.containers()[containers + i];
    MakeWriter(&w, *kind);
    with.push_back(std::move(w));
  }

  // Alternate without/with so drift (other load, thermal, dcache) hits both.
  std::vector<double> without_ops, with_ops, ratios, writer_ops;
  for (int round = 0; round < p.Int("rounds"); ++round) {
    RunSpec b;
    b.workers = base;
    without_ops.push_back(s.Measure(b, &e).ops_per_s());
    RunSpec w;
    w.workers = with;
    RunResult r = s.Measure(w, &e);  // the entry's numbers: the last with-writer run
    with_ops.push_back(r.ops_per_s());
    ratios.push_back(with_ops.back() / without_ops.back());
    auto it = r.role_ops_per_s.find("writer");
    writer_ops.push_back(it == r.role_ops_per_s.end() ? 0 : it->second);
  }
  double ratio = Median(with_ops) / Median(without_ops);
  e.Set("reader_ops_per_sec_without", without_ops);
  e.Set("reader_ops_per_sec_with", with_ops);
  e.Set("interference_ratios", ratios);
  e.Set("interference_ratio", ratio);
  e.Set("reader_slowdown_pct", (1 - ratio) * 100);
  e.Set("writer_ops_per_sec", writers ? Median(writer_ops) : 0.0);
  e.Set("writers", writers);
  e.Set("writer_op", EnumNameOf(kWriters, kind));
}

}  // namespace

MNTSCALE_SCENARIO(
    churn_interference,
    {
        .name = "churn_interference",
        .mechanism = "mount_lock sequence bumps by writers in other namespaces: RCU-walk "
                     "fails __legitimize_mnt and falls back to ref-walk",
        .expect = "interference_ratio < 1 with any writer (about 0.5-0.7 for mount+umount), "
                  "1 with none; worse with more writers",
        .axes = {EnumAxis("writer_op", "none,mount,bind,setattr,clone", kWriters),
                 IntAxis("writers", "1", 1, 1024, "writers"),
                 EnumAxis("reader_placement", "same-socket,other-socket", kReaderPlacements),
                 axes::Containers("1"),
                 axes::Workers("1"),
                 axes::Op("stat"),
                 axes::Rounds("3")},
        .run = ChurnInterference,
        .claims = {claims::Below("interference_ratio", 0.85,
                                 "mount+umount in another namespace slows path walks by more "
                                 "than 15% (mount_lock retries)")
                       .Where({{"writer_op", "mount"}}),
                   claims::Above("interference_ratio", 0.9,
                                 "with no writer the paired measurement reads within 10% of 1")
                       .Where({{"writer_op", "none"}})},
    });

}  // namespace mntscale
