// want_write: writes that take mnt_want_write (create+unlink, utimensat,
// open O_WRONLY) on a native tmpfs and through overlay, whose upper layer is
// a private tmpfs clone: overlay adds ovl_want_write on that clone, a
// credential switch and, once, copy-up. A toggler making another mount
// read-only and back (mount_setattr) takes lock_mount_hash and bumps the
// global mount_lock sequence on every flip, which every path walk samples;
// placing it on the other socket moves that cache line across sockets.
#include <sys/mount.h>
#include <sys/stat.h>

#include "mntscale/model/scratch.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

constexpr const char* kToggled = "/tog";

int CreateUnlink(OpContext& c) {
  int fd = open(c.path2, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  close(fd);
  return unlink(c.path2) < 0 ? -errno : 0;
}

int Utimens(OpContext& c) { return utimensat(AT_FDCWD, c.path, nullptr, 0) < 0 ? -errno : 0; }

int OpenWronly(OpContext& c) {
  int fd = open(c.path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  close(fd);
  return 0;
}

int ToggleRdonly(OpContext& c) {
  MountAttr set = {kMountAttrRdonly, 0, 0, 0}, clr = {0, kMountAttrRdonly, 0, 0};
  if (MountSetattr(AT_FDCWD, c.path, 0, &set) < 0) return -errno;
  return MountSetattr(AT_FDCWD, c.path, 0, &clr) < 0 ? -errno : 0;
}

const OpInfo kOps[] = {
    {"create-unlink", "open(O_CREAT|O_EXCL)+close+unlink", CreateUnlink},
    {"utimensat", "utimensat(path, NULL): touch the times", Utimens},
    {"open-wronly", "open(O_WRONLY)+close", OpenWronly},
};
const OpInfo kToggle = {"toggle-rdonly", "mount_setattr RDONLY set + clear on another mount",
                        ToggleRdonly};

enum class Fs { kTmpfs, kOverlay };
constexpr EnumName<Fs> kFses[] = {{Fs::kTmpfs, "tmpfs"}, {Fs::kOverlay, "overlay"}};
enum class Sockets { kSame, kDifferent };
constexpr EnumName<Sockets> kSockets[] = {{Sockets::kSame, "same"}, {Sockets::kDifferent, "different"}};

void WantWrite(Session& s, const Point& p, Entry& e) {
  const Fs fs = p.Enum(kFses, "fs");
  const Sockets sockets = p.Enum(kSockets, "sockets");
  const int workers = p.Int("workers"), toggles = p.Int("toggles");
  const OpInfo* op = nullptr;
  for (const OpInfo& o : kOps) {
    if (p.Str("write_op") == o.name) op = &o;
  }
  if (sockets == Sockets::kDifferent && s.topology().summary().packages < 2) {
    throw Unsupported("one socket: no other socket to place workers on");
  }
  ScratchNs ns;
  const std::string base = fs == Fs::kTmpfs ? "/t" : "/o";
  ns.Run([&] {
    for (const char* d : {"/t", "/l", "/u", "/w", "/o", kToggled}) {
      Check(mkdir(d, 0755), "mkdir", d);
    }
    Check(mount("tmpfs", "/t", "tmpfs", 0, "size=16m"), "mount", "tmpfs, /t");
    Check(mount("tmpfs", kToggled, "tmpfs", 0, "size=64k"), "mount", kToggled);
    // Overlay files start in the lower layer: the warm-up copies them up.
    const std::string files = fs == Fs::kTmpfs ? "/t" : "/l";
    for (int i = 0; i < workers; ++i) {
      std::string d = files + "/w" + std::to_string(i);
      Check(mkdir(d.c_str(), 0755), "mkdir", d);
      WriteFile(d + "/f", "");
    }
    if (fs == Fs::kOverlay) MountOverlayAt(OverlayApi::kMount, {"/l"}, "/u", "/w", "/o");
  });
  // Worker 0 first; the others (more workers, the toggler) on its socket or
  // spread over the others.
  const std::string placement = sockets == Sockets::kSame ? "socket:0,share" : "spread,share";
  RunSpec spec;
  spec.workers = s.Workers(p, nullptr, op, "", workers + toggles, placement);
  for (int i = 0; i < workers + toggles; ++i) {
    WorkerPlan& w = spec.workers[i];
    w.container = &ns.container();
    if (i < workers) {
      w.path = base + "/w" + std::to_string(i) + "/f";
      w.path2 = base + "/w" + std::to_string(i) + "/n";
    } else {
      w.op = &kToggle;
      w.path = kToggled;
      w.role = "toggler";
      w.measured = false;
    }
  }
  if (sockets == Sockets::kDifferent && workers + toggles > 1 &&
      spec.workers[0].slot.pu.package == spec.workers[1].slot.pu.package) {
    throw Unsupported("placement could not put a second thread on another socket");
  }
  RunResult r = s.Measure(std::move(spec), &e);
  if (toggles) e.Set("toggles_per_sec", r.role_ops_per_s["toggler"] * 2);
  e.Set("threads_on_pus", workers + toggles);
}

}  // namespace

MNTSCALE_SCENARIO(
    want_write,
    {
        .name = "want_write",
        .mechanism = "mnt_want_write on tmpfs vs through overlay's upper clone, with read-only "
                     "toggles (mount_setattr) on another mount bumping mount_lock",
        .expect = "overlay slower per op by a constant; toggles slow both by the mount_lock "
                  "retries, more across sockets",
        .axes = {EnumAxis("fs", "tmpfs,overlay", kFses),
                 EnumAxis("write_op", "create-unlink,utimensat,open-wronly",
                          {"create-unlink", "utimensat", "open-wronly"}),
                 BoolAxis("toggles", "0,1"),
                 EnumAxis("sockets", "same,different", kSockets),
                 axes::Workers("1")},
        .run = WantWrite,
    });

}  // namespace mntscale
