#include "mntscale/model/farm.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "mntscale/model/idmap.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/model/scratch.h"
#include "mntscale/sys/sys.h"
#include "mntscale/model/userns.h"

namespace mntscale {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void Mount(const char* src, const std::string& target, const char* type, unsigned long flags,
           const char* data, std::atomic<long>* ops) {
  const char* what = type ? type : src ? src : "remount";
  Check(mount(src, target.c_str(), type, flags, data), "mount", std::string(what) + ", " + target);
  ops->fetch_add(1, std::memory_order_relaxed);
}

void SetNs(int fd, const char* what) { Check(setns(fd, CLONE_NEWNS), "setns", what); }

std::atomic<int> g_farm_ids{0};

}  // namespace

std::string InBase(const std::string& sandbox_path) {
  const std::string& work = Sandbox::Current().workdir();
  if (sandbox_path.rfind(work, 0) == 0) return sandbox_path.substr(work.size());
  return sandbox_path;
}

const Image& GetImage(const ImageShape& shape) {
  static std::map<ImageShape, Image> cache;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(shape);
  if (it != cache.end()) return it->second;
  std::string dir = Sandbox::Current().workdir() + "/img/" + std::to_string(cache.size());
  return cache.emplace(shape, BuildImage(dir, shape)).first->second;
}

int BaseNamespace() {
  static int fd = -1;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (fd >= 0) return fd;
  const std::string& work = Sandbox::Current().workdir();
  OnPrivateThread([&] {
    Check(unshare(CLONE_NEWNS), "unshare", "CLONE_NEWNS (base)");
    Check(chdir(work.c_str()), "chdir", work);
    Check(syscall(SYS_pivot_root, ".", "."), "pivot_root", work);
    Check(umount2(".", MNT_DETACH), "umount2", "old root of base namespace");
    Check(chdir("/"), "chdir", "/");
    fd = OpenThreadMountNs();
  });
  return fd;
}

namespace {

// A bind that the runtime makes read-only: bind, then remount the new mount
// read-only (two mount operations, as runc does). ENOENT skips the path, as
// runc skips a readonly or masked path the container lacks.
void BindReadOnly(const std::string& src, const std::string& target, bool skip_missing,
                  std::atomic<long>* ops) {
  if (mount(src.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    if (skip_missing && errno == ENOENT) return;
    Check(-1, "mount", "bind " + src + ", " + target);
  }
  ops->fetch_add(1, std::memory_order_relaxed);
  Mount(nullptr, target, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr, ops);
}

// The mount kinds of a real runtime's container beyond root, binds, proc, sys
// and dev (profile fields devpts, cgroup, readonly_paths, masked_paths).
void MountRuntimeKinds(const Profile& p, const std::string& root, const std::string& null_src,
                       std::atomic<long>* ops) {
  const unsigned long kHard = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  if (p.dev && p.devpts) {
    Check(mkdir((root + "/dev/pts").c_str(), 0755), "mkdir", root + "/dev/pts");
    Mount("devpts", root + "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
          "newinstance,ptmxmode=0666,mode=0620", ops);
  }
  const std::string cg = root + "/sys/fs/cgroup";
  if (p.cgroup != CgroupMount::kNone && !p.sys) MkdirP(cg);
  if (p.cgroup == CgroupMount::kV2) Mount("cgroup2", cg, "cgroup2", kHard | MS_RDONLY, nullptr, ops);
  if (p.cgroup == CgroupMount::kV1) {
    Mount("tmpfs", cg, "tmpfs", kHard, "mode=755,size=64k", ops);
    for (const std::string& c : p.cgroup_controllers) {
      // A named hierarchy without controllers mounts as "none,name=X" in dir X.
      const bool named = c.rfind("name=", 0) == 0 && c.find(',') == std::string::npos;
      const std::string dir = cg + "/" + (named ? c.substr(5) : c);
      Check(mkdir(dir.c_str(), 0755), "mkdir", dir);
      const std::string opts = named ? "none," + c : c;
      Check(mount("cgroup", dir.c_str(), "cgroup", kHard | MS_RDONLY, opts.c_str()), "mount",
            "cgroup -o " + opts + ", " + dir,
            errno == EBUSY ? "a cgroup v1 controller bound to cgroup2 on this host" : "");
      ops->fetch_add(1, std::memory_order_relaxed);
    }
  }
  for (const std::string& path : p.readonly_paths) {
    BindReadOnly(root + path, root + path, /*skip_missing=*/true, ops);
  }
  for (const std::string& path : p.masked_paths) {
    struct stat st;
    if (stat((root + path).c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      Check(-1, "stat", root + path);
    }
    if (S_ISDIR(st.st_mode)) {
      Mount("tmpfs", root + path, "tmpfs", MS_RDONLY, "size=0", ops);
    } else {
      Mount(null_src.c_str(), root + path, nullptr, MS_BIND, nullptr, ops);
      if (p.masked_files == MaskedFiles::kHostNullRo) {
        Mount(nullptr, root + path, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr, ops);
      }
    }
  }
}

}  // namespace

Farm::Farm(const Profile& profile, const Image& image, int builders,
           std::unique_ptr<RealRuntime> runtime)
    : profile_(profile),
      image_(image),
      runtime_(std::move(runtime)),
      builders_(builders),
      id_(g_farm_ids++) {
  profile_.Validate();
  if (runtime_) return;
  if (std::string why = RootlessProfileProblem(profile_); !why.empty()) throw Unsupported(why);
  if (builders_ <= 0) builders_ = std::max(1u, std::thread::hardware_concurrency());
  base_ns_fd_ = BaseNamespace();
  std::string dir = Sandbox::Current().workdir() + "/f" + std::to_string(id_);
  MkdirP(dir + "/binds/dir");
  for (int b = 0; b < profile_.binds; ++b) {
    WriteFile(dir + "/binds/b" + std::to_string(b), "bind " + std::to_string(b) + "\n");
  }
  if (!profile_.masked_paths.empty()) {
    // What masked files are bound to: a null device where we may make one
    // (runc binds the container's /dev/null), else an empty file.
    const std::string null = dir + "/null";
    if (mknod(null.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) WriteFile(null, "");
    if (profile_.masked_files == MaskedFiles::kHostNullRo) {
      // The host's /dev/null as crun binds it (devtmpfs): devtmpfs has one
      // superblock, so a mount of it in the base namespace is the host's /dev.
      OnPrivateThread([&] {
        SetNs(base_ns_fd_, "base namespace");
        const std::string devtmpfs = InBase(dir) + "/devtmpfs";
        MkdirP(devtmpfs);
        Check(mount("devtmpfs", devtmpfs.c_str(), "devtmpfs", MS_NOSUID | MS_NOEXEC, nullptr),
              "mount", "devtmpfs, " + devtmpfs, "masked_files host-null-ro needs devtmpfs");
      });
    }
  }
  if (profile_.ns_mode == NsMode::kShared) MakeSharedNamespace();
  if (profile_.idmap != IdmapStrategy::kNone) ContainerUserNamespace();  // fails here, not in a builder
}

void Farm::MakeSharedNamespace() {
  OnPrivateThread([&] {
    SetNs(base_ns_fd_, "base namespace");
    Check(unshare(CLONE_NEWNS), "unshare", "CLONE_NEWNS (shared)");
    shared_ns_fd_ = OpenThreadMountNs();
  });
}

Farm::~Farm() { Teardown(); }

void Farm::BuildRange(int first, int last, std::vector<Container>* out, std::atomic<int>* done) {
  const std::string farm = "/f" + std::to_string(id_);
  const bool shared = profile_.ns_mode == NsMode::kShared;
  const bool pivot = !shared && profile_.root_switch == RootSwitch::kPivotRoot;
  std::string lower;
  std::vector<std::string> layers;  // bottom first, as the builders see them
  for (const std::string& l : image_.layer_dirs) layers.push_back(InBase(l));
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    lower += (lower.empty() ? "" : ":") + *it;  // top layer first
  }
  if (shared) SetNs(shared_ns_fd_, "shared namespace");
  for (int i = first; i < last; ++i) {
    auto t0 = Clock::now();
    if (!shared) {
      SetNs(base_ns_fd_, "base namespace");
      Check(unshare(CLONE_NEWNS), "unshare", "CLONE_NEWNS (container)");
    }
    // Directories are never reused: a shrunk farm may grow again.
    const std::string c = farm + "/c" + std::to_string(dir_serial_.fetch_add(1));
    const std::string root = c + "/root";
    for (const char* d : {"", "/upper", "/work", "/root"}) {
      Check(mkdir((c + d).c_str(), 0755), "mkdir", c + d);
    }
    if (profile_.idmap == IdmapStrategy::kNone) {
      MountOverlay(lower, c, root);
    } else {
      // The runtime's idmapped layer mounts live only until the overlay holds
      // its private clones of them.
      std::vector<std::string> idmapped;
      MountOverlay(
          IdmapLayers(profile_.idmap, layers, c, ContainerUserNamespace(), &idmapped, &mount_ops_),
          c, root);
      UnmountAll(idmapped, &mount_ops_);
    }
    for (size_t b = 0; b < image_.bind_targets.size(); ++b) {
      if (BindTarget(b, nullptr).rfind("/dev/", 0) == 0) continue;  // after /dev exists
      MountBind(b, farm, root);
    }
    if (profile_.proc) {
      Mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, &mount_ops_);
    }
    if (profile_.sys) {
      Mount("sysfs", root + "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, nullptr,
            &mount_ops_);
    }
    if (profile_.dev) {
      Mount("tmpfs", root + "/dev", "tmpfs", MS_NOSUID, "mode=755,size=64k", &mount_ops_);
      Check(mkdir((root + "/dev/shm").c_str(), 01777), "mkdir", root + "/dev/shm");
      Check(mkdir((root + "/dev/mqueue").c_str(), 0755), "mkdir", root + "/dev/mqueue");
      Mount("shm", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64k",
            &mount_ops_);
      Mount("mqueue", root + "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr,
            &mount_ops_);
    }
    for (size_t b = 0; b < image_.bind_targets.size(); ++b) {
      if (BindTarget(b, nullptr).rfind("/dev/", 0) != 0) continue;
      if (profile_.dev) WriteFile(root + BindTarget(b, nullptr), "");
      MountBind(b, farm, root);
    }
    MountRuntimeKinds(profile_, root,
                      farm + (profile_.masked_files == MaskedFiles::kHostNullRo ? "/devtmpfs/null" : "/null"),
                      &mount_ops_);
    if (profile_.readonly_root) {
      Mount(nullptr, root, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr, &mount_ops_);
    }
    Container ct;
    ct.index = i;
    ct.upper = Sandbox::Current().workdir() + c + "/upper";
    if (pivot) {
      // As runc does: pivot_root(".", ".") stacks the old root under the new
      // one, and a lazy umount detaches it.
      Check(chdir(root.c_str()), "chdir", root);
      Check(syscall(SYS_pivot_root, ".", "."), "pivot_root", root);
      Check(umount2(".", MNT_DETACH), "umount2", "old root of " + c);
      mount_ops_.fetch_add(1, std::memory_order_relaxed);
      Check(chdir("/"), "chdir", "/");
    } else {
      ct.root = root;
    }
    ct.ns_fd = shared ? shared_ns_fd_ : OpenThreadMountNs();
    ct.mounts = shared ? 0 : CountOwnMounts();
    ct.build_s = Since(t0);
    (*out)[i] = ct;
    done->fetch_add(1, std::memory_order_relaxed);
  }
}

std::string Farm::BindTarget(size_t b, bool* readonly) const {
  if (b < profile_.bind_paths.size()) return SplitBindPath(profile_.bind_paths[b], readonly);
  if (readonly) *readonly = false;
  return image_.bind_targets[b];
}

void Farm::MountBind(size_t b, const std::string& farm, const std::string& root) {
  bool ro = false;
  const std::string t = root + BindTarget(b, &ro);
  // A directory in the image (containerd's tmpfs /run) takes a directory.
  struct stat st;
  const bool dir = stat(t.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  const std::string src = farm + "/binds/" + (dir ? "dir" : "b" + std::to_string(b));
  if (b < profile_.bind_paths.size() && access(t.c_str(), F_OK) != 0) {
    // A runtime's bind target the image does not provide: the runtime
    // creates it too (in the container's upper layer).
    MkdirP(t.substr(0, t.rfind('/')));
    WriteFile(t, "");
  }
  if (ro) {
    BindReadOnly(src, t, /*skip_missing=*/false, &mount_ops_);
  } else {
    Mount(src.c_str(), t, nullptr, MS_BIND, nullptr, &mount_ops_);
  }
}

void Farm::MountOverlay(const std::string& lower, const std::string& c, const std::string& root) {
  const std::string upper = c + "/upper", work = c + "/work";
  if (profile_.overlay_api == OverlayApi::kMount) {
    std::string opts = "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work;
    Check(mount("overlay", root.c_str(), "overlay", 0, opts.c_str()), "mount", "overlay, " + root,
          opts.size() >= 4096 ? "option string longer than one page (lowerdir+ needs 6.7+)" : "");
    mount_ops_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // The lowerdir string may come from the idmap preparation, so split it
  // here rather than carry a second list through.
  std::vector<std::string> top_first;
  for (size_t start = 0; start <= lower.size();) {
    size_t end = std::min(lower.find(':', start), lower.size());
    top_first.push_back(lower.substr(start, end - start));
    start = end + 1;
  }
  FsmountOverlay(top_first, upper, work, root, /*lowerdir_fallback=*/true);
  mount_ops_.fetch_add(1, std::memory_order_relaxed);
}

void FsmountOverlay(const std::vector<std::string>& lower, const std::string& upper,
                    const std::string& work, const std::string& target, bool lowerdir_fallback) {
  Fd fs(FsOpen("overlay", kFsopenCloexec));
  if (!fs.valid() && errno == ENOSYS) throw Unsupported("fsopen needs Linux >= 5.2");
  Check(fs.get(), "fsopen", "overlay");
  for (size_t i = 0; i < lower.size(); ++i) {
    if (FsConfig(fs.get(), kFsconfigSetString, "lowerdir+", lower[i].c_str(), 0) == 0) continue;
    if (i != 0 || errno != EINVAL) Check(-1, "fsconfig", "lowerdir+=" + lower[i]);
    if (!lowerdir_fallback) throw Unsupported("overlay lowerdir+ needs Linux >= 6.7");
    std::string list;
    for (const std::string& l : lower) list += (list.empty() ? "" : ":") + l;
    Check(FsConfig(fs.get(), kFsconfigSetString, "lowerdir", list.c_str(), 0), "fsconfig",
          "lowerdir");
    break;
  }
  Check(FsConfig(fs.get(), kFsconfigSetString, "upperdir", upper.c_str(), 0), "fsconfig",
        "upperdir=" + upper);
  Check(FsConfig(fs.get(), kFsconfigSetString, "workdir", work.c_str(), 0), "fsconfig",
        "workdir=" + work);
  Check(FsConfig(fs.get(), kFsconfigCmdCreate, nullptr, nullptr, 0), "fsconfig",
        "FSCONFIG_CMD_CREATE overlay");
  Fd mnt(FsMount(fs.get(), kFsmountCloexec, 0));
  Check(mnt.get(), "fsmount", "overlay");
  Check(MoveMount(mnt.get(), "", AT_FDCWD, target.c_str(), kMoveMountFEmptyPath), "move_mount",
        target);
}

double Farm::Grow(int n, const ProgressFn& progress) {
  int first = size();
  if (n <= first) return 0;
  const auto t0 = Clock::now();
  if (runtime_) {  // one runtime command at a time
    for (int i = first; i < n; ++i) {
      containers_.push_back(runtime_->Create(i, image_));
      if (progress) progress(i + 1 - first, n - first);
    }
    return Since(t0);
  }
  containers_.resize(n);
  int builders = std::min(builders_, n - first);
  std::atomic<int> done{0};
  std::vector<std::exception_ptr> errs(builders);
  // The build ends when the last builder finishes: each builder stamps its
  // own end, so the progress display never owns the clock.
  std::vector<Clock::time_point> ended(builders, t0);
  std::mutex mu;
  std::condition_variable cv;
  int running = builders;
  std::vector<std::thread> threads;
  for (int b = 0; b < builders; ++b) {
    int lo = first + (n - first) * b / builders, hi = first + (n - first) * (b + 1) / builders;
    threads.emplace_back([&, b, lo, hi] {
      try {
        Check(unshare(CLONE_FS), "unshare", "CLONE_FS");
        BuildRange(lo, hi, &containers_, &done);
      } catch (...) {
        errs[b] = std::current_exception();
      }
      ended[b] = Clock::now();
      std::lock_guard<std::mutex> lock(mu);
      --running;
      cv.notify_all();
    });
  }
  if (progress) {
    std::unique_lock<std::mutex> lock(mu);
    while (running > 0) {
      progress(done.load(), n - first);
      cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return running == 0; });
    }
    lock.unlock();
    progress(done.load(), n - first);
  }
  for (auto& t : threads) t.join();
  for (auto& e : errs) {
    if (e) {
      // Keep what was built consistent: drop the slots that never got an fd.
      std::vector<Container> kept;
      for (auto& c : containers_) {
        if (c.ns_fd >= 0) kept.push_back(c);
      }
      containers_ = kept;
      std::rethrow_exception(e);
    }
  }
  return std::chrono::duration<double>(*std::max_element(ended.begin(), ended.end()) - t0)
      .count();
}

double Farm::Teardown(int threads) {
  auto t0 = Clock::now();
  if (profile_.ns_mode == NsMode::kShared) {
    containers_.clear();
    if (shared_ns_fd_ >= 0) close(shared_ns_fd_);
    shared_ns_fd_ = -1;
    return Since(t0);
  }
  if (runtime_) {
    for (const Container& c : containers_) runtime_->Delete(c);
    containers_.clear();
    return Since(t0);
  }
  if (threads <= 0) threads = builders_;
  threads = std::max(1, std::min<int>(threads, size()));
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([this, t, threads] {
      for (size_t i = t; i < containers_.size(); i += threads) {
        if (containers_[i].ns_fd >= 0) close(containers_[i].ns_fd);
      }
    });
  }
  for (auto& t : ts) t.join();
  containers_.clear();
  return Since(t0);
}

void Farm::Shrink(int n) {
  if (n >= size()) return;
  if (profile_.ns_mode == NsMode::kShared) {
    // Every container lives in the one namespace: start it afresh.
    Teardown();
    MakeSharedNamespace();
    Grow(n);
    return;
  }
  for (int i = n; i < size(); ++i) {
    if (runtime_) {
      runtime_->Delete(containers_[i]);
    } else {
      close(containers_[i].ns_fd);
    }
  }
  containers_.resize(n);
}

long Farm::MountsHeld() const {
  if (shared_ns_fd_ >= 0) {
    // Shared mode: every container lives in one namespace; count it there.
    long n = 0;
    OnPrivateThread([&] {
      Check(setns(shared_ns_fd_, CLONE_NEWNS), "setns", "the farm's shared namespace");
      n = CountOwnMounts();
    });
    return n;
  }
  long n = 0;
  for (const auto& c : containers_) n += c.mounts;
  return n;
}

}  // namespace mntscale
