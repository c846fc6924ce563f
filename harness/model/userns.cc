#include "mntscale/model/userns.h"

#include <sched.h>
#include <unistd.h>

#include "mntscale/model/profile.h"
#include "mntscale/sys/sys.h"

namespace mntscale {
namespace {

struct State {
  bool created = false;
  bool forced = false;
  uid_t outer_uid = 0;
  gid_t outer_gid = 0;
};

State g_state;

// The kernel lets a user namespace mount proc only for a pid namespace it
// owns and sysfs only for a network namespace it owns, and even then only
// when an unobstructed proc/sysfs is already visible in the mount namespace
// (mount_too_revealing). A container namespace here is copied from a base
// holding one tmpfs, so the second condition never holds.
constexpr char kProcSysReason[] =
    "cannot be mounted in a rootless container (the kernel wants the pid/network namespace "
    "owned by our user namespace and a fully visible proc/sysfs already in the container's "
    "mount namespace)";

void WriteSelf(const char* file, const std::string& data) {
  std::string path = std::string("/proc/self/") + file;
  Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  Check(fd.get(), "open", path);
  if (write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    Check(-1, "write", path + " = '" + data + "'");
  }
}

std::string UsernsDisabledHint() {
  std::string why;
  long max_userns = ReadSysctl("user.max_user_namespaces");
  std::string clone;
  if (TryReadFile("/proc/sys/kernel/unprivileged_userns_clone", &clone) && clone[0] == '0') {
    why = "kernel.unprivileged_userns_clone = 0";
  } else if (max_userns == 0) {
    why = "user.max_user_namespaces = 0";
  } else {
    std::string aa;
    if (TryReadFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", &aa) &&
        aa[0] == '1') {
      why = "kernel.apparmor_restrict_unprivileged_userns = 1";
    }
  }
  return why.empty() ? "unprivileged user namespaces are not allowed here"
                     : "unprivileged user namespaces are disabled: " + why;
}

}  // namespace

void EnterUserNamespaceIfNeeded(bool force) {
  if (geteuid() == 0 && !force) return;
  g_state.outer_uid = geteuid();
  g_state.outer_gid = getegid();
  g_state.forced = geteuid() == 0;
  if (unshare(CLONE_NEWUSER) != 0) {
    int err = errno;
    throw UsageError(
        "not root, and cannot create a user namespace to run rootless: "
        "unshare(CLONE_NEWUSER): " +
        ErrnoName(err) + " — " +
        (err == EINVAL ? std::string("the process already has threads") : UsernsDisabledHint()));
  }
  // An unprivileged writer of gid_map must give up setgroups first.
  WriteSelf("setgroups", "deny");
  WriteSelf("uid_map", "0 " + std::to_string(g_state.outer_uid) + " 1\n");
  WriteSelf("gid_map", "0 " + std::to_string(g_state.outer_gid) + " 1\n");
  // mqueue mounts (the containers' /dev/mqueue) need the IPC namespace to be
  // ours.
  Check(unshare(CLONE_NEWIPC), "unshare", "CLONE_NEWIPC (in our user namespace)");
  g_state.created = true;
}

bool Rootless() { return g_state.created; }

nlohmann::json UserNamespaceJson() {
  if (!g_state.created) return {{"created", false}};
  return {{"created", true},
          {"forced", g_state.forced},
          {"outer_uid", g_state.outer_uid},
          {"outer_gid", g_state.outer_gid},
          {"map", "0 " + std::to_string(g_state.outer_uid) + " 1"},
          {"limits",
           {std::string("proc and sysfs ") + kProcSysReason,
            "/dev/kmsg is root-only: the mount hash size is estimated",
            "/proc/slabinfo is root-only: slab mount counts are -1",
            "RLIMIT_NOFILE cannot be raised past the hard limit"}}};
}

std::string RootlessProfileProblem(const Profile& profile) {
  if (g_state.created && profile.cgroup != CgroupMount::kNone) {
    return "cgroup mounts need CAP_SYS_ADMIN in the initial user namespace; run as root "
           "without --userns, or use a profile with \"cgroup\": \"none\"";
  }
  if (!g_state.created || (!profile.proc && !profile.sys)) return "";
  return std::string(profile.proc ? "proc" : "sysfs") + " " + kProcSysReason +
         "; use a profile with \"proc\": false and \"sys\": false, e.g. --profile minimal";
}

}  // namespace mntscale
