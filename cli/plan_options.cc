#include "plan_options.h"

namespace mntscale {

// Options `run` and `plan` share, so a plan costs exactly what run would do.
void AddPlanOptions(CLI::App* c, RunRequest* r, std::vector<std::string>* shorthands) {
  const char* names[][2] = {{"containers", "Container counts to sweep, e.g. 1,10,100,300"},
                            {"layers", "Overlay lower layers per container, sweepable"},
                            {"binds", "Bind mounts per container, sweepable"},
                            {"workers", "Worker counts to sweep, e.g. 1,2"},
                            {"op", "Operations to sweep (see `mntscale list`)"}};
  shorthands->resize(5);
  for (int i = 0; i < 5; ++i) {
    c->add_option(std::string("--") + names[i][0], (*shorthands)[i], names[i][1]);
  }
  c->add_option("--scenario", r->scenarios, "Scenarios to run (see `mntscale list`)")
      ->delimiter(',')
      ->capture_default_str();
  c->add_option("--set", r->sets, "Scenario axis values: axis=v1,v2 (repeatable)");
  c->add_option("--placement", r->cfg.placement,
                "compact | spread | socket:N, optionally ',smt-off' and ',share'")
      ->capture_default_str();
  c->add_option("--profile", r->profile, "Container profile: a name in profiles/ or a JSON file");
  c->add_option("--mode", r->mode, "Workers as 'thread' or 'process'")->capture_default_str();
  c->add_option("--repetitions", r->cfg.repetitions, "Repetitions of each point")
      ->check(CLI::Range(1, 1000));
  c->add_option("--warmup", r->cfg.warmup_s, "Warm-up seconds per point")
      ->check(CLI::Range(0.0, 3600.0));
  c->add_option("--window", r->cfg.window_s, "Measurement window seconds")
      ->check(CLI::Range(0.001, 3600.0));
  c->add_option("--windows", r->cfg.windows, "Measurement windows per point")
      ->check(CLI::Range(1, 100000));
}

void TakeShorthands(const std::vector<std::string>& v, const CLI::App& c, RunRequest* r) {
  const char* axes[] = {"containers", "layers", "binds", "workers", "op"};
  for (int i = 0; i < 5; ++i) {
    if (c.get_option(std::string("--") + axes[i])->count()) r->axis_options.emplace_back(axes[i], v[i]);
  }
}

}  // namespace mntscale
