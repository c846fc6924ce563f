// Rootless use: a user namespace of our own, entered at start-up, in which we
// hold every capability over the mounts we make. Overlay and tmpfs mounts are
// allowed there (Linux >= 5.11); proc and sysfs are not (see
// RootlessProfileProblem), and host-wide views (/dev/kmsg, /proc/slabinfo,
// kernel stacks) are read-only to real root, so those degrade with reasons.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mntscale {

struct Profile;

// Without root (or with force), unshares CLONE_NEWUSER and CLONE_NEWIPC and
// maps uid/gid 0 to the caller's uid/gid (setgroups "deny" first, as an
// unprivileged writer must). With root and !force it does nothing: the
// initial user namespace. Must run before any thread exists (unshare of a
// user namespace fails with EINVAL in a multithreaded process). Throws
// UsageError saying why when the kernel forbids it.
void EnterUserNamespaceIfNeeded(bool force);

// True when we created the user namespace we run in: the results record
// it as context.rootless, since it changes the mechanism (mount ownership,
// what may be mounted), and euid is 0 inside it either way.
bool Rootless();

// {"created", "forced", "outer_uid", "outer_gid", "limits": [...]} for the
// result context.
nlohmann::json UserNamespaceJson();

// "" when this profile can be built here; otherwise why not (proc or sysfs
// in a user namespace that owns neither the pid nor the network namespace,
// and without a fully visible proc/sysfs in the container's namespace).
std::string RootlessProfileProblem(const Profile& profile);

}  // namespace mntscale
