// A ustar writer and a bounded tar reader, for OCI image archives (the outer
// archive and each layer). No GNU tar: the harness must produce the same
// bytes for the same tree on any host, and read archives it did not write
// without trusting a single header field.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

namespace mntscale {

// Where a TarWriter's bytes go.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void Write(const void* data, size_t n) = 0;
};

struct TarEntry {
  std::string name;  // relative, "bin/sh"; a directory's ends in '/'
  char type = '0';   // '0' regular file, '2' symbolic link, '5' directory, as in the header
  uint32_t mode = 0644;
  int64_t uid = 0, gid = 0;
  int64_t size = 0;  // data bytes that follow; 0 for anything but a regular file
  int64_t mtime = 0;
  std::string linkname{};  // a symbolic link's target
};

inline constexpr size_t kTarBlock = 512;

// The one 512-byte ustar header block for e. Numbers too large for their
// octal field use the base-256 form GNU tar and Go's archive/tar read; a name
// or link target over 100 bytes is cut, so callers that may have one use
// TarWriter::Header, which puts a PAX header before it.
std::string TarHeaderBlock(const TarEntry& e);

class TarWriter {
 public:
  explicit TarWriter(ByteSink* out) : out_(out) {}
  // e's header, after a PAX header ('x') carrying path and linkpath when
  // either is over 100 bytes. A regular file's e.size bytes then follow by
  // Data() and Pad().
  void Header(const TarEntry& e);
  void Data(const void* data, size_t n);
  void Pad();  // zeros to the next block boundary
  // A small regular file, whole: header, data, padding.
  void File(const std::string& name, const std::string& data, uint32_t mode, int64_t mtime);
  // Everything under dir (not dir itself), each directory's entries in name
  // order so a tree gives the same bytes every time; owner, mode and mtime
  // from lstat. Throws SysError for what it cannot read and UsageError for a
  // device, FIFO or socket. Hard links are written as separate files.
  void Tree(const std::string& dir);
  void Finish();  // the two zero blocks that end an archive
  uint64_t bytes() const { return bytes_; }

 private:
  void Emit(const void* data, size_t n);
  void Walk(const std::string& root, const std::string& rel);
  ByteSink* out_;
  uint64_t bytes_ = 0;
};

// Reads a tar sequentially from fd, whose first file_size bytes are the
// archive. Every header is checked (checksum, digits, sizes against what is
// left of the file) and long names from PAX ('x') and GNU ('L', 'K') headers
// are bounded, so garbage gives error() and never a crash or an allocation
// sized by a header field.
class TarReader {
 public:
  TarReader(int fd, int64_t file_size) : fd_(fd), file_size_(file_size) {}
  // The next entry (long names applied); false at the end of the archive or
  // on an error, which error() then says.
  bool Next(TarEntry* e);
  // The current entry's data, in pieces, to fn. Data not read is skipped by
  // the next Next().
  bool Data(const std::function<void(const char*, size_t)>& fn);
  const std::string& error() const { return error_; }
  // Where the current entry's data begins, before Data() reads it.
  int64_t offset() const { return pos_; }

 private:
  bool Fail(const std::string& why);
  bool ReadExact(void* buf, size_t n);
  bool Skip(int64_t n);
  bool ReadSmall(int64_t n, std::string* out, const char* what);
  int fd_;
  int64_t file_size_, pos_ = 0;
  int64_t data_left_ = 0, pad_left_ = 0;
  std::string error_;
};

}  // namespace mntscale
