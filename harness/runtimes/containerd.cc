#include "mntscale/runtimes/containerd.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <thread>

#include "mntscale/runtimes/oci_image.h"
#include "mntscale/runtimes/runtime.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/model/scratch.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

constexpr double kStartTimeoutS = 30;

std::atomic<int> g_daemons{0};

// Plugins a run never uses. opt would create /opt/containerd on the host;
// the CRI plugin would set up networking and a pod sandbox image; the
// other snapshotters probe filesystems that are not there.
constexpr const char* kDisabledPlugins[] = {
    "io.containerd.grpc.v1.cri",
    "io.containerd.internal.v1.opt",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.internal.v1.tracing",
};

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

std::string Config(const std::string& dir, const std::string& sock) {
  std::string disabled;
  for (const char* p : kDisabledPlugins) disabled += (disabled.empty() ? "" : ", ") + Quoted(p);
  std::string c = "version = 2\n";
  c += "root = " + Quoted(dir + "/root") + "\n";
  c += "state = " + Quoted(dir + "/state") + "\n";
  c += "disabled_plugins = [" + disabled + "]\n";
  c += "[grpc]\n  address = " + Quoted(sock) + "\n";
  c += "[ttrpc]\n  address = " + Quoted(sock + ".ttrpc") + "\n";
  c += "[metrics]\n  address = \"\"\n";
  return c;
}

std::string LastLogLine(const std::string& log) {
  std::string text;
  TryReadFile(log, &text);
  return ErrorLine(text);
}

// dir, once containerd's binaries are known to be there: the constructor
// refuses before it makes a directory or starts anything.
const std::string& Installed(const std::string& dir) {
  if (std::string m = ContainerdMissingBinary(); !m.empty()) {
    throw Unsupported("containerd: '" + m + "' is not installed (scripts/setup.sh installs it)");
  }
  return dir;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string ContainerdMissingBinary() {
  for (const char* b : {"containerd", "ctr", "containerd-shim-runc-v2", "runc"}) {
    if (FindRuntime(b).empty()) return b;
  }
  return "";
}

ContainerdFarm::ContainerdFarm(const std::string& dir, int parallel)
    : dir_(Installed(dir)),
      ns_(CgroupPrefix() + "c" + std::to_string(g_daemons++)),
      sock_(dir + "/containerd.sock"),
      state_(dir + "/state"),
      sup_(dir + "/cmd", parallel, "containerd") {
  for (const char* d : {"/root", "/state", "/tmp", "/images", "/run/containerd"}) MkdirP(dir_ + d);
  // containerd-shim-runc-v2 (1.6) puts its sockets in /run/containerd/s/
  // and runc its state in /run/containerd/runc/, whatever the config says.
  // In the supervisor's namespace (private, like the sandbox's it copies)
  // /run is a sandbox directory: the host's /run, and any host containerd's
  // sockets, are never touched or seen.
  sup_.InNamespace([&] {
    Check(mount((dir_ + "/run").c_str(), "/run", nullptr, MS_BIND, nullptr), "mount",
          "bind " + dir_ + "/run, /run (containerd's namespace)");
  });
  WriteFile(dir_ + "/config.toml", Config(dir_, sock_));
  const std::string log = dir_ + "/containerd.log";
  std::string out;
  // TMPDIR: the unpacker mounts each layer's snapshot in os.TempDir() to
  // apply it.
  int rc = sup_.Command(
      {"env", "TMPDIR=" + dir_ + "/tmp", "sh", "-c",
       "containerd --config \"$0\" </dev/null >\"$1\" 2>&1 & echo $!", dir_ + "/config.toml", log},
      &out);
  if (rc != 0) throw Unsupported("containerd: the daemon did not launch: " + ErrorLine(out));
  daemon_pid_ = std::stoi(out);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(kStartTimeoutS);
  for (;;) {
    if (Ctr({"version"}, &out) == 0) break;
    if (CountProcesses("containerd") == CountProcesses("containerd-shim")) {
      daemon_pid_ = -1;
      throw Unsupported("containerd: the daemon exited: " + LastLogLine(log));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw Unsupported("containerd: no answer on " + sock_ + " within " +
                        std::to_string(static_cast<int>(kStartTimeoutS)) +
                        " s: " + LastLogLine(log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const size_t server = out.find("Server:");
  const size_t v = out.find("Version:", server == std::string::npos ? 0 : server);
  if (v != std::string::npos) {
    std::istringstream ss(out.substr(v + 8));
    ss >> version_;
  }
}

ContainerdFarm::~ContainerdFarm() {
  try {
    Shutdown();
  } catch (const std::exception&) {
    sup_.Release();  // whatever is left dies with the supervisor's namespaces
  }
}

void ContainerdFarm::Shutdown() {
  if (daemon_pid_ < 0) {
    sup_.Release();
    return;
  }
  std::string out;
  std::vector<std::string> left;
  if (Ctr({"container", "ls", "-q"}, &out) == 0) {
    std::istringstream ss(out);
    for (std::string id; ss >> id;) left.push_back(id);
  }
  for (const std::string& id : left) Stop(id);
  if (Ctr({"images", "ls", "-q"}, &out) == 0) {
    std::vector<std::string> rm = {"images", "rm", "--sync"};
    std::istringstream ss(out);
    for (std::string ref; ss >> ref;) rm.push_back(ref);
    if (rm.size() > 3) Ctr(rm, nullptr);  // and the snapshots unpacked for them
  }
  sup_.Command({"kill", "-TERM", std::to_string(daemon_pid_)}, nullptr);
  for (int i = 0; i < 200 && CountProcesses("containerd") > CountProcesses("containerd-shim");
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  daemon_pid_ = -1;
  // The supervisor's PID namespace dies with whatever is left in it, and its
  // mount namespace (the /run bind, any snapshot mount) with it.
  sup_.Release();
}

int ContainerdFarm::Ctr(const std::vector<std::string>& args, std::string* output) {
  // A daemon that stops answering fails the command instead of hanging the run.
  std::vector<std::string> argv = {"ctr", "--timeout", "120s", "-a", sock_, "-n", ns_};
  argv.insert(argv.end(), args.begin(), args.end());
  return sup_.Command(argv, output);
}

int ContainerdFarm::CountProcesses(const std::string& prefix) const {
  int n = 0;
  sup_.InNamespace([&] {
    DIR* d = opendir("/proc");
    if (!d) return;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
      std::string comm, stat;
      if (!TryReadFile(std::string("/proc/") + e->d_name + "/comm", &comm)) continue;
      // a zombie the supervisor has not reaped yet is gone already
      if (TryReadFile(std::string("/proc/") + e->d_name + "/stat", &stat) &&
          stat.find(") Z ") != std::string::npos) {
        continue;
      }
      n += comm.rfind(prefix, 0) == 0;
    }
    closedir(d);
  });
  return n;
}

std::string ContainerdFarm::Import(const std::vector<std::string>& layer_dirs) {
  const std::string n = std::to_string(serial_++);
  const std::string ref = "mntscale.local/" + ns_ + ":" + n;
  const std::string archive = dir_ + "/images/" + n + ".tar";
  WriteOciArchive(layer_dirs, ref, archive);
  std::string out;
  const int rc = Ctr({"images", "import", archive}, &out);
  unlink(archive.c_str());  // the content store holds the blobs now
  if (rc != 0) {
    throw Unsupported("containerd: `ctr images import` failed (exit " + std::to_string(rc) +
                      "): " + ErrorLine(out));
  }
  return ref;
}

void ContainerdFarm::UseImage(const std::vector<std::string>& layer_dirs) {
  const std::string ref = Import(layer_dirs);
  std::lock_guard<std::mutex> lock(mu_);
  storm_ref_ = ref;
}

std::string ContainerdFarm::ImportArchive(const std::string& archive) {
  const std::string ref = "mntscale.local/" + ns_ + ":image" + std::to_string(serial_++);
  std::string out;
  const int rc = Ctr({"images", "import", "--index-name", ref, archive}, &out);
  if (rc != 0) {
    throw Unsupported("containerd: `ctr images import` of " + archive + " failed (exit " +
                      std::to_string(rc) + "): " + ErrorLine(out));
  }
  return ref;
}

RealRuntime::Started ContainerdFarm::StartForeign(const std::string& ref) {
  Started s;
  s.id = "i" + std::to_string(serial_++);
  // ctr's --mount: the holder, copied to the sandbox, read-only at a path of
  // its own
  const std::string holder = dir_ + "/foreign-holder";
  RuntimeFarm::InstallHolder(holder);
  const std::string mount = "type=bind,src=" + holder + "/bin/mntscale-mountinfo" +
                            ",dst=" + kForeignHolder + ",options=rbind:ro";
  s.ns_fd = sup_.OpenMountNs(std::stoi(Run(ref, s.id, {"--mount", mount}, kForeignHolder)), s.id);
  return s;
}

std::string ContainerdFarm::Run(const std::string& ref, const std::string& id,
                                const std::vector<std::string>& extra, const std::string& exe) {
  std::string out;
  ++runs_;
  std::vector<std::string> args = {"run", "-d", "--null-io", "--env", "MNTSCALE_HOLD=1"};
  args.insert(args.end(), extra.begin(), extra.end());
  for (const std::string& a : {ref, id, exe}) args.push_back(a);
  const int rc = Ctr(args, &out);
  if (rc != 0) {
    Stop(id);
    throw Unsupported("containerd: `ctr run` failed (exit " + std::to_string(rc) +
                      "): " + ErrorLine(out));
  }
  // The shim's runc writes the task's pid, as the supervisor's PID namespace
  // numbers it, in the task's bundle.
  return ReadFile(state_ + "/io.containerd.runtime.v2.task/" + ns_ + "/" + id + "/init.pid");
}

RealRuntime::Started ContainerdFarm::Start(const std::string& /*bundle*/) {
  std::string ref;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ref = storm_ref_;
  }
  if (ref.empty()) throw std::logic_error("ContainerdFarm::Start before UseImage");
  Started s;
  s.id = "s" + std::to_string(serial_++);
  s.ns_fd = sup_.OpenMountNs(std::stoi(Run(ref, s.id)), s.id);
  return s;
}

Container ContainerdFarm::Create(int index, const Image& image) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string ref;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (farm_ref_.empty()) {
      // The holder on a layer of its own: the farm's image stays as it is.
      const std::string holder = dir_ + "/holder-layer";
      RuntimeFarm::InstallHolder(holder);
      std::vector<std::string> layers = image.layer_dirs;
      layers.push_back(holder);
      farm_ref_ = Import(layers);
    }
    ref = farm_ref_;
  }
  const std::string id = "f" + std::to_string(serial_++);
  Container c;
  c.index = index;
  c.ns_fd = sup_.OpenMountNs(std::stoi(Run(ref, id)), id);
  c.mounts = static_cast<int>(ReadNamespaceMounts(c.ns_fd).size());
  // The snapshot's upper dir, from the rootfs overlay the shim mounted.
  const std::string rootfs =
      state_ + "/io.containerd.runtime.v2.task/" + ns_ + "/" + id + "/rootfs";
  sup_.InNamespace([&] {
    for (const MountInfoEntry& m : ParseMountinfo(ThreadMountinfo())) {
      if (m.mount_point != rootfs) continue;
      const size_t u = m.super_options.find("upperdir=");
      if (u != std::string::npos) {
        c.upper = m.super_options.substr(u + 9, m.super_options.find(',', u) - u - 9);
      }
    }
  });
  c.build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(ids_.size()) <= index) ids_.resize(index + 1);
  ids_[index] = id;
  return c;
}

void ContainerdFarm::Delete(const Container& c) {
  if (c.ns_fd >= 0) close(c.ns_fd);
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (c.index < 0 || c.index >= static_cast<int>(ids_.size())) return;
    id = ids_[c.index];
  }
  Stop(id);
}

void ContainerdFarm::Stop(const std::string& id) {
  ++deletes_;
  // The task killed and waited for, then the container and its snapshot
  // (the shim unmounted the rootfs when the task was deleted).
  Ctr({"task", "rm", "-f", id}, nullptr);
  Ctr({"container", "rm", id}, nullptr);
}

std::map<std::string, std::string> ContainerdFarm::Tasks() {
  std::map<std::string, std::string> tasks;
  std::string out;
  if (Ctr({"task", "ls"}, &out) != 0) return tasks;
  std::istringstream ss(out);
  std::string line;
  std::getline(ss, line);  // TASK PID STATUS
  while (std::getline(ss, line)) {
    std::istringstream ls(line);
    std::string id, pid, status;
    if (ls >> id >> pid >> status) tasks[id] = status;
  }
  return tasks;
}

std::string ContainerdFarm::Status(const std::string& id) {
  const auto tasks = Tasks();
  const auto it = tasks.find(id);
  return it == tasks.end() ? "unknown: no task " + id : Lower(it->second);
}

int ContainerdFarm::CountRunning(const std::vector<std::string>& ids) {
  const auto tasks = Tasks();
  int n = 0;
  for (const std::string& id : ids) {
    const auto it = tasks.find(id);
    n += it != tasks.end() && Lower(it->second) == "running";
  }
  return n;
}

long ContainerdFarm::calls(const std::string& verb) const {
  // `ctr run` is containerd's create and start in one request
  if (verb == "create" || verb == "start") return runs_;
  if (verb == "delete") return deletes_;
  return 0;
}

void CaptureContainerdMounts(int layers, const std::string& image_path, CaptureResult* cap) {
  static std::atomic<int> serial{0};
  const std::string dir =
      Sandbox::Current().workdir() + "/containerd-capture" + std::to_string(serial++);
  ImageShape shape;
  shape.layers = layers;
  shape.depth = 2;
  shape.files_per_dir = 1;
  shape.binds = 0;
  ContainerdFarm ctrd(dir + "/containerd");
  RealRuntime::Started s;
  if (image_path.empty()) {
    const Image img = BuildImage(dir + "/img", shape);
    RuntimeFarm::InstallHolder(img.layer_dirs.front());
    ctrd.UseImage(img.layer_dirs);
    s = ctrd.Start("");
    cap->note = "rootfs from containerd's overlayfs snapshotter (" + std::to_string(layers) +
                " layers), run by containerd-shim-runc-v2";
  } else {
    s = ctrd.StartForeign(ctrd.ImportArchive(image_path));
    cap->note = "rootfs from containerd's overlayfs snapshotter (image " + image_path +
                "), run by containerd-shim-runc-v2; the holder's bind at " + kForeignHolder +
                " left out";
  }
  Fd ns(s.ns_fd);
  for (const MountInfoEntry& m : ReadNamespaceMounts(ns.get())) {
    if (m.mount_point != kForeignHolder) cap->mounts.push_back(m);
  }
  cap->runtime = "containerd " + ctrd.version();
  cap->spec = "`ctr run` default";
}

}  // namespace mntscale
