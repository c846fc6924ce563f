#include "mntscale/sys/sys.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mntscale {
namespace {

// Hints for failures whose cause is usually the same. Keyed by call and errno;
// an explicit hint from the caller wins.
std::string KnownHint(const std::string& call, int err) {
  struct Row {
    const char* call;
    int err;
    const char* hint;
  };
  static const Row kRows[] = {
      {"setns", EINVAL, "the thread shares its fs_struct: unshare(CLONE_FS) first"},
      {"setns", EPERM, "needs CAP_SYS_ADMIN and CAP_SYS_CHROOT"},
      {"unshare", EPERM, "needs CAP_SYS_ADMIN (run as root, or rootless mode)"},
      {"unshare", ENOSPC, "user.max_mnt_namespaces reached"},
      {"mount", EPERM, "needs CAP_SYS_ADMIN in the mount namespace's user namespace"},
      {"mount", ENOSPC, "fs.mount-max reached for this namespace"},
      {"mount", ENODEV, "filesystem type not available: is the module loaded?"},
      {"open", EMFILE, "RLIMIT_NOFILE reached: raise it with ulimit -n"},
      {"open_tree", EMFILE, "RLIMIT_NOFILE reached: raise it with ulimit -n"},
      {"fsconfig", EINVAL, "the kernel rejected an option: see dmesg for the fs's reason"},
      {"mount_setattr", EINVAL, "idmapped mounts need a filesystem that supports them"},
  };
  for (const Row& r : kRows) {
    if (r.err == err && call.rfind(r.call, 0) == 0) return r.hint;
  }
  if (err == ENOSYS) return "this kernel does not have the system call";
  return "";
}

}  // namespace

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "errno " + std::to_string(err);
}

std::string SysError::Format(const std::string& call, const std::string& arg, int err,
                             const std::string& hint) {
  std::string msg = call + "(" + arg + "): " + ErrnoName(err) + " (" + strerror(err) + ")";
  if (!hint.empty()) msg += " \u2014 " + hint;
  return msg;
}

SysError::SysError(std::string call, std::string arg, int err, std::string hint)
    : std::runtime_error(Format(call, arg, err, hint.empty() ? KnownHint(call, err) : hint)),
      call_(std::move(call)),
      arg_(std::move(arg)),
      hint_(hint.empty() ? KnownHint(call_, err) : std::move(hint)),
      err_(err) {}

long Check(long rc, const char* call, const std::string& arg, const std::string& hint) {
  if (rc < 0) {
    int err = errno;
    throw SysError(call, arg, err, hint);
  }
  return rc;
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) Reset(o.Release());
  return *this;
}

void Fd::Reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

namespace {
bool Probe(long nr, bool* cache, bool* done) {
  if (!*done) {
    // A call with invalid arguments: ENOSYS means absent, anything else present.
    errno = 0;
    long rc = syscall(nr, nullptr, nullptr, 0, 0, 0);
    *cache = !(rc < 0 && errno == ENOSYS);
    *done = true;
  }
  return *cache;
}
}  // namespace

bool HaveListmount() {
  static bool v, d;
  return Probe(__NR_listmount, &v, &d);
}
bool HaveStatmount() {
  static bool v, d;
  return Probe(__NR_statmount, &v, &d);
}
bool HaveNewMountApi() {
  static bool v, d;
  if (!d) {
    int fd = FsOpen("tmpfs", kFsopenCloexec);
    v = fd >= 0 || errno != ENOSYS;
    if (fd >= 0) close(fd);
    d = true;
  }
  return v;
}

bool TryReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

const char* NonRegularKind(mode_t m) {
  if (S_ISLNK(m)) return "a symbolic link";
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return nullptr;  // a regular file
}

ssize_t SendWithFd(int sock, const void* data, size_t len, int fd) {
  iovec iov{const_cast<void*>(data), len};
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctrl;
  msg.msg_controllen = sizeof ctrl;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t n;
  while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  return n;
}

std::string ReadFile(const std::string& path) {
  std::string s;
  if (!TryReadFile(path, &s)) throw SysError("open", path, errno ? errno : ENOENT);
  return s;
}

void WriteFile(const std::string& path, const std::string& data) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC | O_CREAT, 0644));
  Check(fd.get(), "open", path);
  Check(write(fd.get(), data.data(), data.size()), "write", path);
}

void WriteFileAtomic(const std::string& path, const std::string& data) {
  AtomicFile f(path);
  f.Write(data.data(), data.size());
  f.Commit();
}

AtomicFile::AtomicFile(const std::string& path)
    : path_(path), tmp_(path + ".tmp." + std::to_string(getpid())) {
  fd_.Reset(open(tmp_.c_str(), O_WRONLY | O_CLOEXEC | O_TRUNC | O_CREAT, 0644));
  Check(fd_.get(), "open", tmp_);
}

AtomicFile::~AtomicFile() {
  if (fd_.valid()) unlink(tmp_.c_str());  // not committed
}

void AtomicFile::Write(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = write(fd_.get(), p, n);
    if (w < 0 && errno == EINTR) continue;
    Check(w, "write", tmp_);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::WriteAt(const void* data, size_t n, off_t at) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = pwrite(fd_.get(), p, n, at);
    if (w < 0 && errno == EINTR) continue;
    Check(w, "pwrite", tmp_);
    p += w;
    at += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::Commit() {
  Check(fsync(fd_.get()), "fsync", tmp_);
  Check(rename(tmp_.c_str(), path_.c_str()), "rename", tmp_ + " -> " + path_);
  fd_.Reset();
}

void MkdirP(const std::string& path, mode_t mode) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (!path.empty() && path[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part;
    if (mkdir(cur.c_str(), mode) < 0 && errno != EEXIST) Check(-1, "mkdir", cur);
    cur += "/";
  }
}

long ReadSysctl(const std::string& name) {
  std::string path = "/proc/sys/" + name;
  std::replace(path.begin() + 10, path.end(), '.', '/');
  std::string s;
  if (!TryReadFile(path, &s)) return -1;
  return std::strtol(s.c_str(), nullptr, 10);
}

uint64_t MntnsId(int nsfd) {
  uint64_t id = 0;
  return ioctl(nsfd, kNsGetMntnsId, &id) == 0 ? id : 0;
}

}  // namespace mntscale
