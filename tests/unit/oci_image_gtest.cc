// OCI image archives: our SHA-256 against the FIPS 180-4 vectors, the tar
// writer read back by our reader and by GNU tar, and OciArchiveProblem naming
// each kind of damage without crashing on garbage.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../../harness/runtimes/tar.h"
#include "mntscale/runtimes/oci_image.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                      "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(Sha256, OneMillionAInOddChunks) {
  const std::string a(1000, 'a');
  Sha256 sha;
  const size_t kChunks[] = {1, 63, 64, 65, 7, 127, 999, 3};
  for (size_t done = 0, i = 0; done < 1000000; ++i) {
    size_t n = std::min(kChunks[i % 8], 1000000 - done);
    sha.Update(a.data(), n);
    done += n;
  }
  EXPECT_EQ(sha.HexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, EverySplitOfAMessageGivesItsDigest) {
  std::string m;
  for (int i = 0; i < 200; ++i) m += static_cast<char>(i * 7);
  const std::string whole = Sha256Hex(m);
  for (size_t cut = 0; cut <= m.size(); ++cut) {
    Sha256 sha;
    sha.Update(m.data(), cut);
    sha.Update(m.data() + cut, m.size() - cut);
    ASSERT_EQ(sha.HexDigest(), whole) << "split at " << cut;
  }
}

std::string TempDir() {
  char tmpl[] = "/tmp/mntscale-oci.XXXXXX";
  const char* d = mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d ? d : "";
}

// Output of a shell command, or "" with *ok false.
std::string Shell(const std::string& cmd, bool* ok) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return *ok = false, out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  *ok = pclose(p) == 0;
  return out;
}

constexpr int64_t kMtime = 1700000000;
const std::string kLongDir = "long/" + std::string(100, 'd');  // 105 bytes
const std::string kLongPath = kLongDir + "/" + std::string(150 - kLongDir.size() - 1, 'f');

void Put(const std::string& path, const std::string& data, mode_t mode) {
  WriteFile(path, data);
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

// A small tree: a file, a nested directory, a symlink, a 150-byte path, an
// empty file; every mtime fixed.
std::string MakeLayer(const std::string& dir) {
  const std::string l = dir + "/layer";
  MkdirP(l + "/etc");
  MkdirP(l + "/usr/lib/deep");
  MkdirP(l + "/" + kLongDir);
  Put(l + "/etc/hostname", "farm\n", 0640);
  Put(l + "/usr/lib/deep/lib.so", std::string(3000, 'x'), 0755);
  Put(l + "/" + kLongPath, "long\n", 0644);
  Put(l + "/empty", "", 0600);
  EXPECT_EQ(symlink("../usr/lib/deep/lib.so", (l + "/etc/link").c_str()), 0);
  const timespec t[2] = {{kMtime, 0}, {kMtime, 0}};
  for (const char* p : {"/etc/hostname", "/usr/lib/deep/lib.so", "/empty", "/etc/link", "/etc",
                        "/usr/lib/deep", "/usr/lib", "/usr", "/long"}) {
    EXPECT_EQ(utimensat(AT_FDCWD, (l + p).c_str(), t, AT_SYMLINK_NOFOLLOW), 0) << p;
  }
  EXPECT_EQ(utimensat(AT_FDCWD, (l + "/" + kLongPath).c_str(), t, 0), 0);
  EXPECT_EQ(utimensat(AT_FDCWD, (l + "/" + kLongDir).c_str(), t, 0), 0);
  return l;
}

struct Read {
  TarEntry entry;
  std::string data;
};

// Every entry of a tar file by name, by our reader.
std::map<std::string, Read> ReadTar(const std::string& path, std::string* error) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st;
  EXPECT_EQ(fstat(fd.get(), &st), 0);
  TarReader tar(fd.get(), st.st_size);
  std::map<std::string, Read> out;
  TarEntry e;
  while (tar.Next(&e)) {
    Read& r = out[e.name];
    r.entry = e;
    EXPECT_TRUE(tar.Data([&](const char* p, size_t n) { r.data.append(p, n); }));
  }
  *error = tar.error();
  return out;
}

class OciArchive : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    layer_ = MakeLayer(dir_);
    MkdirP(dir_ + "/top/etc");
    Put(dir_ + "/top/etc/hostname", "farm-top\n", 0644);
    archive_ = dir_ + "/image.tar";
    image_ = WriteOciArchive({layer_, dir_ + "/top"}, "mntscale.local/farm:1", archive_);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string Blob(const std::string& digest) { return "blobs/sha256/" + digest.substr(7); }

  std::string dir_, layer_, archive_;
  OciImage image_;
};

TEST_F(OciArchive, HoldsTheLayoutIndexManifestConfigAndLayers) {
  std::string error;
  auto outer = ReadTar(archive_, &error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(outer.at("oci-layout").data, R"({"imageLayoutVersion":"1.0.0"})");
  const std::string index = outer.at("index.json").data;
  EXPECT_NE(index.find(image_.manifest_digest), std::string::npos);
  EXPECT_NE(index.find(R"("io.containerd.image.name":"mntscale.local/farm:1")"), std::string::npos);
  EXPECT_NE(index.find(R"("org.opencontainers.image.ref.name":"mntscale.local/farm:1")"),
            std::string::npos);
  const std::string manifest = outer.at(Blob(image_.manifest_digest)).data;
  EXPECT_EQ("sha256:" + Sha256Hex(manifest), image_.manifest_digest);
  EXPECT_NE(manifest.find("application/vnd.oci.image.layer.v1.tar\""), std::string::npos);
  const std::string config = outer.at(Blob(image_.config_digest)).data;
  EXPECT_NE(config.find(R"("architecture":"amd64")"), std::string::npos);
  ASSERT_EQ(image_.diff_ids.size(), 2u);
  for (const std::string& id : image_.diff_ids) {
    EXPECT_NE(config.find(id), std::string::npos);
    EXPECT_EQ("sha256:" + Sha256Hex(outer.at(Blob(id)).data), id);
  }
  struct stat st;
  ASSERT_EQ(stat(archive_.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, image_.archive_bytes);
}

TEST_F(OciArchive, LayerKeepsNamesTypesModesOwnersAndMtimes) {
  std::string error;
  auto outer = ReadTar(archive_, &error);
  const std::string layer_tar = dir_ + "/layer0.tar";
  WriteFile(layer_tar, outer.at(Blob(image_.diff_ids[0])).data);
  auto layer = ReadTar(layer_tar, &error);
  ASSERT_EQ(error, "");
  const TarEntry& host = layer.at("etc/hostname").entry;
  EXPECT_EQ(host.type, '0');
  EXPECT_EQ(host.mode, 0640u);
  EXPECT_EQ(host.mtime, kMtime);
  EXPECT_EQ(host.uid, getuid());
  EXPECT_EQ(host.gid, getgid());
  EXPECT_EQ(layer.at("etc/hostname").data, "farm\n");
  EXPECT_EQ(layer.at("usr/lib/deep/lib.so").data, std::string(3000, 'x'));
  EXPECT_EQ(layer.at("usr/lib/deep/lib.so").entry.mode, 0755u);
  EXPECT_EQ(layer.at("usr/lib/deep/").entry.type, '5');
  EXPECT_EQ(layer.at("usr/lib/deep/").entry.mtime, kMtime);
  EXPECT_EQ(layer.at("etc/link").entry.type, '2');
  EXPECT_EQ(layer.at("etc/link").entry.linkname, "../usr/lib/deep/lib.so");
  ASSERT_EQ(kLongPath.size(), 150u);
  EXPECT_EQ(layer.at(kLongPath).data, "long\n");
  EXPECT_EQ(layer.at(kLongDir + "/").entry.type, '5');
  EXPECT_EQ(layer.at("empty").entry.size, 0);
  EXPECT_EQ(layer.at("empty").entry.mode, 0600u);
  EXPECT_EQ(layer.size(), 11u);  // 6 directories, 4 files, a link; no "./" root
}

TEST_F(OciArchive, SameTreeSameDigests) {
  OciImage again =
      WriteOciArchive({layer_, dir_ + "/top"}, "mntscale.local/farm:1", dir_ + "/again.tar");
  EXPECT_EQ(again.manifest_digest, image_.manifest_digest);
  EXPECT_EQ(again.diff_ids, image_.diff_ids);
}

TEST_F(OciArchive, GnuTarAndSha256sumAgree) {
  if (access("/usr/bin/tar", X_OK) != 0 || access("/usr/bin/sha256sum", X_OK) != 0) {
    GTEST_SKIP() << "no /usr/bin/tar or /usr/bin/sha256sum to cross-check with";
  }
  bool ok;
  const std::string x = dir_ + "/x";
  MkdirP(x);
  Shell("/usr/bin/tar -xf " + archive_ + " -C " + x + " 2>&1", &ok);
  ASSERT_TRUE(ok) << "GNU tar could not extract the archive";
  const std::string sums = Shell("cd " + x + "/blobs/sha256 && /usr/bin/sha256sum -- *", &ok);
  ASSERT_TRUE(ok);
  int n = 0;
  for (size_t p = 0; p < sums.size(); p = sums.find('\n', p) + 1, ++n) {
    EXPECT_EQ(sums.substr(p, 64), sums.substr(p + 66, 64)) << "sha256sum of a blob is not its name";
  }
  EXPECT_EQ(n, 4);  // two layers, config, manifest
  const std::string list = Shell("/usr/bin/tar --numeric-owner --full-time -tvf " + x + "/" +
                                     Blob(image_.diff_ids[0]) + " 2>&1",
                                 &ok);
  ASSERT_TRUE(ok) << list;
  EXPECT_NE(list.find(kLongPath), std::string::npos) << list;
  EXPECT_NE(list.find("etc/link -> ../usr/lib/deep/lib.so"), std::string::npos) << list;
  EXPECT_NE(list.find("-rw-r----- " + std::to_string(getuid()) + "/" + std::to_string(getgid())),
            std::string::npos)
      << list;
  EXPECT_NE(list.find("2023-11-14"), std::string::npos) << list;  // kMtime, UTC or near it
  EXPECT_EQ(list.find("warning"), std::string::npos) << list;
}

TEST_F(OciArchive, RefusesAFifoNamingItAndLeavesNoTemporary) {
  const std::string fifo = layer_ + "/etc/pipe";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  try {
    WriteOciArchive({layer_}, "x:1", dir_ + "/bad.tar");
    FAIL() << "a FIFO in a layer was archived";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(fifo + " is a FIFO"), std::string::npos) << e.what();
  }
  bool ok;
  EXPECT_EQ(Shell("ls " + dir_ + " | grep -c bad.tar", &ok), "0\n");
}

TEST_F(OciArchive, MissingLayerIsASysError) {
  EXPECT_THROW(WriteOciArchive({dir_ + "/nope"}, "x:1", dir_ + "/bad.tar"), SysError);
}

TEST_F(OciArchive, ProblemIsEmptyForAWrittenArchive) { EXPECT_EQ(OciArchiveProblem(archive_), ""); }

// The archive's bytes, changed by fn, written to a new file.
std::string Altered(const std::string& from, const std::string& to,
                    const std::function<void(std::string*)>& fn) {
  std::string s = ReadFile(from);
  fn(&s);
  WriteFile(to, s);
  return to;
}

class StringSink : public ByteSink {
 public:
  void Write(const void* data, size_t n) override { s.append(static_cast<const char*>(data), n); }
  std::string s;
};

// A tar of these files, in this order.
std::string Tar(const std::vector<std::pair<std::string, std::string>>& files) {
  StringSink sink;
  TarWriter tar(&sink);
  for (const auto& [name, data] : files) tar.File(name, data, 0644, 0);
  tar.Finish();
  return sink.s;
}

TEST_F(OciArchive, ProblemNamesEachDamage) {
  const std::string bad = dir_ + "/bad.tar";
  auto flip = [](std::string* s) { (*s)[s->find("farm-top\n")] ^= 1; };
  EXPECT_NE(OciArchiveProblem(Altered(archive_, bad, flip)).find("does not match its digest"),
            std::string::npos);

  std::string error;
  auto files = ReadTar(archive_, &error);
  std::vector<std::pair<std::string, std::string>> without_index;
  for (const auto& [name, r] : files) {
    if (name != "index.json") without_index.emplace_back(name, r.data);
  }
  WriteFile(bad, Tar(without_index));
  EXPECT_EQ(OciArchiveProblem(bad), "index.json missing");

  auto truncate = [](std::string* s) { s->resize(s->size() / 2 + 100); };
  EXPECT_NE(OciArchiveProblem(Altered(archive_, bad, truncate)).find("truncated tar"),
            std::string::npos);

  std::mt19937 rng(24);
  std::string noise(65536, '\0');
  for (char& c : noise) c = static_cast<char>(rng());
  WriteFile(bad, noise);
  EXPECT_EQ(OciArchiveProblem(bad), "not a tar: bad header checksum at offset 0");

  std::string huge = TarHeaderBlock({.name = "blobs/sha256/aa", .size = int64_t{1} << 40});
  WriteFile(bad, huge + std::string(kTarBlock, 'z'));
  EXPECT_EQ(
      OciArchiveProblem(bad),
      "truncated tar: 'blobs/sha256/aa' claims 1099511627776 bytes, 512 are left in the file");

  EXPECT_NE(OciArchiveProblem(archive_, 4096).find("more than the 4096 this check reads"),
            std::string::npos);
  WriteFile(bad, "");
  EXPECT_EQ(OciArchiveProblem(bad), "not a tar: the file is empty");
  EXPECT_EQ(OciArchiveProblem("/dev/zero"), "/dev/zero is a character device");
}

TEST_F(OciArchive, ProblemNamesABadIndexManifestOrConfig) {
  const std::string bad = dir_ + "/bad.tar";
  auto not_json = [](std::string* s) { s->replace(s->find(R"({"manifests")"), 1, "["); };
  EXPECT_EQ(OciArchiveProblem(Altered(archive_, bad, not_json)), "index.json: not JSON");

  const std::string layout = R"({"imageLayoutVersion":"1.0.0"})";
  const std::string config = R"({"rootfs":{"type":"layers","diff_ids":[]}})";
  const std::string cdig = "sha256:" + Sha256Hex(config);
  auto blob = [](const std::string& data) { return "blobs/sha256/" + Sha256Hex(data); };
  auto desc = [](const std::string& type, const std::string& data) {
    return R"({"mediaType":")" + type + R"(","digest":"sha256:)" + Sha256Hex(data) +
           R"(","size":)" + std::to_string(data.size()) + "}";
  };
  auto index = [&](const std::string& manifests) {
    return R"({"schemaVersion":2,"manifests":[)" + manifests + "]}";
  };
  const std::string kManifest = "application/vnd.oci.image.manifest.v1+json";
  const std::string docker_config = R"({"schemaVersion":2,"config":)" +
                                    desc("application/vnd.docker.container.image.v1+json", config) +
                                    R"(,"layers":[]})";
  const std::string not_json_manifest = "schemaVersion: 2";
  const std::string no_config = R"({"schemaVersion":2,"config":)" +
                                desc("application/vnd.oci.image.config.v1+json", config) +
                                R"(,"layers":[]})";
  struct Case {
    std::vector<std::pair<std::string, std::string>> files;
    std::string problem;
  } cases[] = {
      {{{"index.json", index("")}}, "oci-layout missing"},
      {{{"oci-layout", layout},
        {"index.json",
         index(desc(kManifest, docker_config) + "," + desc(kManifest, docker_config))},
        {blob(docker_config), docker_config}},
       "index.json: 2 manifests, not exactly one"},
      {{{"oci-layout", layout}, {"index.json", index(desc(kManifest, docker_config))}},
       "index.json manifest: blob sha256:" + Sha256Hex(docker_config).substr(0, 12) + ".. missing"},
      {{{"oci-layout", layout},
        {"index.json", index(desc("application/vnd.oci.image.index.v1+json", docker_config))},
        {blob(docker_config), docker_config}},
       "index.json manifest: mediaType is not " + kManifest},
      {{{"oci-layout", layout},
        {"index.json", index(desc(kManifest, not_json_manifest))},
        {blob(not_json_manifest), not_json_manifest}},
       "manifest sha256:" + Sha256Hex(not_json_manifest).substr(0, 12) + "..: not JSON"},
      {{{"oci-layout", layout},
        {"index.json", index(desc(kManifest, docker_config))},
        {blob(docker_config), docker_config},
        {blob(config), config}},
       "manifest config: mediaType is not application/vnd.oci.image.config.v1+json"},
      {{{"oci-layout", layout},
        {"index.json", index(desc(kManifest, no_config))},
        {blob(no_config), no_config}},
       "manifest config: blob " + cdig.substr(0, 19) + ".. missing"},
      {{{"oci-layout", layout},
        {"index.json", index(desc(kManifest, no_config))},
        {blob(no_config), no_config},
        {blob(config), config}},
       "manifest: no layers"},
  };
  for (const Case& c : cases) {
    WriteFile(bad, Tar(c.files));
    EXPECT_EQ(OciArchiveProblem(bad), c.problem);
  }
}

TEST_F(OciArchive, ProblemNeverCrashesOnDamagedBytes) {
  const std::string original = ReadFile(archive_);
  const std::string bad = dir_ + "/bad.tar";
  std::mt19937 rng(24);
  int found = 0;
  for (size_t at = 0; at < original.size(); at += 1 + rng() % 97) {
    std::string s = original;
    s[at] = static_cast<char>(rng());
    if (s[at] == original[at]) continue;
    WriteFile(bad, s);
    found += !OciArchiveProblem(bad).empty();
  }
  EXPECT_GT(found, 0);
}

}  // namespace
}  // namespace mntscale
