#include "tar.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

constexpr size_t kNameField = 100;
// A PAX or GNU long-name header carries a path or two; PATH_MAX is 4096.
constexpr int64_t kMaxMetaBytes = 1 << 20;
constexpr int64_t kMaxNumber = int64_t{1} << 62;
constexpr size_t kChunk = 1 << 20;

// Octal with a NUL when it fits in w-1 digits, else base-256: a first byte
// of 0x80 (0xff for a negative number) and the value big-endian.
void PutNumber(char* f, size_t w, int64_t v) {
  if (v >= 0 && v < int64_t{1} << (3 * (w - 1))) {
    snprintf(f, w, "%0*llo", static_cast<int>(w - 1), static_cast<unsigned long long>(v));
    return;
  }
  uint64_t u = static_cast<uint64_t>(v);
  for (size_t i = w; i-- > 1; u >>= 8) f[i] = static_cast<char>(u & 0xff);
  f[0] = static_cast<char>(v < 0 ? 0xff : 0x80);
}

// false for anything but octal digits (space or NUL padded) or base-256.
bool GetNumber(const char* f, size_t w, int64_t* v) {
  auto b = reinterpret_cast<const unsigned char*>(f);
  if (b[0] == 0x80 || b[0] == 0xff) {
    uint64_t u = b[0] == 0xff ? ~uint64_t{0} : 0;
    for (size_t i = 1; i < w; ++i) {
      if (i + 8 < w && b[i] != (b[0] == 0xff ? 0xff : 0)) return false;  // past 64 bits
      u = u << 8 | b[i];
    }
    *v = static_cast<int64_t>(u);
    return *v<kMaxNumber&& * v> - kMaxNumber;
  }
  size_t i = 0;
  while (i < w && f[i] == ' ') ++i;
  uint64_t u = 0;
  for (; i < w && f[i] >= '0' && f[i] <= '7'; ++i) {
    u = u * 8 + static_cast<uint64_t>(f[i] - '0');
    if (u >= static_cast<uint64_t>(kMaxNumber)) return false;
  }
  for (; i < w; ++i) {
    if (f[i] != ' ' && f[i] != '\0') return false;
  }
  *v = static_cast<int64_t>(u);
  return true;
}

bool Decimal(const std::string& s, int64_t* v) {
  if (s.empty() || s.size() > 18) return false;
  *v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    *v = *v * 10 + (c - '0');
  }
  return true;
}

// Links, devices, directories and FIFOs carry no data whatever size says
// (as Go's archive/tar, which containerd uses, reads them).
bool HeaderOnly(char type) { return type >= '1' && type <= '6'; }

unsigned Checksum(const char* b) {
  unsigned sum = 0;
  for (size_t i = 0; i < kTarBlock; ++i) {
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(b[i]);
  }
  return sum;
}

// One "len key=value\n" record; len counts itself.
std::string PaxRecord(const std::string& key, const std::string& value) {
  size_t n = key.size() + value.size() + 3;
  size_t len = n + std::to_string(n).size();
  len = n + std::to_string(len).size();
  return std::to_string(len) + " " + key + "=" + value + "\n";
}

std::string Field(const char* f, size_t w) { return std::string(f, strnlen(f, w)); }

}  // namespace

std::string TarHeaderBlock(const TarEntry& e) {
  std::string block(kTarBlock, '\0');
  char* b = block.data();
  memcpy(b, e.name.data(), std::min(e.name.size(), kNameField));
  PutNumber(b + 100, 8, e.mode & 07777);
  PutNumber(b + 108, 8, e.uid);
  PutNumber(b + 116, 8, e.gid);
  PutNumber(b + 124, 12, e.size);
  PutNumber(b + 136, 12, e.mtime);
  b[156] = e.type;
  memcpy(b + 157, e.linkname.data(), std::min(e.linkname.size(), kNameField));
  memcpy(b + 257,
         "ustar\0"
         "00",
         8);
  snprintf(b + 148, 8, "%06o", Checksum(b));  // six digits, NUL, space
  b[155] = ' ';
  return block;
}

void TarWriter::Emit(const void* data, size_t n) {
  out_->Write(data, n);
  bytes_ += n;
}

void TarWriter::Header(const TarEntry& e) {
  std::string pax;
  if (e.name.size() > kNameField) pax += PaxRecord("path", e.name);
  if (e.linkname.size() > kNameField) pax += PaxRecord("linkpath", e.linkname);
  if (!pax.empty()) {
    TarEntry x{.name = "././@PaxHeader", .type = 'x', .size = static_cast<int64_t>(pax.size())};
    std::string block = TarHeaderBlock(x);
    Emit(block.data(), block.size());
    Data(pax.data(), pax.size());
    Pad();
  }
  std::string block = TarHeaderBlock(e);
  Emit(block.data(), block.size());
}

void TarWriter::Data(const void* data, size_t n) { Emit(data, n); }

void TarWriter::Pad() {
  static const char kZeros[kTarBlock] = {};
  if (bytes_ % kTarBlock) Emit(kZeros, kTarBlock - bytes_ % kTarBlock);
}

void TarWriter::File(const std::string& name, const std::string& data, uint32_t mode,
                     int64_t mtime) {
  Header({.name = name, .mode = mode, .size = static_cast<int64_t>(data.size()), .mtime = mtime});
  Data(data.data(), data.size());
  Pad();
}

void TarWriter::Finish() {
  static const char kZeros[2 * kTarBlock] = {};
  Emit(kZeros, sizeof kZeros);
}

void TarWriter::Tree(const std::string& dir) {
  struct stat st;
  Check(lstat(dir.c_str(), &st), "lstat", dir);
  if (!S_ISDIR(st.st_mode)) throw UsageError("layer " + dir + " is not a directory");
  Walk(dir, "");
}

void TarWriter::Walk(const std::string& root, const std::string& rel) {
  const std::string here = rel.empty() ? root : root + "/" + rel;
  std::vector<std::string> names;
  {
    std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(here.c_str()), closedir);
    if (!d) Check(-1, "opendir", here);
    for (;;) {
      errno = 0;
      dirent* de = readdir(d.get());
      if (!de) {
        if (errno) Check(-1, "readdir", here);
        break;
      }
      if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
        names.emplace_back(de->d_name);
      }
    }
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string path = here + "/" + name;
    const std::string r = rel.empty() ? name : rel + "/" + name;
    struct stat st;
    Check(lstat(path.c_str(), &st), "lstat", path);
    TarEntry e{.name = r,
               .mode = st.st_mode & 07777,
               .uid = st.st_uid,
               .gid = st.st_gid,
               .mtime = st.st_mtim.tv_sec};
    if (S_ISDIR(st.st_mode)) {
      e.name += "/";
      e.type = '5';
      Header(e);
      Walk(root, r);
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = Check(readlink(path.c_str(), target.data(), target.size()), "readlink", path);
      if (static_cast<size_t>(n) == target.size()) {
        throw SysError("readlink", path, EAGAIN, "the link changed while it was archived");
      }
      e.type = '2';
      e.linkname = target.substr(0, static_cast<size_t>(n));
      Header(e);
    } else if (S_ISREG(st.st_mode)) {
      Fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      Check(fd.get(), "open", path);
      Check(fstat(fd.get(), &st), "fstat", path);
      e.size = st.st_size;
      Header(e);
      std::vector<char> buf(std::min(kChunk, static_cast<size_t>(e.size)));
      for (int64_t left = e.size; left > 0;) {
        ssize_t n = read(fd.get(), buf.data(), std::min(buf.size(), static_cast<size_t>(left)));
        if (n < 0 && errno == EINTR) continue;
        Check(n, "read", path);
        if (n == 0) throw SysError("read", path, EAGAIN, "the file shrank while it was archived");
        Data(buf.data(), static_cast<size_t>(n));
        left -= n;
      }
      Pad();
    } else {
      throw UsageError("layer " + root + ": " + path + " is " + NonRegularKind(st.st_mode) +
                       "; a layer holds only directories, regular files and symbolic links");
    }
  }
}

bool TarReader::Fail(const std::string& why) {
  if (error_.empty()) error_ = why;
  return false;
}

bool TarReader::ReadExact(void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = pread(fd_, p, n, pos_);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Fail("read at offset " + std::to_string(pos_) + ": " + ErrnoName(errno));
    if (r == 0) return Fail("the file ended at " + std::to_string(pos_) + " while being read");
    p += r;
    pos_ += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool TarReader::Skip(int64_t n) {
  if (n > file_size_ - pos_) return Fail("truncated tar: the file ends inside an entry");
  pos_ += n;
  return true;
}

bool TarReader::ReadSmall(int64_t n, std::string* out, const char* what) {
  if (n > kMaxMetaBytes) {
    return Fail(std::string(what) + " header of " + std::to_string(n) + " bytes, more than " +
                std::to_string(kMaxMetaBytes) + " (a path or two)");
  }
  if (n > file_size_ - pos_) {
    return Fail("truncated tar: the file ends inside a " + std::string(what) + " header");
  }
  out->resize(static_cast<size_t>(n));
  return ReadExact(out->data(), out->size()) && Skip((kTarBlock - n % kTarBlock) % kTarBlock);
}

bool TarReader::Next(TarEntry* e) {
  if (!Skip(data_left_ + pad_left_)) return false;
  data_left_ = pad_left_ = 0;
  std::string long_name, long_link;
  int64_t pax_size = -1;
  for (;;) {
    const int64_t at = pos_;
    if (at == file_size_) return false;  // no end blocks: Go's reader and GNU tar accept that too
    if (file_size_ - at < static_cast<int64_t>(kTarBlock)) {
      return Fail("truncated tar: " + std::to_string(file_size_ - at) + " bytes at offset " +
                  std::to_string(at) + ", less than a header");
    }
    char b[kTarBlock];
    if (!ReadExact(b, sizeof b)) return false;
    if (std::all_of(b, b + sizeof b, [](char c) { return c == 0; })) return false;  // end
    int64_t sum, size;
    if (!GetNumber(b + 148, 8, &sum) || sum != Checksum(b)) {
      return Fail("not a tar: bad header checksum at offset " + std::to_string(at));
    }
    *e = TarEntry{.name = Field(b, 100), .type = b[156], .linkname = Field(b + 157, 100)};
    int64_t mode;
    if (!GetNumber(b + 100, 8, &mode) || !GetNumber(b + 108, 8, &e->uid) ||
        !GetNumber(b + 116, 8, &e->gid) || !GetNumber(b + 124, 12, &size) ||
        !GetNumber(b + 136, 12, &e->mtime) || size < 0) {
      return Fail("not a tar: bad number in the header at offset " + std::to_string(at));
    }
    e->mode = static_cast<uint32_t>(mode & 07777);
    if (memcmp(b + 257, "ustar\0", 6) == 0 && b[345] != '\0') {
      e->name = Field(b + 345, 155) + "/" + e->name;
    }
    if (e->type == 'x' || e->type == 'L' || e->type == 'K') {
      std::string meta;
      if (!ReadSmall(size, &meta, e->type == 'x' ? "PAX" : "GNU long name")) return false;
      if (e->type == 'L') long_name = meta.substr(0, strnlen(meta.c_str(), meta.size()));
      if (e->type == 'K') long_link = meta.substr(0, strnlen(meta.c_str(), meta.size()));
      for (size_t p = 0; e->type == 'x' && p < meta.size();) {  // "len key=value\n" records
        size_t len = strtoul(meta.c_str() + p, nullptr, 10), sp = meta.find(' ', p);
        size_t eq = meta.find('=', p);
        if (len == 0 || len > meta.size() - p || sp > eq || eq >= p + len ||
            meta[p + len - 1] != '\n') {
          return Fail("corrupt PAX header at offset " + std::to_string(at));
        }
        const std::string key = meta.substr(sp + 1, eq - sp - 1);
        const std::string value = meta.substr(eq + 1, p + len - 1 - eq - 1);
        if (key == "path") long_name = value;
        if (key == "linkpath") long_link = value;
        if (key == "size" && !Decimal(value, &pax_size)) {
          return Fail("corrupt PAX size at offset " + std::to_string(at));
        }
        p += len;
      }
      continue;
    }
    if (!long_name.empty()) e->name = long_name;
    if (!long_link.empty()) e->linkname = long_link;
    if (pax_size >= 0) size = pax_size;
    e->size = HeaderOnly(e->type) ? 0 : size;
    if (e->size > file_size_ - pos_) {
      return Fail("truncated tar: '" + e->name + "' claims " + std::to_string(e->size) +
                  " bytes, " + std::to_string(file_size_ - pos_) + " are left in the file");
    }
    data_left_ = e->size;
    pad_left_ = (kTarBlock - e->size % kTarBlock) % kTarBlock;
    if (e->type != 'g') return true;
    // Global PAX defaults: nothing this reader uses.
    if (!Skip(data_left_ + pad_left_)) return false;
    data_left_ = pad_left_ = 0;
  }
}

bool TarReader::Data(const std::function<void(const char*, size_t)>& fn) {
  std::vector<char> buf(std::min<int64_t>(kChunk, data_left_));
  while (data_left_ > 0) {
    size_t n = std::min<size_t>(buf.size(), static_cast<size_t>(data_left_));
    if (!ReadExact(buf.data(), n)) return false;
    data_left_ -= static_cast<int64_t>(n);
    fn(buf.data(), n);
  }
  return true;
}

}  // namespace mntscale
