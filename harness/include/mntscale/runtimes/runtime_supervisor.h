// The machinery every real runtime (runc, crun, containerd) runs under: a
// supervisor that is init of a PID namespace of its own, with a mount
// namespace of its own (a copy of the sandbox's, so nothing it mounts reaches
// the host), and a cgroup janitor that outlives this process.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

namespace mntscale {

// "mntscale-<pid>-": every cgroup (and containerd namespace) of this run
// starts with it, so the janitor can find them after a SIGKILL.
std::string CgroupPrefix();

// A process outside every runtime PID namespace that outlives this one: when
// the fd returned (a pipe's write end) closes, or this process dies, it
// removes every cgroup named prefix* at the top of each cgroup mount and the
// cgroups nested in them.
int StartCgroupJanitor(const std::string& prefix);

// The line of a runtime's output that says why: its last error line, else
// its last line.
std::string ErrorLine(const std::string& s);

// The supervisor runs commands in the runtime's PID namespace; when this
// process dies (even by SIGKILL), the supervisor dies, and the kernel kills
// everything in that namespace (runtimes, daemons, shims, containers) and
// drops its mount namespace. The janitor then removes every cgroup named
// CgroupPrefix()* (and the cgroups nested in them) on each cgroup mount.
class RuntimeSupervisor {
 public:
  // Output files of commands go under dir. Up to `parallel` commands run at
  // once; more wait their turn. Unsupported("<what>: ...") if it cannot start.
  RuntimeSupervisor(const std::string& dir, int parallel, const std::string& what);
  ~RuntimeSupervisor();
  RuntimeSupervisor(const RuntimeSupervisor&) = delete;
  RuntimeSupervisor& operator=(const RuntimeSupervisor&) = delete;

  // Runs argv in the runtime's PID namespace; its exit code, and its
  // stdout+stderr in *output. Safe from several threads at once.
  int Command(const std::vector<std::string>& argv, std::string* output);
  // The supervisor's mount namespace (an fd it keeps).
  int mount_ns() const { return mnt_; }
  // fn on a thread of its own inside the supervisor's mount namespace, where
  // /proc is the runtime PID namespace's.
  void InNamespace(const std::function<void()>& fn) const;
  // /proc/<pid>/ns/mnt of a process, pid as the supervisor sees it; the
  // caller owns the fd.
  int OpenMountNs(int pid, const std::string& what) const;
  // The supervisor gone (and with it every process of the runtime), then the
  // janitor told to remove the cgroups. Idempotent.
  void Release();

 private:
  std::string dir_;
  int sock_ = -1, pid_ = -1, mnt_ = -1, janitor_ = -1;
  std::atomic<long> commands_{0};
};

}  // namespace mntscale
