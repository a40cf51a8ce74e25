#include "pciplan/base/numbers.h"

namespace pciplan {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' ||
                        s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::optional<uint32_t> ParseBase(std::string_view s, uint32_t base) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char ch : s) {
    uint32_t digit;
    if (ch >= '0' && ch <= '9') {
      digit = ch - '0';
    } else if (ch >= 'a' && ch <= 'f') {
      digit = ch - 'a' + 10;
    } else if (ch >= 'A' && ch <= 'F') {
      digit = ch - 'A' + 10;
    } else {
      return std::nullopt;
    }
    if (digit >= base) return std::nullopt;
    v = v * base + digit;
    if (v > UINT32_MAX) return std::nullopt;
  }
  return static_cast<uint32_t>(v);
}

}  // namespace

std::optional<uint32_t> ParseUnsigned(std::string_view s) {
  s = Trim(s);
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) return ParseBase(s.substr(2), 16);
  if (s.size() > 1 && s[0] == '0') return ParseBase(s.substr(1), 8);
  return ParseBase(s, 10);
}

std::optional<uint32_t> ParseDecimal(std::string_view s) { return ParseBase(Trim(s), 10); }

}  // namespace pciplan
