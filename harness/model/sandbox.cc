#include "mntscale/model/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <sstream>
#include <thread>
#include <vector>

#include "mntscale/sys/sys.h"

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

namespace {

// Mounts in the calling thread's namespace, read through an fd of /proc.
int CountMountsAt(int proc_fd) {
  Fd fd(openat(proc_fd, "thread-self/mountinfo", O_RDONLY | O_CLOEXEC));
  Check(fd.get(), "open", "/proc/thread-self/mountinfo");
  int n = 0;
  char buf[65536];
  ssize_t r;
  while ((r = read(fd.get(), buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < r; ++i) n += buf[i] == '\n';
  }
  return n;
}

}  // namespace

int CountOwnMounts() {
  if (g_sandbox) return CountMountsAt(g_sandbox->proc_fd());
  return CountMounts("/proc/thread-self/mountinfo");
}

namespace {

// Adds an nsfs fd for a mount namespace not seen yet; closes it otherwise.
void AddNamespace(int fd, std::map<ino_t, Fd>* out) {
  Fd owned(fd);
  struct stat st;
  if (!owned.valid() || fstat(owned.get(), &st) != 0) return;
  out->try_emplace(st.st_ino, std::move(owned));
}

}  // namespace

MountCensus OwnNamespaceMounts() {
  Fd own_proc;
  int proc_fd = g_sandbox ? g_sandbox->proc_fd() : -1;
  if (proc_fd < 0) {
    own_proc = Fd(open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC));
    Check(own_proc.get(), "open", "/proc");
    proc_fd = own_proc.get();
  }
  std::map<ino_t, Fd> ns;
  const std::string self = std::to_string(getpid());
  // Every thread's namespace (workers setns into containers).
  if (DIR* d = fdopendir(openat(proc_fd, "self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC))) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::string p = std::string("self/task/") + e->d_name + "/ns/mnt";
      AddNamespace(openat(proc_fd, p.c_str(), O_RDONLY | O_CLOEXEC), &ns);
    }
    closedir(d);
  }
  // Namespaces held only by an fd: an nsfs link reads "mnt:[inode]".
  if (DIR* d = fdopendir(openat(proc_fd, "self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC))) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char link[64];
      ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
      if (n <= 0) continue;
      link[n] = 0;
      if (strncmp(link, "mnt:[", 5) != 0) continue;
      AddNamespace(fcntl(atoi(e->d_name), F_DUPFD_CLOEXEC, 0), &ns);
    }
    closedir(d);
  }
  // Direct children (process-mode workers, helpers).
  if (DIR* d = fdopendir(openat(proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC))) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      std::string stat;
      if (!TryReadFile("/proc/" + std::string(e->d_name) + "/stat", &stat)) continue;
      // pid (comm) state ppid ...: comm may hold spaces, so parse after ')'.
      size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream ss(stat.substr(close + 1));
      std::string state, ppid;
      ss >> state >> ppid;
      if (ppid != self) continue;
      std::string p = std::string(e->d_name) + "/ns/mnt";
      AddNamespace(openat(proc_fd, p.c_str(), O_RDONLY | O_CLOEXEC), &ns);
    }
    closedir(d);
  }
  // setns moves only the calling thread, and only once it has its own
  // fs_struct; a helper thread leaves the caller where it is.
  MountCensus census;
  std::string error;
  std::thread helper([&] {
    try {
      Check(unshare(CLONE_FS), "unshare", "CLONE_FS");
      for (auto& [ino, fd] : ns) {
        Check(setns(fd.get(), CLONE_NEWNS), "setns", "mount namespace " + std::to_string(ino));
        census.mounts += CountMountsAt(proc_fd);
        ++census.namespaces;
      }
    } catch (const std::exception& ex) {
      error = ex.what();
    }
  });
  helper.join();
  if (!error.empty()) throw std::runtime_error("counting mounts: " + error);
  return census;
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
