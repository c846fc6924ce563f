// OCI image archives without a registry: the farm's image written as an OCI
// image layout in a tar (oci-layout, index.json, blobs/sha256/...), the way
// `ctr images import` reads it, so containerd's own unpacker and overlayfs
// snapshotter prepare the containers' rootfs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mntscale {

// SHA-256 of data, as 64 lowercase hex digits.
std::string Sha256Hex(const std::string& data);

// Streaming SHA-256, for blobs too large to hold twice.
class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t n);
  std::string HexDigest();  // finishes; the object is spent afterwards
 private:
  void Block(const unsigned char* p);
  uint32_t h_[8];
  unsigned char buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

struct OciImage {
  std::string ref;              // the name index.json gives it, e.g. "mntscale.local/farm:3"
  std::string manifest_digest;  // "sha256:..."
  std::string config_digest;    // "sha256:..."
  std::vector<std::string> diff_ids;  // each layer's uncompressed tar, bottom first
  int64_t archive_bytes = 0;
};

// Writes archive_path (atomically: a temporary file renamed into place): one
// layer per directory of layer_dirs (bottom first), each an uncompressed tar
// of that directory's tree (directories, regular files, symlinks; owner,
// mode and mtime kept), a linux/amd64 image config whose rootfs.diff_ids
// are the layers' digests, a manifest, and an index.json naming it `ref`
// (org.opencontainers.image.ref.name and io.containerd.image.name). Throws
// SysError for an unreadable tree and UsageError for a file type a layer
// cannot hold (device, FIFO, socket).
OciImage WriteOciArchive(const std::vector<std::string>& layer_dirs, const std::string& ref,
                         const std::string& archive_path);

// "" when path is an OCI image archive that can be imported: a tar holding
// oci-layout, an index.json with exactly one manifest, and that manifest,
// its config and every layer blob present with the digests they are named
// by. Otherwise why not, in one line ("index.json: not JSON", "blob
// sha256:ab.. missing", ...). Reads at most max_bytes.
std::string OciArchiveProblem(const std::string& path, int64_t max_bytes = int64_t{1} << 32);

}  // namespace mntscale
