#include "mntscale/model/profile.h"

#include "mntscale/sys/datafile.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

void RequireRange(const char* field, int v, int lo, int hi) {
  if (v < lo || v > hi) {
    throw UsageError("profile field '" + std::string(field) + "' = " + std::to_string(v) +
                     " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
}

void RequirePaths(const char* field, const std::vector<std::string>& paths) {
  for (const std::string& v : paths) {
    std::string path = SplitBindPath(v, nullptr);
    if (path.size() < 2 || path[0] != '/' || path.find("/../") != std::string::npos ||
        path.find('\0') != std::string::npos || path.back() == '/' ||
        (path.size() >= 3 && path.compare(path.size() - 3, 3, "/..") == 0)) {
      throw UsageError("profile field '" + std::string(field) + "' holds '" + v +
                       "', not an absolute path below / without '..'");
    }
  }
}

std::vector<std::string> StringList(const nlohmann::json& v, const std::string& origin,
                                    const std::string& k) {
  std::vector<std::string> out;
  if (v.is_array()) {
    for (const auto& e : v) {
      if (!e.is_string()) break;
      out.push_back(e);
    }
    if (out.size() == v.size()) return out;
  }
  throw UsageError(origin + ": profile field '" + k + "' must be a list of strings, got " +
                   v.dump());
}

}  // namespace

std::string SplitBindPath(const std::string& entry, bool* readonly) {
  const bool ro = entry.size() > 3 && entry.compare(entry.size() - 3, 3, ":ro") == 0;
  if (readonly) *readonly = ro;
  return ro ? entry.substr(0, entry.size() - 3) : entry;
}

int Profile::MountsPerContainer() const {
  int n = 1 + binds;  // overlay root + binds
  if (proc) n += 1;
  if (sys) n += 1;
  if (dev) n += 3;                      // /dev, /dev/shm, /dev/mqueue
  if (root_switch == RootSwitch::kChroot) n += 1;  // the namespace keeps the work tmpfs
  if (dev && devpts) n += 1;
  n += static_cast<int>(readonly_paths.size() + masked_paths.size());
  if (cgroup == CgroupMount::kV1) n += 1 + static_cast<int>(cgroup_controllers.size());
  if (cgroup == CgroupMount::kV2) n += 1;
  return n;
}

void Profile::Validate() const {
  if (name.empty()) throw UsageError("profile field 'name' is empty");
  RequireRange("layers", layers, 1, kMaxLayers);
  RequireRange("depth", depth, 1, 64);
  RequireRange("files_per_dir", files_per_dir, 0, 10000);
  RequireRange("binds", binds, 0, 1000);
  RequirePaths("bind_paths", bind_paths);
  RequirePaths("readonly_paths", readonly_paths);
  RequirePaths("masked_paths", masked_paths);
  if (static_cast<int>(bind_paths.size()) > binds) {
    throw UsageError("profile field 'bind_paths' names " + std::to_string(bind_paths.size()) +
                     " paths but 'binds' is " + std::to_string(binds));
  }
  if (devpts && !dev) throw UsageError("profile field 'devpts' needs \"dev\": true");
  if (cgroup == CgroupMount::kV1 && cgroup_controllers.empty()) {
    throw UsageError("profile field 'cgroup' = 'v1' needs 'cgroup_controllers'");
  }
  if (cgroup != CgroupMount::kV1 && !cgroup_controllers.empty()) {
    throw UsageError("profile field 'cgroup_controllers' needs \"cgroup\": \"v1\"");
  }
  for (const std::string& c : cgroup_controllers) {
    if (c.empty() || c.find('/') != std::string::npos || c == "." || c == "..") {
      throw UsageError("profile field 'cgroup_controllers' holds '" + c +
                       "', not a cgroup v1 option list such as 'cpu,cpuacct'");
    }
  }
}

nlohmann::json Profile::ToJson() const {
  nlohmann::json j = {{"name", name},
          {"layers", layers},
          {"depth", depth},
          {"files_per_dir", files_per_dir},
          {"binds", binds},
          {"proc", proc},
          {"sys", sys},
          {"dev", dev},
          {"overlay_api", Name(overlay_api)},
          {"ns_mode", Name(ns_mode)},
          {"root_switch", Name(root_switch)},
          {"idmap", IdmapStrategyName(idmap)},
          {"mounts_per_container", MountsPerContainer()}};
  // Runtime mount kinds appear only when used, so older profiles' JSON (and
  // the results that carry it) keep their exact shape.
  if (!bind_paths.empty()) j["bind_paths"] = bind_paths;
  if (devpts) j["devpts"] = true;
  if (!readonly_paths.empty()) j["readonly_paths"] = readonly_paths;
  if (!masked_paths.empty()) j["masked_paths"] = masked_paths;
  if (masked_files != MaskedFiles::kContainerNull) j["masked_files"] = Name(masked_files);
  if (cgroup != CgroupMount::kNone) j["cgroup"] = Name(cgroup);
  if (!cgroup_controllers.empty()) j["cgroup_controllers"] = cgroup_controllers;
  if (readonly_root) j["readonly_root"] = true;
  if (!captured.is_null()) j["captured"] = captured;
  return j;
}

Profile Profile::FromJson(const nlohmann::json& j, const std::string& origin) {
  if (!j.is_object()) throw UsageError(origin + ": a profile must be a JSON object");
  Profile p;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const auto& v = it.value();
    auto want = [&](bool ok, const char* type) {
      if (!ok) {
        throw UsageError(origin + ": profile field '" + k + "' must be " + type + ", got " +
                         v.dump());
      }
    };
    if (k == "name") {
      want(v.is_string(), "a string");
      p.name = v;
    } else if (k == "description" || k == "comment") {
      want(v.is_string(), "a string");
    } else if (k == "layers") {
      p.layers = JsonInt(v, origin + ": profile field '" + k + "'");
    } else if (k == "depth") {
      p.depth = JsonInt(v, origin + ": profile field '" + k + "'");
    } else if (k == "files_per_dir") {
      p.files_per_dir = JsonInt(v, origin + ": profile field '" + k + "'");
    } else if (k == "binds") {
      p.binds = JsonInt(v, origin + ": profile field '" + k + "'");
    } else if (k == "proc") {
      want(v.is_boolean(), "true or false");
      p.proc = v;
    } else if (k == "sys") {
      want(v.is_boolean(), "true or false");
      p.sys = v;
    } else if (k == "dev") {
      want(v.is_boolean(), "true or false");
      p.dev = v;
    } else if (k == "overlay_api") {
      want(v.is_string(), "a string");
      p.overlay_api = ParseEnum(kOverlayApis, v.get<std::string>(), origin + ": profile field 'overlay_api'");
    } else if (k == "ns_mode") {
      want(v.is_string(), "a string");
      p.ns_mode = ParseEnum(kNsModes, v.get<std::string>(), origin + ": profile field 'ns_mode'");
    } else if (k == "root_switch") {
      want(v.is_string(), "a string");
      p.root_switch = ParseEnum(kRootSwitches, v.get<std::string>(), origin + ": profile field 'root_switch'");
    } else if (k == "idmap") {
      want(v.is_string(), "a string");
      p.idmap = ParseIdmapStrategy(v, origin + ": profile field 'idmap'");
    } else if (k == "bind_paths") {
      p.bind_paths = StringList(v, origin, k);
    } else if (k == "devpts") {
      want(v.is_boolean(), "true or false");
      p.devpts = v;
    } else if (k == "readonly_paths") {
      p.readonly_paths = StringList(v, origin, k);
    } else if (k == "masked_paths") {
      p.masked_paths = StringList(v, origin, k);
    } else if (k == "masked_files") {
      want(v.is_string(), "a string");
      p.masked_files = ParseEnum(kMaskedFiles, v.get<std::string>(), origin + ": profile field 'masked_files'");
    } else if (k == "cgroup") {
      want(v.is_string(), "a string");
      p.cgroup = ParseEnum(kCgroupMounts, v.get<std::string>(), origin + ": profile field 'cgroup'");
    } else if (k == "cgroup_controllers") {
      p.cgroup_controllers = StringList(v, origin, k);
    } else if (k == "readonly_root") {
      want(v.is_boolean(), "true or false");
      p.readonly_root = v;
    } else if (k == "captured") {
      want(v.is_object(), "an object");
      p.captured = v;
    } else if (k == "mounts_per_container") { /* derived; accepted for round trips */
    } else
      throw UsageError(origin + ": unknown profile field '" + k + "'");
  }
  // bind_paths alone sets the bind count.
  if (!p.bind_paths.empty() && !j.contains("binds")) {
    p.binds = static_cast<int>(p.bind_paths.size());
  }
  try {
    p.Validate();
  } catch (const UsageError& e) {
    throw UsageError(origin + ": " + e.what());
  }
  return p;
}

Profile Profile::Load(const std::string& spec) {
  std::string path;
  nlohmann::json j = LoadDataFile(spec, "profiles", "profile", &path);
  return FromJson(j, path);
}

}  // namespace mntscale
