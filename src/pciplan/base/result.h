// Result<T>: a value or the diagnostics explaining why there is none. Returned by every stage
// instead of throwing, so no exception crosses a stage boundary.
#pragma once

#include <utility>
#include <variant>

#include "pciplan/base/diag.h"

namespace pciplan {

template <typename T>
class [[nodiscard]] Result {
 public:
  // A value is moved (or copied) into place once: a by-value parameter would move it twice,
  // and a Domain's move is not free.
  Result(T&& value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  Result(const T& value) : v_(std::in_place_index<0>, value) {}       // NOLINT: implicit
  Result(Diagnostic error) : v_(Diagnostics{std::move(error)}) {}  // NOLINT
  Result(Diagnostics errors) : v_(std::move(errors)) {}      // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const Diagnostics& errors() const { return std::get<1>(v_); }
  Diagnostics&& take_errors() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Diagnostics> v_;
};

}  // namespace pciplan
