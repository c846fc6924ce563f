// containerd as a real runtime: a daemon owned by the run, started inside a
// RuntimeSupervisor (init of a PID namespace of its own, with a mount
// namespace of its own), with its root, state, sockets, config and TMPDIR on
// the sandbox tmpfs and a tmpfs over /run there, so containerd-shim-runc-v2's
// sockets (always under /run/containerd/s/) and runc's state never touch the
// host's /run. Images come from OCI archives (oci_image.h) imported with
// `ctr images import`, so containers' rootfs are prepared by containerd's
// unpacker and overlayfs snapshotter, mounted in the daemon's namespace.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "mntscale/runtimes/real_runtime.h"
#include "mntscale/runtimes/runtime_supervisor.h"

namespace mntscale {

// The binaries containerd needs here (containerd, ctr,
// containerd-shim-runc-v2, runc): the first not on PATH, or "".
std::string ContainerdMissingBinary();

class ContainerdFarm : public RealRuntime {
 public:
  // Starts the daemon and waits (bounded) until `ctr version` answers.
  // Unsupported("containerd: why", with the daemon's last log line) where it
  // cannot start.
  ContainerdFarm(const std::string& dir, int parallel = 1);
  // Stop(): every task killed, containers and their snapshots deleted, the
  // daemon terminated, then the supervisor's namespaces (and mounts) gone.
  ~ContainerdFarm() override;
  ContainerdFarm(const ContainerdFarm&) = delete;
  ContainerdFarm& operator=(const ContainerdFarm&) = delete;

  // --farm containerd: the farm image's layers plus a top layer holding the
  // holder, imported once; each container `ctr run -d` of it.
  Container Create(int index, const Image& image) override;
  void Delete(const Container& c) override;

  int mount_ns() const override { return sup_.mount_ns(); }
  bool PreparesRootfs() const override { return true; }
  void UseImage(const std::vector<std::string>& layer_dirs) override;
  // `ctr run -d --null-io` of the UseImage image running the holder; bundle
  // is ignored (the snapshotter prepares the rootfs). Returns once the task
  // runs.
  Started Start(const std::string& bundle) override;
  void Stop(const std::string& id) override;
  std::string Status(const std::string& id) override;
  int CountRunning(const std::vector<std::string>& ids) override;  // one `ctr task ls`
  long calls(const std::string& verb) const override;

  // Imports layer_dirs (bottom first) as one image; returns its reference.
  std::string Import(const std::vector<std::string>& layer_dirs);
  // Imports an OCI archive written elsewhere (its index kept under a name of
  // ours); returns that reference.
  std::string ImportArchive(const std::string& archive);
  // `ctr run` of a foreign image (ImportArchive), the holder bound read-only
  // at kForeignHolder and run from there.
  Started StartForeign(const std::string& ref);
  // `ctr -a <socket> -n <namespace> args...` in the supervisor.
  int Ctr(const std::vector<std::string>& args, std::string* output);
  // The containerd namespace (CgroupPrefix() + "c<n>"): containers' cgroups
  // are /<namespace>/<id>, removed by the janitor after a SIGKILL.
  const std::string& ns() const { return ns_; }
  const std::string& dir() const { return dir_; }
  std::string version() const { return version_; }
  // The daemon's pid in the supervisor's PID namespace (its /proc is in
  // mount_ns()); -1 once it was stopped.
  int daemon_pid() const { return daemon_pid_; }
  // Processes in the supervisor's PID namespace whose command name starts
  // with prefix ("containerd-shim", "containerd").
  int CountProcesses(const std::string& prefix) const;
  // Tasks by id with their status as `ctr task ls` gives it ("RUNNING").
  std::map<std::string, std::string> Tasks();
  // Tears everything down now (the destructor's work); idempotent.
  void Shutdown();

 private:
  std::string Run(const std::string& ref, const std::string& id,
                  const std::vector<std::string>& extra = {},
                  const std::string& exe = "/bin/mntscale-mountinfo");
  std::string dir_, ns_, sock_, state_, version_;
  RuntimeSupervisor sup_;
  int daemon_pid_ = -1;  // in the supervisor's PID namespace
  std::mutex mu_;
  std::string farm_ref_, storm_ref_;
  std::vector<std::string> ids_;  // by farm container index
  std::atomic<long> serial_{0}, runs_{0}, deletes_{0};
};

// `profile capture --runtime containerd`: one container of an image of
// `layers` layers (and the holder), or of the OCI archive image_path with
// the holder bound in read-only (that bind is left out of the table), its
// mount table read from inside; cap->runtime is "containerd <version>".
struct CaptureResult;
void CaptureContainerdMounts(int layers, const std::string& image_path, CaptureResult* cap);

// Where the holder is bound into a foreign image's container.
inline constexpr char kForeignHolder[] = "/.mntscale-holder";

}  // namespace mntscale
