// System-call errors and the mount-API shims Debian 12's headers lack.
#pragma once

#include <fcntl.h>
#include <linux/types.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#ifndef __NR_open_tree
#define __NR_open_tree 428
#endif
#ifndef __NR_move_mount
#define __NR_move_mount 429
#endif
#ifndef __NR_fsopen
#define __NR_fsopen 430
#endif
#ifndef __NR_fsconfig
#define __NR_fsconfig 431
#endif
#ifndef __NR_fsmount
#define __NR_fsmount 432
#endif
#ifndef __NR_fspick
#define __NR_fspick 433
#endif
#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef __NR_statmount
#define __NR_statmount 457
#endif
#ifndef __NR_listmount
#define __NR_listmount 458
#endif
#ifndef __NR_open_tree_attr
#define __NR_open_tree_attr 467
#endif

namespace mntscale {

// The one error type for a failed system call: what was called, on what, the
// errno (kept as a number and a name) and a hint when one is known.
//   mount(overlay, /c17/rootfs): EINVAL (Invalid argument) — lowerdir list ...
class SysError : public std::runtime_error {
 public:
  SysError(std::string call, std::string arg, int err, std::string hint = "");
  const std::string& call() const { return call_; }
  const std::string& arg() const { return arg_; }
  int err() const { return err_; }
  const std::string& hint() const { return hint_; }

  static std::string Format(const std::string& call, const std::string& arg, int err,
                            const std::string& hint);

 private:
  std::string call_, arg_, hint_;
  int err_;
};

// A capability this kernel or machine lacks. It becomes a "skipped: reason"
// point in the results, never a crash and never a zero.
class Unsupported : public std::runtime_error {
 public:
  explicit Unsupported(const std::string& why) : std::runtime_error("unsupported: " + why) {}
};

// Bad user input: reported with exit code 2 before anything is built.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A sysctl as a number ("fs.mount-max"); -1 when unreadable.
long ReadSysctl(const std::string& name);

// "EINVAL" for EINVAL; "errno 1234" for numbers it does not know.
std::string ErrnoName(int err);

// Throws SysError when rc < 0, saving errno first. Returns rc otherwise.
long Check(long rc, const char* call, const std::string& arg, const std::string& hint = "");

// RAII file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.Release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// --- new mount API -------------------------------------------------------
// Constants from linux/mount.h that Debian 12's userspace headers may miss.
inline constexpr unsigned kFsconfigSetFlag = 0;
inline constexpr unsigned kFsconfigSetString = 1;
inline constexpr unsigned kFsconfigSetFd = 5;
inline constexpr unsigned kFsconfigCmdCreate = 6;
inline constexpr unsigned kFsopenCloexec = 0x1;
inline constexpr unsigned kFsmountCloexec = 0x1;
inline constexpr unsigned kMoveMountFEmptyPath = 0x4;
inline constexpr unsigned kMoveMountTEmptyPath = 0x40;
inline constexpr unsigned kOpenTreeClone = 1;
inline constexpr unsigned kOpenTreeCloexec = O_CLOEXEC;
inline constexpr uint64_t kMountAttrRdonly = 0x1;
inline constexpr uint64_t kMountAttrIdmap = 0x100000;
inline constexpr unsigned kAtRecursive = 0x8000;

struct MountAttr {  // struct mount_attr
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

struct MntIdReq {  // struct mnt_id_req (6.8+; mnt_ns_id from 6.11)
  uint32_t size;
  uint32_t spare;
  uint64_t mnt_id;
  uint64_t param;
  uint64_t mnt_ns_id;
};
inline constexpr uint32_t kMntIdReqSize0 = 24;
inline constexpr uint64_t kLsmtRoot = ~0ULL;  // LSMT_ROOT
inline constexpr uint64_t kStatmountSbBasic = 0x1;
inline constexpr uint64_t kStatmountMntBasic = 0x2;
inline constexpr uint64_t kStatmountMntRoot = 0x8;
inline constexpr uint64_t kStatmountMntPoint = 0x10;
inline constexpr uint64_t kStatmountFsType = 0x20;

// The head of struct statmount; string fields follow in str[].
struct StatMountHead {
  uint32_t size, mnt_opts;
  uint64_t mask;
  uint32_t sb_dev_major, sb_dev_minor;
  uint64_t sb_magic;
  uint32_t sb_flags, fs_type;
  uint64_t mnt_id, mnt_parent_id;
  uint32_t mnt_id_old, mnt_parent_id_old;
  uint64_t mnt_attr, mnt_propagation, mnt_peer_group, mnt_master;
  uint64_t propagate_from;
  uint32_t mnt_root, mnt_point;
  uint64_t mnt_ns_id;
  uint64_t spare2[49];
  char str[];
};

inline constexpr uint64_t kStatmountMntOpts = 0x80;
inline constexpr uint64_t kOverlayMagic = 0x794c7630;  // OVERLAYFS_SUPER_MAGIC
inline constexpr uint32_t kMntIdReqSize1 = 32;         // MNT_ID_REQ_SIZE_VER1: with mnt_ns_id
// include/uapi/linux/nsfs.h: _IOR(0xb7, 0x5, __u64), 6.9+.
inline constexpr unsigned long kNsGetMntnsId = 0x8008b705UL;
// The mount namespace id of an nsfs fd (NS_GET_MNTNS_ID, 6.9+); 0 when the
// ioctl fails.
uint64_t MntnsId(int nsfd);

// fanotify mount events (include/uapi/linux/fanotify.h, 6.15+).
inline constexpr unsigned kFanClassNotif = 0, kFanCloexec = 1, kFanNonblock = 2;
inline constexpr unsigned kFanUnlimitedQueue = 0x10;
inline constexpr unsigned kFanReportMnt = 0x00004000;
inline constexpr unsigned kFanMarkAdd = 1;
inline constexpr unsigned kFanMarkMntns = 0x00000110;
inline constexpr uint64_t kFanMntAttach = 0x01000000;
inline constexpr uint64_t kFanMntDetach = 0x02000000;
inline constexpr uint64_t kFanQOverflow = 0x00004000;
inline constexpr uint8_t kFanEventInfoTypeMnt = 7;
// struct fanotify_event_metadata, then info records {u8 type, u8 pad, u16
// len} (for a mount event: then the u64 mount id).
struct FanotifyEventHead {
  uint32_t event_len;
  uint8_t vers, reserved;
  uint16_t metadata_len;
  uint64_t mask;
  int32_t fd, pid;
};
// One event of a fanotify read buffer: its mask, and the mount id of a mount
// event's info record (0 when it carries none).
struct FanotifyEvent {
  uint64_t mask = 0;
  uint64_t mnt_id = 0;
};
// Calls fn(const FanotifyEvent&) for each whole event in buf[0, n), in order;
// stops at a length that is too short or runs past n (a torn or foreign
// buffer). Returns how many events it passed on. observe's counter and the
// mount_watcher scenario both read their queues through it.
template <typename F>
int ForEachFanotifyEvent(const char* buf, ssize_t n, F&& fn) {
  int count = 0;
  const ssize_t head = static_cast<ssize_t>(sizeof(FanotifyEventHead));
  for (ssize_t at = 0; at + head <= n;) {
    FanotifyEventHead h;
    memcpy(&h, buf + at, sizeof(h));
    if (h.event_len < sizeof(h) || at + static_cast<ssize_t>(h.event_len) > n) break;
    FanotifyEvent e;
    e.mask = h.mask;
    if (h.metadata_len >= sizeof(h) && h.event_len >= h.metadata_len + 12u &&
        static_cast<uint8_t>(buf[at + h.metadata_len]) == kFanEventInfoTypeMnt) {
      memcpy(&e.mnt_id, buf + at + h.metadata_len + 4, 8);
    }
    fn(e);
    ++count;
    at += h.event_len;
  }
  return count;
}
inline int FanotifyInit(unsigned flags, unsigned event_f_flags) {
  return static_cast<int>(syscall(SYS_fanotify_init, flags, event_f_flags));
}
inline int FanotifyMark(int fan, unsigned flags, uint64_t mask, int dfd, const char* path) {
  return static_cast<int>(syscall(SYS_fanotify_mark, fan, flags, mask, dfd, path));
}

// Raw shims: they return the syscall result and leave errno set, so hot loops
// can use them without exceptions. Callers in setup code wrap them in Check().
inline int FsOpen(const char* fs, unsigned flags) {
  return static_cast<int>(syscall(__NR_fsopen, fs, flags));
}
inline int FsConfig(int fd, unsigned cmd, const char* key, const void* val, int aux) {
  return static_cast<int>(syscall(__NR_fsconfig, fd, cmd, key, val, aux));
}
inline int FsMount(int fd, unsigned flags, unsigned attr) {
  return static_cast<int>(syscall(__NR_fsmount, fd, flags, attr));
}
inline int MoveMount(int from_dfd, const char* from, int to_dfd, const char* to, unsigned flags) {
  return static_cast<int>(syscall(__NR_move_mount, from_dfd, from, to_dfd, to, flags));
}
inline int OpenTree(int dfd, const char* path, unsigned flags) {
  return static_cast<int>(syscall(__NR_open_tree, dfd, path, flags));
}
inline int MountSetattr(int dfd, const char* path, unsigned flags, MountAttr* attr) {
  return static_cast<int>(syscall(__NR_mount_setattr, dfd, path, flags, attr, sizeof(MountAttr)));
}
inline long StatMount(const MntIdReq* req, void* buf, size_t size, unsigned flags) {
  return syscall(__NR_statmount, req, buf, size, flags);
}
inline long ListMount(const MntIdReq* req, uint64_t* ids, size_t n, unsigned flags) {
  return syscall(__NR_listmount, req, ids, n, flags);
}

// Probes, cached: does this kernel have the call at all (ENOSYS test)?
bool HaveListmount();
bool HaveStatmount();
bool HaveNewMountApi();

// Small file helpers for /proc and /sys.
// "a directory", "a FIFO", ... for a mode that is not a regular file (a
// symbolic link only from lstat); nullptr for a regular file.
const char* NonRegularKind(mode_t m);

// sendmsg of data (at least one byte) with fd attached as SCM_RIGHTS,
// retried on EINTR; the fd stays open here. Returns sendmsg's result.
ssize_t SendWithFd(int sock, const void* data, size_t len, int fd);

std::string ReadFile(const std::string& path);  // throws SysError
bool TryReadFile(const std::string& path, std::string* out);
void WriteFile(const std::string& path, const std::string& data);  // throws
// Writes path atomically: a temp file beside it, fsync, rename.
void WriteFileAtomic(const std::string& path, const std::string& data);

// WriteFileAtomic for a file too large to hold in memory: written in pieces
// under a temporary name beside path, then fsync and rename by Commit(). A
// reader of path sees the old file or the whole new one; destroyed without
// Commit() (an exception on the way), the temporary is removed.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // throws SysError
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void Write(const void* data, size_t n);              // all n bytes, or SysError
  void WriteAt(const void* data, size_t n, off_t at);  // over bytes already written
  void Commit();

 private:
  std::string path_, tmp_;
  Fd fd_;
};

void MkdirP(const std::string& path, mode_t mode = 0755);

}  // namespace mntscale
