#include "mntscale/suite/scenario.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

#include "mntscale/run/ops.h"
#include "mntscale/model/profile.h"
#include "mntscale/sys/sys.h"
#include "mntscale/sys/text.h"

namespace mntscale {
namespace {

std::map<std::string, ScenarioInfo>& Registry() {
  static std::map<std::string, ScenarioInfo> r;
  return r;
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

// Values were checked by their axis before any point ran, so a value that is
// not a number here is a bug in a scenario, not bad input.
int Point::Int(const std::string& axis) const {
  const std::string& v = Str(axis);
  char* end = nullptr;
  errno = 0;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end || n < INT_MIN || n > INT_MAX) {
    throw std::logic_error("axis '" + axis + "' is not an integer axis (value '" + v + "')");
  }
  return static_cast<int>(n);
}

bool Point::Bool(const std::string& axis) const { return Int(axis) != 0; }

double Point::Double(const std::string& axis) const {
  const std::string& v = Str(axis);
  if (!IsNumber(v)) throw std::logic_error("axis '" + axis + "' is not numeric ('" + v + "')");
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
                  {"mounts_in_ns", w.mounts_in_ns},
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

std::vector<std::string> SplitAxisList(const std::string& axis, const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(start, end - start);
    if (item.empty()) {
      throw UsageError(axis + ": empty value in '" + list + "' (want v1,v2,...)");
    }
    out.push_back(item);
    if (end == list.size()) break;
    start = end + 1;
  }
  return out;
}

void ThrowNoAxis(const ScenarioInfo& s, const std::string& axis) {
  std::string known;
  for (const Axis& a : s.axes) known += (known.empty() ? "" : ", ") + a.name;
  throw UsageError("scenario " + std::string(s.name) + " has no axis '" + axis +
                   "' (its axes: " + known + ")");
}

std::vector<Point> ExpandPoints(const ScenarioInfo& s,
                                const std::vector<std::pair<std::string, std::string>>& overrides) {
  for (auto& [k, v] : overrides) {
    if (!s.FindAxis(k)) ThrowNoAxis(s, k);
  }
  std::vector<Point> points(1);
  for (const Axis& a : s.axes) {
    std::string list = a.defaults;
    for (auto& [k, v] : overrides) {
      if (s.FindAxis(k) == &a) list = v;
    }
    std::vector<std::string> vals;
    for (const std::string& v : SplitAxisList(a.name, list)) vals.push_back(a.Check(v));
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

// --- claims -----------------------------------------------------------------

nlohmann::json Claim::ToJson() const {
  nlohmann::json j = args;
  j["id"] = id;
  j["kind"] = kind;
  j["metric"] = metric;
  j["text"] = text;
  return j;
}

Claim& Claim::Where(const nlohmann::json& axis_values) {
  args["where"] = axis_values;
  for (auto it = axis_values.begin(); it != axis_values.end(); ++it) {
    id += "[" + it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump()) + "]";
  }
  return *this;
}

namespace claims {
namespace {
Claim Make(std::string kind, std::string metric, std::string text, nlohmann::json args) {
  Claim c;
  c.id = kind + ":" + metric;
  c.kind = std::move(kind);
  c.metric = std::move(metric);
  c.text = std::move(text);
  c.args = std::move(args);
  return c;
}
}  // namespace

Claim Flat(std::string metric, std::string over, double within_pct, std::string text) {
  Claim c = Make("flat", metric, std::move(text), {{"over", over}, {"within_pct", within_pct}});
  c.id += "@" + over;
  return c;
}
Claim Linear(std::string metric, std::string in, double r2_min, double lo, double hi,
             std::string unit, std::string text) {
  nlohmann::json slope = lo <= hi ? nlohmann::json::array({lo, hi}) : nlohmann::json(nullptr);
  Claim c = Make("linear", metric, std::move(text),
                 {{"in", in}, {"r2_min", r2_min}, {"slope", slope}, {"unit", unit}});
  c.id += "@" + in;
  return c;
}
Claim Below(std::string metric, double value, std::string text) {
  return Make("below", metric, std::move(text), {{"value", value}});
}
Claim Above(std::string metric, double value, std::string text) {
  return Make("above", metric, std::move(text), {{"value", value}});
}
Claim Grows(std::string metric, std::string with, double min_ratio, std::string text) {
  Claim c = Make("grows", metric, std::move(text), {{"with", with}, {"min_ratio", min_ratio}});
  c.id += "@" + with;
  return c;
}
Claim Ratio(std::string metric, nlohmann::json num, nlohmann::json den, double lo, double hi,
            std::string text) {
  return Make("ratio", metric, std::move(text),
              {{"num", std::move(num)}, {"den", std::move(den)}, {"range", {lo, hi}}});
}
}  // namespace claims

const Axis* ScenarioInfo::FindAxis(const std::string& n) const {
  for (const Axis& a : axes) {
    if (a.name == n) return &a;
  }
  for (const Axis& a : axes) {
    if (std::find(a.aliases.begin(), a.aliases.end(), n) != a.aliases.end()) return &a;
  }
  return nullptr;
}

nlohmann::json ScenarioInfo::ToJson() const {
  nlohmann::json ax = nlohmann::json::array(), cl = nlohmann::json::array();
  for (const Axis& a : axes) ax.push_back(a.ToJson());
  for (const Claim& c : claims) cl.push_back(c.ToJson());
  const char* why = unsupported ? unsupported() : nullptr;
  return {{"name", name},
          {"mechanism", mechanism},
          {"expect", expect},
          {"axes", ax},
          {"claims", cl},
          {"unsupported", why ? nlohmann::json(why) : nlohmann::json(nullptr)}};
}

nlohmann::json ListJson() {
  nlohmann::json sc = nlohmann::json::array();
  for (const ScenarioInfo* s : AllScenarios()) sc.push_back(s->ToJson());
  return {{"schema", "mntscale-list/1"}, {"scenarios", sc}, {"ops", OpNameList()}};
}

std::string ListText() {
  std::string out;
  auto line = [&](const std::string& a, const std::string& b) {
    char buf[24];
    snprintf(buf, sizeof buf, "%-22s ", a.c_str());
    out += buf + b + "\n";
  };
  for (const ScenarioInfo* s : AllScenarios()) {
    line(s->name, s->mechanism);
    line("", std::string("expect: ") + s->expect);
    for (const Axis& a : s->axes) {
      std::string range;
      if (a.type == AxisType::kEnum || a.type == AxisType::kBool) {
        range = "{" + Join(a.type == AxisType::kBool ? std::vector<std::string>{"0", "1"}
                                                      : a.Values(),
                           "|") + "}";
      } else {
        range = std::to_string(a.min) + ".." + std::to_string(a.max);
      }
      char buf[512];
      snprintf(buf, sizeof buf, "  %-18s = %-22s %s %s%s", a.name.c_str(), a.defaults.c_str(),
               a.TypeName(), range.c_str(), a.farm ? " (farm shape)" : "");
      line("", buf);
    }
    for (const Claim& c : s->claims) line("", "claim: " + c.text);
    if (s->unsupported && s->unsupported()) {
      line("", std::string("skipped: unsupported: ") + s->unsupported());
    }
  }
  return out + "\nops: " + OpNames() + "\n";
}

}  // namespace mntscale
