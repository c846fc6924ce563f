// `mntscale observe`: mount pressure on a live host, read-only (issue 25;
// harness/observe.h).
#pragma once

#include <CLI/CLI.hpp>

#include "command.h"
#include <string>
#include <vector>

namespace mntscale {

class ObserveCommand : public Command {
 public:
  explicit ObserveCommand(CLI::App* app);  // registers `observe`
  CLI::App* app() const override { return cmd_; }
  // 0 observed; 2 bad input or missing privileges.
  int Run(int argc, char** argv) override;

 private:
  CLI::App* cmd_ = nullptr;
  double interval_s_ = 10;
  int count_ = -1;  // -1: 1, or forever with --watch
  int top_ = 5;
  std::string source_ = "auto", ops_ = "diff", json_, prom_;
  std::vector<std::string> capacity_;
  bool watch_ = false, quiet_ = false, no_fd_scan_ = false;
};

}  // namespace mntscale
