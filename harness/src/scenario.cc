#include "mntscale/scenario.h"

#include <cerrno>
#include <cmath>
#include <climits>
#include <map>
#include <sstream>

#include "mntscale/profile.h"
#include "mntscale/sys.h"

namespace mntscale {
namespace {

std::map<std::string, ScenarioInfo>& Registry() {
  static std::map<std::string, ScenarioInfo> r;
  return r;
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool IsNumber(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

}  // namespace

bool Point::Has(const std::string& axis) const {
  for (auto& [k, v] : values) {
    if (k == axis) return true;
  }
  return false;
}

const std::string& Point::Str(const std::string& axis) const {
  for (auto& [k, v] : values) {
    if (k == axis) return v;
  }
  throw std::logic_error("point has no axis '" + axis + "'");
}

int Point::Int(const std::string& axis) const {
  const std::string& v = Str(axis);
  char* end = nullptr;
  errno = 0;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end) throw UsageError(axis + " must be a whole number, got '" + v + "'");
  if (errno == ERANGE || n < INT_MIN || n > INT_MAX) {
    throw UsageError(axis + " = " + v + " is out of range for a whole number");
  }
  return static_cast<int>(n);
}

void CheckAxisRanges(const Point& p) {
  struct Range {
    const char* axis;
    long lo, hi;
  };
  static const Range kRanges[] = {{"containers", 1, 1000000}, {"layers", 1, kMaxLayers},
                                  {"workers", 1, 1 << 20},    {"binds", 0, 1000},
                                  {"depth", 1, 64}};
  // Every whole-number value must fit an int (scenarios read it with Int);
  // the typed per-axis ranges of the remaining axes belong to their table.
  for (const auto& [axis, v] : p.values) {
    // Values are names and numbers; they become JSON keys and values.
    for (unsigned char c : v) {
      if (c < 0x20 || c >= 0x7f) {
        throw UsageError("axis '" + axis + "' has a value with a non-printable or non-ASCII byte");
      }
    }
    if (!v.empty() && v.find_first_not_of("0123456789-") == std::string::npos) p.Int(axis);
  }
  for (const Range& r : kRanges) {
    if (!p.Has(r.axis)) continue;
    int v = p.Int(r.axis);
    if (v < r.lo || v > r.hi) {
      throw UsageError(std::string(r.axis) + " = " + p.Str(r.axis) + " is impossible: allowed " +
                       std::to_string(r.lo) + ".." + std::to_string(r.hi));
    }
  }
}

double Point::Double(const std::string& axis) const {
  const std::string& v = Str(axis);
  if (!IsNumber(v)) throw UsageError(axis + " must be a number, got '" + v + "'");
  return std::strtod(v.c_str(), nullptr);
}

std::string Point::Name(const std::string& scenario) const {
  std::string n = scenario;
  for (auto& [k, v] : values) n += "/" + k + ":" + v;
  return n;
}

nlohmann::json Point::Params() const {
  nlohmann::json j = nlohmann::json::object();
  for (auto& [k, v] : values) {
    errno = 0;
    long long n = std::strtoll(v.c_str(), nullptr, 10);
    if (IsNumber(v) && v.find_first_not_of("0123456789-") == std::string::npos) {
      if (errno == ERANGE) {
        j[k] = v;  // never a wrapped or clamped number
      } else {
        j[k] = n;
      }
    } else if (double d = std::strtod(v.c_str(), nullptr); IsNumber(v) && std::isfinite(d)) {
      j[k] = d;
    } else {
      j[k] = v;
    }
  }
  return j;
}

void Entry::FromRun(const RunResult& r, int workers) {
  double per_op_wall = r.ops ? r.measured_s * workers / r.ops * 1e9 : 0;
  j_["iterations"] = r.ops;
  j_["real_time"] = per_op_wall;
  j_["cpu_time"] = r.ops ? r.cpu_s / r.ops * 1e9 : 0;
  j_["time_unit"] = "ns";
  j_["items_per_second"] = r.ops_per_s();
  j_["ops_per_sec"] = r.ops_per_s();
  j_["ops_per_sec_per_worker"] = workers ? r.ops_per_s() / workers : 0;
  j_["windows"] = r.windows;
  j_["measured_s"] = r.measured_s;
  j_["user_time_s"] = r.user_s;
  j_["sys_time_s"] = r.sys_s;
  nlohmann::json ws = nlohmann::json::array();
  for (const auto& w : r.workers) {
    ws.push_back({{"worker", w.worker},
                  {"role", w.role},
                  {"measured", w.measured},
                  {"pu", w.slot.pu.os_index},
                  {"core", w.slot.pu.core},
                  {"package", w.slot.pu.package},
                  {"numa", w.slot.pu.numa},
                  {"container", w.container},
                  {"ops", w.ops},
                  {"cpu_s", w.cpu_s},
                  {"user_s", w.user_s},
                  {"sys_s", w.sys_s}});
  }
  j_["workers"] = ws;
  if (r.role_ops_per_s.size() > 1) j_["roles_ops_per_sec"] = r.role_ops_per_s;
  if (r.latency.count()) j_["latency_ns"] = r.latency.ToJson();
}

void Entry::FromEvents(uint64_t n, double seconds, const Histogram* latency) {
  j_["iterations"] = n;
  j_["real_time"] = n ? seconds / n * 1e9 : 0;
  j_["cpu_time"] = j_["real_time"];
  j_["time_unit"] = "ns";
  j_["items_per_second"] = seconds > 0 ? n / seconds : 0;
  j_["ops_per_sec"] = j_["items_per_second"];
  j_["measured_s"] = seconds;
  if (latency && latency->count()) j_["latency_ns"] = latency->ToJson();
}

nlohmann::json Entry::Finish() const {
  nlohmann::json out = j_;
  if (!extra_.empty()) out["extra"] = extra_;
  return out;
}

void RegisterScenario(const ScenarioInfo& info) { Registry()[info.name] = info; }

const ScenarioInfo* FindScenario(const std::string& name) {
  auto it = Registry().find(name);
  return it == Registry().end() ? nullptr : &it->second;
}

std::vector<const ScenarioInfo*> AllScenarios() {
  std::vector<const ScenarioInfo*> v;
  for (auto& [k, s] : Registry()) v.push_back(&s);
  return v;
}

std::vector<Point> ExpandPoints(const ScenarioInfo& s,
                                const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<Point> points(1);
  for (const Axis& a : s.axes) {
    std::string list = a.defaults;
    for (auto& [k, v] : overrides) {
      if (k == a.name) list = v;
    }
    std::vector<std::string> vals = SplitList(list);
    if (vals.empty()) throw UsageError("axis '" + a.name + "' has no values");
    std::vector<Point> next;
    for (const Point& p : points) {
      for (const std::string& v : vals) {
        Point q = p;
        q.values.emplace_back(a.name, v);
        next.push_back(std::move(q));
      }
    }
    points = std::move(next);
  }
  return points;
}

}  // namespace mntscale
