// The pure half of profile capture (runtime.h): mountinfo lines parsed, mount
// keys compared, and a runtime's OCI spec or captured mount table turned into
// a Profile. Nothing here runs a runtime; tests/unit/runtime_profile_gtest.cc
// feeds it recorded tables.
#include <sys/utsname.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "mntscale/runtimes/runtime.h"
#include "mntscale/sys/sys.h"

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

std::string MountKeysDiff(const std::vector<std::string>& want, const std::vector<std::string>& got) {
  std::string out;
  for (const auto& w : want) {
    if (std::find(got.begin(), got.end(), w) == got.end()) out += "\n  missing: " + w;
  }
  for (const auto& g : got) {
    if (std::find(want.begin(), want.end(), g) == want.end()) out += "\n  extra:   " + g;
  }
  return out;
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
      p.cgroup = CgroupMount::kV1;
    } else if (mp == "/sys/fs/cgroup" && m.fstype == "cgroup2") {
      p.cgroup = CgroupMount::kV2;
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
      if (m.fstype != "tmpfs" && m.readonly) p.masked_files = MaskedFiles::kHostNullRo;
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

}  // namespace mntscale
