// What `run` and `capacity` do around a measurement, done once and the same
// way for both (issue 27): the output path resolved and checked, the
// machine's run lock held, the sandbox entered with the interrupt handler
// installed, and the sandbox left in the destructor on every path: a normal
// return, an early one, or an exception. The lock is released after the
// sandbox is left.
#pragma once

#include <string>

#include "mntscale/model/sandbox.h"
#include "mntscale/sys/runlock.h"

namespace mntscale {

class MeasuredCommand {
 public:
  // Before anything is built. *out == "" takes the default output path (and
  // says so on stderr). Throws UsageError for an unusable output path, or
  // when another run holds the lock and `wait` is false.
  MeasuredCommand(std::string* out, bool wait, bool quiet,
                  const std::string& lock_path = RunLock::DefaultPath());
  ~MeasuredCommand();
  MeasuredCommand(const MeasuredCommand&) = delete;
  MeasuredCommand& operator=(const MeasuredCommand&) = delete;

  // Enters the sandbox and installs the interrupt handler. Call before any
  // thread starts (unshare moves only the calling thread).
  Sandbox& Enter();
  const std::string& out() const { return out_; }
  const RunLock& lock() const { return lock_; }

 private:
  static std::string Resolve(std::string* out);
  std::string out_;
  std::string stamp_;
  RunLock lock_;
  Sandbox* sandbox_ = nullptr;
};

// A test hook: throws std::runtime_error("failpoint NAME") when the
// environment's MNTSCALE_FAILPOINT is NAME; nothing otherwise.
void Failpoint(const char* name);

}  // namespace mntscale
