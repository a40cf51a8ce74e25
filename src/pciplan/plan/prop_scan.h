// Property lookups and text comparison for the planner's hot paths.
// Internal to plan/.
#pragma once

#include <cstring>
#include <string>
#include <string_view>

#include "pciplan/base/props.h"

namespace pciplan {

/// Whether `a` and `b` are the same text: lengths first, then one memcmp (string_view's ==
/// calls its out-of-line compare).
inline bool SameText(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

/// The value of `path` in `props`, or nullptr (Props::find, which scans a short list comparing
/// lengths first).
inline const std::string* ScanProp(const Props& props, std::string_view path) {
  auto it = props.find(path);
  return it == props.end() ? nullptr : &it->second;
}

/// Whether `props` has `path` with the value `value`.
inline bool ScanIs(const Props& props, std::string_view path, std::string_view value) {
  const std::string* v = ScanProp(props, path);
  return v && *v == value;
}

}  // namespace pciplan
