// Random libvirt domains for the differential fuzzer against QEMU: machine types pc, q35 and
// virt; PCI controllers with and without index, target attributes, model names and addresses;
// endpoints of every kind data/devices.json models, with fixed, partial and open addresses.
#pragma once

#include <cstdint>
#include <string>

namespace pciplan::fuzz {

struct GeneratedDomain {
  std::string family;  // "pc", "q35" or "virt"
  std::string xml;     // the whole <domain>
};

/// The `n`th domain of the stream `seed`. Deterministic: the same pair gives the same bytes on
/// every platform (no std distributions, whose results the standard leaves to the library).
GeneratedDomain GenerateDomain(uint64_t seed, uint64_t n);

}  // namespace pciplan::fuzz
