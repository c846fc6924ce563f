#include "mntscale/runtime.h"

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

#include "mntscale/datafile.h"
#include "mntscale/farm.h"
#include "mntscale/sandbox.h"
#include "mntscale/scratch.h"
#include "mntscale/sys.h"

#ifndef MNTSCALE_MOUNTINFO_HELPER
#define MNTSCALE_MOUNTINFO_HELPER ""
#endif

namespace mntscale {
namespace {

// mountinfo escapes space, tab, newline and backslash as octal.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string Key(const std::string& point, const std::string& type, bool ro,
                const std::string& prop) {
  return point + " " + type + " " + (ro ? "ro" : "rw") + " " + prop;
}

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

// The cgroup mounts this namespace sees: where a runtime makes a container's
// cgroupsPath directories.
std::vector<std::string> CgroupMounts() {
  std::vector<std::string> dirs;
  for (const MountInfoEntry& m : ParseMountinfo(ThreadMountinfo())) {
    if (m.fstype == "cgroup" || m.fstype == "cgroup2") dirs.push_back(m.mount_point);
  }
  return dirs;
}

// A process outside the runtime's PID namespace that outlives us: when the
// pipe it holds closes (we finished, or were SIGKILLed), it removes every
// cgroup directory named prefix* at the top of each cgroup mount, retrying
// while the killed containers' processes drain out of them. Returns the
// pipe's write end.
int StartCgroupJanitor(const std::string& prefix) {
  const std::vector<std::string> mounts = CgroupMounts();
  int p[2];
  Check(pipe2(p, O_CLOEXEC), "pipe2", "cgroup janitor");
  pid_t pid = fork();
  Check(pid, "fork", "cgroup janitor");
  if (pid == 0) {
    close(p[1]);
    setsid();
    char c;
    while (read(p[0], &c, 1) > 0 || errno == EINTR) {
    }
    for (int attempt = 0; attempt < 100; ++attempt) {
      bool left = false;
      for (const std::string& m : mounts) {
        DIR* d = opendir(m.c_str());
        if (!d) continue;
        while (dirent* e = readdir(d)) {
          if (strncmp(e->d_name, prefix.c_str(), prefix.size()) != 0) continue;
          if (rmdir((m + "/" + e->d_name).c_str()) != 0 && errno != ENOENT) left = true;
        }
        closedir(d);
      }
      if (!left) break;
      struct timespec ts = {0, 50 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
    _exit(0);
  }
  close(p[0]);
  return p[1];
}

std::string CgroupPrefix() { return "mntscale-" + std::to_string(getpid()) + "-"; }

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

// The line of a runtime's stderr that says why: its last error line, else
// its last line.
std::string ErrorLine(const std::string& s) {
  std::istringstream ss(s);
  std::string line, last, error;
  while (std::getline(ss, line)) {
    if (line.empty()) continue;
    last = line;
    if (line.find("error") != std::string::npos &&
        line.find("level=warning") == std::string::npos) {
      error = line;
    }
  }
  return !error.empty() ? error : !last.empty() ? last : "(no message)";
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
  std::string lower;
  for (auto it = img.layer_dirs.rbegin(); it != img.layer_dirs.rend(); ++it) {
    lower += (lower.empty() ? "" : ":") + *it;
  }
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

std::vector<MountInfoEntry> ParseMountinfo(const std::vector<std::string>& lines) {
  std::vector<MountInfoEntry> out;
  for (const std::string& line : lines) {
    std::istringstream ss(line);
    std::string id, parent, dev, root, point, opts, f;
    if (!(ss >> id >> parent >> dev >> root >> point >> opts)) continue;
    MountInfoEntry e;
    e.root = Unescape(root);
    e.mount_point = Unescape(point);
    std::string o = "," + opts + ",";
    e.readonly = o.find(",ro,") != std::string::npos;
    e.propagation = "private";
    while (ss >> f && f != "-") {
      if (f.rfind("shared:", 0) == 0) {
        e.propagation = "shared";
      } else if (f.rfind("master:", 0) == 0 && e.propagation == "private") {
        e.propagation = "slave";
      } else if (f == "unbindable") {
        e.propagation = "unbindable";
      }
    }
    std::string source;
    ss >> e.fstype >> source >> e.super_options;
    out.push_back(e);
  }
  return out;
}

std::vector<std::string> MountKeys(const std::vector<MountInfoEntry>& mounts) {
  std::vector<std::string> keys;
  for (const MountInfoEntry& m : mounts) {
    keys.push_back(Key(m.mount_point, m.fstype, m.readonly, m.propagation));
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<std::string> MountKeys(const nlohmann::json& captured_mounts) {
  std::vector<std::string> keys;
  for (const auto& m : captured_mounts) {
    keys.push_back(Key(m.at("mount_point"), m.at("fstype"), m.at("ro"), m.at("propagation")));
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

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
  bool known = false;
  for (const char* r : kRuntimes) known |= req.runtime == r;
  if (!known) throw UsageError("unknown runtime '" + req.runtime + "' (known: runc, crun)");
  if (FindRuntime(req.runtime).empty()) {
    throw UsageError("runtime '" + req.runtime +
                     "' is not installed (not found on PATH); scripts/setup.sh installs runc "
                     "and crun");
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

Profile ProfileFromSpec(const nlohmann::json& spec, int layers) {
  CaptureResult cap;
  auto entry = [&](std::string dest, const std::string& fstype, bool ro) {
    if (dest.empty() || dest[0] != '/') dest = "/" + dest;  // runtimes resolve it in the rootfs
    while (dest.size() > 1 && dest.back() == '/') dest.pop_back();
    MountInfoEntry m;
    m.mount_point = dest;
    m.fstype = fstype;
    m.readonly = ro;
    m.propagation = "private";
    cap.mounts.push_back(m);
  };
  const nlohmann::json root = spec.value("root", nlohmann::json::object());
  entry("/", "overlay", root.is_object() && root.value("readonly", false) == true);
  for (const auto& m : spec.value("mounts", nlohmann::json::array())) {
    bool ro = false;
    if (m.contains("options") && m["options"].is_array()) {
      for (const auto& o : m["options"]) ro |= o.is_string() && o.get<std::string>() == "ro";
    }
    const auto type = m.find("type");
    std::string fs = type != m.end() && type->is_string() ? type->get<std::string>() : "bind";
    // Whatever the spec mounts there, the table shows the cgroup mount the
    // host's hierarchy gives (the capture reads which); a v1 guess here
    // would need controllers the spec does not name.
    if (m["destination"] == "/sys/fs/cgroup") fs = "cgroup2";
    entry(m["destination"].get<std::string>(), fs, ro);
  }
  const nlohmann::json linux_section = spec.value("linux", nlohmann::json::object());
  for (const char* key : {"maskedPaths", "readonlyPaths"}) {
    const auto list = linux_section.find(key);
    if (list == linux_section.end() || !list->is_array()) continue;
    for (const auto& p : *list) {
      if (!p.is_string()) continue;
      const std::string path = p.get<std::string>();
      // As runc mounts them: read-only paths are binds of their own
      // filesystem, masked ones are /dev/null or a tmpfs over the path.
      const bool is_proc = path.rfind("/proc/", 0) == 0;
      const std::string fs =
          std::string(key) == "readonlyPaths" ? (is_proc ? "proc" : "sysfs") : "tmpfs";
      entry(path, fs, std::string(key) == "readonlyPaths");
    }
  }
  return ProfileFromCapture(cap, "spec", layers);
}

CaptureResult CaptureRuntimeMounts(const CaptureRequest& req) {
  ValidateCaptureRequest(req);
  const std::string bin = FindRuntime(req.runtime);
  CaptureResult cap;
  {
    RunOutput v = RunInPidNamespace({bin, "--version"}, "/", 30);
    std::string first = FirstLine(v.out);
    size_t at = first.find("version ");
    cap.runtime = req.runtime + " " + (at == std::string::npos ? first : first.substr(at + 8));
  }
  static int serial = 0;
  const std::string id = CgroupPrefix() + std::to_string(serial++);
  const std::string bundle = Sandbox::Current().workdir() + "/bundle-" + id;
  SetUpBundle(bundle, req.layers);

  nlohmann::json spec;
  if (req.spec_path.empty()) {
    RunOutput r = RunInPidNamespace({bin, "spec"}, bundle, 30);
    if (r.status != 0) {
      throw Unsupported(cap.runtime + ": `" + req.runtime + " spec` failed (exit " +
                        std::to_string(r.status) + "): " + FirstLine(r.err));
    }
    spec = nlohmann::json::parse(ReadFile(bundle + "/config.json"));
    cap.spec = "`" + req.runtime + " spec` default";
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
  if (r.status != 0 && req.runtime == "crun" && r.err.find("hybrid") != std::string::npos) {
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

Profile ProfileFromCapture(const CaptureResult& cap, const std::string& name, int layers) {
  Profile p;
  p.name = name;
  p.layers = layers;
  p.binds = 0;
  p.proc = p.sys = p.dev = false;
  std::map<std::string, bool> seen;
  nlohmann::json table = nlohmann::json::array();
  for (const MountInfoEntry& m : cap.mounts) {
    table.push_back({{"mount_point", m.mount_point},
                     {"fstype", m.fstype},
                     {"ro", m.readonly},
                     {"propagation", m.propagation}});
    const std::string& mp = m.mount_point;
    const bool under_proc = mp.rfind("/proc/", 0) == 0, under_sys = mp.rfind("/sys/", 0) == 0;
    if (mp == "/") {
      p.readonly_root = m.readonly;
    } else if (mp == "/proc" && m.fstype == "proc") {
      p.proc = true;
    } else if (mp == "/sys" && m.fstype == "sysfs") {
      p.sys = true;
    } else if (mp == "/dev" && m.fstype == "tmpfs") {
      p.dev = true;
    } else if (mp == "/dev/pts" && m.fstype == "devpts") {
      p.devpts = true;
    } else if ((mp == "/dev/shm" && m.fstype == "tmpfs") ||
               (mp == "/dev/mqueue" && m.fstype == "mqueue")) {
      // part of "dev"
    } else if (mp == "/sys/fs/cgroup" && m.fstype == "tmpfs") {
      p.cgroup = "v1";
    } else if (mp == "/sys/fs/cgroup" && m.fstype == "cgroup2") {
      p.cgroup = "v2";
    } else if (mp.rfind("/sys/fs/cgroup/", 0) == 0 && m.fstype == "cgroup") {
      std::string opts;
      std::istringstream os(m.super_options);
      std::string o;
      while (std::getline(os, o, ',')) {
        if (o != "rw" && o != "ro") opts += (opts.empty() ? "" : ",") + o;
      }
      p.cgroup_controllers.push_back(opts);
    } else if ((under_proc && m.fstype == "proc") || (under_sys && m.fstype == "sysfs")) {
      p.readonly_paths.push_back(mp);
    } else if (under_proc || under_sys) {
      p.masked_paths.push_back(mp);
      // A masked file bound from the host's /dev/null shows the host's /dev
      // (devtmpfs), read-only: crun's way; runc binds the container's own.
      if (m.fstype != "tmpfs" && m.readonly) p.masked_files = "host-null-ro";
    } else {
      p.bind_paths.push_back(mp + (m.readonly ? ":ro" : ""));
    }
  }
  p.binds = static_cast<int>(p.bind_paths.size());
  utsname u{};
  uname(&u);
  p.captured = {{"runtime", cap.runtime},
                {"spec", cap.spec},
                {"kernel", u.release},
                {"mount_count", cap.mounts.size()},
                {"mounts", table}};
  if (!cap.note.empty()) p.captured["note"] = cap.note;
  p.Validate();
  return p;
}

std::vector<MountInfoEntry> ReadNamespaceMounts(int ns_fd) {
  std::vector<MountInfoEntry> out;
  OnPrivateThread([&] {
    Check(setns(ns_fd, CLONE_NEWNS), "setns", "container mount namespace");
    out = ParseMountinfo(ThreadMountinfo());
  });
  return out;
}

}  // namespace mntscale

namespace mntscale {
namespace {

// The supervisor: init of the runtime's PID namespace, with a /proc of that
// namespace in a mount namespace of its own. Each request on the socket is
// NUL-separated (an output file, then argv) and carries one fd: the socket
// its exit code goes back on. Up to `parallel` commands run at once, each
// under a runner child that waits for it and replies; the rest queue. The
// supervisor reaps the runners and everything reparented to it (held
// container inits). When the socket closes it exits, and with it the
// namespace and every command still running.
[[noreturn]] void SupervisorLoop(int sock, int parent_pidfd, int parallel) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  pollfd alive = {parent_pidfd, POLLIN, 0};
  if (poll(&alive, 1, 0) != 0) _exit(125);
  if (unshare(CLONE_NEWNS) != 0) _exit(124);
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) _exit(124);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  const int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) _exit(124);
  int ready = 0;
  if (send(sock, &ready, sizeof ready, 0) < 0) _exit(123);
  struct Request {
    std::string msg;
    int reply;
  };
  std::deque<Request> queue;
  std::set<pid_t> runners;
  static char buf[65536];
  for (;;) {
    while (static_cast<int>(runners.size()) < parallel && !queue.empty()) {
      Request r = std::move(queue.front());
      queue.pop_front();
      pid_t runner = fork();
      if (runner == 0) {
        close(sock);
        close(sfd);
        std::vector<char*> args;
        for (size_t i = 0; i < r.msg.size(); i += strlen(r.msg.data() + i) + 1)
          args.push_back(r.msg.data() + i);
        args.push_back(nullptr);
        pid_t child = fork();
        if (child == 0) {
          sigprocmask(SIG_UNBLOCK, &chld, nullptr);
          int out = open(args[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
          if (out < 0) _exit(127);
          dup2(out, 1);
          dup2(out, 2);
          execvp(args[1], args.data() + 1);
          _exit(127);
        }
        int code = 126, st = 0;
        if (child > 0 && waitpid(child, &st, 0) == child) {
          code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        send(r.reply, &code, sizeof code, MSG_NOSIGNAL);
        _exit(0);
      }
      close(r.reply);  // the runner holds it; a failed fork closes it unanswered
      if (runner > 0) runners.insert(runner);
    }
    pollfd fds[2] = {{sock, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) _exit(122);
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {
      }
      int st = 0;
      for (pid_t w; (w = waitpid(-1, &st, WNOHANG)) > 0;) runners.erase(w);
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char cbuf[CMSG_SPACE(sizeof(int))];
      iovec iov = {buf, sizeof buf - 1};
      msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      mh.msg_control = cbuf;
      mh.msg_controllen = sizeof cbuf;
      ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
      if (n <= 0) _exit(0);
      cmsghdr* cm = CMSG_FIRSTHDR(&mh);
      if (!cm || cm->cmsg_type != SCM_RIGHTS) continue;  // no reply socket: not ours
      int reply;
      memcpy(&reply, CMSG_DATA(cm), sizeof reply);
      queue.push_back({std::string(buf, n), reply});
    }
  }
}

}  // namespace

void ValidateFarmBackend(const std::string& farm) {
  if (farm == "builtin") return;
  bool known = false;
  for (const char* r : kRuntimes) known |= farm == r;
  if (!known) throw UsageError("--farm '" + farm + "' is not one of: builtin, runc, crun");
  if (FindRuntime(farm).empty()) {
    throw UsageError("--farm " + farm + ": runtime '" + farm +
                     "' is not installed (not found on PATH); scripts/setup.sh installs it");
  }
}

RuntimeFarm::RuntimeFarm(const std::string& runtime, const std::string& dir, int parallel)
    : runtime_(runtime), bin_(FindRuntime(runtime)), dir_(dir), state_(dir + "/state") {
  ValidateFarmBackend(runtime);
  MkdirP(state_);
  janitor_ = StartCgroupJanitor(CgroupPrefix());
  int sv[2];
  Check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), "socketpair", "supervisor");
  Fd self(static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0)));
  Check(self.get(), "pidfd_open", "self", "needs Linux >= 5.3");
  long pid = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  Check(pid, "clone", "CLONE_NEWPID (runtime supervisor)");
  if (pid == 0) {
    close(sv[0]);
    SupervisorLoop(sv[1], self.get(), std::max(1, parallel));
  }
  close(sv[1]);
  sock_ = sv[0];
  sup_pid_ = static_cast<int>(pid);
  try {
    Init();
  } catch (...) {
    Release();  // the destructor does not run after a throwing constructor
    throw;
  }
}

void RuntimeFarm::Init() {
  int ready = -1;
  if (recv(sock_, &ready, sizeof ready, 0) != sizeof ready || ready != 0) {
    throw Unsupported(runtime_ + " farm: the runtime supervisor did not start");
  }
  sup_mnt_ = static_cast<int>(
      Check(open(("/proc/" + std::to_string(sup_pid_) + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC),
            "open", "supervisor's mount namespace"));
  std::string out;
  const std::string spec_dir = dir_ + "/spec";
  MkdirP(spec_dir);
  if (Command({"sh", "-c", "cd " + spec_dir + " && exec " + bin_ + " spec"}, &out) != 0) {
    throw Unsupported(runtime_ + ": `" + runtime_ + " spec` failed: " + ErrorLine(out));
  }
  spec_ = nlohmann::json::parse(ReadFile(spec_dir + "/config.json"));
  spec_["root"]["path"] = "rootfs";
  spec_["process"]["terminal"] = false;
  spec_["process"]["args"] = {"/bin/true-static"};
}

RuntimeFarm::~RuntimeFarm() { Release(); }

void RuntimeFarm::Release() {
  if (sock_ >= 0) close(sock_);  // the supervisor exits; its PID namespace dies
  if (sup_pid_ > 0) waitpid(sup_pid_, nullptr, 0);
  if (sup_mnt_ >= 0) close(sup_mnt_);
  if (janitor_ >= 0) close(janitor_);  // and the janitor removes the cgroups
  sock_ = sup_pid_ = sup_mnt_ = janitor_ = -1;
}

int RuntimeFarm::Command(const std::vector<std::string>& argv, std::string* output) {
  const std::string out_file = dir_ + "/cmd-" + std::to_string(commands_++) + ".out";
  std::string msg = out_file + '\0';
  for (const std::string& a : argv) msg += a + '\0';
  int rs[2];
  Check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rs), "socketpair", "command reply");
  Fd reply(rs[0]);
  {
    Fd theirs(rs[1]);
    Check(SendWithFd(sock_, msg.data(), msg.size(), theirs.get()), "sendmsg", "runtime supervisor");
  }
  int code = -1;
  ssize_t n;
  while ((n = recv(reply.get(), &code, sizeof code, 0)) < 0 && errno == EINTR) {
  }
  if (n != sizeof code) {
    throw SysError("recv", "runtime supervisor", n < 0 ? errno : EPIPE,
                   "the supervisor or its runner died before the command ended");
  }
  if (output) TryReadFile(out_file, output);
  unlink(out_file.c_str());
  return code;
}

std::vector<std::string> RuntimeFarm::Argv(std::initializer_list<std::string> tail) const {
  std::vector<std::string> argv = {bin_};
  {
    std::lock_guard<std::mutex> lock(mu_);
    argv.insert(argv.end(), global_opts_.begin(), global_opts_.end());
  }
  argv.push_back("--root");
  argv.push_back(state_);
  argv.insert(argv.end(), tail.begin(), tail.end());
  return argv;
}

int RuntimeFarm::CreateBundle(const std::string& b, const std::string& id,
                              const nlohmann::json& spec) {
  nlohmann::json sp = spec;
  sp["linux"]["cgroupsPath"] = "/" + id;
  WriteFile(b + "/config.json", sp.dump());
  const std::initializer_list<std::string> tail = {"create", "--bundle", b, "--pid-file",
                                                   b + "/pid", id};
  std::string out;
  ++creates_;
  int rc = Command(Argv(tail), &out);
  bool retried = false;
  if (rc != 0 && runtime_ == "crun" && out.find("hybrid") != std::string::npos) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (global_opts_.empty()) global_opts_ = {"--cgroup-manager=disabled"};
    }
    retried = true;
    ++creates_;
    rc = Command(Argv(tail), &out);
  }
  if (rc != 0) {
    throw Unsupported(runtime_ + ": cannot create a container on this host" +
                      (retried ? " (even with --cgroup-manager=disabled)" : "") + ": " +
                      ErrorLine(out));
  }
  return std::stoi(ReadFile(b + "/pid"));
}

int RuntimeFarm::OpenNs(int pid, const std::string& id) const {
  int fd = -1;
  OnPrivateThread([&] {  // the pid is in the supervisor's PID namespace: its /proc
    Check(setns(sup_mnt_, CLONE_NEWNS), "setns", "supervisor's mount namespace");
    fd = static_cast<int>(
        Check(open(("/proc/" + std::to_string(pid) + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC),
              "open", "/proc/" + std::to_string(pid) + "/ns/mnt of " + id));
  });
  return fd;
}

Container RuntimeFarm::Create(int index, const Image& image) {
  auto t0 = std::chrono::steady_clock::now();
  const std::string id = CgroupPrefix() + "f" + std::to_string(serial_++);
  const std::string b = dir_ + "/" + id;
  for (const char* d : {"", "/upper", "/work", "/rootfs"}) MkdirP(b + d);
  std::string lower;
  for (auto it = image.layer_dirs.rbegin(); it != image.layer_dirs.rend(); ++it) {
    lower += (lower.empty() ? "" : ":") + *it;
  }
  const std::string opts = "lowerdir=" + lower + ",upperdir=" + b + "/upper,workdir=" + b + "/work";
  OnPrivateThread([&] {  // the overlay lives where the runtime runs
    Check(setns(sup_mnt_, CLONE_NEWNS), "setns", "supervisor's mount namespace");
    Check(mount("overlay", (b + "/rootfs").c_str(), "overlay", 0, opts.c_str()), "mount",
          "overlay, " + b + "/rootfs");
  });
  const int pid = CreateBundle(b, id, spec_);
  Container c;
  c.index = index;
  c.upper = b + "/upper";
  c.ns_fd = OpenNs(pid, id);
  c.mounts = static_cast<int>(ReadNamespaceMounts(c.ns_fd).size());
  c.build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (static_cast<int>(ids_.size()) <= index) ids_.resize(index + 1);
  ids_[index] = id;
  return c;
}

void RuntimeFarm::Delete(const Container& c) {
  if (c.ns_fd >= 0) close(c.ns_fd);
  if (c.index < 0 || c.index >= static_cast<int>(ids_.size())) return;
  const std::string& id = ids_[c.index];
  Stop(id);
  const std::string rootfs = dir_ + "/" + id + "/rootfs";
  OnPrivateThread([&] {
    Check(setns(sup_mnt_, CLONE_NEWNS), "setns", "supervisor's mount namespace");
    umount2(rootfs.c_str(), MNT_DETACH);
  });
}

void RuntimeFarm::InstallHolder(const std::string& layer_dir) {
  MkdirP(layer_dir + "/bin");
  const std::string exe = layer_dir + "/bin/mntscale-mountinfo";
  WriteFile(exe, ReadFile(HelperPath()));
  Check(chmod(exe.c_str(), 0755), "chmod", exe);
}

RuntimeFarm::Started RuntimeFarm::Start(const std::string& bundle) {
  Started s;
  s.id = CgroupPrefix() + "s" + std::to_string(serial_++);
  nlohmann::json spec = spec_;
  spec["process"]["args"] = {"/bin/mntscale-mountinfo"};
  spec["process"]["env"].push_back("MNTSCALE_HOLD=1");
  const int pid = CreateBundle(bundle, s.id, spec);
  std::string out;
  ++starts_;
  if (int rc = Command(Argv({"start", s.id}), &out); rc != 0) {
    Stop(s.id);
    throw Unsupported(runtime_ + ": `start` of a created container failed (exit " +
                      std::to_string(rc) + "): " + ErrorLine(out));
  }
  s.ns_fd = OpenNs(pid, s.id);
  return s;
}

void RuntimeFarm::Stop(const std::string& id) {
  ++deletes_;
  Command(Argv({"delete", "--force", id}), nullptr);
}

std::string RuntimeFarm::Status(const std::string& id) {
  std::string out;
  if (Command(Argv({"state", id}), &out) != 0) return "unknown: " + ErrorLine(out);
  try {  // stdout+stderr share the output: the JSON object is the state
    const size_t a = out.find('{'), b = out.rfind('}');
    if (a == std::string::npos || b == std::string::npos) return "unknown: " + ErrorLine(out);
    return nlohmann::json::parse(out.substr(a, b - a + 1)).value("status", "unknown");
  } catch (const nlohmann::json::exception&) {
    return "unknown: " + ErrorLine(out);
  }
}

long RuntimeFarm::calls(const std::string& verb) const {
  if (verb == "create") return creates_;
  if (verb == "start") return starts_;
  if (verb == "delete") return deletes_;
  return 0;
}

}  // namespace mntscale
