// Property lookups for the planner's hot paths (SameText is props.h's).
// Internal to plan/.
#pragma once

#include <string>
#include <string_view>

#include "pciplan/base/props.h"

namespace pciplan {

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
