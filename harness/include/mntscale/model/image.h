// Container images: lower layers generated on the sandbox's tmpfs.
#pragma once

#include <string>
#include <vector>

namespace mntscale {

struct ImageShape {
  int layers = 10;
  int depth = 8;
  int files_per_dir = 4;
  int binds = 3;  // bind-mount targets the bottom layer must provide
  bool operator<(const ImageShape& o) const;
};

// What a generated image holds. Paths are absolute inside the sandbox;
// the *_in_container paths are what a container sees from its root.
struct Image {
  ImageShape shape;
  std::vector<std::string> layer_dirs;    // bottom first
  std::string deep_path;                  // "/d0/.../dN-1/target": a file in the bottom layer
  std::string missing_path;               // same directory, a name no layer has
  std::string static_exe;                 // "/bin/true-static": a tiny static ELF
  std::vector<std::string> bind_targets;  // "/etc/hosts", "/etc/resolv.conf", ...
  std::string DeepDir(int level) const;   // "/d0/.../d<level-1>"
};

// Writes the layers under dir/. Every layer holds the same directory chain
// d0/d1/... so overlay merges each level across all layers (the per-layer
// cost of a cold lookup); each layer adds its own files at each level.
Image BuildImage(const std::string& dir, const ImageShape& shape);

// The bytes of a minimal static x86-64 ELF that calls exit(0): execve's cost
// without the dynamic loader's.
std::string StaticExitElf();

}  // namespace mntscale
