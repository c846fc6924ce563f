// harness_overhead: the runner's own cost. The same op on the same path, the
// same PU and the same container, once in a bare loop and once through the
// runner, alternated so drift hits both. The ratio should be close to 1.
#include <algorithm>

#include "mntscale/sys/stats.h"
#include "mntscale/suite/session.h"

namespace mntscale {
namespace {

void HarnessOverhead(Session& s, const Point& p, Entry& e) {
  Farm& farm = s.FarmFor(s.ProfileFor(p), 1);
  std::vector<WorkerPlan> plans =
      s.Workers(p, &farm, FindOp(p.Str("op")), farm.image().deep_path, 1);
  const double pass_s = s.config().window_s * s.config().windows;
  BareLoop(plans[0], s.config().warmup_s);  // warm the dcache and the PU
  std::vector<double> bare, runner;
  for (int round = 0; round < p.Int("rounds"); ++round) {
    bare.push_back(BareLoop(plans[0], pass_s));
    RunSpec spec;
    spec.workers = plans;
    runner.push_back(s.Measure(spec, &e).ops_per_s());
  }
  e.Set("bare_ops_per_sec", bare);
  e.Set("runner_ops_per_sec", runner);
  e.Set("runner_over_bare", Median(runner) / Median(bare));
  e.Set("pu", plans[0].slot.pu.os_index);
}

}  // namespace

MNTSCALE_SCENARIO(
    harness_overhead,
    {
        .name = "harness_overhead",
        .mechanism = "the runner's loop, counters and phase checks against a bare syscall loop",
        .expect = "runner_over_bare >= 0.97",
        .axes = {axes::Op("stat"), axes::Rounds("3")},
        .run = HarnessOverhead,
        .claims = {claims::Above("runner_over_bare", 0.97,
                                 "the runner costs under 3% against a bare syscall loop")},
    });

}  // namespace mntscale
