// RuntimeFarm: runc and crun as real runtimes (--farm, the storm's
// runtime=), their commands run by a RuntimeSupervisor.
#include <sys/mount.h>
#include <sys/stat.h>

#include <chrono>

#include "mntscale/sys/datafile.h"
#include "mntscale/model/container_start.h"
#include "mntscale/runtimes/runtime.h"
#include "mntscale/sys/sys.h"

namespace mntscale {

RuntimeFarm::RuntimeFarm(RuntimeKind runtime, const std::string& dir, int parallel)
    : kind_(runtime),
      runtime_(Name(runtime)),
      bin_(FindRuntime(runtime_)),
      dir_(dir),
      state_(dir + "/state"),
      sup_(dir, parallel, runtime_) {
  MkdirP(state_);
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

RuntimeFarm::~RuntimeFarm() = default;

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
  const std::initializer_list<std::string> tail = {"create",     "--bundle", b,
                                                   "--pid-file", b + "/pid", id};
  std::string out;
  ++creates_;
  int rc = Command(Argv(tail), &out);
  bool retried = false;
  if (rc != 0 && kind_ == RuntimeKind::kCrun && out.find("hybrid") != std::string::npos) {
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

Container RuntimeFarm::Create(int index, const Image& image) {
  auto t0 = std::chrono::steady_clock::now();
  const std::string id = CgroupPrefix() + "f" + std::to_string(serial_++);
  const std::string b = dir_ + "/" + id;
  for (const char* d : {"", "/upper", "/work", "/rootfs"}) MkdirP(b + d);
  const std::string lower = LowerDirs(image.layer_dirs);
  const std::string opts = "lowerdir=" + lower + ",upperdir=" + b + "/upper,workdir=" + b + "/work";
  sup_.InNamespace([&] {  // the overlay lives where the runtime runs
    Check(mount("overlay", (b + "/rootfs").c_str(), "overlay", 0, opts.c_str()), "mount",
          "overlay, " + b + "/rootfs");
  });
  const int pid = CreateBundle(b, id, spec_);
  Container c;
  c.index = index;
  c.upper = b + "/upper";
  c.ns_fd = sup_.OpenMountNs(pid, id);
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
  sup_.InNamespace([&] { umount2(rootfs.c_str(), MNT_DETACH); });
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
  s.ns_fd = sup_.OpenMountNs(pid, s.id);
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
