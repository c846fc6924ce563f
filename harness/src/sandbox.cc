#include "mntscale/sandbox.h"

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <sstream>

#include "mntscale/sys.h"

namespace mntscale {
namespace {

Sandbox* g_sandbox = nullptr;
constexpr char kPrefix[] = "/tmp/.mntscale-";

// Removes empty work directories left by runs that died without cleaning up
// (SIGKILL). Only directories of processes that no longer exist: a live run's
// directory looks empty from here but is its mountpoint.
void ReapStaleWorkdirs() {
  DIR* d = opendir("/tmp");
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(".mntscale-", 0) != 0) continue;
    pid_t pid = atoi(name.c_str() + 10);
    if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH)) {
      rmdir(("/tmp/" + name).c_str());
    }
  }
  closedir(d);
}

}  // namespace

Sandbox& Sandbox::Enter() {
  if (g_sandbox) return *g_sandbox;
  auto* s = new Sandbox();
  Check(unshare(CLONE_NEWNS), "unshare", "CLONE_NEWNS");
  Check(mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr), "mount", "/, MS_REC|MS_PRIVATE");
  ReapStaleWorkdirs();
  s->workdir_ = kPrefix + std::to_string(getpid());
  if (mkdir(s->workdir_.c_str(), 0700) < 0 && errno != EEXIST) {
    Check(-1, "mkdir", s->workdir_);
  }
  Check(mount("mntscale", s->workdir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=50%"),
        "mount", "tmpfs, " + s->workdir_);
  s->proc_fd_ =
      static_cast<int>(Check(open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC), "open", "/proc"));
  g_sandbox = s;
  return *s;
}

bool Sandbox::Entered() { return g_sandbox != nullptr; }

Sandbox& Sandbox::Current() {
  if (!g_sandbox) throw std::logic_error("the sandbox was not entered (call Sandbox::Enter first)");
  return *g_sandbox;
}

void Sandbox::Leave() {
  if (workdir_.empty()) return;
  umount2(workdir_.c_str(), MNT_DETACH);
  rmdir(workdir_.c_str());
  workdir_.clear();
}

int CountMounts(const std::string& mountinfo_path) {
  std::string s = ReadFile(mountinfo_path);
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

int CountOwnMounts() {
  if (g_sandbox) {
    Fd fd(openat(g_sandbox->proc_fd(), "thread-self/mountinfo", O_RDONLY | O_CLOEXEC));
    Check(fd.get(), "open", "/proc/thread-self/mountinfo");
    int n = 0;
    char buf[65536];
    ssize_t r;
    while ((r = read(fd.get(), buf, sizeof buf)) > 0) {
      for (ssize_t i = 0; i < r; ++i) n += buf[i] == '\n';
    }
    return n;
  }
  return CountMounts("/proc/thread-self/mountinfo");
}

long SlabMountObjects() {
  std::ifstream in("/proc/slabinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("mnt_cache ", 0) == 0) {
      std::istringstream ss(line);
      std::string name;
      long active = -1;
      ss >> name >> active;
      return active;
    }
  }
  return -1;
}

}  // namespace mntscale
