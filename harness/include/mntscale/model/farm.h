// The container farm: N container-shaped mount namespaces built from a
// profile, each held by its nsfs fd.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mntscale/model/container.h"
#include "mntscale/model/image.h"
#include "mntscale/model/profile.h"
#include "mntscale/model/real_runtime.h"

namespace mntscale {

using ProgressFn = std::function<void(int done, int total)>;

class Farm {
 public:
  // image: built under the sandbox work area (see Images()). runtime: null
  // for the farm's own builders, or a real runtime (runtimes/real_runtime.h
  // opens one) that creates every container from its default spec (the
  // profile's layers and image still make the rootfs, containerd's from an
  // archive of them its snapshotter unpacks; the profile's mount kinds do
  // not apply: the runtime's spec decides them).
  Farm(const Profile& profile, const Image& image, int builders,
       std::unique_ptr<RealRuntime> runtime = nullptr);
  ~Farm();
  Farm(const Farm&) = delete;
  Farm& operator=(const Farm&) = delete;

  // Builds containers until there are n. Returns the wall time it took.
  double Grow(int n, const ProgressFn& progress = nullptr);
  // Closes every namespace fd (in parallel on `threads` threads; the last
  // close tears the namespace down). Returns the wall time.
  double Teardown(int threads = 0);
  // Tears down the containers from index n on.
  void Shrink(int n);

  const std::vector<Container>& containers() const { return containers_; }
  const Profile& profile() const { return profile_; }
  const Image& image() const { return image_; }
  int size() const { return static_cast<int>(containers_.size()); }
  // Mounts held by all containers (shared mode: the shared namespace's count).
  long MountsHeld() const;
  // Mount operations the last Grow issued (mount, bind, move_mount, umount).
  long mount_ops() const { return mount_ops_; }

 private:
  void BuildRange(int first, int last, std::vector<Container>* out, std::atomic<int>* done);
  void MakeSharedNamespace();
  void MountOverlay(const std::string& lower, const std::string& dir, const std::string& root);
  // Bind b's mount point in the container (profile bind_paths, else the image's).
  std::string BindTarget(size_t b, bool* readonly) const;
  void MountBind(size_t b, const std::string& farm, const std::string& root);
  Profile profile_;
  Image image_;
  std::unique_ptr<RealRuntime> runtime_;
  int builders_;
  int id_;
  int base_ns_fd_ = -1;    // namespace whose root is the sandbox tmpfs
  int shared_ns_fd_ = -1;  // shared mode only
  std::vector<Container> containers_;
  std::atomic<long> mount_ops_{0};
  std::atomic<long> dir_serial_{0};
};

// Mounts an overlay at target by fsopen/fsconfig/fsmount/move_mount. lower is
// top layer first, one lowerdir+ each (6.7+). On a kernel without lowerdir+
// the whole list goes in one lowerdir when lowerdir_fallback is set; without
// it, that is Unsupported (scenarios that measure lowerdir+ itself).
void FsmountOverlay(const std::vector<std::string>& lower, const std::string& upper,
                    const std::string& work, const std::string& target, bool lowerdir_fallback);

// The namespace every container is copied from, made once per process and
// kept: its root is the sandbox work area and it holds that one mount, so
// copy_tree copies one mount per container instead of the host's whole table.
// Returns its nsfs fd.
int BaseNamespace();

// Images are cached per shape in the sandbox work area.
const Image& GetImage(const ImageShape& shape);

// Paths of the sandbox work area as seen from a builder namespace, whose root
// is that work area.
std::string InBase(const std::string& sandbox_path);

}  // namespace mntscale
