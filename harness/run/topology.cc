#include "mntscale/run/topology.h"

#include "mntscale/sys/text.h"

#include <hwloc.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string_view>
#include <tuple>

#include "mntscale/sys/datafile.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

constexpr char kTopologyDir[] = MNTSCALE_SOURCE_DIR "/topologies/";

std::string ErrnoText(int err) { return ErrnoName(err) + " (" + strerror(err) + ")"; }


// Reads a whole file, keeping errno: a --topology path the user got wrong
// should say ENOENT or EACCES, not just "failed".
int ReadWholeFile(const std::string& path, std::string* out) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno;
  out->clear();
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return 0;
    out->append(buf, static_cast<size_t>(n));
  }
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The names in topologies/, for error messages.
std::string KnownTopologyNames() {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(kTopologyDir, ec)) {
    std::string ext = e.path().extension().string();
    if (ext == ".synthetic" || ext == ".xml") {
      names.insert(e.path().stem().string());
    }
  }
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none found" : out;
}

// Value of "key<tab>: value" from the first processor block of /proc/cpuinfo.
std::string CpuinfoField(const std::string& cpuinfo, std::string_view key) {
  std::istringstream in(cpuinfo);
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (TrimView(std::string_view(line).substr(0, colon)) == key) {
      return std::string(TrimView(std::string_view(line).substr(colon + 1)));
    }
  }
  return "";
}

// Owns an hwloc topology handle.
class HwlocHandle {
 public:
  HwlocHandle() { Check(hwloc_topology_init(&topo_), "hwloc_topology_init", ""); }
  ~HwlocHandle() { hwloc_topology_destroy(topo_); }
  HwlocHandle(const HwlocHandle&) = delete;
  HwlocHandle& operator=(const HwlocHandle&) = delete;
  hwloc_topology_t get() const { return topo_; }

 private:
  hwloc_topology_t topo_ = nullptr;
};


}  // namespace

// Turns a loaded hwloc topology into the flat PU list placement works on.
// hwloc stays inside this file; callers only see Pu and TopologySummary.
class TopologyBuilder {
 public:
  static Topology Build(hwloc_topology_t t, std::string source) {
    Topology topo;
    topo.summary_.source = std::move(source);
    int n = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    // Cores and packages are numbered densely by the object itself, in the
    // order of their first PU: a malformed XML can nest a Core in a Core, and
    // then hwloc's per-type count is -1 (HWLOC_TYPE_DEPTH_MULTIPLE) and two
    // cores share a logical index (found by fuzz_topology_xml).
    std::map<hwloc_obj_t, int> core_ids, package_ids;
    std::vector<int> pus_in_core;
    for (int i = 0; i < n; ++i) {
      hwloc_obj_t pu = hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, i);
      hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_CORE, pu);
      hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_PACKAGE, pu);
      Pu p;
      p.os_index = static_cast<int>(pu->os_index);
      // Some VMs and XML files have no Core objects: a PU without one is a
      // core of its own.
      p.core = core_ids.emplace(core ? core : pu, static_cast<int>(core_ids.size())).first->second;
      p.package = package_ids.emplace(pkg, static_cast<int>(package_ids.size())).first->second;
      // The PU's nodeset is its local memory; the lowest node is the DRAM
      // one when HBM or CXL nodes share the same CPUs.
      p.numa =
          (pu->nodeset && !hwloc_bitmap_iszero(pu->nodeset)) ? hwloc_bitmap_first(pu->nodeset) : -1;
      // PUs of one core are consecutive in logical order, so counting
      // earlier PUs of the same core gives the SMT rank.
      pus_in_core.resize(core_ids.size(), 0);
      p.smt_rank = pus_in_core[p.core]++;
      topo.pus_.push_back(p);
    }
    TopologySummary& s = topo.summary_;
    s.packages = static_cast<int>(package_ids.size());
    s.numa_nodes = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    s.cores = static_cast<int>(core_ids.size());
    s.pus = n;
    hwloc_obj_t info_obj = hwloc_get_obj_by_type(t, HWLOC_OBJ_PACKAGE, 0);
    if (!info_obj) info_obj = hwloc_get_root_obj(t);
    if (const char* v = hwloc_obj_get_info_by_name(info_obj, "CPUModel")) {
      s.cpu_model = v;
    }
    if (const char* v = hwloc_obj_get_info_by_name(info_obj, "CPUVendor")) {
      s.cpu_vendor = v;
    }
    return topo;
  }
};

Topology Topology::Host() {
  HwlocHandle h;
  Check(hwloc_topology_load(h.get()), "hwloc_topology_load", "host");
  Topology topo = TopologyBuilder::Build(h.get(), "host");
  if (topo.pus_.empty()) {
    throw SysError("hwloc_topology_load", "host", ENODEV,
                   "hwloc found no PU this process may run on");
  }
  if (topo.summary_.cpu_model.empty() || topo.summary_.cpu_vendor.empty()) {
    std::string cpuinfo;
    if (ReadWholeFile("/proc/cpuinfo", &cpuinfo) == 0) {
      if (topo.summary_.cpu_model.empty()) {
        topo.summary_.cpu_model = CpuinfoField(cpuinfo, "model name");
      }
      if (topo.summary_.cpu_vendor.empty()) {
        topo.summary_.cpu_vendor = CpuinfoField(cpuinfo, "vendor_id");
      }
    }
  }
  return topo;
}

long SyntheticPuCount(const std::string& desc) {
  // Tokens are levels separated by blanks; a level is "[type:]arity" with an
  // optional "(attributes)" and may be preceded by "[memory children]", which
  // add no PUs. The product saturates just past the cap.
  long product = 1;
  size_t i = 0;
  bool any = false;
  while (i < desc.size()) {
    while (i < desc.size() && isspace(static_cast<unsigned char>(desc[i]))) ++i;
    if (i >= desc.size()) break;
    std::string tok;
    int depth = 0;
    for (; i < desc.size() && (depth > 0 || !isspace(static_cast<unsigned char>(desc[i]))); ++i) {
      char c = desc[i];
      if (c == '(' || c == '[') ++depth;
      if ((c == ')' || c == ']') && depth > 0) --depth;
      tok += c;
    }
    if (tok[0] == '[' || tok[0] == '(') {  // a memory child, or the root's attributes
      size_t close = 0;
      for (int depth = 0; close < tok.size(); ++close) {
        depth += tok[close] == '(' || tok[close] == '[' ? 1
                 : tok[close] == ')' || tok[close] == ']' ? -1
                                                          : 0;
        if (depth == 0) break;
      }
      if (close + 1 == tok.size()) continue;
      throw UsageError("invalid hwloc synthetic topology '" + desc + "': level '" + tok +
                       "' does not end where its brackets close");
    }
    // Strictly [TYPE:]COUNT[(attributes)], TYPE alphanumeric: hwloc itself
    // reads laxer forms ("pack\371:78l3:12" as several levels; found by
    // fuzz_topology_synthetic), and a form this count misreads must not
    // reach it.
    std::string_view t = tok;
    if (size_t paren = t.find('('); paren != std::string_view::npos) {
      // The attributes' closing parenthesis must end the level ("8()8()" is
      // two levels to hwloc).
      size_t close = paren;
      for (int depth = 0; close < t.size(); ++close) {
        depth += t[close] == '(' ? 1 : t[close] == ')' ? -1 : 0;
        if (depth == 0) break;
      }
      t = close + 1 == t.size() ? t.substr(0, paren) : std::string_view{};
    }
    if (size_t colon = t.find(':'); colon != std::string_view::npos) {
      std::string_view type = t.substr(0, colon);
      bool ok = !type.empty() && isalpha(static_cast<unsigned char>(type[0]));
      for (char c : type) ok &= isalnum(static_cast<unsigned char>(c)) != 0;
      t = ok ? t.substr(colon + 1) : std::string_view{};
    }
    long arity = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), arity);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size() || arity < 1) {
      throw UsageError("invalid hwloc synthetic topology '" + desc + "': level '" + tok +
                       "' is not TYPE:COUNT (expected a form such as 'pack:2 numa:1 core:24 pu:2')");
    }
    any = true;
    product = std::min(product * std::min(arity, kMaxTopologyPus + 1), kMaxTopologyPus + 1);
  }
  if (!any) throw UsageError("invalid hwloc synthetic topology '" + desc + "': no levels");
  return product;
}

namespace {

void RequirePuCap(long pus, const std::string& what) {
  if (pus > kMaxTopologyPus) {
    throw UsageError(what + " has more than " + std::to_string(kMaxTopologyPus) +
                     " PUs, the cap (the largest real machines "
                     "have under 2,000; hwloc needs minutes for a topology this large)");
  }
}

}  // namespace

Topology Topology::Synthetic(const std::string& desc) {
  RequirePuCap(SyntheticPuCount(desc), "synthetic topology '" + desc + "'");
  HwlocHandle h;
  if (hwloc_topology_set_synthetic(h.get(), desc.c_str()) < 0) {
    int err = errno;
    throw UsageError("invalid hwloc synthetic topology '" + desc + "': " + ErrnoText(err) +
                     "; expected a form such as 'pack:2 numa:1 core:24 pu:2'");
  }
  Check(hwloc_topology_load(h.get()), "hwloc_topology_load", "synthetic:" + desc);
  return TopologyBuilder::Build(h.get(), "synthetic:" + desc);
}

namespace {

bool XmlLoadsInChild(const std::string& path) {
  pid_t pid = fork();
  if (pid < 0) throw SysError("fork", "hwloc XML probe of " + path, errno);
  if (pid == 0) {
    // Die by the signal itself: no sanitizer or fuzzer crash handler here.
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) signal(sig, SIG_DFL);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, STDERR_FILENO);  // hwloc's own complaints: the parent says why
    hwloc_topology_t t;
    bool ok = hwloc_topology_init(&t) == 0 && hwloc_topology_set_xml(t, path.c_str()) == 0 &&
              hwloc_topology_load(t) == 0;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw SysError("waitpid", "hwloc XML probe of " + path, errno);
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

Topology Topology::Xml(const std::string& path) {
  // hwloc's own message for a missing file is a bare -1; check first so the
  // error names the path and errno.
  std::string text = ReadDataFile(path, "topology XML");
  // Every PU is an element of its own, so counting them bounds the work
  // before hwloc parses anything (either quote style).
  // Character references could spell "PU" past the count below; hwloc's own
  // exports do not use them.
  if (text.find("&#") != std::string::npos) {
    throw UsageError("topology XML '" + path +
                     "' uses character references (&#...;); export it with lstopo --of xml");
  }
  long pus = 0, objects = 0;
  for (size_t at = text.find("type"); at != std::string::npos && pus <= kMaxTopologyPus;
       at = text.find("type", at + 1)) {
    size_t i = text.find_first_not_of(" \t\r\n", at + 4);
    if (i == std::string::npos || text[i] != '=') continue;
    i = text.find_first_not_of(" \t\r\n", i + 1);
    if (i != std::string::npos && (text[i] == '"' || text[i] == '\'') &&
        text.compare(i + 1, 2, "PU") == 0 && i + 3 < text.size() && text[i + 3] == text[i]) {
      ++pus;
    }
  }
  for (size_t at = text.find("<object"); at != std::string::npos; at = text.find("<object", at + 1)) {
    ++objects;
  }
  if (objects > 8 * kMaxTopologyPus) {
    throw UsageError("topology XML '" + path + "' has " + std::to_string(objects) +
                     " objects; more than a machine of " + std::to_string(kMaxTopologyPus) +
                     " PUs would have");
  }
  RequirePuCap(pus, "topology XML '" + path + "'");
  // hwloc 2.9's XML loader dereferences NULL on some malformed files (a
  // mangled attribute of the Machine object; found by fuzz_topology_xml).
  // Load it in a child first, so such a file is a usage error, not a SIGSEGV.
  if (!XmlLoadsInChild(path)) {
    throw UsageError("cannot load topology XML '" + path +
                     "': hwloc rejected it or crashed on it; is it an hwloc export "
                     "(lstopo --of xml)?");
  }
  HwlocHandle h;
  if (hwloc_topology_set_xml(h.get(), path.c_str()) < 0 || hwloc_topology_load(h.get()) < 0) {
    int err = errno;
    throw UsageError("cannot load topology XML '" + path + "': " + ErrnoText(err) +
                     "; is it an hwloc export (lstopo --of xml)?");
  }
  Topology topo = TopologyBuilder::Build(h.get(), "xml:" + path);
  if (topo.pus_.empty()) {
    throw UsageError("topology XML '" + path + "' holds no PUs");
  }
  return topo;
}

namespace {

// A file named by --topology: hwloc XML, or text holding a synthetic string.
Topology LoadFile(const std::string& path) {
  std::string text = ReadDataFile(path, "topology file");
  std::string_view body = TrimView(text);
  if (!body.empty() && body.front() == '<') return Topology::Xml(path);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::string_view v = line;
    v = TrimView(v.substr(0, v.find('#')));
    if (v.empty()) continue;
    try {
      return Topology::Synthetic(std::string(v));
    } catch (const UsageError& e) {
      throw UsageError("topology file '" + path + "': " + e.what());
    }
  }
  throw UsageError("topology file '" + path + "' holds neither hwloc XML nor a synthetic string");
}

}  // namespace

Topology Topology::Load(const std::string& spec) {
  Topology topo;
  if (spec == "host") {
    topo = Host();
  } else if (IsRegularFile(spec)) {
    topo = LoadFile(spec);
  } else if (spec.find('/') != std::string::npos) {
    // Meant as a path: say why it is not there rather than trying it as a
    // name or a synthetic string.
    struct stat st;
    if (stat(spec.c_str(), &st) == 0) ReadDataFile(spec, "topology");  // says what it is
    throw UsageError("cannot load topology '" + spec + "': " + ErrnoText(errno));
  } else {
    bool found = false;
    for (const char* ext : {"", ".xml", ".synthetic"}) {
      std::string path = std::string(kTopologyDir) + spec + ext;
      if (!spec.empty() && IsRegularFile(path)) {
        topo = LoadFile(path);
        found = true;
        break;
      }
    }
    if (!found) {
      if (spec.find(':') == std::string::npos) {
        throw UsageError("cannot load topology '" + spec +
                         "': not 'host', not a file, not a name in " + kTopologyDir + " (" +
                         KnownTopologyNames() +
                         "), and not an hwloc synthetic string such as "
                         "'pack:2 numa:1 core:24 pu:2'");
      }
      topo = Synthetic(spec);
    }
  }
  topo.summary_.name = spec;
  return topo;
}

}  // namespace mntscale
