#include "mntscale/suite/measured_command.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "mntscale/suite/results.h"
#include "mntscale/suite/session.h"

namespace mntscale {

std::string MeasuredCommand::Resolve(std::string* out) {
  if (out->empty()) {
    *out = DefaultOutputPath();
    fprintf(stderr, "mntscale: no --out given; results go to %s\n", out->c_str());
  }
  CheckOutputPath(*out);
  return *out;
}

MeasuredCommand::MeasuredCommand(std::string* out, bool wait, bool quiet,
                                 const std::string& lock_path)
    : out_(Resolve(out)),
      stamp_(OutputStamp(out_)),
      lock_(RunLock::Acquire(lock_path, wait, quiet)) {
  // A run that wrote the output while this one waited for the lock keeps it.
  RefuseOutputWrittenSince(out_, stamp_);
}

MeasuredCommand::~MeasuredCommand() {
  if (sandbox_) sandbox_->Leave();
}

Sandbox& MeasuredCommand::Enter() {
  sandbox_ = &Sandbox::Enter();
  InstallInterruptHandler();
  return *sandbox_;
}

void Failpoint(const char* name) {
  const char* want = getenv("MNTSCALE_FAILPOINT");
  if (want && std::string(want) == name) throw std::runtime_error(std::string("failpoint ") + name);
}

}  // namespace mntscale
