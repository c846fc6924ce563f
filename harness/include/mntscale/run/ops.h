// The operations workers hammer. An op is one function that does one
// operation and returns 0, or -errno when it failed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mntscale {

// Per-worker state an op may use. Set up by the runner inside the worker,
// after it has entered its container.
struct OpContext {
  const char* path = nullptr;   // the target path inside the container
  const char* path2 = nullptr;  // a second path (missing file, bind source, ...)
  int dirfd = -1;               // for *at ops; AT_FDCWD when unset
  int fd = -1;                  // an fd the op may use (e.g. a mount fd)
  int worker = 0;
  unsigned long long counter = 0;  // per-worker sequence, for unique names
  void* scratch = nullptr;         // op-specific, owned by whoever set it
};

using OpFn = int (*)(OpContext&);

struct OpInfo {
  const char* name;
  const char* description;
  OpFn fn;
};

// Ops register themselves (MNTSCALE_OP) so a new op costs one file.
void RegisterOp(const OpInfo& info);
const OpInfo* FindOp(std::string_view name);  // nullptr when unknown
std::vector<const OpInfo*> AllOps();
std::string OpNames();  // "stat, statx, open, openat2"
std::vector<std::string> OpNameList();  // the same names, as a list

struct OpRegistrar {
  explicit OpRegistrar(const OpInfo& info) { RegisterOp(info); }
};

#define MNTSCALE_OP(ident, name, description, fn) \
  static ::mntscale::OpRegistrar mntscale_op_##ident({name, description, fn})

}  // namespace mntscale
