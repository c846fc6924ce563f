// `mntscale profile capture`: a profile from a real runtime's container.
#pragma once

#include <CLI/CLI.hpp>

#include "command.h"
#include <string>

namespace mntscale {

class ProfileCommand : public Command {
 public:
  explicit ProfileCommand(CLI::App* app);  // registers `profile capture`
  CLI::App* app() const override { return capture_; }
  int Run(int argc, char** argv) override;  // 0 written; 3 unsupported here (the reason on stderr)

 private:
  CLI::App* capture_ = nullptr;
  std::string runtime_, spec_, image_, out_, name_;
  int layers_ = 1;
};

}  // namespace mntscale
