#include "mntscale/runtimes/oci_image.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "mntscale/sys/sys.h"
#include "tar.h"

namespace mntscale {
namespace {

using nlohmann::json;

// FIPS 180-4, 4.2.2: the first 32 bits of the fractional parts of the cube
// roots of the first 64 primes.
constexpr uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

uint32_t Rotr(uint32_t x, int n) { return x >> n | x << (32 - n); }

constexpr const char* kManifestType = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kConfigType = "application/vnd.oci.image.config.v1+json";
constexpr const char* kLayerType = "application/vnd.oci.image.layer.v1.tar";
// Manifests and configs are a few KiB; a blob larger than this is not one.
constexpr int64_t kMaxJsonBytes = 1 << 20;

std::string BlobName(const std::string& digest) {  // "sha256:<hex>"
  return "blobs/sha256/" + digest.substr(7);
}

json Descriptor(const char* media_type, const std::string& digest, int64_t size) {
  return {{"mediaType", media_type}, {"digest", digest}, {"size", size}};
}

// The archive, through a buffer: a tar writes many 512-byte headers.
class FileSink : public ByteSink {
 public:
  explicit FileSink(AtomicFile* file) : file_(file) {}
  void Write(const void* data, size_t n) override {
    if (buf_.size() + n > kBuf) Flush();
    if (n >= kBuf) {
      file_->Write(data, n);
    } else {
      buf_.append(static_cast<const char*>(data), n);
    }
  }
  void Flush() {
    file_->Write(buf_.data(), buf_.size());
    buf_.clear();
  }

 private:
  static constexpr size_t kBuf = 1 << 20;
  AtomicFile* file_;
  std::string buf_;
};

// A layer tar on its way into the archive as one blob's data, hashed as it
// passes: the layer is read from disk once and never held in memory.
class LayerSink : public ByteSink {
 public:
  explicit LayerSink(TarWriter* archive) : archive_(archive) {}
  void Write(const void* data, size_t n) override {
    sha_.Update(data, n);
    archive_->Data(data, n);
  }
  std::string Digest() { return "sha256:" + sha_.HexDigest(); }

 private:
  TarWriter* archive_;
  Sha256 sha_;
};

std::string AddBlob(TarWriter* out, const std::string& data) {
  const std::string digest = "sha256:" + Sha256Hex(data);
  out->File(BlobName(digest), data, 0644, 0);
  return digest;
}

}  // namespace

Sha256::Sha256()
    : h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19} {}

void Sha256::Block(const unsigned char* p) {
  uint32_t w[64];
  for (int t = 0; t < 16; ++t) {
    w[t] = uint32_t{p[4 * t]} << 24 | uint32_t{p[4 * t + 1]} << 16 | uint32_t{p[4 * t + 2]} << 8 |
           uint32_t{p[4 * t + 3]};
  }
  for (int t = 16; t < 64; ++t) {
    uint32_t s0 = Rotr(w[t - 15], 7) ^ Rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = Rotr(w[t - 2], 17) ^ Rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int t = 0; t < 64; ++t) {
    uint32_t t1 =
        h + (Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25)) + ((e & f) ^ (~e & g)) + kRound[t] + w[t];
    uint32_t t2 = (Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d, h_[4] += e, h_[5] += f, h_[6] += g, h_[7] += h;
}

void Sha256::Update(const void* data, size_t n) {
  auto p = static_cast<const unsigned char*>(data);
  total_ += n;
  if (buf_len_ > 0) {
    size_t take = std::min(n, sizeof buf_ - buf_len_);
    memcpy(buf_ + buf_len_, p, take);
    buf_len_ += take, p += take, n -= take;
    if (buf_len_ < sizeof buf_) return;
    Block(buf_);
    buf_len_ = 0;
  }
  for (; n >= sizeof buf_; p += sizeof buf_, n -= sizeof buf_) Block(p);
  memcpy(buf_, p, n);
  buf_len_ = n;
}

std::string Sha256::HexDigest() {
  const uint64_t bits = total_ * 8;
  unsigned char pad[72] = {0x80};
  size_t zeros = (buf_len_ < 56 ? 56 : 120) - buf_len_;  // the 0x80 and zeros, to 56 mod 64
  for (int i = 0; i < 8; ++i) pad[zeros + i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
  Update(pad, zeros + 8);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (uint32_t v : h_) {
    for (int shift = 28; shift >= 0; shift -= 4) hex += kHex[(v >> shift) & 0xf];
  }
  return hex;
}

std::string Sha256Hex(const std::string& data) {
  Sha256 sha;
  sha.Update(data.data(), data.size());
  return sha.HexDigest();
}

OciImage WriteOciArchive(const std::vector<std::string>& layer_dirs, const std::string& ref,
                         const std::string& archive_path) {
  if (layer_dirs.empty()) throw UsageError("OCI image " + ref + ": no layers");
  if (ref.empty()) throw UsageError("OCI image " + archive_path + ": an empty name");
  AtomicFile file(archive_path);
  FileSink sink(&file);
  TarWriter out(&sink);
  OciImage image;
  image.ref = ref;
  out.File("oci-layout", R"({"imageLayoutVersion":"1.0.0"})", 0644, 0);
  json layers = json::array();
  for (const std::string& dir : layer_dirs) {
    // A blob is named by its digest, known only once it is written: the
    // header goes in as a placeholder and is rewritten in place.
    const uint64_t header_at = out.bytes();
    out.Header({.name = BlobName("sha256:" + std::string(64, '0'))});
    LayerSink layer_sink(&out);
    TarWriter layer(&layer_sink);
    layer.Tree(dir);
    layer.Finish();
    out.Pad();
    const std::string digest = layer_sink.Digest();
    const auto size = static_cast<int64_t>(layer.bytes());
    sink.Flush();
    const std::string header = TarHeaderBlock({.name = BlobName(digest), .size = size});
    file.WriteAt(header.data(), header.size(), static_cast<off_t>(header_at));
    image.diff_ids.push_back(digest);  // uncompressed: the layer's digest is its diff_id
    layers.push_back(Descriptor(kLayerType, digest, size));
  }
  const std::string config = json{{"architecture", "amd64"},
                                  {"os", "linux"},
                                  {"config", json::object()},
                                  {"rootfs", {{"type", "layers"}, {"diff_ids", image.diff_ids}}}}
                                 .dump();
  image.config_digest = AddBlob(&out, config);
  const std::string manifest = json{
      {"schemaVersion", 2},
      {"mediaType", kManifestType},
      {"config", Descriptor(kConfigType, image.config_digest, std::ssize(config))},
      {"layers", layers}}.dump();
  image.manifest_digest = AddBlob(&out, manifest);
  json entry = Descriptor(kManifestType, image.manifest_digest, std::ssize(manifest));
  entry["annotations"] = {{"io.containerd.image.name", ref},
                          {"org.opencontainers.image.ref.name", ref}};
  entry["platform"] = {{"architecture", "amd64"}, {"os", "linux"}};
  const json index = {{"schemaVersion", 2},
                      {"mediaType", "application/vnd.oci.image.index.v1+json"},
                      {"manifests", json::array({entry})}};
  out.File("index.json", index.dump(), 0644, 0);
  out.Finish();
  sink.Flush();
  file.Commit();
  image.archive_bytes = static_cast<int64_t>(out.bytes());
  return image;
}

namespace {

// Where a blob's data lies in the archive: only the manifest and config are
// read again, so a check holds no more than those two in memory.
struct Blob {
  int64_t size = 0, offset = 0;
};
using Blobs = std::map<std::string, Blob>;  // by digest, "sha256:<hex>"

std::string Short(const std::string& digest) { return digest.substr(0, 7 + 12) + ".."; }

bool IsSha256Digest(const std::string& s) {
  return s.size() == 7 + 64 && s.compare(0, 7, "sha256:") == 0 &&
         std::all_of(s.begin() + 7, s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// "" when d describes a blob of the archive by digest and size with one of
// the media types; why not otherwise. *digest is set when there is one.
std::string DescriptorProblem(const json& d, const std::string& what,
                              const std::vector<std::string>& media_types, const Blobs& blobs,
                              std::string* digest) {
  if (!d.is_object()) return what + ": not a descriptor";
  const json& type = d.value("mediaType", json());
  if (!type.is_string() || std::find(media_types.begin(), media_types.end(),
                                     type.get<std::string>()) == media_types.end()) {
    return what + ": mediaType is not " + media_types[0];
  }
  const json& dg = d.value("digest", json());
  if (!dg.is_string() || !IsSha256Digest(dg.get<std::string>())) {
    return what + ": digest is not sha256:<64 hex digits>";
  }
  *digest = dg.get<std::string>();
  auto it = blobs.find(*digest);
  if (it == blobs.end()) return what + ": blob " + Short(*digest) + " missing";
  const json& size = d.value("size", json());
  if (!size.is_number_integer() || size.get<int64_t>() != it->second.size) {
    return what + ": size is not the blob's " + std::to_string(it->second.size) + " bytes";
  }
  return "";
}

// The blob's JSON object, or discarded with *why set.
json BlobJson(int fd, const Blobs& blobs, const std::string& digest, const std::string& what,
              std::string* why) {
  const Blob& b = blobs.at(digest);
  json j(json::value_t::discarded);
  std::string text(static_cast<size_t>(std::min(b.size, kMaxJsonBytes)), '\0');
  if (b.size <= kMaxJsonBytes &&
      pread(fd, text.data(), text.size(), b.offset) == static_cast<ssize_t>(text.size())) {
    j = json::parse(text, nullptr, false);
  }
  if (!j.is_object()) *why = what + " " + Short(digest) + ": not JSON";
  return j;
}

std::string ImageProblem(int fd, const std::optional<std::string>& layout,
                         const std::optional<std::string>& index_text, const Blobs& blobs) {
  if (!layout) return "oci-layout missing";
  const json l = json::parse(*layout, nullptr, false);
  if (!l.is_object() || !l.value("imageLayoutVersion", json()).is_string()) {
    return "oci-layout: not {\"imageLayoutVersion\": ...}";
  }
  if (!index_text) return "index.json missing";
  const json index = json::parse(*index_text, nullptr, false);
  if (!index.is_object()) return "index.json: not JSON";
  const json& manifests = index.value("manifests", json());
  if (!manifests.is_array() || manifests.size() != 1) {
    return "index.json: " + std::to_string(manifests.is_array() ? manifests.size() : 0) +
           " manifests, not exactly one";
  }
  std::string why, digest;
  why = DescriptorProblem(manifests[0], "index.json manifest", {kManifestType}, blobs, &digest);
  if (!why.empty()) return why;
  const json manifest = BlobJson(fd, blobs, digest, "manifest", &why);
  if (!why.empty()) return why;
  if (manifest.value("schemaVersion", json()) != 2) return "manifest: schemaVersion is not 2";
  if (manifest.contains("mediaType") && manifest["mediaType"] != kManifestType) {
    return std::string("manifest: mediaType is not ") + kManifestType;
  }
  why = DescriptorProblem(manifest.value("config", json()), "manifest config", {kConfigType}, blobs,
                          &digest);
  if (!why.empty()) return why;
  const json config = BlobJson(fd, blobs, digest, "config", &why);
  if (!why.empty()) return why;
  const json& layers = manifest.value("layers", json());
  if (!layers.is_array() || layers.empty()) return "manifest: no layers";
  const json& rootfs = config.value("rootfs", json());
  const json& diff_ids = rootfs.is_object() ? rootfs.value("diff_ids", json()) : json();
  if (!diff_ids.is_array() || diff_ids.size() != layers.size()) {
    return "config: rootfs.diff_ids is not one digest per layer";
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::vector<std::string> types = {kLayerType, std::string(kLayerType) + "+gzip",
                                            std::string(kLayerType) + "+zstd"};
    why =
        DescriptorProblem(layers[i], "manifest layer " + std::to_string(i), types, blobs, &digest);
    if (!why.empty()) return why;
    if (layers[i]["mediaType"] == kLayerType && diff_ids[i] != digest) {
      return "config: diff_id " + std::to_string(i) + " is not the uncompressed layer's digest";
    }
  }
  return "";
}

}  // namespace

std::string OciArchiveProblem(const std::string& path, int64_t max_bytes) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "open(" + path + "): " + ErrnoName(errno);
  struct stat st;
  if (fstat(fd.get(), &st) < 0) return "fstat(" + path + "): " + ErrnoName(errno);
  if (const char* kind = NonRegularKind(st.st_mode)) return path + " is " + kind;
  if (st.st_size == 0) return "not a tar: the file is empty";
  if (st.st_size > max_bytes) {
    return std::to_string(st.st_size) + " bytes, more than the " + std::to_string(max_bytes) +
           " this check reads";
  }
  TarReader tar(fd.get(), st.st_size);
  std::optional<std::string> layout, index;
  Blobs blobs;
  TarEntry e;
  while (tar.Next(&e)) {
    std::string name = e.name;
    while (name.compare(0, 2, "./") == 0) name.erase(0, 2);
    if (e.type != '0' && e.type != '\0') continue;  // directories, links: nothing to check
    if (name == "oci-layout" || name == "index.json") {
      if (e.size > kMaxJsonBytes) return name + ": " + std::to_string(e.size) + " bytes";
      std::string& text = (name == "oci-layout" ? layout : index).emplace();
      if (!tar.Data([&](const char* p, size_t n) { text.append(p, n); })) break;
      continue;
    }
    if (name.compare(0, 13, "blobs/sha256/") != 0) continue;
    const std::string digest = "sha256:" + name.substr(13);
    if (!IsSha256Digest(digest)) return name + ": not named by a sha256 digest";
    blobs[digest] = Blob{.size = e.size, .offset = tar.offset()};
    Sha256 sha;
    if (!tar.Data([&](const char* p, size_t n) { sha.Update(p, n); })) break;
    if (const std::string actual = "sha256:" + sha.HexDigest(); actual != digest) {
      return "blob " + Short(digest) + " does not match its digest (its content is " +
             Short(actual) + ")";
    }
  }
  if (!tar.error().empty()) return tar.error();
  return ImageProblem(fd.get(), layout, index, blobs);
}

}  // namespace mntscale
