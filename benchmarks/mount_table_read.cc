// mount_table_read: reading a whole mount table of M mounts. mountinfo walks
// the namespace under namespace_sem (read) and formats a line per mount;
// listmount (6.8+) copies out only ids; statmount then asks for each mount
// separately. What a monitoring agent or health check pays as M grows, idle
// and while another namespace churns (writers hold namespace_sem for write).
#include <vector>

#include "mntscale/run/churn.h"
#include "mntscale/model/sandbox.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

struct ReadState {
  std::vector<uint64_t> ids;
  std::vector<char> buf;
};

ReadState& State(OpContext& c) { return *static_cast<ReadState*>(c.scratch); }

// All mount ids of the caller's namespace, a buffer-full per call. Returns
// the count or -errno.
long ListAll(ReadState& st) {
  MntIdReq req = {};
  req.size = kMntIdReqSize0;  // mnt_ns_id absent: the caller's namespace
  req.mnt_id = kLsmtRoot;
  size_t n = 0;
  for (;;) {
    req.param = n ? st.ids[n - 1] : 0;  // continue after the last id seen
    long got = ListMount(&req, st.ids.data() + n, st.ids.size() - n, 0);
    if (got < 0) return -errno;
    n += got;
    if (n < st.ids.size()) return static_cast<long>(n);
    st.ids.resize(st.ids.size() * 2);
  }
}

int OpMountinfo(OpContext& c) {
  ReadState& st = State(c);
  long n = ReadOwnMountinfo(st.buf.data(), st.buf.size());
  return n < 0 ? static_cast<int>(n) : 0;
}

int OpListmount(OpContext& c) {
  long n = ListAll(State(c));
  return n < 0 ? static_cast<int>(n) : 0;
}

// What `findmnt`-style tools do with the new API: every mount's basics,
// mount point and root.
int OpStatmount(OpContext& c) {
  ReadState& st = State(c);
  long n = ListAll(st);
  if (n < 0) return static_cast<int>(n);
  MntIdReq req = {};
  req.size = kMntIdReqSize0;
  req.param = kStatmountSbBasic | kStatmountMntBasic | kStatmountMntRoot | kStatmountMntPoint |
              kStatmountFsType;
  for (long i = 0; i < n; ++i) {
    req.mnt_id = st.ids[i];
    if (StatMount(&req, st.buf.data(), st.buf.size(), 0) < 0) return -errno;
  }
  return 0;
}

enum class Method { kMountinfo, kListmount, kStatmount };
constexpr EnumName<Method> kMethodNames[] = {{Method::kMountinfo, "mountinfo"},
                                             {Method::kListmount, "listmount"},
                                             {Method::kStatmount, "statmount"}};
// Indexed by Method.
constexpr OpInfo kMethods[] = {
    {"mountinfo", "full read of /proc/thread-self/mountinfo", OpMountinfo},
    {"listmount", "listmount(LSMT_ROOT) of every mount id", OpListmount},
    {"statmount", "listmount, then statmount of each mount", OpStatmount},
};
static_assert(NamesInOrder(kMethods, kMethodNames));

void MountTableRead(Session& s, const Point& p, Entry& e) {
  const Method method = p.Enum(kMethodNames, "method");
  const OpInfo* op = &kMethods[static_cast<int>(method)];
  if (method != Method::kMountinfo && !HaveListmount()) {
    throw Unsupported("listmount needs Linux >= 6.8");
  }
  if (method == Method::kStatmount && !HaveStatmount()) {
    throw Unsupported("statmount needs Linux >= 6.8");
  }
  const int m = p.Int("mounts");

  ScratchNs table = NamespaceWithMounts(m, Propagation::kPrivate);
  int in_ns = 0;
  table.Run([&] { in_ns = CountOwnMounts(); });
  ScratchNs writer_ns;  // the churn happens in a namespace of its own
  const bool churn = p.Int("churn") != 0;
  std::vector<WorkerPlan> plans = s.Workers(p, nullptr, op, "/", churn ? 2 : 1);
  plans[0].container = &table.container();
  plans[0].role = "reader";
  plans[0].setup = [in_ns](OpContext& c) {
    auto* st = new ReadState;
    st->ids.resize(in_ns + 64);
    st->buf.resize(1 << 16);
    c.scratch = st;
  };
  plans[0].cleanup = [](OpContext& c) { delete static_cast<ReadState*>(c.scratch); };
  if (churn) {
    plans[1].container = &writer_ns.container();
    MakeWriter(&plans[1], WriterKind::kMount);
  }
  RunSpec spec;
  spec.workers = plans;
  spec.latency = true;
  RunResult r = s.Measure(std::move(spec), &e);
  // One measured reader: real_time is the wall time of one full read.
  const double per_read_ns = r.ops ? r.measured_s / r.ops * 1e9 : 0;
  e.Set("mounts_in_ns", in_ns);
  e.Set("per_read_ns", per_read_ns);
  e.Set("per_mount_ns", in_ns ? per_read_ns / in_ns : 0);
  if (churn) {
    auto it = r.role_ops_per_s.find("writer");
    e.Set("writer_ops_per_sec", it == r.role_ops_per_s.end() ? 0 : it->second);
  }
}

}  // namespace

MNTSCALE_SCENARIO(
    mount_table_read,
    {
        .name = "mount_table_read",
        .mechanism = "whole-table reads under namespace_sem: mountinfo's per-mount formatting vs "
                     "listmount's ids vs one statmount per mount",
        .expect = "per read linear in mounts (mountinfo ~1.5 us, listmount ~0.16 us, statmount "
                  "~2.7 us per mount); churn adds namespace_sem waits",
        .axes = {EnumAxis("method", "mountinfo,listmount,statmount", kMethodNames),
                 axes::Mounts("100,1000,5000,20000"),
                 BoolAxis("churn", "0,1")},
        .run = MountTableRead,
        .claims = {claims::Linear("per_read_ns", "mounts", 0.9, 300, 5000, "ns/mount",
                                  "a full mountinfo read is linear in mounts (0.3-5 µs per mount)")
                       .Where({{"method", "mountinfo"}, {"churn", "0"}}),
                   claims::Ratio("per_mount_ns", {{"method", "mountinfo"}},
                                 {{"method", "listmount"}}, 5, 1000,
                                 "listmount is at least 5x cheaper per mount than mountinfo")
                       .Where({{"churn", "0"}})},
    });

}  // namespace mntscale
