#include "mntscale/profile.h"

#include "mntscale/datafile.h"
#include "mntscale/sys.h"

namespace mntscale {
namespace {

void RequireRange(const char* field, int v, int lo, int hi) {
  if (v < lo || v > hi) {
    throw UsageError("profile field '" + std::string(field) + "' = " + std::to_string(v) +
                     " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
}

void RequireOneOf(const char* field, const std::string& v,
                  std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return;
    list += list.empty() ? a : std::string(", ") + a;
  }
  throw UsageError("profile field '" + std::string(field) + "' = '" + v +
                   "' is not one of: " + list);
}

}  // namespace

int Profile::MountsPerContainer() const {
  int n = 1 + binds;  // overlay root + binds
  if (proc) n += 1;
  if (sys) n += 1;
  if (dev) n += 3;                      // /dev, /dev/shm, /dev/mqueue
  if (root_switch == "chroot") n += 1;  // the namespace keeps the work tmpfs
  return n;
}

void Profile::Validate() const {
  if (name.empty()) throw UsageError("profile field 'name' is empty");
  RequireRange("layers", layers, 1, kMaxLayers);
  RequireRange("depth", depth, 1, 64);
  RequireRange("files_per_dir", files_per_dir, 0, 10000);
  RequireRange("binds", binds, 0, 1000);
  RequireOneOf("overlay_api", overlay_api, {"mount", "fsmount"});
  RequireOneOf("ns_mode", ns_mode, {"private", "shared"});
  RequireOneOf("root_switch", root_switch, {"pivot_root", "chroot"});
  RequireOneOf("idmap", idmap, {"none", "per-layer", "parent"});
}

nlohmann::json Profile::ToJson() const {
  return {{"name", name},
          {"layers", layers},
          {"depth", depth},
          {"files_per_dir", files_per_dir},
          {"binds", binds},
          {"proc", proc},
          {"sys", sys},
          {"dev", dev},
          {"overlay_api", overlay_api},
          {"ns_mode", ns_mode},
          {"root_switch", root_switch},
          {"idmap", idmap},
          {"mounts_per_container", MountsPerContainer()}};
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
      p.overlay_api = v;
    } else if (k == "ns_mode") {
      want(v.is_string(), "a string");
      p.ns_mode = v;
    } else if (k == "root_switch") {
      want(v.is_string(), "a string");
      p.root_switch = v;
    } else if (k == "idmap") {
      want(v.is_string(), "a string");
      p.idmap = v;
    } else if (k == "mounts_per_container") { /* derived; accepted for round trips */
    } else
      throw UsageError(origin + ": unknown profile field '" + k + "'");
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
