// Number parsing as libvirt reads XML attributes: strtoul base 0 (0x hex, leading 0 octal).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace pciplan {

/// Parses like C strtoul(s, NULL, 0) on the whole string, surrounding spaces allowed;
/// nullopt when not a number or above UINT32_MAX.
std::optional<uint32_t> ParseUnsigned(std::string_view s);
/// Decimal only (libvirt reads controller indexes in base 10).
std::optional<uint32_t> ParseDecimal(std::string_view s);

}  // namespace pciplan
