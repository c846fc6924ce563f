// container_start_storm: the published incident ("Mount Mayhem"). P
// parallel container starts of L layers each, done as a runtime does them:
// layers prepared in the runtime's (host) namespace, the overlay mounted
// there, then runc's unshare, binds, proc, dev and pivot_root. containerd
// 2.0 idmapped every layer separately (open_tree clone, mount_setattr
// IDMAP, move_mount, umount: 4 mount-table writes per layer, each a
// lock_mount_hash section and a namespace_sem write); its fix idmaps the
// layers' common parent once. Health checks (a stat, a full host mountinfo
// read) run throughout and pay for every write. runtime=runc|crun makes
// every start a real `create`+`start` of that runtime from a bundle whose
// rootfs is the same overlay, prepared the same way in the runtime's own
// mount namespace (as containerd does before it calls the runtime).
// runtime=containerd makes every start a `ctr run` of a daemon the run owns:
// the rootfs is its overlayfs snapshotter's, mounted in its namespace by the
// shim, and the image is the storm's layers imported once.
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "mntscale/model/container_start.h"
#include "mntscale/model/idmap.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/model/scratch.h"
#include "mntscale/run/background.h"
#include "mntscale/runtimes/containerd.h"
#include "mntscale/runtimes/real_runtime.h"
#include "mntscale/runtimes/runtime.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

enum Phase { kIdle = 0, kStorm = 1, kTeardown = 2 };

struct Storm {
  IdmapStrategy strategy = IdmapStrategy::kNone;
  ScratchNs host;                     // model: the runtime's namespace
  std::unique_ptr<RealRuntime> real;  // runc | crun | containerd, in a namespace of its own
  Container ns;                       // where layers and overlays are mounted
  std::string base;                   // layers and bundles, as ns sees them
  std::vector<std::string> layers;    // bottom first
  int userns = -1;
  std::mutex mu;
  std::vector<std::string> ids;  // the real runtime's started containers
  void Run(const std::function<void()>& fn) const {
    OnPrivateThread([&] {
      Check(setns(ns.ns_fd, CLONE_NEWNS), "setns", "runtime's namespace");
      fn();
    });
  }
};

std::string Bundle(const Storm& st, int k) { return st.base + "/s/" + std::to_string(k); }

// In the runtime's namespace: layers per strategy, and the overlay at
// <bundle>/rootfs. Returns the bundle.
std::string PrepareRoot(const Storm& st, int k, std::atomic<long>* ops) {
  Check(setns(st.ns.ns_fd, CLONE_NEWNS), "setns", "runtime's namespace");
  const std::string c = Bundle(st, k);
  MountContainerRootfs(c, st.strategy, st.layers, st.userns, ops);
  return c;
}

// Container start k, an event on an actor with its own fs_struct. The
// model: a new namespace copied from the host's, the runtime mounts and
// pivot_root. A real runtime: its `create` and `start`. The container's
// namespace goes to the caller, which tears the storm down.
void Start(Storm& st, EventContext& ctx) {
  const int k = ctx.event;
  std::atomic<long>* ops = ctx.ops;
  if (st.real && st.real->PreparesRootfs()) {  // containerd: its snapshotter's rootfs
    RealRuntime::Started c = st.real->Start("");
    {
      std::lock_guard<std::mutex> lock(st.mu);
      st.ids.push_back(c.id);
    }
    ctx.Keep(c.ns_fd);
    return;
  }
  const std::string root = PrepareRoot(st, k, ops) + "/rootfs";
  if (st.real) {
    RealRuntime::Started c = st.real->Start(Bundle(st, k));
    {
      std::lock_guard<std::mutex> lock(st.mu);
      st.ids.push_back(c.id);
    }
    ctx.Keep(c.ns_fd);
    return;
  }
  ctx.Keep(EnterModelContainer(root, ops));  // runc, modelled
}

// Who starts the containers: a real runtime, or the model (nullopt), which
// does what runc does in this process.
constexpr auto kStormRuntimes = WithNone("model", kRuntimeKinds);

void ContainerStartStorm(Session& s, const Point& p, Entry& e) {
  const int layers = p.Int("layers"), parallel = p.Int("parallel"), starts = p.Int("starts");
  const std::optional<RuntimeKind> runtime = p.Enum(kStormRuntimes, "runtime");
  Storm st;
  st.strategy = ParseIdmapStrategy(p.Str("strategy"), "strategy");
  if (runtime == RuntimeKind::kContainerd && st.strategy != IdmapStrategy::kNone) {
    throw Unsupported("containerd 1.6 does not idmap layers (2.x does)");
  }
  st.ns = st.host.container();
  if (runtime) {  // Unsupported (why, in the runtime's words) where it cannot run
    static int serial = 0;  // a fresh bundle tree per point
    st.base = Sandbox::Current().workdir() + "/storm-" + Name(*runtime) + std::to_string(serial++);
    st.real = OpenRealRuntime(*runtime, st.base + "/rt", parallel);
    st.ns.ns_fd = st.real->mount_ns();
  }
  st.Run([&] {
    st.layers = MakeOverlayLayers(st.base + "/layers", layers, 4).dirs;
    const std::string& bottom = st.layers.front();
    for (const char* d : {"/etc", "/proc", "/dev", "/sys"}) MkdirP(bottom + d);
    MkdirP(st.base + "/s");
    for (const char* f : kRuntimeFiles) WriteFile(bottom + "/etc/" + f, "");
    if (st.real) {
      RuntimeFarm::InstallHolder(bottom);
    } else {
      MkdirP("/binds");  // the model's runtime files, bound into each container
      for (const char* f : kRuntimeFiles) {
        WriteFile(std::string("/binds/") + f, std::string(f) + "\n");
      }
    }
    if (st.strategy != IdmapStrategy::kNone) {
      st.userns = ContainerUserNamespace();
      std::atomic<long> probe{0};
      // Unsupported before tmpfs idmap (6.3)
      CloneIdmapped(st.base + "/layers", st.userns, &probe);
    }
  });
  if (st.real && st.real->PreparesRootfs()) st.real->UseImage(st.layers);
  int runtime_mounts_before = 0;  // the runtime's namespace, before any start
  st.Run([&] { runtime_mounts_before = CountOwnMounts(); });

  // Health checks: a stat in a running container, a full read of the host's
  // mount table (where the runtime's temporary mounts appear).
  Farm& farm = s.FarmFor(s.config().profile, 1);
  std::vector<WorkerPlan> plans =
      s.Workers(p, &farm, FindOp("stat"), farm.image().deep_path, 2, "compact,share");
  plans[0].role = "health";
  plans[1].role = "mountinfo";
  plans[1].container = &st.ns;
  plans[1].op = FindOp("mountinfo");
  BackgroundReaders bg(std::move(plans), s.config().mode);
  std::this_thread::sleep_for(std::chrono::duration<double>(s.config().window_s));

  EventSpec spec;
  spec.actors = s.Slots(p, parallel, "compact", 2);
  spec.events = starts;
  spec.event = [&](EventContext& c) { Start(st, c); };
  bg.SetPhase(kStorm);
  EventResult r = s.Events(spec, &e);
  const double storm_s = r.span_s;
  long storm_ops = r.ops, container_mounts = 0;
  int host_mounts = 0;
  st.Run([&] { host_mounts = CountOwnMounts(); });
  if (st.real) {  // the runtime's own mounts: what its containers' tables hold
    for (const Fd& ns : r.kept) container_mounts += ReadNamespaceMounts(ns.get()).size();
    storm_ops += container_mounts;
    // Mounts each start left in the runtime's namespace: the rootfs overlay
    // (for containerd, its snapshot's, mounted there by the shim).
    const long added = host_mounts - runtime_mounts_before;
    e.Set("runtime_ns_mounts_per_start", static_cast<double>(added) / starts);
    if (st.real->PreparesRootfs()) storm_ops += added;  // not counted by the start itself
    if (auto* ctrd = dynamic_cast<ContainerdFarm*>(st.real.get())) {
      e.Set("containerd_shims", ctrd->CountProcesses("containerd-shim"));
    }
    e.Set("container_mounts", static_cast<double>(container_mounts) / starts);
    e.Set("runtime_creates", st.real->calls("create"));
    e.Set("runtime_starts", st.real->calls("start"));
    // the runtime's word that each start ran its process
    e.Set("runtime_running", st.real->CountRunning(st.ids));
  }

  bg.SetPhase(kTeardown);
  const uint64_t t1 = MonotonicNs();
  r.kept.clear();
  for (const std::string& id : st.ids) st.real->Stop(id);
  if (!st.real || !st.real->PreparesRootfs()) {  // containerd's shim unmounted its own
    st.Run([&] {
      for (int k = 0; k < starts; ++k) umount2((Bundle(st, k) + "/rootfs").c_str(), MNT_DETACH);
    });
  }
  const double teardown_s = (MonotonicNs() - t1) * 1e-9;
  bg.Stop();

  const Histogram& all = r.latency;
  e.FromEvents(r.events, storm_s, &all);
  e.Set("start_p50_ns", all.Quantile(0.5));
  e.Set("start_p99_ns", all.Quantile(0.99));
  e.Set("start_max_ns", all.max());
  e.Set("mount_ops", storm_ops);
  e.Set("mount_ops_per_start", static_cast<double>(storm_ops) / starts);
  e.Set("storm_s", storm_s);
  e.Set("teardown_s", teardown_s);
  e.Set("host_mounts_after_storm", host_mounts);
  for (const char* role : {"health", "mountinfo"}) {
    for (auto [phase, name] : {std::pair{kIdle, "idle"}, {kStorm, "storm"}}) {
      Histogram h = bg.Latency(role, phase);
      e.Set(std::string(role) + "_latency_ns_" + name, h.ToJson());
    }
    Histogram h = bg.Latency(role, kStorm);
    e.Set(std::string(role) + "_p50_ns", h.Quantile(0.5));
    e.Set(std::string(role) + "_p99_ns", h.Quantile(0.99));
  }
}

}  // namespace

MNTSCALE_SCENARIO(
    container_start_storm,
    {
        .name = "container_start_storm",
        .mechanism = "container starts with per-layer idmapped mounts (containerd 2.0): 4 "
                     "mount-table writes per layer vs one idmapped parent (the fix) vs none",
        .expect = "per-layer-idmap start latency and mount ops grow with layers; parent-idmap "
                  "and none nearly flat; readers' tails grow with the writes",
        .axes = {EnumAxis("runtime", "model", kStormRuntimes),
                 EnumAxis("strategy", "none,per-layer-idmap,parent-idmap",
                          {"none", "per-layer-idmap", "parent-idmap"})
                     .ValueAlias("per-layer", "per-layer-idmap")  // the profiles' "idmap" spelling
                     .ValueAlias("parent", "parent-idmap"),
                 IntAxis("layers", "5,20,50", 1, kMaxLayers, "layers"),
                 IntAxis("parallel", "2", 1, 4096, "concurrent starts"),
                 IntAxis("starts", "20", 1, 1000000, "starts")},
        .run = ContainerStartStorm,
        .claims = {claims::Grows("mount_ops_per_start", "layers", 3,
                                 "per-layer idmaps: mount-table writes per start grow with layers")
                       .Where({{"strategy", "per-layer-idmap"}}),
                   claims::Grows("start_p50_ns", "layers", 2,
                                 "per-layer idmaps: start latency grows with layers")
                       .Where({{"strategy", "per-layer-idmap"}}),
                   claims::Flat("mount_ops_per_start", "layers", 5,
                                "one idmapped parent: mount-table writes per start stay flat")
                       .Where({{"strategy", "parent-idmap"}})},
    });

}  // namespace mntscale
