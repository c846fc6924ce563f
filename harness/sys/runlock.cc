#include "mntscale/sys/runlock.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace mntscale {
namespace {

// Opens (making it when missing) the lock file; a read-only descriptor is
// enough for flock, so a rootless run can share root's lock file.
int OpenLockFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  return fd;
}

}  // namespace

std::string RunLock::DefaultPath() {
  if (const char* env = getenv("MNTSCALE_LOCK"); env && *env) return env;
  struct stat st;
  if (stat("/run/mntscale.lock", &st) == 0 || access("/run", W_OK) == 0) {
    return "/run/mntscale.lock";
  }
  return "/tmp/mntscale.lock";
}

long RunLock::HolderPid(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -1;
  // /proc/locks: "1: FLOCK  ADVISORY  WRITE 4242 00:1a:1234 0 EOF"
  char id[64];
  snprintf(id, sizeof id, "%02x:%02x:%lu", major(st.st_dev), minor(st.st_dev),
           static_cast<unsigned long>(st.st_ino));
  std::string locks;
  if (TryReadFile("/proc/locks", &locks)) {
    std::istringstream in(locks);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string n, kind, adv, mode, dev;
      long pid = -1;
      if (f >> n >> kind) {
        if (kind == "->") f >> kind;  // a waiter: "1: -> FLOCK ..."
        else if (f >> adv >> mode >> pid >> dev && kind == "FLOCK" && dev == id) return pid;
      }
    }
  }
  char buf[32] = {};
  if (pread(fd, buf, sizeof buf - 1, 0) > 0) {
    long pid = strtol(buf, nullptr, 10);
    if (pid > 0) return pid;
  }
  return -1;
}

RunLock RunLock::Acquire(const std::string& path, bool wait, bool quiet) {
  Fd fd(OpenLockFile(path));
  if (!fd.valid()) {
    int err = errno;
    throw UsageError("cannot open the run lock '" + path + "': " + ErrnoName(err) + " (" +
                     strerror(err) + "); set MNTSCALE_LOCK to a writable path");
  }
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      throw SysError("flock", path, errno);
    }
    long holder = HolderPid(fd.get());
    std::string who = holder > 0 ? "PID " + std::to_string(holder) : "another process";
    if (!wait) {
      throw UsageError("another mntscale run (" + who + ") holds " + path +
                       "; two runs at once would share CPUs and each measure the other. "
                       "Wait for it, or pass --wait");
    }
    if (!quiet) fprintf(stderr, "mntscale: waiting for the run of %s (%s)\n", who.c_str(), path.c_str());
    while (flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) throw SysError("flock", path, errno);
    }
  }
  // For readers without /proc/locks; best effort (a read-only fd cannot).
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd.get(), 0) == 0) {
    ssize_t n = pwrite(fd.get(), pid.data(), pid.size(), 0);
    (void)n;
  }
  return RunLock(std::move(fd), path);
}

}  // namespace mntscale
