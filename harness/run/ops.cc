#include "mntscale/run/ops.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <map>

namespace mntscale {
namespace {

std::map<std::string, OpInfo, std::less<>>& Registry() {
  static std::map<std::string, OpInfo, std::less<>> r;
  return r;
}

int Ret(long rc) { return rc < 0 ? -errno : 0; }

int OpStat(OpContext& c) {
  struct stat st;
  return Ret(stat(c.path, &st));
}

int OpStatx(OpContext& c) {
  struct statx stx;
  return Ret(statx(AT_FDCWD, c.path, 0, STATX_BASIC_STATS, &stx));
}

int OpOpen(OpContext& c) {
  int fd = open(c.path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  close(fd);
  return 0;
}

int OpOpenat2(OpContext& c) {
  struct open_how how = {};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(syscall(SYS_openat2, AT_FDCWD, c.path, &how, sizeof how));
  if (fd < 0) return -errno;
  close(fd);
  return 0;
}

// A lookup that misses: every layer is searched (negative dentries help once
// warm).
int OpStatMissing(OpContext& c) {
  struct stat st;
  if (stat(c.path2 ? c.path2 : c.path, &st) == 0) return 0;
  return errno == ENOENT ? 0 : -errno;
}

}  // namespace

void RegisterOp(const OpInfo& info) { Registry()[info.name] = info; }

const OpInfo* FindOp(std::string_view name) {
  auto it = Registry().find(name);
  return it == Registry().end() ? nullptr : &it->second;
}

std::vector<const OpInfo*> AllOps() {
  std::vector<const OpInfo*> v;
  for (auto& [k, info] : Registry()) v.push_back(&info);
  return v;
}

std::string OpNames() {
  std::string s;
  for (auto& [k, info] : Registry()) s += (s.empty() ? "" : ", ") + k;
  return s;
}

std::vector<std::string> OpNameList() {
  std::vector<std::string> out;
  for (const OpInfo* o : AllOps()) out.push_back(o->name);
  return out;
}

MNTSCALE_OP(stat, "stat", "stat(2) of the path: a pure path walk", OpStat);
MNTSCALE_OP(statx, "statx", "statx(2) of the path, basic stats", OpStatx);
MNTSCALE_OP(open, "open", "open(O_RDONLY)+close of the path", OpOpen);
MNTSCALE_OP(openat2, "openat2", "openat2(RESOLVE_NO_MAGICLINKS)+close of the path", OpOpenat2);
MNTSCALE_OP(stat_missing, "stat-missing", "stat(2) of a name no layer has (negative lookup)",
            OpStatMissing);

}  // namespace mntscale
