// One run at a time per machine: two runs pinning workers to the same CPUs
// each measure about half their throughput and neither result says so.
#pragma once

#include <string>

#include "mntscale/sys/sys.h"

namespace mntscale {

// An exclusive flock(2) held for the run's whole life. The kernel drops it
// when the process dies, SIGKILL included, so a stale lock cannot exist.
class RunLock {
 public:
  // $MNTSCALE_LOCK when set, else /run/mntscale.lock, else (when /run holds no
  // lock file and we cannot make one there) /tmp/mntscale.lock.
  static std::string DefaultPath();
  // Takes the lock at `path`. When another run holds it: wait=false throws
  // UsageError naming the holder's PID; wait=true says once on stderr whom it
  // waits for (unless quiet) and blocks until the holder ends.
  static RunLock Acquire(const std::string& path, bool wait, bool quiet);
  // The PID holding the flock on the file open as fd (from /proc/locks, else
  // the PID the holder wrote into the file); -1 when unknown.
  static long HolderPid(int fd);

  const std::string& path() const { return path_; }

 private:
  RunLock(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Fd fd_;
  std::string path_;
};

}  // namespace mntscale
