#include "mntscale/runtimes/runtime.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <sstream>

#include "mntscale/model/container_start.h"
#include "mntscale/runtimes/containerd.h"
#include "mntscale/sys/datafile.h"
#include "mntscale/model/farm.h"
#include "mntscale/runtimes/oci_image.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/model/scratch.h"
#include "mntscale/sys/sys.h"

#ifndef MNTSCALE_MOUNTINFO_HELPER
#define MNTSCALE_MOUNTINFO_HELPER ""
#endif

namespace mntscale {
namespace {



struct RunOutput {
  int status = -1;  // wait status of the runtime
  std::string out, err;
};

// Runs argv in a new PID namespace whose init is our child with
// PR_SET_PDEATHSIG=SIGKILL: if this process dies, the init dies, and the
// kernel kills everything in that namespace and the ones nested in it (the
// runtime and its container).
RunOutput RunInPidNamespace(const std::vector<std::string>& argv, const std::string& cwd,
                            double timeout_s) {
  int out[2], err[2];
  Check(pipe2(out, O_CLOEXEC), "pipe2", "runtime stdout");
  Check(pipe2(err, O_CLOEXEC), "pipe2", "runtime stderr");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The new namespace's init sees its parent as pid 0, so it checks, after
  // PR_SET_PDEATHSIG, that we still live through a pidfd of ours.
  Fd parent(static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0)));
  Check(parent.get(), "pidfd_open", "self", "needs Linux >= 5.3");
  long pid = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  Check(pid, "clone", "CLONE_NEWPID (runtime's PID namespace)");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    pollfd alive = {parent.get(), POLLIN, 0};
    if (poll(&alive, 1, 0) != 0) _exit(125);  // readable: we have exited
    // The runtime reads /proc/<pid> of its children by the pids it sees:
    // it needs a /proc of this PID namespace (in a mount namespace of its
    // own, copied from the sandbox's, so the bundle is still there).
    if (unshare(CLONE_NEWNS) != 0) _exit(124);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) _exit(124);
    pid_t child = fork();
    if (child < 0) _exit(126);
    if (child == 0) {
      dup2(out[1], 1);
      dup2(err[1], 2);
      if (chdir(cwd.c_str()) != 0) _exit(127);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    int st = 0, code = 125;
    for (;;) {  // init of the namespace: reap everything, report the runtime
      pid_t w = wait(&st);
      if (w < 0) break;
      if (w == child) code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    _exit(code);
  }
  close(out[1]);
  close(err[1]);
  RunOutput r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count());
    if (ms <= 0) {
      kill(static_cast<pid_t>(pid), SIGKILL);
      r.err += "\n(killed after " + std::to_string(timeout_s) + " s)";
      break;
    }
    if (poll(fds, 2, ms) < 0) {
      if (errno == EINTR) continue;
      Check(-1, "poll", "runtime output");
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, n);
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int st = 0;
  Check(waitpid(static_cast<pid_t>(pid), &st, 0), "waitpid", "runtime PID namespace init");
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

nlohmann::json LoadOciSpec(const std::string& path) {
  // The data-file reader: a FIFO or /dev/zero is refused at once, never read.
  const std::string text = ReadDataFile(path, "--spec");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw UsageError("--spec '" + path + "' is not valid JSON: " + e.what());
  }
  auto bad = [&](const std::string& why) {
    throw UsageError("--spec '" + path + "' is not an OCI runtime spec: " + why);
  };
  if (!j.is_object()) bad("not a JSON object");
  if (!j.contains("ociVersion") || !j["ociVersion"].is_string()) bad("no string 'ociVersion'");
  if (j.contains("mounts")) {
    if (!j["mounts"].is_array()) bad("'mounts' is not a list");
    for (const auto& m : j["mounts"]) {
      if (!m.is_object() || !m.contains("destination") || !m["destination"].is_string()) {
        bad("a mount without a string 'destination': " + m.dump());
      }
    }
  }
  for (const char* k : {"process", "root", "linux"}) {
    if (j.contains(k) && !j[k].is_object()) bad(std::string("'") + k + "' is not an object");
  }
  if (!j.contains("linux")) bad("no 'linux' section");
  return j;
}

// The executable's directory, read once at load: HelperPath() may be called
// from a thread inside a runtime supervisor's mount namespace, whose /proc
// (of the supervisor's PID namespace) has no /proc/self for this process.
// Seen in a cgroup v2 guest, where the build directory's helper path
// compiled in below does not exist either.
const std::string kExeDir = [] {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return std::string();
  std::string dir(self, n);
  return dir.substr(0, dir.rfind('/'));
}();

std::string HelperPath() {
  if (!kExeDir.empty()) {
    for (const std::string& p :
         {kExeDir + "/mntscale-mountinfo", kExeDir + "/../mntscale-mountinfo"}) {
      if (access(p.c_str(), X_OK) == 0) return p;
    }
  }
  std::string built = MNTSCALE_MOUNTINFO_HELPER;
  if (!built.empty() && access(built.c_str(), X_OK) == 0) return built;
  throw Unsupported(
      "the static helper mntscale-mountinfo was not built (it needs libc.a: libc6-dev)");
}

std::string FirstLine(const std::string& s) {
  std::string t = s.substr(0, s.find('\n'));
  return t.empty() ? "(no message)" : t;
}

// The spec the container runs: the given or default one with our rootfs, a
// helper process and no terminal; bind sources replaced by stand-ins in the
// bundle (never the host's files), namespace paths and hooks dropped (they
// name a pod sandbox that does not exist here).
nlohmann::json PrepareSpec(nlohmann::json spec, const std::string& bundle,
                           const std::string& cgroups_path) {
  spec["root"]["path"] = "rootfs";
  spec["process"]["terminal"] = false;
  spec["process"]["args"] = {"/bin/mntscale-mountinfo"};
  spec["process"].erase("user");
  spec["process"]["user"] = {{"uid", 0}, {"gid", 0}};
  spec.erase("hooks");
  if (getenv("MNTSCALE_CAPTURE_HOLD")) {  // tests only: the container stays up
    spec["process"]["env"].push_back("MNTSCALE_HOLD=1");
  }
  spec["linux"]["cgroupsPath"] = cgroups_path;
  if (spec["linux"].contains("namespaces")) {
    for (auto& ns : spec["linux"]["namespaces"]) ns.erase("path");
  }
  spec["linux"].erase("seccomp");  // the helper's syscalls are few; no policy to load
  int n = 0;
  if (spec.contains("mounts")) {
    for (auto& m : spec["mounts"]) {
      bool bind = m.value("type", "") == "bind";
      for (const auto& o : m.value("options", nlohmann::json::array())) {
        if (o.is_string() && (o == "bind" || o == "rbind")) bind = true;
      }
      if (!bind) continue;
      const std::string src = m.value("source", "");
      const std::string stand_in = bundle + "/binds/" + std::to_string(n++);
      struct stat st;
      // A directory where the host source is one, or where the spec's
      // source ends in '/'; otherwise a file.
      if (!src.empty() &&
          (src.back() == '/' || (stat(src.c_str(), &st) == 0 && S_ISDIR(st.st_mode)))) {
        MkdirP(stand_in);
      } else {
        WriteFile(stand_in, "stand-in for " + src + "\n");
      }
      m["source"] = stand_in;
    }
  }
  return spec;
}

std::string SetUpBundle(const std::string& bundle, int layers) {
  ImageShape shape;
  shape.layers = layers;
  shape.depth = 2;
  shape.files_per_dir = 1;
  shape.binds = 0;
  const Image& img = GetImage(shape);
  for (const char* d : {"", "/upper", "/work", "/rootfs", "/binds"}) MkdirP(bundle + d);
  const std::string lower = LowerDirs(img.layer_dirs);
  std::string opts =
      "lowerdir=" + lower + ",upperdir=" + bundle + "/upper,workdir=" + bundle + "/work";
  Check(mount("overlay", (bundle + "/rootfs").c_str(), "overlay", 0, opts.c_str()), "mount",
        "overlay, " + bundle + "/rootfs");
  WriteFile(bundle + "/rootfs/bin/mntscale-mountinfo", ReadFile(HelperPath()));
  Check(chmod((bundle + "/rootfs/bin/mntscale-mountinfo").c_str(), 0755), "chmod",
        "mntscale-mountinfo");
  return bundle + "/rootfs";
}

}  // namespace

std::string FindRuntime(const std::string& runtime) {
  const char* path = getenv("PATH");
  std::istringstream ss(path ? path : "");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string p = dir + "/" + runtime;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

void ValidateCaptureRequest(const CaptureRequest& req) {
  if (std::string why = RuntimeMissing(req.runtime); !why.empty()) throw UsageError(why);
  if (!req.image_path.empty()) {
    if (req.runtime != RuntimeKind::kContainerd) {
      throw UsageError("--image is only used with --runtime containerd (runc and crun run a "
                       "bundle of generated layers)");
    }
    struct stat st;
    if (stat(req.image_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      throw UsageError("--image '" + req.image_path + "' is not a regular file");
    }
    if (std::string why = OciArchiveProblem(req.image_path); !why.empty()) {
      throw UsageError("--image '" + req.image_path +
                       "' is not an OCI image archive that can be imported: " + why);
    }
  }
  if (req.runtime == RuntimeKind::kContainerd && !req.spec_path.empty()) {
    throw UsageError("--spec is not used with --runtime containerd: it captures the container "
                     "`ctr run` makes from its default spec");
  }
  if (req.layers < 1 || req.layers > kMaxLayers) {
    throw UsageError("--layers " + std::to_string(req.layers) + " is out of range [1, " +
                     std::to_string(kMaxLayers) + "]");
  }
  if (!req.spec_path.empty()) {
    // The profile the spec's mounts would make, checked against the profile
    // limits now rather than after the container has run.
    const nlohmann::json spec = LoadOciSpec(req.spec_path);
    try {
      ProfileFromSpec(spec, req.layers);
    } catch (const UsageError& e) {
      throw UsageError("--spec '" + req.spec_path +
                       "' would make a profile that is refused: " + e.what());
    }
  }
}

CaptureResult CaptureRuntimeMounts(const CaptureRequest& req) {
  ValidateCaptureRequest(req);
  if (req.runtime == RuntimeKind::kContainerd) {
    CaptureResult cap;
    CaptureContainerdMounts(req.layers, req.image_path, &cap);
    return cap;
  }
  const std::string name = Name(req.runtime), bin = FindRuntime(name);
  CaptureResult cap;
  {
    RunOutput v = RunInPidNamespace({bin, "--version"}, "/", 30);
    std::string first = FirstLine(v.out);
    size_t at = first.find("version ");
    cap.runtime = name + " " + (at == std::string::npos ? first : first.substr(at + 8));
  }
  static int serial = 0;
  const std::string id = CgroupPrefix() + std::to_string(serial++);
  const std::string bundle = Sandbox::Current().workdir() + "/bundle-" + id;
  SetUpBundle(bundle, req.layers);

  nlohmann::json spec;
  if (req.spec_path.empty()) {
    RunOutput r = RunInPidNamespace({bin, "spec"}, bundle, 30);
    if (r.status != 0) {
      throw Unsupported(cap.runtime + ": `" + name + " spec` failed (exit " +
                        std::to_string(r.status) + "): " + FirstLine(r.err));
    }
    spec = nlohmann::json::parse(ReadFile(bundle + "/config.json"));
    cap.spec = "`" + name + " spec` default";
  } else {
    spec = LoadOciSpec(req.spec_path);
    cap.spec = req.spec_path;
  }
  const std::string cgroups_path = "/" + id;
  WriteFile(bundle + "/config.json", PrepareSpec(spec, bundle, cgroups_path).dump(1));

  const std::string state = Sandbox::Current().workdir() + "/runtime-state";
  MkdirP(state);
  Fd janitor(StartCgroupJanitor(CgroupPrefix()));
  std::vector<std::string> argv = {bin, "--root", state, "run", "--bundle", bundle, id};
  RunOutput r = RunInPidNamespace(argv, bundle, 60);
  if (r.status != 0 && req.runtime == RuntimeKind::kCrun &&
      r.err.find("hybrid") != std::string::npos) {
    // crun 1.8 refuses cgroup v1/v2 hybrid hosts; without a cgroup manager
    // it may still start the container.
    argv.insert(argv.begin() + 1, "--cgroup-manager=disabled");
    RunOutput again = RunInPidNamespace(argv, bundle, 60);
    cap.note = "run with --cgroup-manager=disabled (hybrid cgroup host)";
    if (again.status != 0) {
      throw Unsupported(cap.runtime +
                        " cannot run a container on this host, even with "
                        "--cgroup-manager=disabled: " +
                        ErrorLine(again.err));
    }
    r = again;
  }
  if (r.status != 0) {
    throw Unsupported(cap.runtime + " cannot run a container on this host: " + FirstLine(r.err) +
                      " (exit " + std::to_string(r.status) + ")");
  }
  std::vector<std::string> lines;
  std::istringstream ss(r.out);
  std::string line;
  while (std::getline(ss, line)) lines.push_back(line);
  cap.mounts = ParseMountinfo(lines);
  if (cap.mounts.empty()) {
    throw Unsupported(cap.runtime + ": the container printed no mountinfo: " + FirstLine(r.err));
  }
  umount2((bundle + "/rootfs").c_str(), MNT_DETACH);
  return cap;
}

std::vector<MountInfoEntry> ReadNamespaceMounts(int ns_fd) {
  std::vector<MountInfoEntry> out;
  OnPrivateThread([&] {
    Check(setns(ns_fd, CLONE_NEWNS), "setns", "container mount namespace");
    out = ParseMountinfo(ThreadMountinfo());
  });
  return out;
}

void RuntimeFarm::InstallHolder(const std::string& layer_dir) {
  MkdirP(layer_dir + "/bin");
  const std::string exe = layer_dir + "/bin/mntscale-mountinfo";
  WriteFile(exe, ReadFile(HelperPath()));
  Check(chmod(exe.c_str(), 0755), "chmod", exe);
}

}  // namespace mntscale
