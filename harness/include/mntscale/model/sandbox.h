// The harness's private mount namespace: nothing it mounts reaches the host.
#pragma once

#include <string>

namespace mntscale {

// Enters a new mount namespace with every mount MS_REC|MS_PRIVATE, then
// mounts a tmpfs work area inside it. Must run before any thread is started:
// unshare(CLONE_NEWNS) only moves the calling thread.
//
// When the process dies, even by SIGKILL, the kernel drops the namespace and
// everything in it. The only host-visible trace is an empty directory
// /tmp/.mntscale-<pid>, removed on normal exit and reaped by the next run.
class Sandbox {
 public:
  static Sandbox& Enter();  // idempotent
  static bool Entered();
  // The sandbox this process entered; a logic error before Enter(), so code
  // that only reads the work area can never create one by accident.
  static Sandbox& Current();
  const std::string& workdir() const { return workdir_; }
  // fd of /proc as this namespace sees it (O_PATH): lets threads whose root
  // is a container reach their own /proc/thread-self.
  int proc_fd() const { return proc_fd_; }
  // Removes the work area; called at exit.
  void Leave();

 private:
  Sandbox() = default;
  std::string workdir_;
  int proc_fd_ = -1;
};

// Counts the lines of a mountinfo file (one line per mount).
int CountMounts(const std::string& mountinfo_path);
// Mounts in the calling thread's namespace.
int CountOwnMounts();

// The mount namespaces this process reaches and the mounts in them: its
// threads' namespaces, its direct children's, and every namespace it holds
// only by an nsfs fd (the farm's containers), each counted once and read
// from inside it (setns in a helper thread). Other processes' namespaces are
// not counted, so work elsewhere on the machine cannot move the figure.
struct MountCensus {
  int namespaces = 0;
  long mounts = 0;
};
MountCensus OwnNamespaceMounts();
// struct mount objects alive system-wide, from the mnt_cache slab; -1 when
// /proc/slabinfo does not show it (merged slabs, no permission).
long SlabMountObjects();

}  // namespace mntscale
