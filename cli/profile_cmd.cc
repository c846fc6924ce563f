#include "profile_cmd.h"

#include <cstdio>

#include "mntscale/suite/results.h"
#include "mntscale/runtimes/runtime.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/sys/sys.h"

namespace mntscale {

ProfileCommand::ProfileCommand(CLI::App* app) {
  CLI::App* profile = app->add_subcommand("profile", "Container profiles");
  profile->require_subcommand(1);
  capture_ = profile->add_subcommand(
      "capture", "Start one container with a real runtime and write the profile of its mounts");
  capture_->add_option("--runtime", runtime_, "runc | crun | containerd")->required();
  capture_->add_option("--spec", spec_,
                       "An OCI config.json (default: the runtime's `spec` output)");
  capture_->add_option("--layers", layers_, "Overlay lower layers of the bundle's rootfs")
      ->capture_default_str();
  capture_->add_option(
      "--image", image_,
      "containerd only: an OCI image archive (an OCI image layout in a tar) to run "
      "instead of L generated layers");
  capture_->add_option("--name", name_, "Profile name (default: the --out file's stem)");
  capture_->add_option("--out", out_, "Profile file to write, e.g. profiles/runc-default.json")
      ->required();
}

int ProfileCommand::Run(int, char**) {
  // Every input checked before anything starts, as for run and capacity
  // (main.cc has refused empty values): the runtime, layers and the spec
  // (read as a data file, then the profile its mounts would make against the
  // profile limits), the output path, then the name.
  CaptureRequest req{ParseRuntime(runtime_), spec_, layers_, image_};
  ValidateCaptureRequest(req);  // UsageError: exit 2, nothing built yet
  CheckOutputPath(out_);
  std::string name = name_;
  if (name.empty()) {
    name = out_.substr(out_.rfind('/') + 1);
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
      name.resize(name.size() - 5);
    }
  }
  if (name.empty() || name == ".json") {
    throw UsageError("--out '" + out_ +
                     "' has no file name to name the profile after; give --name");
  }
  Sandbox::Enter();
  CaptureResult cap;
  try {
    cap = CaptureRuntimeMounts(req);
  } catch (const Unsupported& e) {
    fprintf(stderr, "mntscale: %s\n", e.what());
    return 3;
  }
  Profile p = ProfileFromCapture(cap, name, layers_);
  nlohmann::json j = p.ToJson();
  j["description"] = "Captured by `mntscale profile capture --runtime " + runtime_ +
                     (spec_.empty() ? "" : " --spec " + spec_) +
                     (image_.empty() ? "" : " --image " + image_) + "` from " + cap.runtime + " (" +
                     cap.spec + "): " + std::to_string(cap.mounts.size()) +
                     " mounts in the container's namespace.";
  RefuseNonRegularOutput(out_);  // again: the capture took a while
  WriteFileAtomic(out_, j.dump(2) + "\n");
  printf("%s: %zu mounts in the %s container (%s); profile '%s' builds %d\n", out_.c_str(),
         cap.mounts.size(), cap.runtime.c_str(), cap.spec.c_str(), name.c_str(),
         p.MountsPerContainer());
  return 0;
}

std::unique_ptr<Command> MakeProfileCommand(CLI::App* root) {
  return std::make_unique<ProfileCommand>(root);
}

}  // namespace mntscale
