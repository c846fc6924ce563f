// Enums whose values have names in JSON and on the command line: one table
// per enum, parsed and named through it, so a value is compared as a type
// after parsing and spelled in one place.
#pragma once

#include <array>
#include <cstddef>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "mntscale/sys/sys.h"

namespace mntscale {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

// The enum of a name table: a C array or a std::array of EnumName<E>.
template <typename Names>
using EnumOf = std::remove_cv_t<decltype(std::begin(std::declval<const Names&>())->value)>;

// The value named s, or nullopt.
template <typename Names>
std::optional<EnumOf<Names>> FindEnum(const Names& names, std::string_view s) {
  for (const auto& n : names) {
    if (s == n.name) return n.value;
  }
  return std::nullopt;
}

// "a, b, c": the names, in the table's order.
template <typename Names>
std::string EnumNameList(const Names& names) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + std::string(n.name);
  return list;
}

// The value named s; UsageError "<what> = '<s>' is not one of: a, b" otherwise.
template <typename Names>
EnumOf<Names> ParseEnum(const Names& names, const std::string& s, const std::string& what) {
  if (auto v = FindEnum(names, s)) return *v;
  throw UsageError(what + " = '" + s + "' is not one of: " + EnumNameList(names));
}

template <typename Names>
const char* EnumNameOf(const Names& names, EnumOf<Names> value) {
  for (const auto& n : names) {
    if (n.value == value) return n.name;
  }
  return "?";
}

// An enum's names with `none` first, for nullopt: a choice of one of the
// enum's values or none of them, spelled as the enum's own table spells them.
template <typename E, std::size_t N>
constexpr std::array<EnumName<std::optional<E>>, N + 1> WithNone(const char* none,
                                                                const EnumName<E> (&names)[N]) {
  std::array<EnumName<std::optional<E>>, N + 1> out{};
  out[0] = {std::nullopt, none};
  for (std::size_t i = 0; i < N; ++i) out[i + 1] = {names[i].value, names[i].name};
  return out;
}

// Whether rows (anything with a .name) carry the names of `names`, in its
// order: a table indexed by the enum checks itself with static_assert.
template <typename Rows, typename E, std::size_t N>
constexpr bool NamesInOrder(const Rows& rows, const EnumName<E> (&names)[N]) {
  if (std::size(rows) != N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    if (std::string_view(rows[i].name) != names[i].name) return false;
  }
  return true;
}

}  // namespace mntscale
