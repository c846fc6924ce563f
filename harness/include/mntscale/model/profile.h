// A container profile: the shape of each container the farm builds.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mntscale/model/idmap_strategy.h"
#include "mntscale/sys/enum_names.h"

namespace mntscale {

// How the overlay root is mounted: mount(2) with a lowerdir string, or the
// new API (fsopen/fsconfig/fsmount/move_mount).
enum class OverlayApi { kMount, kFsmount };
inline constexpr EnumName<OverlayApi> kOverlayApis[] = {{OverlayApi::kMount, "mount"},
                                                        {OverlayApi::kFsmount, "fsmount"}};
// A namespace per container, or every container's mounts in one (the mitigation).
enum class NsMode { kPrivate, kShared };
inline constexpr EnumName<NsMode> kNsModes[] = {{NsMode::kPrivate, "private"},
                                                {NsMode::kShared, "shared"}};
enum class RootSwitch { kPivotRoot, kChroot };
inline constexpr EnumName<RootSwitch> kRootSwitches[] = {{RootSwitch::kPivotRoot, "pivot_root"},
                                                         {RootSwitch::kChroot, "chroot"}};
// The cgroup filesystem a container sees, read-only at /sys/fs/cgroup.
enum class CgroupMount { kNone, kV1, kV2 };
inline constexpr EnumName<CgroupMount> kCgroupMounts[] = {
    {CgroupMount::kNone, "none"}, {CgroupMount::kV1, "v1"}, {CgroupMount::kV2, "v2"}};
// What a masked file is bound from: runc's container /dev/null (a node on the
// container's tmpfs /dev, read-write) or crun 1.8's host /dev/null (devtmpfs,
// read-only).
enum class MaskedFiles { kContainerNull, kHostNullRo };
inline constexpr EnumName<MaskedFiles> kMaskedFiles[] = {
    {MaskedFiles::kContainerNull, "container-null"}, {MaskedFiles::kHostNullRo, "host-null-ro"}};
inline const char* Name(OverlayApi v) { return EnumNameOf(kOverlayApis, v); }
inline const char* Name(NsMode v) { return EnumNameOf(kNsModes, v); }
inline const char* Name(RootSwitch v) { return EnumNameOf(kRootSwitches, v); }
inline const char* Name(CgroupMount v) { return EnumNameOf(kCgroupMounts, v); }
inline const char* Name(MaskedFiles v) { return EnumNameOf(kMaskedFiles, v); }

struct Profile {
  std::string name = "default";
  int layers = 10;                    // overlay lower layers
  int depth = 8;                      // directory depth of the measured path
  int files_per_dir = 4;              // files at each level of each layer
  int binds = 3;                      // runtime bind mounts (hosts, resolv.conf, hostname, ...)
  bool proc = true;                   // /proc
  bool sys = false;                   // /sys (sysfs)
  bool dev = true;                    // tmpfs /dev, plus /dev/shm and /dev/mqueue
  OverlayApi overlay_api = OverlayApi::kMount;
  NsMode ns_mode = NsMode::kPrivate;
  RootSwitch root_switch = RootSwitch::kPivotRoot;
  IdmapStrategy idmap = IdmapStrategy::kNone;

  // Mount kinds real runtimes add (see `mntscale profile capture`). Their
  // defaults add nothing, so profiles that do not name them keep their shape.
  std::vector<std::string> bind_paths;      // the binds' mount points, "/path" or "/path:ro"
  bool devpts = false;                      // /dev/pts (with dev)
  std::vector<std::string> readonly_paths;  // read-only self-binds, e.g. /proc/sys
  // Masked as runc does: a directory gets a read-only tmpfs, a file a bind of
  // a null device. A path the container lacks is skipped, as runc skips it.
  std::vector<std::string> masked_paths;
  MaskedFiles masked_files = MaskedFiles::kContainerNull;
  CgroupMount cgroup = CgroupMount::kNone;
  // v1: one cgroup mount each under a tmpfs, named by their options
  // ("cpu", "cpu,cpuacct", "name=systemd").
  std::vector<std::string> cgroup_controllers;
  bool readonly_root = false;  // the root remounted read-only last, as runc does
  // The runtime's own mount table this profile was captured from (mount
  // point, type, ro, propagation): what the fidelity test compares against.
  nlohmann::json captured;

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

// A bind_paths entry: its path, and whether it ends in ":ro".
std::string SplitBindPath(const std::string& entry, bool* readonly);

}  // namespace mntscale
