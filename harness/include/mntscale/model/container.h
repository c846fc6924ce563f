// One container of a farm: its mount namespace and where its root is.
#pragma once

#include <string>

namespace mntscale {

struct Container {
  int index = 0;
  int ns_fd = -1;      // nsfs fd holding the namespace (shared mode: the one shared ns)
  std::string root;    // chroot path inside the namespace; "" when pivot_root made it "/"
  std::string upper;   // its overlay upper dir, as the sandbox namespace sees it
  int mounts = 0;      // mounts in its namespace right after it was built
  double build_s = 0;  // wall time to build it
};

}  // namespace mntscale
