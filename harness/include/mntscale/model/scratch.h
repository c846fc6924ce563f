// Scratch mount namespaces and bare overlays, for scenarios that build their
// own mount shapes (mount chains, peer groups, mounts with many children,
// overlays of L layers) instead of container farms.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "mntscale/model/farm.h"

namespace mntscale {

// Runs fn on a fresh thread with its own fs_struct (unshare(CLONE_FS)), so
// setns/chdir there never move the caller. Exceptions come back to the caller.
void OnPrivateThread(const std::function<void()>& fn);

// A mount namespace whose root is a fresh tmpfs and which holds exactly that
// one mount (pivot_root away from the sandbox's tree), held by its nsfs fd.
// Dropping the last fd tears it and everything mounted in it down.
class ScratchNs {
 public:
  ScratchNs();  // copied from the calling thread's namespace, then pivoted
  ~ScratchNs();
  ScratchNs(ScratchNs&& o) noexcept;
  ScratchNs& operator=(ScratchNs&& o) noexcept;
  ScratchNs(const ScratchNs&) = delete;
  ScratchNs& operator=(const ScratchNs&) = delete;

  int fd() const { return c_.ns_fd; }
  // For WorkerPlan::container: workers setns here; paths are absolute in it.
  const Container& container() const { return c_; }
  // Runs fn on a fresh thread inside this namespace.
  void Run(const std::function<void()>& fn) const;
  // n namespaces copied from this one by unshare(CLONE_NEWNS): shared mounts
  // in it gain a peer in each copy.
  std::vector<ScratchNs> Copies(int n) const;

 private:
  explicit ScratchNs(int fd);
  Container c_;
};

// Opens the calling thread's mount namespace (nsfs fd, O_CLOEXEC).
int OpenThreadMountNs();
// Lines of the calling thread's /proc/thread-self/mountinfo.
std::vector<std::string> ThreadMountinfo();
// "shared:N" peer group id of the mount at mount_point in those lines; 0 when
// the mount is not shared, -1 when no mount is there.
long PeerGroupOf(const std::vector<std::string>& mountinfo, const std::string& mount_point);

// L overlay layers under dir (in the calling thread's namespace). Every layer
// holds the directory chain d0/../d<depth-1>, so a lookup merges each level
// across all layers; only the bottom layer holds the target file.
struct OverlayLayers {
  std::vector<std::string> dirs;  // bottom first
  std::string file;               // "d0/.../target", relative to the overlay root
  std::string missing;            // same directory, a name no layer has
};
OverlayLayers MakeOverlayLayers(const std::string& dir, int layers, int depth);

// Mounts an overlay of `lower` (bottom first) on target, by api "mount" (one
// option string) or "fsmount" (fsopen, one fsconfig "lowerdir+" per layer,
// fsmount, move_mount). Throws Unsupported when the kernel lacks lowerdir+
// (before 6.7), or the option string exceeds a page on mount(2).
void MountOverlayAt(OverlayApi api, const std::vector<std::string>& lower,
                    const std::string& upper, const std::string& work, const std::string& target);

}  // namespace mntscale
