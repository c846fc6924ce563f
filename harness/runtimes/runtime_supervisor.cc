#include "mntscale/runtimes/runtime_supervisor.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <set>
#include <sstream>

#include "mntscale/runtimes/runtime.h"
#include "mntscale/model/scratch.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

// The cgroup mounts this namespace sees: where a runtime makes a container's
// cgroupsPath directories.
std::vector<std::string> CgroupMounts() {
  std::vector<std::string> dirs;
  for (const MountInfoEntry& m : ParseMountinfo(ThreadMountinfo())) {
    if (m.fstype == "cgroup" || m.fstype == "cgroup2") dirs.push_back(m.mount_point);
  }
  return dirs;
}

// A process outside the runtime's PID namespace that outlives us: when the
// pipe it holds closes (we finished, or were SIGKILLed), it removes every
// cgroup directory named prefix* at the top of each cgroup mount, retrying
// while the killed containers' processes drain out of them. Returns the
// pipe's write end.
// Removes dir's child cgroups depth first, then dir; false if any is left
// (processes still draining out of it).
bool RemoveCgroupTree(const std::string& dir) {
  bool left = false;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
      left |= !RemoveCgroupTree(dir + "/" + e->d_name);
    }
    closedir(d);
  }
  return (rmdir(dir.c_str()) == 0 || errno == ENOENT) && !left;
}

}  // namespace

// Retries while the killed containers' processes drain out of the cgroups
// (containerd's nest: /<namespace>/<id>).
int StartCgroupJanitor(const std::string& prefix) {
  const std::vector<std::string> mounts = CgroupMounts();
  int p[2];
  Check(pipe2(p, O_CLOEXEC), "pipe2", "cgroup janitor");
  pid_t pid = fork();
  Check(pid, "fork", "cgroup janitor");
  if (pid == 0) {
    close(p[1]);
    setsid();
    char c;
    while (read(p[0], &c, 1) > 0 || errno == EINTR) {
    }
    for (int attempt = 0; attempt < 100; ++attempt) {
      bool left = false;
      for (const std::string& m : mounts) {
        DIR* d = opendir(m.c_str());
        if (!d) continue;
        while (dirent* e = readdir(d)) {
          if (strncmp(e->d_name, prefix.c_str(), prefix.size()) != 0) continue;
          left |= !RemoveCgroupTree(m + "/" + e->d_name);
        }
        closedir(d);
      }
      if (!left) break;
      struct timespec ts = {0, 50 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
    _exit(0);
  }
  close(p[0]);
  return p[1];
}

namespace {

// The supervisor: init of the runtime's PID namespace, with a /proc of that
// namespace in a mount namespace of its own. Each request on the socket is
// NUL-separated (an output file, then argv) and carries one fd: the socket
// its exit code goes back on. Up to `parallel` commands run at once, each
// under a runner child that waits for it and replies; the rest queue. The
// supervisor reaps the runners and everything reparented to it (held
// container inits). When the socket closes it exits, and with it the
// namespace and every command still running.
[[noreturn]] void SupervisorLoop(int sock, int parent_pidfd, int parallel) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  pollfd alive = {parent_pidfd, POLLIN, 0};
  if (poll(&alive, 1, 0) != 0) _exit(125);
  if (unshare(CLONE_NEWNS) != 0) _exit(124);
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) _exit(124);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  const int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) _exit(124);
  int ready = 0;
  if (send(sock, &ready, sizeof ready, 0) < 0) _exit(123);
  struct Request {
    std::string msg;
    int reply;
  };
  std::deque<Request> queue;
  std::set<pid_t> runners;
  static char buf[65536];
  for (;;) {
    while (static_cast<int>(runners.size()) < parallel && !queue.empty()) {
      Request r = std::move(queue.front());
      queue.pop_front();
      pid_t runner = fork();
      if (runner == 0) {
        close(sock);
        close(sfd);
        std::vector<char*> args;
        for (size_t i = 0; i < r.msg.size(); i += strlen(r.msg.data() + i) + 1)
          args.push_back(r.msg.data() + i);
        args.push_back(nullptr);
        pid_t child = fork();
        if (child == 0) {
          sigprocmask(SIG_UNBLOCK, &chld, nullptr);
          int out = open(args[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
          if (out < 0) _exit(127);
          dup2(out, 1);
          dup2(out, 2);
          // Nothing else of ours reaches the runtime (or a daemon it leaves
          // running): fds the harness inherited without O_CLOEXEC, such as a
          // test driver's log, would stay open in containerd until it exits.
          syscall(SYS_close_range, 3, ~0U, 0);
          execvp(args[1], args.data() + 1);
          _exit(127);
        }
        int code = 126, st = 0;
        if (child > 0 && waitpid(child, &st, 0) == child) {
          code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        send(r.reply, &code, sizeof code, MSG_NOSIGNAL);
        _exit(0);
      }
      close(r.reply);  // the runner holds it; a failed fork closes it unanswered
      if (runner > 0) runners.insert(runner);
    }
    pollfd fds[2] = {{sock, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) _exit(122);
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {
      }
      int st = 0;
      for (pid_t w; (w = waitpid(-1, &st, WNOHANG)) > 0;) runners.erase(w);
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char cbuf[CMSG_SPACE(sizeof(int))];
      iovec iov = {buf, sizeof buf - 1};
      msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      mh.msg_control = cbuf;
      mh.msg_controllen = sizeof cbuf;
      ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
      if (n <= 0) _exit(0);
      cmsghdr* cm = CMSG_FIRSTHDR(&mh);
      if (!cm || cm->cmsg_type != SCM_RIGHTS) continue;  // no reply socket: not ours
      int reply;
      memcpy(&reply, CMSG_DATA(cm), sizeof reply);
      queue.push_back({std::string(buf, n), reply});
    }
  }
}

}  // namespace

std::string CgroupPrefix() { return "mntscale-" + std::to_string(getpid()) + "-"; }

// The line of a runtime's stderr that says why: its last error line, else
// its last line.
std::string ErrorLine(const std::string& s) {
  std::istringstream ss(s);
  std::string line, last, error;
  while (std::getline(ss, line)) {
    if (line.empty()) continue;
    last = line;
    if (line.find("error") != std::string::npos &&
        line.find("level=warning") == std::string::npos) {
      error = line;
    }
  }
  return !error.empty() ? error : !last.empty() ? last : "(no message)";
}

RuntimeSupervisor::RuntimeSupervisor(const std::string& dir, int parallel, const std::string& what)
    : dir_(dir) {
  MkdirP(dir_);
  janitor_ = StartCgroupJanitor(CgroupPrefix());
  int sv[2];
  Check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), "socketpair", "supervisor");
  Fd self(static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0)));
  Check(self.get(), "pidfd_open", "self", "needs Linux >= 5.3");
  long pid = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  Check(pid, "clone", "CLONE_NEWPID (runtime supervisor)");
  if (pid == 0) {
    close(sv[0]);
    SupervisorLoop(sv[1], self.get(), std::max(1, parallel));
  }
  close(sv[1]);
  sock_ = sv[0];
  pid_ = static_cast<int>(pid);
  int ready = -1;
  if (recv(sock_, &ready, sizeof ready, 0) != sizeof ready || ready != 0) {
    Release();  // the destructor does not run after a throwing constructor
    throw Unsupported(what + ": the runtime supervisor did not start");
  }
  mnt_ = static_cast<int>(
      open(("/proc/" + std::to_string(pid_) + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC));
  if (mnt_ < 0) {
    const int err = errno;
    Release();
    throw SysError("open", "supervisor's mount namespace", err);
  }
}

RuntimeSupervisor::~RuntimeSupervisor() { Release(); }

void RuntimeSupervisor::Release() {
  if (sock_ >= 0) close(sock_);  // the supervisor exits; its PID namespace dies
  if (pid_ > 0) waitpid(pid_, nullptr, 0);
  if (mnt_ >= 0) close(mnt_);
  if (janitor_ >= 0) close(janitor_);  // and the janitor removes the cgroups
  sock_ = pid_ = mnt_ = janitor_ = -1;
}

int RuntimeSupervisor::Command(const std::vector<std::string>& argv, std::string* output) {
  const std::string out_file = dir_ + "/cmd-" + std::to_string(commands_++) + ".out";
  std::string msg = out_file + '\0';
  for (const std::string& a : argv) msg += a + '\0';
  int rs[2];
  Check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rs), "socketpair", "command reply");
  Fd reply(rs[0]);
  {
    Fd theirs(rs[1]);
    Check(SendWithFd(sock_, msg.data(), msg.size(), theirs.get()), "sendmsg", "runtime supervisor");
  }
  int code = -1;
  ssize_t n;
  while ((n = recv(reply.get(), &code, sizeof code, 0)) < 0 && errno == EINTR) {
  }
  if (n != sizeof code) {
    throw SysError("recv", "runtime supervisor", n < 0 ? errno : EPIPE,
                   "the supervisor or its runner died before the command ended");
  }
  if (output) TryReadFile(out_file, output);
  unlink(out_file.c_str());
  return code;
}

void RuntimeSupervisor::InNamespace(const std::function<void()>& fn) const {
  OnPrivateThread([&] {
    Check(setns(mnt_, CLONE_NEWNS), "setns", "supervisor's mount namespace");
    fn();
  });
}

int RuntimeSupervisor::OpenMountNs(int pid, const std::string& what) const {
  int fd = -1;
  InNamespace([&] {  // the pid is in the supervisor's PID namespace: its /proc
    fd = static_cast<int>(
        Check(open(("/proc/" + std::to_string(pid) + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC),
              "open", "/proc/" + std::to_string(pid) + "/ns/mnt of " + what));
  });
  return fd;
}

}  // namespace mntscale
