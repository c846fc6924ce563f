// Reading a live host's mount namespaces (issue 25): the census, fanotify
// mount events and /proc/stat. Formatting is in observe_report.cc.
#include "mntscale/live/observe.h"

#include <dirent.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "mntscale/sys/sys.h"

namespace mntscale {

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool HasCap(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return (data[cap / 32].effective >> (cap % 32)) & 1;
}


std::string Comm(int pid) {
  std::string c;
  if (!TryReadFile("/proc/" + std::to_string(pid) + "/comm", &c)) return "";
  while (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
}

bool IsPid(const char* name) {
  if (!*name) return false;
  for (const char* p = name; *p; ++p) {
    if (*p < '0' || *p > '9') return false;
  }
  return true;
}

// Every mount namespace on the host: through each process's ns/mnt and, with
// scan_fds, each open fd on one (a runtime or a benchmark holding namespaces
// with no process in them). Keyed by inode, first finder kept.
std::vector<NamespaceCount> FindNamespaces(bool scan_fds, Census* c) {
  std::vector<NamespaceCount> out;
  std::unordered_map<uint64_t, size_t> seen;
  DIR* proc = opendir("/proc");
  if (!proc) throw SysError("opendir", "/proc", errno);
  std::vector<int> pids;
  while (dirent* e = readdir(proc)) {
    if (IsPid(e->d_name)) pids.push_back(atoi(e->d_name));
  }
  closedir(proc);
  std::sort(pids.begin(), pids.end());
  for (int pid : pids) {
    std::string base = "/proc/" + std::to_string(pid);
    struct stat st;
    if (stat((base + "/ns/mnt").c_str(), &st) != 0) {
      // ENOENT: it exited. Anything else (EACCES: a protected PID 1 under
      // some hypervisors and LSMs) is a process whose namespace we miss.
      if (errno != ENOENT && errno != ESRCH) {
        if (c->unreadable_processes.size() < 20) {
          c->unreadable_processes.push_back("pid " + std::to_string(pid) + " (" + Comm(pid) +
                                            "): " + ErrnoName(errno));
        }
        ++c->unreadable_process_count;
      }
      continue;
    }
    if (!seen.count(st.st_ino)) {
      seen[st.st_ino] = out.size();
      NamespaceCount n;
      n.inode = st.st_ino;
      n.pid = pid;
      n.comm = Comm(pid);
      n.path = base + "/ns/mnt";
      out.push_back(std::move(n));
    }
  }
  if (!scan_fds) return out;
  for (int pid : pids) {
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = opendir(dir.c_str());
    if (!d) continue;  // exited, or a kernel thread
    while (dirent* e = readdir(d)) {
      if (!IsPid(e->d_name)) continue;
      char link[64];
      ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
      if (len < 6 || strncmp(link, "mnt:[", 5) != 0) continue;
      link[len] = 0;
      uint64_t ino = strtoull(link + 5, nullptr, 10);
      if (seen.count(ino)) continue;
      seen[ino] = out.size();
      NamespaceCount n;
      n.inode = ino;
      n.pid = pid;
      n.comm = Comm(pid);
      n.held_by_fd = true;
      n.path = dir + "/" + e->d_name;
      out.push_back(std::move(n));
    }
    closedir(d);
  }
  return out;
}

// A namespace file opened once, with the errno of a failed open.
struct OpenedNs : Fd {
  explicit OpenedNs(const std::string& path) : Fd(open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    open_errno = valid() ? 0 : errno;
  }
  int open_errno;
};

struct Shape {
  bool overlay = false, idmapped = false;
  int layers = 0;
};

// The mountinfo of a process in the namespace. A namespace held only by an
// fd has no process: a child enters it (setns also moves the child's root to
// the namespace's root) and waits while its mountinfo is read.
// nsfd: the namespace, opened once by the caller (it also asks it its id).
bool ReadMountinfo(const NamespaceCount& n, const OpenedNs& nsfd, std::string* text, std::string* err) {
  if (!n.held_by_fd) {
    if (TryReadFile("/proc/" + std::to_string(n.pid) + "/mountinfo", text)) return true;
    *err = "reading /proc/" + std::to_string(n.pid) + "/mountinfo: " + ErrnoName(errno);
    return false;
  }
  if (!nsfd.valid()) {
    *err = "open " + n.path + ": " + ErrnoName(nsfd.open_errno);
    return false;
  }
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) {
    *err = std::string("pipe2: ") + ErrnoName(errno);
    return false;
  }
  pid_t child = fork();
  if (child < 0) {
    *err = std::string("fork: ") + ErrnoName(errno);
    close(ready[0]);
    close(ready[1]);
    return false;
  }
  if (child == 0) {
    char ok = setns(nsfd.get(), CLONE_NEWNS) == 0 ? 1 : 0;
    int e = errno;
    if (write(ready[1], &ok, 1) != 1 || !ok) _exit(e ? e : 1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char ok = 0;
  ssize_t r;
  do {
    r = read(ready[0], &ok, 1);
  } while (r < 0 && errno == EINTR);
  close(ready[0]);
  bool got = false;
  if (r == 1 && ok) {
    got = TryReadFile("/proc/" + std::to_string(child) + "/mountinfo", text);
    if (!got) *err = "reading a setns child's mountinfo: " + ErrnoName(errno);
  } else {
    *err = "setns into " + n.path + " failed";
  }
  kill(child, SIGKILL);
  while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
  }
  return got;
}

// "36 35 98:0 /mnt1 /mnt2 rw,noatime,idmapped master:1 - overlay none rw,lowerdir=..."
void CountMountinfo(const std::string& text, NamespaceCount* n, std::vector<uint64_t>* ids) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ++n->mounts;
    ids->push_back(strtoull(line.c_str(), nullptr, 10));
    size_t dash = line.find(" - ");
    std::istringstream head(line.substr(0, dash));
    std::string f[6];
    for (auto& x : f) head >> x;
    for (size_t at = 0; at <= f[5].size();) {  // per-mount options
      size_t comma = f[5].find(',', at);
      if (f[5].compare(at, comma == std::string::npos ? std::string::npos : comma - at,
                       "idmapped") == 0) {
        ++n->idmapped;
      }
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype, source, superopts;
    tail >> fstype >> source >> superopts;
    if (fstype == "overlay") {
      ++n->overlay;
      n->overlay_layers += OverlayLayers(superopts);
    }
  }
}

}  // namespace

CensusSource ParseCensusSource(const std::string& s) {
  if (s == "auto") return CensusSource::kAuto;
  if (s == "listmount") return CensusSource::kListmount;
  if (s == "mountinfo") return CensusSource::kMountinfo;
  throw UsageError("--source must be auto, listmount or mountinfo, not '" + s + "'");
}

const char* CensusSourceName(CensusSource s) {
  switch (s) {
    case CensusSource::kListmount:
      return "listmount";
    case CensusSource::kMountinfo:
      return "mountinfo";
    default:
      return "auto";
  }
}

int OverlayLayers(const std::string& options) {
  // Options are comma-separated; a comma inside a value is escaped.
  size_t at = options.find("lowerdir=");
  while (at != std::string::npos && at != 0 && options[at - 1] != ',') {
    at = options.find("lowerdir=", at + 1);
  }
  if (at == std::string::npos) return 0;
  int layers = 0;
  bool in_layer = false;
  for (size_t i = at + 9; i < options.size(); ++i) {
    char c = options[i];
    if (c == '\\' && i + 1 < options.size()) {
      in_layer = true;
      ++i;
      continue;
    }
    if (c == ',') break;
    if (c == ':') {
      if (in_layer) ++layers;
      in_layer = false;
      continue;
    }
    in_layer = true;
  }
  return layers + (in_layer ? 1 : 0);
}

struct CensusReader::Impl {
  bool scan_fds = true;
  std::string why;
  std::unordered_map<uint64_t, Shape> shapes;  // by unique mount id
  std::vector<char> buf = std::vector<char>(64 * 1024);

  // statmount of one mount, growing the buffer on EOVERFLOW.
  const StatMountHead* Stat(uint64_t ns_id, uint64_t mnt_id, uint64_t mask) {
    MntIdReq req{kMntIdReqSize1, 0, mnt_id, mask, ns_id};
    for (;;) {
      if (StatMount(&req, buf.data(), buf.size(), 0) == 0) {
        return reinterpret_cast<const StatMountHead*>(buf.data());
      }
      if (errno != EOVERFLOW || buf.size() >= (16u << 20)) return nullptr;
      buf.resize(buf.size() * 2);
    }
  }

  void ReadListmount(NamespaceCount* n, std::vector<uint64_t>* ids,
                     std::unordered_set<uint64_t>* live) {
    Fd nsfd(open(n->path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!nsfd.valid()) {
      n->error = "open " + n->path + ": " + ErrnoName(errno);
      return;
    }
    n->ns_id = MntnsId(nsfd.get());
    if (!n->ns_id) {
      n->error = "ioctl(NS_GET_MNTNS_ID) on " + n->path + ": " + ErrnoName(errno);
      return;
    }
    std::vector<uint64_t> chunk(4096);
    MntIdReq req{kMntIdReqSize1, 0, kLsmtRoot, 0, n->ns_id};
    for (;;) {
      long got = ListMount(&req, chunk.data(), chunk.size(), 0);
      if (got < 0) {
        n->error = "listmount(ns " + std::to_string(n->ns_id) + "): " + ErrnoName(errno);
        return;
      }
      ids->insert(ids->end(), chunk.begin(), chunk.begin() + got);
      if (static_cast<size_t>(got) < chunk.size()) break;
      req.param = chunk[got - 1];
    }
    n->mounts = static_cast<long>(ids->size());
    for (uint64_t id : *ids) {
      live->insert(id);
      auto it = shapes.find(id);
      if (it == shapes.end()) {
        Shape s;
        if (const StatMountHead* h = Stat(n->ns_id, id, kStatmountSbBasic | kStatmountMntBasic)) {
          s.idmapped = h->mnt_attr & kMountAttrIdmap;
          s.overlay = h->sb_magic == kOverlayMagic;
          if (s.overlay) {
            if (const StatMountHead* o = Stat(n->ns_id, id, kStatmountMntOpts)) {
              if (o->mask & kStatmountMntOpts) s.layers = OverlayLayers(o->str + o->mnt_opts);
            }
          }
        } else if (errno == ENOENT) {
          continue;  // unmounted since listmount: not cached, counted as listed
        } else {
          // Listed but not readable (EPERM, ENOMEM, a buffer past 16 MiB):
          // its shape is unknown, so it is neither counted as a plain mount
          // nor cached; the next census asks again.
          ++n->unreadable_mounts;
          continue;
        }
        it = shapes.emplace(id, s).first;
      }
      n->overlay += it->second.overlay;
      n->overlay_layers += it->second.layers;
      n->idmapped += it->second.idmapped;
    }
  }
};

CensusReader::CensusReader(CensusSource source, bool scan_fds)
    : impl_(std::make_unique<Impl>()), source_(source) {
  impl_->scan_fds = scan_fds;
  if (!HasCap(CAP_SYS_ADMIN) || !HasCap(CAP_SYS_PTRACE)) {
    throw UsageError(
        "observe needs CAP_SYS_ADMIN and CAP_SYS_PTRACE to read other mount namespaces (their "
        "/proc/PID/ns/mnt, mountinfo and listmount); run it as root, or with those capabilities "
        "(scripts/observe/ has a systemd unit and a DaemonSet that do)");
  }
  // listmount of another namespace by id needs 6.11 (mnt_ns_id), and the id
  // comes from NS_GET_MNTNS_ID (6.9).
  std::string lm_why;
  if (!HaveListmount() || !HaveStatmount()) {
    lm_why = "listmount/statmount need Linux >= 6.8";
  } else {
    Fd self(open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
    uint64_t id = self.valid() ? MntnsId(self.get()) : 0;
    uint64_t one = 0;
    MntIdReq req{kMntIdReqSize1, 0, kLsmtRoot, 0, id};
    if (!id) {
      lm_why = "no NS_GET_MNTNS_ID ioctl (Linux >= 6.9)";
    } else if (ListMount(&req, &one, 1, 0) < 0) {
      lm_why = "listmount by namespace id failed (" + ErrnoName(errno) + "; Linux >= 6.11)";
    }
  }
  if (source == CensusSource::kListmount && !lm_why.empty()) {
    throw UsageError("--source listmount: " + lm_why);
  }
  if (source == CensusSource::kAuto) {
    source_ = lm_why.empty() ? CensusSource::kListmount : CensusSource::kMountinfo;
    impl_->why = lm_why.empty() ? "listmount/statmount by namespace id"
                                : "mountinfo: " + lm_why;
  } else {
    impl_->why = std::string("asked for (--source ") + CensusSourceName(source) + ")";
  }
}

CensusReader::~CensusReader() = default;

Census CensusReader::Read() {
  double t0 = Now();
  Census c;
  c.source = source_;
  c.source_why = impl_->why;
  // Kernel threads run in the initial mount namespace, so kthreadd names it
  // when PID 1's is unreadable.
  struct stat st;
  if (stat("/proc/1/ns/mnt", &st) == 0) {
    c.host_inode = st.st_ino;
    c.host_from = "pid 1";
  } else if (stat("/proc/2/ns/mnt", &st) == 0 && Comm(2) == "kthreadd") {
    c.host_inode = st.st_ino;
    c.host_from = "pid 2 (kthreadd)";
  }
  c.namespaces = FindNamespaces(impl_->scan_fds, &c);
  std::unordered_set<uint64_t> live;
  for (NamespaceCount& n : c.namespaces) {
    std::vector<uint64_t>& ids = c.ids[n.inode];
    if (source_ == CensusSource::kListmount) {
      impl_->ReadListmount(&n, &ids, &live);
    } else {
      std::string text;
      OpenedNs nsfd(n.path);  // one open serves the setns child and the id
      if (nsfd.valid()) n.ns_id = MntnsId(nsfd.get());
      if (ReadMountinfo(n, nsfd, &text, &n.error)) CountMountinfo(text, &n, &ids);
    }
    if (!n.error.empty()) c.ids.erase(n.inode);
  }
  // A vanished process's namespace is not a namespace that could not be
  // read: it is gone (the census is a snapshot, not atomic).
  c.namespaces.erase(std::remove_if(c.namespaces.begin(), c.namespaces.end(),
                                    [](const NamespaceCount& n) {
                                      return n.error.find("ENOENT") != std::string::npos ||
                                             n.error.find("ESRCH") != std::string::npos;
                                    }),
                     c.namespaces.end());
  if (source_ == CensusSource::kListmount) {
    for (auto it = impl_->shapes.begin(); it != impl_->shapes.end();) {
      it = live.count(it->first) ? std::next(it) : impl_->shapes.erase(it);
    }
  }
  std::stable_sort(c.namespaces.begin(), c.namespaces.end(),
                   [](const NamespaceCount& a, const NamespaceCount& b) {
                     return a.mounts > b.mounts;
                   });
  c.read_s = Now() - t0;
  return c;
}

CpuTimes ParseCpuTimes(const std::string& text) {
  CpuTimes t;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 4, "cpu ") != 0) continue;
    std::istringstream f(line.substr(4));
    f >> t.user >> t.nice >> t.system >> t.idle >> t.iowait >> t.irq >> t.softirq >> t.steal;
    break;
  }
  return t;
}

CpuTimes ReadCpuTimes() { return ParseCpuTimes(ReadFile("/proc/stat")); }

}  // namespace mntscale
