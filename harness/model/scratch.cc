#include "mntscale/model/scratch.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <atomic>
#include <exception>
#include <sstream>
#include <thread>

#include "mntscale/model/sandbox.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

std::atomic<long> g_serial{0};

}  // namespace

void OnPrivateThread(const std::function<void()>& fn) {
  std::exception_ptr err;
  std::thread t([&] {
    try {
      Check(unshare(CLONE_FS), "unshare", "CLONE_FS");
      fn();
    } catch (...) {
      err = std::current_exception();
    }
  });
  t.join();
  if (err) std::rethrow_exception(err);
}

int OpenThreadMountNs() {
  return static_cast<int>(
      Check(openat(Sandbox::Current().proc_fd(), "thread-self/ns/mnt", O_RDONLY | O_CLOEXEC), "open",
            "/proc/thread-self/ns/mnt"));
}

std::vector<std::string> ThreadMountinfo() {
  Fd fd(static_cast<int>(
      Check(openat(Sandbox::Current().proc_fd(), "thread-self/mountinfo", O_RDONLY | O_CLOEXEC),
            "open", "/proc/thread-self/mountinfo")));
  std::string s;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd.get(), buf, sizeof buf)) > 0) s.append(buf, n);
  std::vector<std::string> lines;
  std::istringstream ss(s);
  std::string line;
  while (std::getline(ss, line)) lines.push_back(line);
  return lines;
}

long PeerGroupOf(const std::vector<std::string>& mountinfo, const std::string& mount_point) {
  long found = -1;  // the last match: the topmost of stacked mounts
  for (const std::string& line : mountinfo) {
    std::istringstream ss(line);
    std::string id, parent, dev, root, point, opts, field;
    ss >> id >> parent >> dev >> root >> point >> opts;
    if (point != mount_point) continue;
    found = 0;
    while (ss >> field && field != "-") {
      if (field.rfind("shared:", 0) == 0) found = std::stol(field.substr(7));
    }
  }
  return found;
}

ScratchNs::ScratchNs(int fd) { c_.ns_fd = fd; }

ScratchNs::ScratchNs() {
  const std::string dir =
      Sandbox::Current().workdir() + "/scratch/" + std::to_string(g_serial.fetch_add(1));
  OnPrivateThread([&] {
    Check(unshare(CLONE_NEWNS), "unshare", "CLONE_NEWNS (scratch)");
    MkdirP(dir);
    Check(mount("tmpfs", dir.c_str(), "tmpfs", 0, "mode=755"), "mount", "tmpfs, " + dir);
    Check(chdir(dir.c_str()), "chdir", dir);
    Check(syscall(SYS_pivot_root, ".", "."), "pivot_root", dir);
    Check(umount2(".", MNT_DETACH), "umount2", "old root of scratch namespace");
    Check(chdir("/"), "chdir", "/");
    c_.ns_fd = OpenThreadMountNs();
  });
  c_.mounts = 1;
}

ScratchNs::~ScratchNs() {
  if (c_.ns_fd >= 0) close(c_.ns_fd);
}

ScratchNs::ScratchNs(ScratchNs&& o) noexcept : c_(o.c_) { o.c_.ns_fd = -1; }

ScratchNs& ScratchNs::operator=(ScratchNs&& o) noexcept {
  if (this != &o) {
    if (c_.ns_fd >= 0) close(c_.ns_fd);
    c_ = o.c_;
    o.c_.ns_fd = -1;
  }
  return *this;
}

void ScratchNs::Run(const std::function<void()>& fn) const {
  OnPrivateThread([&] {
    Check(setns(c_.ns_fd, CLONE_NEWNS), "setns", "scratch namespace");
    fn();
  });
}

std::vector<ScratchNs> ScratchNs::Copies(int n) const {
  std::vector<ScratchNs> out;
  out.reserve(n);
  Run([&] {
    for (int i = 0; i < n; ++i) {
      Check(unshare(CLONE_NEWNS), "unshare", "CLONE_NEWNS (copy " + std::to_string(i) + ")");
      ScratchNs copy(OpenThreadMountNs());
      copy.c_.index = i;
      out.push_back(std::move(copy));
    }
  });
  return out;
}

OverlayLayers MakeOverlayLayers(const std::string& dir, int layers, int depth) {
  OverlayLayers ol;
  std::string chain;
  for (int d = 0; d < depth; ++d) chain += (d ? "/d" : "d") + std::to_string(d);
  for (int l = 0; l < layers; ++l) {
    // Short names keep the option string short: 100 layers fit in one page.
    std::string root = dir + "/" + std::to_string(l);
    MkdirP(root + (chain.empty() ? "" : "/" + chain));
    WriteFile(root + "/" + chain + "/f" + std::to_string(l), "");
    ol.dirs.push_back(root);
  }
  std::string prefix = chain.empty() ? "" : chain + "/";
  ol.file = prefix + "target";
  ol.missing = prefix + "absent";
  WriteFile(ol.dirs.front() + "/" + ol.file, "mntscale\n");
  return ol;
}

void MountOverlayAt(OverlayApi api, const std::vector<std::string>& lower,
                    const std::string& upper, const std::string& work, const std::string& target) {
  if (api == OverlayApi::kMount) {
    std::string list;
    for (auto it = lower.rbegin(); it != lower.rend(); ++it) {
      list += (list.empty() ? "" : ":") + *it;  // top layer first
    }
    std::string opts = "lowerdir=" + list + ",upperdir=" + upper + ",workdir=" + work;
    if (opts.size() >= 4096) {
      throw Unsupported("overlay option string of " + std::to_string(opts.size()) +
                        " bytes exceeds one page for mount(2)");
    }
    Check(mount("overlay", target.c_str(), "overlay", 0, opts.c_str()), "mount",
          "overlay, " + target);
    return;
  }
  FsmountOverlay(std::vector<std::string>(lower.rbegin(), lower.rend()), upper, work, target,
                 /*lowerdir_fallback=*/false);
}

}  // namespace mntscale
