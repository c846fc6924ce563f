// What `mntscale observe` writes (issue 25): its summary figures, the
// relation to measured capacity, JSON, OpenMetrics text and a screenful.
// Pure functions over an ObserveSample; observe.cc does the reading.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "mntscale/sys/stats.h"
#include "mntscale/live/observe.h"
#include "mntscale/sys/sys.h"

namespace mntscale {

namespace {

// 1800 -> "1,800".
std::string Thousands(long v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(i, ",");
  return (v < 0 ? "-" : "") + s;
}

// A label value, escaped as the exposition format wants.
std::string Label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string Num(double v) {
  char b[64];
  snprintf(b, sizeof(b), "%.10g", v);
  return b;
}

// The kernel release up to its second dot-separated number: "6.18".
std::string KernelSeries(const std::string& release) {
  size_t dot = release.find('.');
  if (dot == std::string::npos) return release;
  size_t end = release.find_first_not_of("0123456789", dot + 1);
  return release.substr(0, end);
}

}  // namespace

ObserveSummary Summarize(const Census& c) {
  ObserveSummary s;
  std::vector<long> per;
  for (const NamespaceCount& n : c.namespaces) {
    if (!n.error.empty()) {
      ++s.unreadable;
      continue;
    }
    ++s.namespaces;
    s.mounts_total += n.mounts;
    s.overlay += n.overlay;
    s.overlay_layers += n.overlay_layers;
    s.idmapped += n.idmapped;
    s.unreadable_mounts += n.unreadable_mounts;
    if (n.inode == c.host_inode) {
      s.host_mounts = n.mounts;
    } else {
      ++s.containers;
      per.push_back(n.mounts);
    }
  }
  std::sort(per.begin(), per.end());
  s.mounts_p50 = NearestRankQuantile(per, 0.5);
  s.mounts_p99 = NearestRankQuantile(per, 0.99);
  s.mounts_max = per.empty() ? 0 : static_cast<double>(per.back());
  return s;
}

CapacityRef LoadCapacityRef(const std::string& file) {
  std::string text;
  if (!TryReadFile(file, &text)) {
    throw UsageError("--capacity '" + file + "': " + ErrnoName(errno));
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError("--capacity '" + file + "' is not JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("capacity") || !j["capacity"].is_object() ||
      !j["capacity"].contains("result")) {
    throw UsageError("--capacity '" + file +
                     "' is not a capacity result (no capacity.result; write one with "
                     "`mntscale capacity --out FILE`)");
  }
  CapacityRef r;
  r.file = file;
  try {
    const nlohmann::json& c = j["capacity"];
    const nlohmann::json& res = c["result"];
    const nlohmann::json& ctx = j.value("context", nlohmann::json::object());
    r.profile = c.value("profile", "");
    r.mounts_per_container = c.value("mounts_per_container", 0);
    if (c.contains("churn") && c["churn"].is_object()) r.idmap = c["churn"].value("strategy", "");
    if (ctx.contains("kernel")) r.kernel = ctx["kernel"].value("release", "");
    if (ctx.contains("machine")) r.machine = ctx["machine"].value("name", "");
    if (ctx.contains("cpu")) r.cpu = ctx["cpu"].value("model", "");
    auto num = [&](const char* k) -> long {
      return res.contains(k) && res[k].is_number() ? res[k].get<long>() : 0;
    };
    r.n_star = num("n_star");
    r.n_lo = num("n_lo");
    r.n_hi = num("n_hi");
    r.n_hi_open = res.value("n_hi_open", false);
    r.found = r.n_star > 0 && r.n_lo > 0;
    if (!r.found) r.why_none = res.value("sentence", std::string("the search found no N*"));
  } catch (const nlohmann::json::exception& e) {
    throw UsageError("--capacity '" + file + "': unexpected field type: " + e.what());
  }
  return r;
}

CapacityRelation RelateToCapacity(const ObserveSummary& s, const ObserveSample& sample,
                                  const std::vector<CapacityRef>& refs) {
  CapacityRelation rel;
  std::ostringstream head;
  head << Thousands(s.containers) << " containers of about " << Num(std::round(s.mounts_p50))
       << " mounts";
  if (refs.empty()) return rel;
  // A result applies when it measured this kernel series on this CPU model,
  // with containers of the same size (within 25% of the median's mounts).
  std::vector<std::string> why_not;
  const CapacityRef* best = nullptr;
  for (const CapacityRef& r : refs) {
    std::vector<std::string> diff;
    if (KernelSeries(r.kernel) != KernelSeries(sample.kernel)) {
      diff.push_back("kernel " + r.kernel + ", this host " + sample.kernel);
    }
    if (!r.cpu.empty() && !sample.cpu_model.empty() && r.cpu != sample.cpu_model) {
      diff.push_back("CPU " + r.cpu + ", this host " + sample.cpu_model);
    }
    double m = s.mounts_p50;
    if (s.containers == 0) {
      diff.push_back("no containers here to compare its " +
                     std::to_string(r.mounts_per_container) + " mounts per container with");
    } else if (r.mounts_per_container <= 0 ||
               std::fabs(m - r.mounts_per_container) > 0.25 * r.mounts_per_container) {
      diff.push_back("profile shape: " + std::to_string(r.mounts_per_container) +
                     " mounts per container, here about " + Num(std::round(m)));
    }
    if (!diff.empty()) {
      std::string w = r.file + " (" + r.profile + "): ";
      for (size_t i = 0; i < diff.size(); ++i) w += (i ? "; " : "") + diff[i];
      why_not.push_back(w);
      continue;
    }
    if (!best || std::fabs(r.mounts_per_container - m) < std::fabs(best->mounts_per_container - m)) {
      best = &r;
    }
  }
  if (!best) {
    std::string line = head.str() + "; no capacity result matches this host: ";
    for (size_t i = 0; i < why_not.size(); ++i) line += (i ? " | " : "") + why_not[i];
    rel.line = line;
    return rel;
  }
  rel.matched = true;
  rel.ref = best;
  std::ostringstream out;
  out << head.str() << "; capacity (" << best->profile;
  if (!best->idmap.empty()) out << ", " << best->idmap;
  out << ", " << best->kernel << ") ";
  if (!best->found) {
    out << "has no N*: " << best->why_none;
    rel.line = out.str();
    return rel;
  }
  rel.utilisation = static_cast<double>(s.containers) / best->n_lo;
  out << "N* " << Thousands(best->n_star) << " [" << Thousands(best->n_lo) << "–"
      << Thousands(best->n_hi) << (best->n_hi_open ? "+" : "") << "]: "
      << Num(std::round(100 * rel.utilisation)) << "% of the conservative "
      << Thousands(best->n_lo);
  rel.line = out.str();
  return rel;
}

nlohmann::json ObserveJson(const ObserveSample& s, const std::vector<CapacityRef>& refs) {
  ObserveSummary sum = Summarize(s.census);
  nlohmann::json j;
  j["version"] = 1;
  j["time"] = s.t;
  j["interval_s"] = s.interval_s;
  j["host"] = {{"kernel", s.kernel}, {"machine", s.machine}, {"cpu", s.cpu_model},
               {"cpus", s.cpus}};
  j["census"] = {{"source", CensusSourceName(s.census.source)},
                 {"source_why", s.census.source_why},
                 {"read_s", s.census.read_s},
                 {"namespaces", sum.namespaces},
                 {"containers", sum.containers},
                 {"unreadable", sum.unreadable},
                 {"host_namespace_from", s.census.host_from},
                 {"unreadable_processes", s.census.unreadable_processes},
                 {"unreadable_process_count", s.census.unreadable_process_count},
                 {"mounts_total", sum.mounts_total},
                 {"host_mounts", sum.host_mounts},
                 {"mounts_per_container",
                  {{"p50", sum.mounts_p50}, {"p99", sum.mounts_p99}, {"max", sum.mounts_max}}},
                 {"overlay_mounts", sum.overlay},
                 {"overlay_layers", sum.overlay_layers},
                 {"idmapped_mounts", sum.idmapped},
                 {"unreadable_mounts", sum.unreadable_mounts}};
  nlohmann::json ns = nlohmann::json::array();
  for (const NamespaceCount& n : s.census.namespaces) {
    nlohmann::json e = {{"inode", n.inode},          {"pid", n.pid},
                        {"comm", n.comm},            {"held_by", n.held_by_fd ? "fd" : "process"},
                        {"host", n.inode == s.census.host_inode}};
    if (n.ns_id) e["ns_id"] = n.ns_id;
    if (n.error.empty()) {
      e["mounts"] = n.mounts;
      e["overlay_mounts"] = n.overlay;
      e["overlay_layers"] = n.overlay_layers;
      e["idmapped_mounts"] = n.idmapped;
      if (n.unreadable_mounts) e["unreadable_mounts"] = n.unreadable_mounts;
    } else {
      e["unreadable"] = n.error;
    }
    ns.push_back(e);
  }
  j["namespaces"] = ns;
  if (s.ops_source.empty()) {
    j["mount_ops"] = {{"unsupported", "one census: rates need an interval (--count 2 or more)"}};
  } else {
    j["mount_ops"] = {{"source", s.ops_source}, {"note", s.ops_note},
                      {"attach", s.attach},     {"detach", s.detach},
                      {"attach_per_s", s.attach_per_s}, {"detach_per_s", s.detach_per_s},
                      {"overflows", s.overflows}};
  }
  if (s.user_share >= 0) {
    j["cpu"] = {{"user", s.user_share}, {"system", s.system_share},
                {"steal", s.steal_share}, {"idle", s.idle_share}};
  } else {
    j["cpu"] = {{"unsupported", "one census: CPU shares need an interval"}};
  }
  CapacityRelation rel = RelateToCapacity(sum, s, refs);
  if (!refs.empty()) {
    j["capacity"] = {{"matched", rel.matched}, {"line", rel.line}};
    if (rel.ref) j["capacity"]["file"] = rel.ref->file;
    if (rel.utilisation >= 0) j["capacity"]["utilisation"] = rel.utilisation;
  }
  return j;
}

std::string ObserveOpenMetrics(const ObserveSample& s, const std::vector<CapacityRef>& refs) {
  ObserveSummary sum = Summarize(s.census);
  std::ostringstream o;
  auto metric = [&](const std::string& name, const char* type, const std::string& help) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  const std::string p = "mntscale_observe_";
  metric(p + "info", "gauge", "mntscale observe: how this reading was taken (value 1).");
  o << p << "info{census_source=\"" << CensusSourceName(s.census.source)
    << "\",ops_source=\"" << Label(s.ops_source.empty() ? "none" : s.ops_source)
    << "\",kernel=\"" << Label(s.kernel) << "\"} 1\n";
  metric(p + "mount_namespaces", "gauge", "Mount namespaces on the host, the host's own included.");
  o << p << "mount_namespaces " << sum.namespaces << "\n";
  metric(p + "container_namespaces", "gauge",
         "Mount namespaces other than PID 1's (containers and private-mount services).");
  o << p << "container_namespaces " << sum.containers << "\n";
  metric(p + "unreadable_namespaces", "gauge",
         "Mount namespaces found but not read (their errors are in the JSON output).");
  o << p << "unreadable_namespaces " << sum.unreadable << "\n";
  metric(p + "unreadable_processes", "gauge",
         "Processes whose mount namespace could not be read (listed in the JSON output).");
  o << p << "unreadable_processes " << s.census.unreadable_process_count << "\n";
  metric(p + "mounts", "gauge", "Mounts across every mount namespace.");
  o << p << "mounts " << sum.mounts_total << "\n";
  metric(p + "host_namespace_mounts", "gauge", "Mounts in PID 1's mount namespace.");
  o << p << "host_namespace_mounts " << sum.host_mounts << "\n";
  metric(p + "namespace_mounts", "gauge",
         "Mounts per non-host mount namespace: median, 99th percentile and largest.");
  o << p << "namespace_mounts{stat=\"p50\"} " << Num(sum.mounts_p50) << "\n";
  o << p << "namespace_mounts{stat=\"p99\"} " << Num(sum.mounts_p99) << "\n";
  o << p << "namespace_mounts{stat=\"max\"} " << Num(sum.mounts_max) << "\n";
  metric(p + "overlay_mounts", "gauge", "overlayfs mounts across every mount namespace.");
  o << p << "overlay_mounts " << sum.overlay << "\n";
  metric(p + "overlay_layers", "gauge", "Lower layers of those overlay mounts, summed.");
  o << p << "overlay_layers " << sum.overlay_layers << "\n";
  metric(p + "idmapped_mounts", "gauge", "Mounts with an idmapping, across every namespace.");
  o << p << "idmapped_mounts " << sum.idmapped << "\n";
  metric(p + "census_duration_seconds", "gauge", "Wall time of the last census.");
  o << p << "census_duration_seconds " << Num(s.census.read_s) << "\n";
  if (!s.ops_source.empty()) {
    metric(p + "mount_attach_rate", "gauge",
           "Mounts attached per second over the last interval (source in _info).");
    o << p << "mount_attach_rate " << Num(s.attach_per_s) << "\n";
    metric(p + "mount_detach_rate", "gauge", "Mounts detached per second over the last interval.");
    o << p << "mount_detach_rate " << Num(s.detach_per_s) << "\n";
  }
  if (s.user_share >= 0) {
    metric(p + "cpu_ratio", "gauge", "Share of all CPUs' time over the last interval, by mode.");
    o << p << "cpu_ratio{mode=\"user\"} " << Num(s.user_share) << "\n";
    o << p << "cpu_ratio{mode=\"system\"} " << Num(s.system_share) << "\n";
    o << p << "cpu_ratio{mode=\"steal\"} " << Num(s.steal_share) << "\n";
    o << p << "cpu_ratio{mode=\"idle\"} " << Num(s.idle_share) << "\n";
  }
  CapacityRelation rel = RelateToCapacity(sum, s, refs);
  if (rel.ref && rel.utilisation >= 0) {
    std::string labels = "{profile=\"" + Label(rel.ref->profile) + "\",kernel=\"" +
                         Label(rel.ref->kernel) + "\"}";
    metric(p + "capacity_conservative_containers", "gauge",
           "The conservative N* (lower 95% bound) of the matching capacity result.");
    o << p << "capacity_conservative_containers" << labels << " " << rel.ref->n_lo << "\n";
    metric(p + "capacity_utilisation_ratio", "gauge",
           "Containers here over the matching capacity result's conservative N*.");
    o << p << "capacity_utilisation_ratio" << labels << " " << Num(rel.utilisation) << "\n";
  }
  metric(p + "last_census_timestamp_seconds", "gauge", "Unix time of the last census.");
  o << p << "last_census_timestamp_seconds " << Num(s.t) << "\n";
  return o.str();
}

std::string ObserveText(const ObserveSample& s, const std::vector<CapacityRef>& refs, int top) {
  ObserveSummary sum = Summarize(s.census);
  std::ostringstream o;
  char b[256];
  o << "mntscale observe  kernel " << s.kernel << "  census " << CensusSourceName(s.census.source)
    << " (" << s.census.source_why << ") in " << Num(std::round(s.census.read_s * 1e4) / 10)
    << " ms\n";
  o << "namespaces " << sum.namespaces << " (" << sum.containers << " besides the host's";
  if (sum.unreadable) o << ", " << sum.unreadable << " unreadable";
  o << ")   mounts " << Thousands(sum.mounts_total) << " (host " << sum.host_mounts << ")\n";
  o << "mounts per namespace  p50 " << Num(sum.mounts_p50) << "  p99 " << Num(sum.mounts_p99)
    << "  max " << Num(sum.mounts_max) << "\n";
  o << "overlay " << sum.overlay << " (" << sum.overlay_layers << " layers)   idmapped "
    << sum.idmapped;
  if (sum.unreadable_mounts) {
    o << "   (" << sum.unreadable_mounts << " mounts unreadable by statmount: shape unknown)";
  }
  o << "\n";
  if (!s.ops_source.empty()) {
    snprintf(b, sizeof(b), "mount ops  attach %.1f/s  detach %.1f/s  (%s)\n", s.attach_per_s,
             s.detach_per_s, s.ops_source.c_str());
    o << b;
  }
  if (s.user_share >= 0) {
    snprintf(b, sizeof(b), "cpu  user %.1f%%  system %.1f%%  steal %.1f%%  idle %.1f%%\n",
             100 * s.user_share, 100 * s.system_share, 100 * s.steal_share, 100 * s.idle_share);
    o << b;
  }
  CapacityRelation rel = RelateToCapacity(sum, s, refs);
  if (!rel.line.empty()) o << rel.line << "\n";
  o << "largest namespaces:\n";
  int shown = 0;
  for (const NamespaceCount& n : s.census.namespaces) {
    if (shown++ >= top) break;
    snprintf(b, sizeof(b), "  %8ld mounts  mnt:[%llu]  pid %d %s%s\n", n.mounts,
             static_cast<unsigned long long>(n.inode), n.pid, n.comm.c_str(),
             n.held_by_fd ? " (holds it by fd)" : n.inode == s.census.host_inode ? " (host)" : "");
    o << b;
  }
  for (const std::string& p : s.census.unreadable_processes) {
    o << "  namespace not read: " << p << "\n";
  }
  if (s.census.unreadable_process_count > static_cast<long>(s.census.unreadable_processes.size())) {
    o << "  ... " << s.census.unreadable_process_count - s.census.unreadable_processes.size()
      << " more processes whose namespace could not be read\n";
  }
  for (const NamespaceCount& n : s.census.namespaces) {
    if (!n.error.empty()) o << "  not read: mnt:[" << n.inode << "] pid " << n.pid << ": " << n.error << "\n";
  }
  return o.str();
}

}  // namespace mntscale
