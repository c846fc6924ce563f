#include "mntscale/suite/preset.h"

#include <algorithm>
#include <filesystem>

#include "mntscale/sys/datafile.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

std::string AxisValue(const nlohmann::json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return v.dump();  // as written: never wrapped
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ",") + AxisValue(x, where);
    if (out.empty()) throw UsageError(where + " is an empty list");
    return out;
  }
  throw UsageError(where + " must be a string, a whole number or a list of them, got " + v.dump());
}

// A bare name with no version ("procurement") means its newest file in
// presets/ (procurement-v1.json); the result records the exact id.
std::string NewestVersion(const std::string& spec) {
  if (spec.empty() || spec.find('/') != std::string::npos || spec.find('.') != std::string::npos)
    return spec;
  std::error_code ec;
  if (std::filesystem::exists(spec, ec)) return spec;
  const std::string dir = std::string(MNTSCALE_SOURCE_DIR) + "/presets";
  if (std::filesystem::exists(dir + "/" + spec + ".json", ec)) return spec;
  int best = 0;
  const std::string prefix = spec + "-v";
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || e.path().extension() != ".json") continue;
    std::string num = name.substr(prefix.size(), name.size() - prefix.size() - 5);
    if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos || num.size() > 6)
      continue;
    best = std::max(best, std::stoi(num));
  }
  return best > 0 ? spec + "-v" + std::to_string(best) : spec;
}

}  // namespace

nlohmann::json Preset::ToJson() const {
  nlohmann::json sc = nlohmann::json::array();
  for (const auto& s : scenarios) {
    nlohmann::json set = nlohmann::json::object();
    for (const auto& [k, v] : s.set) set[k] = v;
    nlohmann::json one = {{"scenario", s.scenario}, {"set", set}};
    if (!s.placements.empty()) one["placement"] = s.placements;
    if (!s.profile.empty()) one["profile"] = s.profile;
    sc.push_back(std::move(one));
  }
  return {{"name", name},
          {"version", version},
          {"id", Id()},
          {"profile", profile},
          {"placement", placement},
          {"mode", mode},
          {"warmup", warmup_s},
          {"window", window_s},
          {"windows", windows},
          {"repetitions", repetitions},
          {"invocations", invocations},
          {"budget_s", budget_s},
          {"scenarios", sc},
          {"file", origin}};
}

Preset Preset::FromJson(const nlohmann::json& j, const std::string& origin) {
  if (!j.is_object()) throw UsageError(origin + ": a preset must be a JSON object");
  Preset p;
  p.origin = origin;
  auto bad = [&](const std::string& field, const std::string& what) {
    throw UsageError(origin + ": preset field '" + field + "' " + what);
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const auto& v = it.value();
    auto want = [&](bool ok, const char* type) {
      if (!ok) bad(k, std::string("must be ") + type + ", got " + v.dump());
    };
    if (k == "name") {
      want(v.is_string(), "a string");
      p.name = v;
    } else if (k == "version") {
      p.version = JsonInt(v, origin + ": preset field '" + k + "'");
    } else if (k == "description" || k == "comment") {
      want(v.is_string(), "a string");
      p.description = v;
    } else if (k == "profile") {
      want(v.is_string(), "a string");
      p.profile = v;
    } else if (k == "placement") {
      want(v.is_string(), "a string");
      p.placement = v;
    } else if (k == "mode") {
      want(v.is_string(), "a string");
      p.mode = v;
    } else if (k == "warmup") {
      want(v.is_number(), "a number");
      p.warmup_s = v;
    } else if (k == "window") {
      want(v.is_number(), "a number");
      p.window_s = v;
    } else if (k == "windows") {
      p.windows = JsonInt(v, origin + ": preset field '" + k + "'");
    } else if (k == "repetitions") {
      p.repetitions = JsonInt(v, origin + ": preset field '" + k + "'");
    } else if (k == "invocations") {
      p.invocations = JsonInt(v, origin + ": preset field '" + k + "'");
    } else if (k == "build_s_per_container") {
      want(v.is_number(), "a number");
      p.build_s_per_container = v;
    } else if (k == "budget_s") {
      want(v.is_number(), "a number of seconds");
      p.budget_s = v;
    } else if (k == "scenarios") {
      want(v.is_array() && !v.empty(), "a non-empty list");
      for (size_t i = 0; i < v.size(); ++i) {
        const auto& s = v[i];
        std::string where = "scenarios[" + std::to_string(i) + "]";
        if (!s.is_object()) bad(where, "must be an object");
        PresetScenario ps;
        for (auto f = s.begin(); f != s.end(); ++f) {
          if (f.key() == "scenario" && f.value().is_string()) {
            ps.scenario = f.value();
          } else if (f.key() == "set" && f.value().is_object()) {
            for (auto a = f.value().begin(); a != f.value().end(); ++a) {
              try {
                ps.set.emplace_back(a.key(), AxisValue(a.value(), "set." + a.key()));
              } catch (const UsageError& e) {
                bad(where + "." + "set." + a.key(), e.what());
              }
            }
          } else if (f.key() == "profile" && f.value().is_string() &&
                     !f.value().get<std::string>().empty()) {
            ps.profile = f.value();
          } else if (f.key() == "placement" && (f.value().is_array() || f.value().is_string())) {
            // A list of placements (each may hold a comma: "spread,smt-off").
            nlohmann::json list =
                f.value().is_string() ? nlohmann::json::array({f.value()}) : f.value();
            for (const auto& pl : list) {
              if (!pl.is_string() || pl.get<std::string>().empty()) {
                bad(where + ".placement", "must be a list of placement strings, got " + pl.dump());
              }
              ps.placements.push_back(pl);
            }
            if (ps.placements.empty()) bad(where + ".placement", "is an empty list");
          } else if (f.key() != "comment") {
            bad(where + "." + f.key(),
                "is unknown or has the wrong type (want 'scenario': "
                "string, 'set': {axis: values}, 'placement': [placements], 'profile': name)");
          }
        }
        if (ps.scenario.empty()) bad(where + ".scenario", "is missing");
        p.scenarios.push_back(std::move(ps));
      }
    } else {
      bad(k, "is unknown");
    }
  }
  if (p.name.empty()) bad("name", "is missing");
  if (p.version < 1)
    bad("version", "must be a whole number >= 1 (bump it when the preset changes)");
  if (p.scenarios.empty()) bad("scenarios", "is missing");
  if (p.window_s < 0.001 || p.window_s > 3600) bad("window", "must be in [0.001, 3600]");
  if (p.warmup_s < 0 || p.warmup_s > 3600) bad("warmup", "must be in [0, 3600]");
  if (p.windows < 1 || p.windows > 100000) bad("windows", "must be in [1, 100000]");
  if (p.repetitions < 1 || p.repetitions > 1000) bad("repetitions", "must be in [1, 1000]");
  if (p.invocations < 1 || p.invocations > 100) bad("invocations", "must be in [1, 100]");
  if (p.mode != "thread" && p.mode != "process") bad("mode", "must be 'thread' or 'process'");
  if (p.build_s_per_container < 0) bad("build_s_per_container", "must be >= 0");
  if (p.budget_s < 0 || p.budget_s > 7 * 86400) bad("budget_s", "must be in [0, 604800] seconds");
  return p;
}

Preset Preset::Load(const std::string& spec) {
  std::string path;
  nlohmann::json j = LoadDataFile(NewestVersion(spec), "presets", "preset", &path);
  return FromJson(j, path);
}

}  // namespace mntscale
