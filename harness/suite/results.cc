#include "mntscale/suite/results.h"

#include "mntscale/sys/text.h"

#include <benchmark/benchmark.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include "mntscale/model/sandbox.h"
#include "mntscale/sys/sys.h"
#include "mntscale/model/userns.h"

namespace mntscale {
namespace {

std::string IsoNow() {
  char buf[64];
  time_t t = time(nullptr);
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
  return buf;
}

std::string Hostname() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, n) : "";
}

// "0-3,8,10-11" -> 0,1,2,3,8,10,11; false when it does not parse.
bool ParseCpuList(const std::string& list, std::vector<int>* out) {
  std::stringstream ss(Trim(list));
  std::string part;
  while (std::getline(ss, part, ',')) {
    int a = 0, b = 0;
    char dash = 0;
    std::stringstream ps(part);
    if (!(ps >> a)) return false;
    b = a;
    if (ps >> dash && !(dash == '-' && ps >> b)) return false;
    for (int i = a; i <= b; ++i) out->push_back(i);
  }
  return !out->empty();
}

// Names in a directory, sorted; false when it cannot be opened.
bool ListDir(const std::string& dir, std::vector<std::string>* names) {
  DIR* d = opendir(dir.c_str());
  if (!d) return false;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') names->push_back(e->d_name);
  }
  closedir(d);
  std::sort(names->begin(), names->end());
  return true;
}

}  // namespace

nlohmann::json PlatformContext(const std::string& sys, const std::string& proc) {
  nlohmann::json c = nlohmann::json::object();
  const std::string cpu = sys + "/devices/system/cpu";
  // Microcode: the first "microcode" line of /proc/cpuinfo (x86 only).
  std::string cpuinfo;
  std::string microcode;
  if (TryReadFile(proc + "/cpuinfo", &cpuinfo)) {
    std::stringstream ss(cpuinfo);
    std::string line;
    while (std::getline(ss, line)) {
      if (line.compare(0, 9, "microcode") == 0 && line.find(':') != std::string::npos) {
        microcode = Trim(line.substr(line.find(':') + 1));
        break;
      }
    }
  }
  if (!microcode.empty()) {
    c["microcode"] = microcode;
  } else {
    c["microcode_unsupported"] = "unsupported: no microcode line in " + proc + "/cpuinfo";
  }
  // SMT: the kernel's switch and whether siblings are running.
  nlohmann::json smt = nlohmann::json::object();
  std::string v;
  if (TryReadFile(cpu + "/smt/control", &v)) {
    smt["control"] = Trim(v);
  } else {
    smt["control_unsupported"] = "unsupported: no " + cpu + "/smt/control";
  }
  if (TryReadFile(cpu + "/smt/active", &v)) {
    smt["active"] = Trim(v) == "1";
  } else {
    smt["active_unsupported"] = "unsupported: no " + cpu + "/smt/active";
  }
  c["smt"] = smt;
  // Frequency governor of each online CPU.
  std::vector<int> online;
  std::string list;
  if (!TryReadFile(cpu + "/online", &list) || !ParseCpuList(list, &online)) online.clear();
  nlohmann::json gov = nlohmann::json::object();
  for (int n : online) {
    if (TryReadFile(cpu + "/cpu" + std::to_string(n) + "/cpufreq/scaling_governor", &v)) {
      gov[std::to_string(n)] = Trim(v);
    }
  }
  if (online.empty()) {
    c["governor_unsupported"] = "unsupported: cannot read the online CPUs from " + cpu + "/online";
  } else if (gov.empty()) {
    c["governor_unsupported"] = "unsupported: no cpufreq (no cpuN/cpufreq/scaling_governor)";
  } else {
    c["governor"] = gov;
  }
  // Mitigations: every file in vulnerabilities/, as the kernel words it.
  std::vector<std::string> names;
  nlohmann::json mit = nlohmann::json::object();
  if (ListDir(cpu + "/vulnerabilities", &names)) {
    for (const std::string& n : names) {
      if (TryReadFile(cpu + "/vulnerabilities/" + n, &v)) mit[n] = Trim(v);
    }
  }
  if (mit.empty()) {
    c["mitigations_unsupported"] = "unsupported: no " + cpu + "/vulnerabilities";
  } else {
    c["mitigations"] = mit;
  }
  if (TryReadFile(proc + "/cmdline", &v)) {
    c["cmdline"] = Trim(v);
  } else {
    c["cmdline_unsupported"] = "unsupported: cannot read " + proc + "/cmdline";
  }
  return c;
}

bool ValidMachineName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char ch : name) {
    if (!isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-')
      return false;
  }
  return name[0] != '.' && name[0] != '-';
}

void CheckMachineName(const std::string& option_value) {
  const char* env = getenv("MNTSCALE_MACHINE");
  if (option_value.empty() && !env) return;
  const std::string name = option_value.empty() ? env : option_value;
  if (!ValidMachineName(name)) {
    throw UsageError((option_value.empty() ? "MNTSCALE_MACHINE='" : "--machine '") + name +
                     "': want 1-64 characters of A-Z a-z 0-9 . _ - (it names result directories)");
  }
}

std::string KernelRelease() {
  struct utsname u;
  uname(&u);
  return u.release;
}

bool IsVirtualized(std::string* hypervisor) {
  std::string cpuinfo;
  TryReadFile("/proc/cpuinfo", &cpuinfo);
  bool vm = cpuinfo.find(" hypervisor") != std::string::npos;
  std::string vendor;
  if (TryReadFile("/sys/class/dmi/id/sys_vendor", &vendor)) vendor = Trim(vendor);
  std::string product;
  if (TryReadFile("/sys/class/dmi/id/product_name", &product)) product = Trim(product);
  if (hypervisor) {
    *hypervisor = "";
    if (vm) {
      std::string v = vendor + " " + product;
      if (v.find("QEMU") != std::string::npos || cpuinfo.find("QEMU") != std::string::npos) {
        *hypervisor = "qemu";
      } else if (v.find("Amazon") != std::string::npos) {
        *hypervisor = "nitro";
      } else if (v.find("Google") != std::string::npos) {
        *hypervisor = "gce";
      } else if (v.find("Microsoft") != std::string::npos) {
        *hypervisor = "hyperv";
      } else if (v.find("VMware") != std::string::npos) {
        *hypervisor = "vmware";
      } else {
        *hypervisor = "kvm";
      }
    }
  }
  return vm;
}

nlohmann::json MountHashInfo() {
  std::string cmdline;
  TryReadFile("/proc/cmdline", &cmdline);
  auto pos = cmdline.find("mhash_entries=");
  if (pos != std::string::npos) {
    return {{"entries", std::strtol(cmdline.c_str() + pos + 14, nullptr, 10)},
            {"source", "cmdline"}};
  }
  // The boot log says it exactly, while it has not rotated away.
  Fd fd(open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (fd.valid()) {
    char buf[8192];
    ssize_t n;
    while ((n = read(fd.get(), buf, sizeof buf - 1)) > 0 || (n < 0 && errno == EPIPE)) {
      if (n <= 0) continue;
      buf[n] = 0;
      const char* p = strstr(buf, "Mount-cache hash table entries: ");
      if (p) return {{"entries", std::strtol(p + 32, nullptr, 10)}, {"source", "dmesg"}};
    }
  }
  // alloc_large_system_hash sizes it at one bucket per 512 KiB of RAM,
  // rounded to a power of two.
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  double buckets = static_cast<double>(pages) * page / (512 * 1024);
  long entries = 1L << static_cast<int>(std::floor(std::log2(std::max(buckets, 1.0))));
  return {{"entries", entries}, {"source", "estimated"}};
}

// The fields Google Benchmark's own JSON carries, from its CPUInfo: caches
// from sysfs, MHz from /proc/cpuinfo, scaling from the cpufreq governor,
// load averages. A field it could not read says so instead of holding a
// made-up value.
nlohmann::json BenchmarkCpuContext() {
  const benchmark::CPUInfo& info = benchmark::CPUInfo::Get();
  nlohmann::json c = nlohmann::json::object();
  c["num_cpus"] = info.num_cpus;
  if (info.cycles_per_second > 1e6) {
    c["mhz_per_cpu"] = static_cast<long>(info.cycles_per_second / 1e6 + 0.5);
  } else {
    c["mhz_per_cpu_unsupported"] = "unsupported: no cpu MHz in /proc/cpuinfo or sysfs";
  }
  if (info.scaling == benchmark::CPUInfo::UNKNOWN) {
    c["cpu_scaling_unsupported"] = "unsupported: no cpufreq governor in sysfs";
  } else {
    c["cpu_scaling_enabled"] = info.scaling == benchmark::CPUInfo::ENABLED;
  }
  nlohmann::json caches = nlohmann::json::array();
  for (const auto& k : info.caches) {
    caches.push_back({{"type", k.type},
                      {"level", k.level},
                      {"size", k.size},
                      {"num_sharing", k.num_sharing}});
  }
  c["caches"] = caches;
  c["load_avg"] = info.load_avg;
#ifdef NDEBUG
  c["library_build_type"] = "release";
#else
  c["library_build_type"] = "debug";
#endif
  return c;
}

nlohmann::json CollectContext(const Topology& topo, const nlohmann::json& extra) {
  struct utsname u;
  uname(&u);
  std::string hv;
  bool virt = IsVirtualized(&hv);
  const auto& ts = topo.summary();
  Topology host = topo.is_host() ? topo : Topology::Host();
  const auto& hs = host.summary();
  nlohmann::json c = {
      {"date", IsoNow()},
      {"host_name", Hostname()},
      {"executable", SelfExe()},
      {"mntscale_version", MNTSCALE_VERSION},
      {"machine", {{"name", Hostname()}, {"virtualized", virt}, {"hypervisor", hv}}},
      {"kernel",
       {{"release", u.release},
        {"uname", std::string(u.sysname) + " " + u.nodename + " " + u.release + " " + u.version +
                      " " + u.machine},
        {"emulated", false},
        {"accelerator", "native"}}},
      {"cpu", {{"model", hs.cpu_model}, {"vendor", hs.cpu_vendor}}},
      {"host_topology",
       {{"packages", hs.packages},
        {"numa_nodes", hs.numa_nodes},
        {"cores", hs.cores},
        {"pus", hs.pus}}},
      {"topology",
       {{"source", ts.source},
        {"packages", ts.packages},
        {"numa_nodes", ts.numa_nodes},
        {"cores", ts.cores},
        {"pus", ts.pus}}},
      {"sysctl",
       {{"fs.mount-max", ReadSysctl("fs.mount-max")},
        {"user.max_mnt_namespaces", ReadSysctl("user.max_mnt_namespaces")}}},
      {"mount_hash", MountHashInfo()},
      {"rootless", Rootless()},
      {"user_namespace", UserNamespaceJson()},
  };
  c.update(BenchmarkCpuContext());
  // The kernel matrix tells us when we run under emulation.
  if (const char* acc = getenv("MNTSCALE_ACCELERATOR")) {
    c["kernel"]["accelerator"] = acc;
    c["kernel"]["emulated"] = std::string(acc) == "tcg";
  }
  c["platform"] = PlatformContext("/sys", "/proc");
  if (const char* m = getenv("MNTSCALE_MACHINE")) {
    c["machine"]["name"] = m;
    c["machine"]["name_from"] = "MNTSCALE_MACHINE";
  } else {
    c["machine"]["name_from"] = "hostname";
  }
  for (auto it = extra.begin(); it != extra.end(); ++it) c[it.key()] = it.value();
  return c;
}

ResultSink::ResultSink(std::string path, nlohmann::json context)
    : path_(std::move(path)), context_(std::move(context)) {}

void ResultSink::SetContext(const std::string& key, nlohmann::json value) {
  context_[key] = std::move(value);
}

void ResultSink::Add(nlohmann::json entry) {
  entries_.push_back(std::move(entry));
  Write(false, "running");
}

void ResultSink::Finish(bool complete, const std::string& reason) { Write(complete, reason); }

nlohmann::json ResultSink::Document(bool complete, const std::string& reason) const {
  nlohmann::json doc = {{"schema", "mntscale-result"},
                        {"schema_version", kSchemaVersion},
                        {"complete", complete},
                        {"context", context_}};
  if (!complete) doc["incomplete_reason"] = reason;
  nlohmann::json b = nlohmann::json::array();
  for (const auto& e : entries_) b.push_back(e);
  for (auto& a : Aggregates(entries_)) b.push_back(std::move(a));
  doc["benchmarks"] = std::move(b);
  return doc;
}

void ResultSink::Write(bool complete, const std::string& reason) const {
  if (path_.empty()) return;
  // Checked before the run too; the path may have been replaced since.
  RefuseNonRegularOutput(path_);
  // argv and paths may hold bytes that are not UTF-8: replaced, never a throw
  // (found by fuzz_cli_lists).
  WriteFileAtomic(path_, Document(complete, reason).dump(2, ' ', false,
                                                         nlohmann::json::error_handler_t::replace) +
                             "\n");
}

std::vector<nlohmann::json> ResultSink::Aggregates(const std::vector<nlohmann::json>& entries) {
  std::map<std::string, std::vector<const nlohmann::json*>> groups;
  std::vector<std::string> order;
  for (const auto& e : entries) {
    if (e.contains("skipped") || !e.contains("items_per_second")) continue;
    std::string rn = e.value("run_name", e.value("name", ""));
    if (!groups.count(rn)) order.push_back(rn);
    groups[rn].push_back(&e);
  }
  std::vector<nlohmann::json> out;
  for (const auto& rn : order) {
    const auto& g = groups[rn];
    if (g.size() < 2) continue;
    auto stats = [&](const char* key) {
      std::vector<double> v;
      for (auto* e : g) v.push_back((*e)[key].get<double>());
      double mean = 0;
      for (double x : v) mean += x;
      mean /= v.size();
      double var = 0;
      for (double x : v) var += (x - mean) * (x - mean);
      double sd = std::sqrt(var / (v.size() - 1));
      std::sort(v.begin(), v.end());
      double med = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
      return std::array<double, 4>{mean, med, sd, mean != 0 ? sd / mean : 0};
    };
    auto rt = stats("real_time"), ct = stats("cpu_time"), ips = stats("items_per_second");
    const char* names[] = {"mean", "median", "stddev", "cv"};
    for (int k = 0; k < 4; ++k) {
      const nlohmann::json& first = *g.front();
      nlohmann::json a = {{"name", rn + "_" + names[k]},
                          {"run_name", rn},
                          {"run_type", "aggregate"},
                          {"aggregate_name", names[k]},
                          {"repetitions", g.size()},
                          {"threads", first.value("threads", 1)},
                          {"iterations", g.size()},
                          {"real_time", rt[k]},
                          {"cpu_time", ct[k]},
                          {"time_unit", "ns"},
                          {"items_per_second", ips[k]},
                          {"scenario", first.value("scenario", "")},
                          {"params", first.value("params", nlohmann::json::object())}};
      if (k == 3) a["aggregate_unit"] = "percentage";
      out.push_back(std::move(a));
    }
  }
  return out;
}

namespace {

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

bool MeasuredAnything(const std::vector<nlohmann::json>& entries) {
  for (const auto& e : entries) {
    if (!e.contains("skipped") && !e.value("error_occurred", false)) return true;
  }
  return false;
}

void RefuseNonRegularOutput(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;  // a new path
  if (const char* kind = NonRegularKind(st.st_mode)) {
    throw UsageError("output path '" + path + "' is " + kind +
                     "; --out writes only to a regular file or a new path");
  }
}

void CheckOutputPath(const std::string& path) {
  if (path.empty()) throw UsageError("--out is empty: give the result file's path");
  if (path.back() == '/') {
    throw UsageError("output path '" + path + "' names a directory; give a file path");
  }
  RefuseNonRegularOutput(path);
  const std::string dir = DirOf(path);
  // access() says yes to root for anything, so make and remove a real file
  // where the atomic write will make its temporary one.
  std::string probe = dir + "/.mntscale-out-check." + std::to_string(getpid()) + ".XXXXXX";
  int fd = mkstemp(probe.data());
  if (fd < 0) {
    int err = errno;
    throw UsageError("output path '" + path + "' cannot be written: creating a file in '" + dir +
                     "': " + ErrnoName(err) + " (" + strerror(err) + ")");
  }
  close(fd);
  unlink(probe.c_str());
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    int wfd = open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (wfd < 0) {
      int err = errno;
      throw UsageError("output path '" + path + "' cannot be written: " + ErrnoName(err) + " (" +
                       strerror(err) + ")");
    }
    close(wfd);
  }
}

std::string OutputStamp(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

void RefuseOutputWrittenSince(const std::string& path, const std::string& stamp) {
  if (OutputStamp(path) == stamp) return;
  throw UsageError("output path '" + path +
                   "' was written while this run waited for the run lock (another run's "
                   "results?); refusing to replace it: give another --out");
}

std::string DefaultOutputPath() {
  if (mkdir("results", 0755) != 0 && errno != EEXIST) {
    int err = errno;
    throw UsageError("no --out given and the default directory 'results' cannot be made: " +
                     ErrnoName(err) + " (" + strerror(err) + "); give --out FILE");
  }
  char stamp[32];
  time_t t = time(nullptr);
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  return "results/mntscale-" + Hostname() + "-" + stamp + "-" + std::to_string(getpid()) + ".json";
}

}  // namespace mntscale
