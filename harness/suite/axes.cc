// Typed axes: each value of every point checked (and spelled canonically)
// before the sandbox exists, and the axes many scenarios share.
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "mntscale/model/profile.h"
#include "mntscale/run/ops.h"
#include "mntscale/suite/scenario.h"
#include "mntscale/sys/sys.h"
#include "mntscale/sys/text.h"

namespace mntscale {

namespace {

// Whole decimal number, no sign games, within long long; false otherwise.
bool ParseInt(const std::string& v, long long* out) {
  if (v.empty() || v.size() > 19) return false;
  size_t i = v[0] == '-' ? 1 : 0;
  if (i == v.size()) return false;
  for (size_t k = i; k < v.size(); ++k) {
    if (v[k] < '0' || v[k] > '9') return false;
  }
  errno = 0;
  char* end = nullptr;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (errno == ERANGE || *end) return false;
  *out = n;
  return true;
}

}  // namespace

std::vector<std::string> Axis::Values() const { return values_from ? values_from() : values; }

const char* Axis::TypeName() const {
  switch (type) {
    case AxisType::kInt:
      return "int";
    case AxisType::kEnum:
      return "enum";
    case AxisType::kBool:
      return "bool";
    case AxisType::kDuration:
      return "duration";
  }
  return "?";
}

std::string Axis::Check(const std::string& raw) const {
  std::string v = raw;
  for (auto& [old, now] : value_aliases) {
    if (v == old) v = now;
  }
  switch (type) {
    case AxisType::kInt: {
      long long n = 0;
      if (!ParseInt(v, &n)) {
        throw UsageError(name + " must be a whole number, got '" + raw + "'");
      }
      if (n < min || n > max) {
        throw UsageError(name + " = " + raw + " is impossible: allowed " + std::to_string(min) +
                         ".." + std::to_string(max) + (unit.empty() ? "" : " " + unit));
      }
      return std::to_string(n);
    }
    case AxisType::kEnum: {
      std::vector<std::string> ok = Values();
      if (std::find(ok.begin(), ok.end(), v) == ok.end()) {
        throw UsageError(name + " must be one of " + Join(ok) + "; got '" + raw + "'");
      }
      return v;
    }
    case AxisType::kBool: {
      if (v == "1" || v == "true" || v == "yes" || v == "on") return "1";
      if (v == "0" || v == "false" || v == "no" || v == "off") return "0";
      throw UsageError(name + " is a yes/no axis: 0 or 1 (or false/true, no/yes, off/on); got '" +
                       raw + "'");
    }
    case AxisType::kDuration: {
      double scale = 0;
      std::string num = v;
      auto ends = [&](const char* suf) {
        size_t n = strlen(suf);
        return num.size() > n && num.compare(num.size() - n, n, suf) == 0;
      };
      if (ends("ms")) {
        scale = 1, num.resize(num.size() - 2);
      } else if (ends("s")) {
        scale = 1000, num.resize(num.size() - 1);
      } else {
        throw UsageError(name + " is a duration with a unit (250ms, 2s); got '" + raw + "'");
      }
      char* end = nullptr;
      double x = std::strtod(num.c_str(), &end);
      if (num.empty() || *end || !(x >= 0) || x * scale > 1e15) {
        throw UsageError(name + " is a duration with a unit (250ms, 2s); got '" + raw + "'");
      }
      long long ms = static_cast<long long>(x * scale + 0.5);
      if (ms < min || ms > max) {
        throw UsageError(name + " = " + raw + " is impossible: allowed " + std::to_string(min) +
                         "ms.." + std::to_string(max) + "ms");
      }
      return std::to_string(ms) + "ms";
    }
  }
  return v;
}

nlohmann::json Axis::ToJson() const {
  nlohmann::json j = {{"name", name},
                      {"type", TypeName()},
                      {"unit", unit},
                      {"farm", farm},
                      {"aliases", aliases}};
  nlohmann::json d = nlohmann::json::array();
  for (const std::string& v : SplitAxisList(name, defaults)) d.push_back(v);
  j["default"] = d;
  if (type == AxisType::kInt || type == AxisType::kDuration) {
    j["min"] = min;
    j["max"] = max;
  }
  if (type == AxisType::kEnum) j["values"] = Values();
  if (type == AxisType::kBool) j["values"] = {"0", "1"};
  if (!value_aliases.empty()) {
    nlohmann::json va = nlohmann::json::object();
    for (auto& [old, now] : value_aliases) va[old] = now;
    j["value_aliases"] = va;
  }
  return j;
}

namespace {
Axis BaseAxis(std::string name, AxisType type, std::string defaults) {
  Axis a;
  a.name = std::move(name);
  a.type = type;
  a.defaults = std::move(defaults);
  return a;
}
}  // namespace

Axis IntAxis(std::string name, std::string defaults, long long min, long long max,
             std::string unit) {
  Axis a = BaseAxis(std::move(name), AxisType::kInt, std::move(defaults));
  a.min = min;
  a.max = max;
  a.unit = std::move(unit);
  return a;
}

Axis EnumAxis(std::string name, std::string defaults, std::vector<std::string> values) {
  Axis a = BaseAxis(std::move(name), AxisType::kEnum, std::move(defaults));
  a.values = std::move(values);
  return a;
}

Axis BoolAxis(std::string name, std::string defaults) {
  return BaseAxis(std::move(name), AxisType::kBool, std::move(defaults));
}

Axis DurationAxis(std::string name, std::string defaults, long long min_ms, long long max_ms) {
  Axis a = BaseAxis(std::move(name), AxisType::kDuration, std::move(defaults));
  a.min = min_ms;
  a.max = max_ms;
  a.unit = "ms";
  return a;
}

namespace axes {
Axis Containers(std::string d) {
  return IntAxis("containers", std::move(d), 1, 1000000, "containers").Farm();
}
Axis Layers(std::string d) { return IntAxis("layers", std::move(d), 1, kMaxLayers, "layers").Farm(); }
Axis Binds(std::string d) { return IntAxis("binds", std::move(d), 0, 1000, "bind mounts").Farm(); }
Axis Workers(std::string d) { return IntAxis("workers", std::move(d), 1, 1 << 20, "workers"); }
Axis Op(std::string d) {
  Axis a = EnumAxis("op", std::move(d), {});
  a.values_from = OpNameList;
  return a;
}
Axis Rounds(std::string d) { return IntAxis("rounds", std::move(d), 1, 1000, "rounds"); }
Axis Mounts(std::string d) { return IntAxis("mounts", std::move(d), 0, 1000000, "mounts"); }
}  // namespace axes

}  // namespace mntscale
