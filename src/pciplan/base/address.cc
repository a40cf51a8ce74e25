#include "pciplan/base/address.h"

#include <fmt/format.h>

namespace pciplan {

std::string PciAddress::ToString() const {
  return fmt::format("{:04x}:{:02x}:{:02x}.{:x}", domain, bus, slot, function);
}

}  // namespace pciplan
