// Counters: event names -> perf_event_attr through libpfm4, opened per worker
// thread, split into user and kernel, read outside the hot loop at each
// window boundary and scaled for multiplexing. Without libpfm4 only the
// software events are known; everything else is "unsupported".
#include "mntscale/observe/counters.h"

#include <linux/perf_event.h>
#include <unistd.h>

#include <optional>

#include "counter_events.h"
#include "counters_internal.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace counters {

std::optional<Scaled> ScaleCount(const Reading& d) {
  if (d.running == d.enabled) {
    return Scaled{static_cast<double>(d.value), 1.0};
  }
  if (d.running == 0) return std::nullopt;  // enabled, never on a counter
  double ratio = static_cast<double>(d.running) / static_cast<double>(d.enabled);
  return Scaled{static_cast<double>(d.value) / ratio, ratio};
}

void ScaledSum::Add(const Reading& d) {
  std::optional<Scaled> s = ScaleCount(d);
  if (!s)
    unknown_ = true;
  else
    value_ += s->value;
  enabled_ += d.enabled;
  running_ += d.running;
}

std::optional<double> ScaledSum::value() const {
  if (unknown_) return std::nullopt;
  return value_;
}

double ScaledSum::scaling() const {
  if (enabled_ == 0) return 1.0;
  return static_cast<double>(running_) / static_cast<double>(enabled_);
}

Reading Delta(const Reading& a, const Reading& b) {
  return {b.value - a.value, b.enabled - a.enabled, b.running - a.running};
}

}  // namespace counters

namespace {

using counters::Reading;
using counters::ScaledSum;

using counters::Encode;
using counters::Encoding;
using counters::OpenCounter;
using counters::Plm;
using counters::SplitCaveat;

// User and system CPU time of one thread in clock ticks, from
// /proc/<tid>/task/<tid>/stat (utime, stime: fields 14 and 15, clock ticks).
// Works for threads and for worker processes alike.
std::optional<std::pair<uint64_t, uint64_t>> ThreadCpuTime(pid_t tid) {
  std::string s;
  std::string path = "/proc/" + std::to_string(tid) + "/task/" + std::to_string(tid) + "/stat";
  if (!TryReadFile(path, &s)) return std::nullopt;
  size_t paren = s.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream is(s.substr(paren + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && (is >> field); ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  if (!is) return std::nullopt;
  return std::make_pair(utime, stime);
}

class CounterObserver : public RunObserver {
 public:
  explicit CounterObserver(const CounterConfig& config) : config_(config) {
    if (config_.events.empty()) config_.events = DefaultEvents();
  }

  void OnWorkersReady(const std::vector<pid_t>& tids) override {
    tids_ = tids;
    events_.clear();
    cputime_.assign(tids.size(), {});
    for (const std::string& name : config_.events) events_.push_back(Open(name));
  }

  void OnMeasureStart() override {
    snapshots_ = 0;
    windows_ = 0;
    for (Event& e : events_) {
      for (Counter& c : e.counters) c.snaps.clear();
    }
    for (auto& t : cputime_) t.clear();
    Snapshot();
  }

  void OnWindowEnd(int) override {
    if (snapshots_ == 0) return;  // no OnMeasureStart
    Snapshot();
    windows_ = snapshots_ - 1;
  }

  void OnMeasureEnd() override {
    if (snapshots_ == 0) return;
    Snapshot();
  }

  void Report(nlohmann::json* entry) override {
    nlohmann::json& out = (*entry)["counters"];
    out = nlohmann::json::object();
    for (const Event& e : events_) out[e.name] = ReportEvent(e);
    out["rusage"] = ReportCpuTime();
  }

 private:
  struct Counter {
    Fd fd;
    Plm plm;
    std::vector<std::optional<Reading>> snaps;  // nullopt: read failed
  };
  struct Event {
    std::string name;
    std::string unsupported;
    std::string split_note;  // why there is no user/kernel split
    std::vector<Counter> counters;
  };

  Event Open(const std::string& name) {
    Event e;
    e.name = name;
    Encoding both = Encode(name, Plm::kBoth);
    if (!both.error.empty()) {
      e.unsupported = both.error;
      return e;
    }
    std::vector<std::pair<Plm, perf_event_attr>> halves;
    if (config_.split_user_kernel) {
      e.split_note = SplitCaveat(both.attr);
      if (e.split_note.empty()) {
        Encoding u = Encode(name, Plm::kUser), k = Encode(name, Plm::kKernel);
        // A name with its own :u/:k modifier overrides the requested levels.
        if (!u.error.empty() || !k.error.empty() || !u.attr.exclude_kernel || u.attr.exclude_user ||
            !k.attr.exclude_user || k.attr.exclude_kernel) {
          e.split_note = "not applied: the event name sets its own privilege levels";
        } else {
          halves = {{Plm::kUser, u.attr}, {Plm::kKernel, k.attr}};
        }
      }
    } else {
      e.split_note = "not requested";
    }
    if (halves.empty()) halves = {{Plm::kBoth, both.attr}};
    try {
      for (pid_t tid : tids_) {
        for (const auto& [plm, attr] : halves) {
          e.counters.push_back({OpenCounter(name, attr, tid), plm, {}});
        }
      }
    } catch (const SysError& err) {
      e.counters.clear();  // all workers or none
      e.unsupported = err.what();
    }
    return e;
  }

  void Snapshot() {
    for (Event& e : events_) {
      for (Counter& c : e.counters) {
        uint64_t buf[3];
        if (read(c.fd.get(), buf, sizeof(buf)) == sizeof(buf)) {
          c.snaps.push_back(Reading{buf[0], buf[1], buf[2]});
        } else {
          c.snaps.push_back(std::nullopt);
        }
      }
    }
    for (size_t i = 0; i < tids_.size(); ++i) {
      cputime_[i].push_back(ThreadCpuTime(tids_[i]));
    }
    ++snapshots_;
  }

  // Sums the counters of one privilege half between snapshots a and b.
  // nullopt when any reading is missing or any counter never ran.
  struct Sum {
    std::optional<double> value;
    double scaling = 1.0;
  };
  static Sum SumBetween(const Event& e, Plm plm, size_t a, size_t b, bool any_plm) {
    ScaledSum sum;
    bool missing = false;
    for (const Counter& c : e.counters) {
      if (!any_plm && c.plm != plm) continue;
      if (b >= c.snaps.size() || !c.snaps[a] || !c.snaps[b]) {
        missing = true;
        continue;
      }
      sum.Add(counters::Delta(*c.snaps[a], *c.snaps[b]));
    }
    if (missing) return {std::nullopt, sum.scaling()};
    return {sum.value(), sum.scaling()};
  }

  static nlohmann::json Number(const std::optional<double>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  }

  nlohmann::json ReportEvent(const Event& e) const {
    if (!e.unsupported.empty()) return {{"unsupported", e.unsupported}};
    if (snapshots_ < 2) {
      return {{"unsupported", "not measured: no OnMeasureStart/OnMeasureEnd"}};
    }
    size_t last = snapshots_ - 1;
    Sum total = SumBetween(e, Plm::kBoth, 0, last, true);
    if (!total.value) {
      return {{"unsupported",
               "not counted: a read failed or the event never got a hardware "
               "counter (time_running = 0)"},
              {"scaling", total.scaling}};
    }
    nlohmann::json j = {{"value", *total.value}, {"scaling", total.scaling}};
    if (e.split_note.empty()) {
      j["user"] = Number(SumBetween(e, Plm::kUser, 0, last, false).value);
      j["kernel"] = Number(SumBetween(e, Plm::kKernel, 0, last, false).value);
    } else {
      j["split"] = e.split_note;
    }
    nlohmann::json windows = nlohmann::json::array();
    for (size_t w = 0; w < windows_; ++w) {
      windows.push_back(Number(SumBetween(e, Plm::kBoth, w, w + 1, true).value));
    }
    j["windows"] = windows;
    return j;
  }

  nlohmann::json ReportCpuTime() const {
    if (snapshots_ < 2) return {{"unsupported", "not measured"}};
    const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    auto between = [&](size_t a, size_t b) -> std::optional<std::pair<double, double>> {
      uint64_t u = 0, s = 0;
      for (const auto& t : cputime_) {
        if (b >= t.size() || !t[a] || !t[b]) return std::nullopt;
        u += t[b]->first - t[a]->first;
        s += t[b]->second - t[a]->second;
      }
      return std::make_pair(u / hz, s / hz);
    };
    auto total = between(0, snapshots_ - 1);
    if (!total) {
      return {{"unsupported", "a worker's /proc/<tid>/task/<tid>/stat could not be read"}};
    }
    nlohmann::json windows = nlohmann::json::array();
    for (size_t w = 0; w < windows_; ++w) {
      auto v = between(w, w + 1);
      windows.push_back(v ? nlohmann::json{{"user", v->first}, {"kernel", v->second}}
                          : nlohmann::json(nullptr));
    }
    return {{"value", total->first + total->second},
            {"user", total->first},
            {"kernel", total->second},
            {"unit", "s"},
            {"source", "/proc/<tid>/task/<tid>/stat utime/stime (clock ticks)"},
            {"windows", windows}};
  }

  CounterConfig config_;
  std::vector<pid_t> tids_;
  std::vector<Event> events_;
  std::vector<std::vector<std::optional<std::pair<uint64_t, uint64_t>>>> cputime_;
  size_t snapshots_ = 0, windows_ = 0;
};

}  // namespace

std::unique_ptr<RunObserver> MakeCounterObserver(const CounterConfig& config) {
  return std::make_unique<CounterObserver>(config);
}

}  // namespace mntscale
