// A container profile: the shape of each container the farm builds.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mntscale {

struct Profile {
  std::string name = "default";
  int layers = 10;                    // overlay lower layers
  int depth = 8;                      // directory depth of the measured path
  int files_per_dir = 4;              // files at each level of each layer
  int binds = 3;                      // runtime bind mounts (hosts, resolv.conf, hostname, ...)
  bool proc = true;                   // /proc
  bool sys = false;                   // /sys (sysfs)
  bool dev = true;                    // tmpfs /dev, plus /dev/shm and /dev/mqueue
  std::string overlay_api = "mount";  // mount | fsmount
  std::string ns_mode = "private";    // private | shared (the mitigation)
  std::string root_switch = "pivot_root";  // pivot_root | chroot
  std::string idmap = "none";              // none | per-layer | parent

  // Visible mounts each container's namespace holds (the overlay root, binds,
  // proc, sys, dev, shm, mqueue). Overlay's private layer clones are not in
  // the namespace's tree, so they are not counted here.
  int MountsPerContainer() const;
  // Every field checked; throws UsageError naming the bad field and value.
  void Validate() const;
  nlohmann::json ToJson() const;
  // Unknown keys and wrong types are errors naming the field.
  static Profile FromJson(const nlohmann::json& j, const std::string& origin);
  // A name in profiles/ (with or without .json) or a path.
  static Profile Load(const std::string& spec);
};

inline constexpr int kMaxLayers = 500;

}  // namespace mntscale
