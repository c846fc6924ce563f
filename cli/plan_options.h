// The options `run` and `plan` share, so a plan costs exactly what run would do.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "mntscale/suite/plan.h"

namespace mntscale {

// --containers, --layers, --binds, --workers, --op (the shorthands, kept as
// given in *shorthands), --scenario, --set, --placement, --profile, --mode,
// --repetitions, --warmup, --window, --windows.
void AddPlanOptions(CLI::App* c, RunRequest* r, std::vector<std::string>* shorthands);
// The shorthands given on the command line, as axis options of r.
void TakeShorthands(const std::vector<std::string>& v, const CLI::App& c, RunRequest* r);

}  // namespace mntscale
