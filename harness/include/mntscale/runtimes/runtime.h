// Real OCI runtimes (runc, crun): a container started once from a bundle on
// the sandbox's tmpfs, its mount table read from inside, and the profile that
// makes the farm reproduce it.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <initializer_list>
#include <mutex>
#include <string>
#include <vector>

#include "mntscale/model/farm.h"
#include "mntscale/model/profile.h"
#include "mntscale/runtimes/real_runtime.h"
#include "mntscale/runtimes/runtime_supervisor.h"

namespace mntscale {

// One line of /proc/PID/mountinfo.
struct MountInfoEntry {
  std::string mount_point;  // as the reading task's root sees it
  std::string root;         // the mount's root within its filesystem
  std::string fstype;
  std::string super_options;
  bool readonly = false;    // the per-mount ro flag
  std::string propagation;  // private | shared | slave | unbindable
};
std::vector<MountInfoEntry> ParseMountinfo(const std::vector<std::string>& lines);
// What the fidelity test compares, mount for mount: "mount_point fstype
// ro|rw propagation", sorted; IDs, sources and mount roots are ignored.
std::vector<std::string> MountKeys(const std::vector<MountInfoEntry>& mounts);
std::vector<std::string> MountKeys(const nlohmann::json& captured_mounts);
// What differs between two MountKeys lists, for a test's or a check's
// message: "\n  missing: KEY" for each of want not in got, "\n  extra:   KEY"
// for each of got not in want; "" when they hold the same keys.
std::string MountKeysDiff(const std::vector<std::string>& want, const std::vector<std::string>& got);

struct CaptureRequest {
  RuntimeKind runtime = RuntimeKind::kRunc;
  std::string spec_path;  // an OCI config.json; "" for the runtime's `spec` default
  int layers = 1;         // overlay lower layers of the bundle's rootfs
  // containerd only: an OCI image archive (oci_image.h's layout) to run
  // instead of a generated image of `layers` layers; "" for none.
  std::string image_path;
};

// Every input checked before anything is built (the runtime's name was
// parsed by ParseRuntime); throws UsageError naming a runtime binary not on
// PATH, a spec that is not a regular file of at most kMaxDataFileBytes, not
// valid JSON, not an OCI runtime spec or one whose mounts make a profile
// outside the profile limits, an --image that is not a regular file holding an importable OCI archive
// (OciArchiveProblem) or given with a runtime other than containerd
// (ProfileFromSpec), or layers out of range.
void ValidateCaptureRequest(const CaptureRequest& req);
// A runtime's absolute path on PATH, or "".
std::string FindRuntime(const std::string& runtime);

struct CaptureResult {
  std::string runtime;  // "runc 1.1.5+ds1"
  std::string spec;     // where the spec came from
  std::string note;     // how it was run (e.g. crun's cgroup manager), or ""
  std::vector<MountInfoEntry> mounts;
};

// Starts the container once, with a static helper that copies
// /proc/self/mountinfo to stdout, and returns that table. The runtime runs in
// a PID namespace whose init dies with this process, its state root is on
// the sandbox tmpfs, and a janitor removes the container's cgroups even if
// this process is SIGKILLed. Throws Unsupported("<runtime>: why") where the
// runtime cannot run on this host.
CaptureResult CaptureRuntimeMounts(const CaptureRequest& req);

// A profile that reproduces the captured table, with the table itself in
// its "captured" field.
Profile ProfileFromCapture(const CaptureResult& cap, const std::string& name, int layers);

// The profile a spec's mounts, masked and read-only paths would make (the
// table a runtime would show, estimated from the spec), validated as a
// captured one is; UsageError for one outside the profile limits.
Profile ProfileFromSpec(const nlohmann::json& spec, int layers);

// The mount table of the namespace held by ns_fd, read from a thread that
// entered it (paths relative to its root).
std::vector<MountInfoEntry> ReadNamespaceMounts(int ns_fd);

// `--farm runc|crun`: containers created by the runtime (`create`: its init
// held stopped before exec) from the runtime's default spec, with a rootfs
// that is an overlay of the farm image's layers. Workers enter through
// /proc/PID/ns/mnt of the held init. All runtime processes live in one PID
// namespace whose init (a supervisor that runs the runtime's commands) dies
// with this process; state is on the sandbox tmpfs; a janitor removes the
// containers' cgroups even after a SIGKILL. Up to `parallel` commands run at
// once (each with its own exit code and output); more wait their turn.
class RuntimeFarm : public RealRuntime {
 public:
  // Unsupported if the runtime cannot run here.
  RuntimeFarm(RuntimeKind runtime, const std::string& dir, int parallel = 1);
  ~RuntimeFarm() override;
  RuntimeFarm(const RuntimeFarm&) = delete;
  RuntimeFarm& operator=(const RuntimeFarm&) = delete;
  Container Create(int index, const Image& image) override;
  void Delete(const Container& c) override;

  // The runtime's mount namespace (the supervisor's): where a bundle's
  // rootfs is mounted before Start, as containerd mounts it in its own.
  int mount_ns() const override { return sup_.mount_ns(); }
  bool PreparesRootfs() const override { return false; }
  // The static process Start runs, put in a layer (dir: the layer's root):
  // it prints its mountinfo and holds the container up until Stop.
  static void InstallHolder(const std::string& layer_dir);
  // A real container start from bundle (bundle/rootfs mounted in
  // mount_ns()): config.json from the runtime's default spec running the
  // holder, then `create` and `start`. Safe from several threads at once.
  // Unsupported (why in the runtime's words) where it cannot run here.
  Started Start(const std::string& bundle) override;
  // `delete --force` of a started container: its processes killed, its
  // state and cgroups removed (the caller unmounts the rootfs).
  void Stop(const std::string& id) override;
  // The runtime's `state` status of a container: created, running, stopped.
  std::string Status(const std::string& id) override;
  // Commands run so far, by verb (create, start, delete).
  long calls(const std::string& verb) const override;
  // Runs argv in the runtime's PID namespace (up to `parallel` at once);
  // its exit code, and its stdout+stderr in *output.
  int Command(const std::vector<std::string>& argv, std::string* output) {
    return sup_.Command(argv, output);
  }

 private:
  // `create` of bundle b as id (retried without a cgroup manager on a
  // hybrid host for crun); the held init's pid, in the supervisor's PID ns.
  int CreateBundle(const std::string& b, const std::string& id, const nlohmann::json& spec);
  std::vector<std::string> Argv(std::initializer_list<std::string> tail) const;
  RuntimeKind kind_;
  std::string runtime_, bin_, dir_, state_;
  RuntimeSupervisor sup_;
  nlohmann::json spec_;
  std::atomic<long> serial_{0}, creates_{0}, starts_{0}, deletes_{0};
  std::vector<std::string> ids_;  // by container index
  mutable std::mutex mu_;         // guards global_opts_
  std::vector<std::string> global_opts_;  // e.g. crun's --cgroup-manager=disabled
};

}  // namespace mntscale
