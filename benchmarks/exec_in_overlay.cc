// exec_in_overlay: fork+execve and posix_spawn of a binary inside a
// container, static (one file) or dynamic (the binary, ld-linux and libc,
// each a path walk through the overlay and an open of a file in the bottom
// layer). Cold is the first exec in a freshly built container, whose overlay
// dcache is empty, so every lookup runs ovl_lookup through all layers; warm
// execs find the dentries cached. Churn is a writer doing mount+umount in
// another namespace: it bumps mount_lock, so exec's path walks retry.
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <memory>

#include "mntscale/run/background.h"
#include "mntscale/model/scratch.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

constexpr const char* kDynamicExe = "/bin/true-dyn";
constexpr const char* kChurnDir = "/churn";

int Reap(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return -errno;
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ENOEXEC;
}

int ForkExec(OpContext& c) {
  static char* const argv[] = {const_cast<char*>("true"), nullptr};
  static char* const envp[] = {nullptr};
  pid_t pid = fork();
  if (pid < 0) return -errno;
  if (pid == 0) {
    execve(c.path, argv, envp);
    _exit(127);
  }
  return Reap(pid);
}

int Spawn(OpContext& c) {
  static char* const argv[] = {const_cast<char*>("true"), nullptr};
  static char* const envp[] = {nullptr};
  pid_t pid;
  int rc = posix_spawn(&pid, c.path, nullptr, nullptr, argv, envp);
  if (rc != 0) return -rc;
  return Reap(pid);
}

int MountUmount(OpContext& c) {
  if (mount("tmpfs", c.path, "tmpfs", 0, "size=4k") < 0) return -errno;
  return umount2(c.path, 0) < 0 ? -errno : 0;
}

const OpInfo kForkExec = {"fork-exec", "fork + execve + waitpid", ForkExec};
const OpInfo kSpawn = {"posix_spawn", "posix_spawn (CLONE_VM|CLONE_VFORK) + waitpid", Spawn};
const OpInfo kChurn = {"mount-umount", "tmpfs mount + umount in another namespace", MountUmount};

// The host's dynamic /bin/true and the libraries ldd lists, at the same
// paths, baked into the image's bottom layer (once per image).
void InstallDynamicExe(const Image& img) {
  const std::string bottom = img.layer_dirs.front();
  if (access((bottom + kDynamicExe).c_str(), X_OK) == 0) return;
  FILE* f = popen("ldd /bin/true 2>/dev/null", "r");
  if (!f) throw Unsupported("cannot run ldd for the dynamic binary's libraries");
  std::vector<std::string> libs;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    std::string l(line), path;
    size_t arrow = l.find("=> ");
    size_t start = arrow != std::string::npos ? arrow + 3 : l.find_first_not_of(" \t");
    if (start == std::string::npos || l[start] != '/') continue;
    path = l.substr(start, l.find_first_of(" \t\n(", start) - start);
    libs.push_back(path);
  }
  if (pclose(f) != 0 || libs.empty()) {
    throw Unsupported("/bin/true is not dynamically linked here (ldd lists no libraries)");
  }
  for (const std::string& lib : libs) {
    MkdirP(bottom + lib.substr(0, lib.rfind('/')));
    WriteFile(bottom + lib, ReadFile(lib));
    Check(chmod((bottom + lib).c_str(), 0755), "chmod", bottom + lib);
  }
  const std::string tmp = bottom + kDynamicExe + ".tmp";
  WriteFile(tmp, ReadFile("/bin/true"));
  Check(chmod(tmp.c_str(), 0755), "chmod", tmp);
  Check(rename(tmp.c_str(), (bottom + kDynamicExe).c_str()), "rename", tmp);
}

enum class Binary { kStatic, kDynamic };
constexpr EnumName<Binary> kBinaries[] = {{Binary::kStatic, "static"}, {Binary::kDynamic, "dynamic"}};
enum class Method { kForkExec, kPosixSpawn };
constexpr EnumName<Method> kMethods[] = {{Method::kForkExec, "fork-exec"},
                                         {Method::kPosixSpawn, "posix_spawn"}};
enum class Cache { kWarm, kCold };
constexpr EnumName<Cache> kCaches[] = {{Cache::kWarm, "warm"}, {Cache::kCold, "cold"}};

void ExecInOverlay(Session& s, const Point& p, Entry& e) {
  const Binary binary = p.Enum(kBinaries, "binary");
  const Method method = p.Enum(kMethods, "method");
  const Cache cache = p.Enum(kCaches, "cache");
  const int churn = p.Int("churn"), containers = p.Int("containers");
  const OpInfo* op = method == Method::kForkExec ? &kForkExec : &kSpawn;
  Profile profile = s.ProfileFor(p);
  const Image& img =
      GetImage({profile.layers, profile.depth, profile.files_per_dir, profile.binds});
  if (binary == Binary::kDynamic) InstallDynamicExe(img);
  const std::string exe = binary == Binary::kStatic ? img.static_exe : kDynamicExe;
  ScratchNs churn_ns;
  churn_ns.Run([] { Check(mkdir(kChurnDir, 0755), "mkdir", kChurnDir); });
  e.Set("exe", exe);
  // The churn writer: mount+umount in a namespace of its own.
  auto as_churn = [&](WorkerPlan* w) {
    w->container = &churn_ns.container();
    w->op = &kChurn;
    w->path = kChurnDir;
    w->role = "churn";
    w->measured = false;
  };
  if (cache == Cache::kWarm) {
    Farm& farm = s.FarmFor(profile, containers);
    RunSpec spec;
    spec.workers = s.Workers(p, &farm, op, exe, 1 + churn);
    if (churn) as_churn(&spec.workers[1]);
    spec.workers[0].container = &farm.containers()[0];
    spec.latency = true;
    RunResult r = s.Measure(std::move(spec), &e);
    if (churn) e.Set("churn_ops_per_sec", r.role_ops_per_s["churn"]);
    return;
  }
  // Cold: the first exec in each of `containers` fresh containers.
  s.DropFarms();
  Farm farm(profile, img, 0);
  farm.Grow(containers);
  std::unique_ptr<BackgroundReaders> bg;
  if (churn) {
    WorkerPlan w;
    w.slot = s.Slots(p, 1, "compact")[0];
    as_churn(&w);
    bg = std::make_unique<BackgroundReaders>(std::vector<WorkerPlan>{w}, s.config().mode);
    bg->SetPhase(1);
  }
  EventSpec spec;
  spec.actors = s.Slots(p, 1, "compact", churn);
  spec.events = containers;
  spec.prepare = [&](EventContext& c) { EnterContainer(farm.containers()[c.event]); };
  spec.event = [&](EventContext&) {
    OpContext ctx;
    ctx.path = exe.c_str();
    if (int rc = op->fn(ctx); rc < 0) throw SysError(op->name, exe, -rc);
  };
  EventResult r = s.Events(spec, &e);
  if (bg) {
    bg->Stop();
    e.Set("churn_ops_per_sec", bg->OpsPerSec("churn", 1));
  }
  e.FromEvents(r.events, r.sum_s, &r.latency);
}

}  // namespace

MNTSCALE_SCENARIO(
    exec_in_overlay,
    {
        .name = "exec_in_overlay",
        .mechanism = "execve's path walks and opens (binary, ld-linux, libc) through a container's "
                     "overlay, cold and warm, with mount churn bumping mount_lock elsewhere",
        .expect = "dynamic > static by its extra lookups; cold > warm by the layers searched; "
                  "churn adds ref-walk retries",
        .axes = {axes::Layers("10"),
                 EnumAxis("binary", "static,dynamic", kBinaries),
                 EnumAxis("method", "fork-exec,posix_spawn", kMethods),
                 BoolAxis("churn", "0,1"),
                 EnumAxis("cache", "warm,cold", kCaches),
                 axes::Containers("16")},
        .run = ExecInOverlay,
    });

}  // namespace mntscale
