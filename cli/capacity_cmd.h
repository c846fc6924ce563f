// `mntscale capacity`: the largest container count this host sustains under
// stated objectives, by measurement (issue 18; harness/capacity.h).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "command.h"
#include "mntscale/capacity/capacity.h"
#include "mntscale/suite/session.h"

namespace mntscale {

class CapacityCommand : public Command {
 public:
  explicit CapacityCommand(CLI::App* app);  // registers `capacity`
  CLI::App* app() const override { return cmd_; }
  // 0 searched (whatever ended it); 2 bad input; 130 interrupted.
  int Run(int argc, char** argv) override;

 private:
  void Check();                 // every input, before anything is built
  Demand DemandAt(int n) const;  // what n containers ask of the kernel
  // The session's settings: the probe's windows, the profile, the observers.
  SessionConfig SessionSettings(int argc, char** argv) const;
  // The search's measure, limit and progress hooks around the probe;
  // on_density also calls write (the result so far, marked incomplete).
  SearchHooks Hooks(CapacityProbe& probe, std::function<double()> elapsed,
                    std::function<void(const SearchResult&)> write) const;
  CLI::App* cmd_ = nullptr;
  std::string profile_ = "k8s-containerd", idmap_ = "per-layer", out_, mode_ = "thread";
  IdmapStrategy idmap_strategy_ = IdmapStrategy::kPerLayer;  // idmap_, parsed
  std::vector<std::string> slos_;
  double churn_rate_ = 2.0, window_s_ = 1.0;
  std::string machine_;
  bool waits_ = false, attribute_ = false, quiet_ = false, wait_ = false;
  SearchConfig search_;
  std::vector<Slo> slos_parsed_;
  Profile profile_loaded_;
};

}  // namespace mntscale
