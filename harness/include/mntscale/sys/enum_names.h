// Enums whose values have names in JSON and on the command line: one table
// per enum, parsed and named through it, so a value is compared as a type
// after parsing and spelled in one place.
#pragma once

#include <cstddef>
#include <string>

#include "mntscale/sys/sys.h"

namespace mntscale {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

// The value named s; UsageError "<what> = '<s>' is not one of: a, b" otherwise.
template <typename E, std::size_t N>
E ParseEnum(const EnumName<E> (&names)[N], const std::string& s, const std::string& what) {
  std::string list;
  for (const EnumName<E>& n : names) {
    if (s == n.name) return n.value;
    list += (list.empty() ? "" : ", ") + std::string(n.name);
  }
  throw UsageError(what + " = '" + s + "' is not one of: " + list);
}

template <typename E, std::size_t N>
const char* EnumNameOf(const EnumName<E> (&names)[N], E value) {
  for (const EnumName<E>& n : names) {
    if (n.value == value) return n.name;
  }
  return "?";
}

}  // namespace mntscale
