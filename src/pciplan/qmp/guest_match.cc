#include "pciplan/qmp/guest_match.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>

#include "pciplan/qmp/guest_initramfs.h"

namespace pciplan {
namespace {

/// A hexadecimal field of exactly `digits` digits at `s[at..]`.
std::optional<uint32_t> Hex(const std::string& s, size_t at, size_t digits) {
  if (at + digits > s.size()) return std::nullopt;
  uint32_t v = 0;
  for (size_t i = at; i < at + digits; ++i) {
    char c = s[i];
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint32_t>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
    v = v * 16 + d;
  }
  return v;
}

/// "0x1af4" -> 0x1af4; nullopt unless it is 0x and hex digits.
std::optional<uint32_t> HexValue(const std::string& s) {
  if (s.size() < 3 || s.compare(0, 2, "0x") != 0 || s.size() > 10) return std::nullopt;
  std::string digits = s.substr(2);
  for (char& c : digits) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return Hex(digits, 0, digits.size());
}

std::optional<int> IntValue(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (*end != '\0' || v < -1 || v > 1 << 20) return std::nullopt;
  return static_cast<int>(v);
}

// AML encodings (ACPI 6.4, section 20): the opcodes this scanner needs.
constexpr unsigned char kAmlExtPrefix = 0x5b, kAmlDeviceOp = 0x82, kAmlNameOp = 0x08;
constexpr unsigned char kAmlZero = 0x00, kAmlOne = 0x01, kAmlOnes = 0xff, kAmlByte = 0x0a,
                        kAmlWord = 0x0b, kAmlDword = 0x0c;

/// The integer a DataRefObject at aml[at..] encodes, when it is a small integer constant.
std::optional<uint32_t> AmlInteger(std::string_view aml, size_t at) {
  if (at >= aml.size()) return std::nullopt;
  auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(aml[i])); };
  size_t width = 0;
  switch (static_cast<unsigned char>(aml[at])) {
    case kAmlZero:
      return 0;
    case kAmlOne:
      return 1;
    case kAmlOnes:
      return 0xffffffffu;
    case kAmlByte:
      width = 1;
      break;
    case kAmlWord:
      width = 2;
      break;
    case kAmlDword:
      width = 4;
      break;
    default:
      return std::nullopt;
  }
  if (at + width >= aml.size()) return std::nullopt;
  uint32_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= byte(at + 1 + i) << (8 * i);
  return v;
}

}  // namespace

std::map<uint32_t, int> AcpiRootBusNodes(std::string_view aml) {
  std::map<uint32_t, int> out;
  const std::string_view bbn("\x08_BBN", 5), pxm("\x08_PXM", 5), device("\x5b\x82", 2);
  for (size_t at = aml.find(device); at != std::string_view::npos; at = aml.find(device, at + 2)) {
    // DefDevice := ExtOpPrefix DeviceOp PkgLength NameString TermList. PkgLength counts itself:
    // its first byte's top two bits say how many bytes follow; then the low nibble and each
    // following byte (8 bits) make the length, else the first byte's low six bits are it.
    size_t p = at + 2;
    if (p >= aml.size()) break;
    auto lead = static_cast<unsigned char>(aml[p]);
    size_t follow = lead >> 6;
    if (p + follow >= aml.size()) continue;
    size_t length = follow == 0 ? (lead & 0x3fu) : (lead & 0x0fu);
    for (size_t i = 0; i < follow; ++i) {
      length |= static_cast<size_t>(static_cast<unsigned char>(aml[p + 1 + i])) << (4 + 8 * i);
    }
    if (length <= follow || p + length > aml.size()) continue;
    // The device's own names: up to the first device nested in it.
    std::string_view body = aml.substr(p + 1 + follow, length - 1 - follow);
    body = body.substr(0, std::min(body.size(), body.find(device)));
    size_t b = body.find(bbn), x = body.find(pxm);
    if (b == std::string_view::npos || x == std::string_view::npos) continue;
    std::optional<uint32_t> bus = AmlInteger(body, b + bbn.size());
    std::optional<uint32_t> node = AmlInteger(body, x + pxm.size());
    if (bus && node && *bus <= 0xff && *node <= 0xffff) out[*bus] = static_cast<int>(*node);
  }
  return out;
}

std::string PciChain::ToString() const {
  std::string out = fmt::format("{:02x}:", root);
  for (size_t i = 0; i < hops.size(); ++i) {
    out += fmt::format("{}{:02x}.{}", i == 0 ? "" : "/", hops[i].slot, hops[i].function);
  }
  return out;
}

std::optional<PciChain> ChainFromSysfsPath(const std::string& path) {
  std::vector<std::string> parts;
  std::istringstream in(path);
  for (std::string p; std::getline(in, p, '/');) {
    if (!p.empty()) parts.push_back(p);
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    // The host bridge: "pci0000:00" (domain, root bus).
    const std::string& p = parts[i];
    if (p.size() != 10 || p.compare(0, 3, "pci") != 0 || p[7] != ':') continue;
    std::optional<uint32_t> root = Hex(p, 8, 2);
    if (!root || !Hex(p, 3, 4)) continue;
    PciChain chain;
    chain.root = *root;
    // Then one "DDDD:BB:SS.F" per function on the way down.
    for (size_t k = i + 1; k < parts.size(); ++k) {
      const std::string& f = parts[k];
      if (f.size() != 12 || f[4] != ':' || f[7] != ':' || f[10] != '.') return std::nullopt;
      std::optional<uint32_t> slot = Hex(f, 8, 2), function = Hex(f, 11, 1);
      if (!slot || !function || *slot > 31 || *function > 7 || !Hex(f, 0, 4) || !Hex(f, 5, 2)) {
        return std::nullopt;
      }
      chain.hops.push_back({*slot, *function});
    }
    if (chain.hops.empty()) return std::nullopt;
    return chain;
  }
  return std::nullopt;
}

Result<std::vector<GuestFunction>> ParseGuestConsole(const std::string& text) {
  std::vector<GuestFunction> out;
  std::string dsdt;  // the DSDT's bytes
  std::istringstream in(text);
  bool begun = false;
  const std::string prefix = std::string(kGuestFunctionPrefix) + " ";
  const std::string dsdt_prefix = std::string(kGuestDsdtPrefix) + " ";
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!begun) {
      begun = line.find(kGuestBeginMarker) != std::string::npos;
      continue;
    }
    if (line.find(kGuestEndMarker) != std::string::npos) {
      std::map<uint32_t, int> nodes = AcpiRootBusNodes(dsdt);
      for (GuestFunction& f : out) {
        auto n = nodes.find(f.chain.root);
        if (n != nodes.end()) f.acpi_node = n->second;
      }
      return out;
    }
    if (size_t hex = line.find(dsdt_prefix); hex != std::string::npos) {
      // Two digits a byte; hexdump pads a short last line with spaces.
      for (size_t i = hex + dsdt_prefix.size(); i + 1 < line.size(); i += 2) {
        std::optional<uint32_t> byte = Hex(line, i, 2);
        if (!byte) break;
        dsdt.push_back(static_cast<char>(*byte));
      }
      continue;
    }
    size_t at = line.find(prefix);
    if (at == std::string::npos) continue;
    std::istringstream fields(line.substr(at + prefix.size()));
    std::string path, vendor, device, cls, node, bars, assigned;
    fields >> path >> vendor >> device >> cls >> node >> bars >> assigned;
    GuestFunction f;
    f.path = path;
    f.name = path.substr(path.rfind('/') + 1);
    std::optional<PciChain> chain = ChainFromSysfsPath(path);
    std::optional<uint32_t> v = HexValue(vendor), d = HexValue(device), c = HexValue(cls);
    std::optional<int> n = IntValue(node), b = IntValue(bars), a = IntValue(assigned);
    if (b && (*b < 0 || *b > 63)) b.reset();
    if (a && (*a < 0 || *a > 63)) a.reset();
    if (!chain || !v || !d || !c || !n || !b || !a) {
      return Error(Rule::kQemu,
                   fmt::format("the guest's report has an unreadable line: '{}'", line));
    }
    f.chain = *chain;
    f.vendor = *v;
    f.device = *d;
    f.class_code = *c;
    f.numa_node = *n;
    f.bars_used = static_cast<uint32_t>(*b);
    f.bars_assigned = static_cast<uint32_t>(*a);
    out.push_back(std::move(f));
  }
  return Error(Rule::kQemu, begun ? "the guest's report has no end line (the guest stopped early)"
                                  : "the guest printed no report");
}

std::vector<GuestCheck> MatchGuest(const std::vector<GuestExpect>& expects,
                                   const std::vector<GuestFunction>& seen) {
  std::map<PciChain, const GuestFunction*> by_chain;
  for (const GuestFunction& f : seen) by_chain[f.chain] = &f;
  std::vector<GuestCheck> out;
  for (const GuestExpect& e : expects) {
    GuestCheck c;
    c.expect = e;
    if (!e.pci) {
      c.status = GuestStatus::kNotPci;
      out.push_back(std::move(c));
      continue;
    }
    auto it = by_chain.find(e.chain);
    std::vector<std::string> problems;
    if (it == by_chain.end()) {
      problems.push_back("absent");
    } else {
      const GuestFunction& f = *it->second;
      c.seen = f;
      if ((e.vendor && *e.vendor != f.vendor) || (e.device_id && *e.device_id != f.device)) {
        problems.push_back(fmt::format("vendor:device {:04x}:{:04x}, QEMU {:04x}:{:04x}", f.vendor,
                                       f.device, e.vendor.value_or(0), e.device_id.value_or(0)));
      }
      if (e.class_code16 && *e.class_code16 != f.class_code >> 8) {
        problems.push_back(
            fmt::format("class {:04x}, QEMU {:04x}", f.class_code >> 8, *e.class_code16));
      }
      if (!e.vendor && !e.device_id) problems.push_back("QEMU does not list it");
      if (e.numa_node && e.numa_witness == NumaWitness::kKernel && *e.numa_node != f.numa_node) {
        problems.push_back(fmt::format("NUMA node {}, planned {}", f.numa_node, *e.numa_node));
      }
      if (e.numa_node && e.numa_witness == NumaWitness::kAcpi && e.numa_node != f.acpi_node) {
        problems.push_back(fmt::format("ACPI proximity of its root bus {}, planned {}",
                                       f.acpi_node ? std::to_string(*f.acpi_node) : "none",
                                       *e.numa_node));
      }
      // A BAR the kernel failed to place is reset (its flags cleared too), so QEMU's list is
      // the one to meet. An I/O BAR without an address is a note: I/O space is 64 KiB for the
      // whole machine, PCI Express devices must work without it, and the guest's driver can
      // (virtio's modern interface is in memory).
      std::vector<GuestExpect::Bar> want;
      if (e.bars) {
        want = *e.bars;
      } else {
        for (uint32_t i = 0; i < 6; ++i) {
          if (f.bars_used & (1u << i)) want.push_back({i, false});
        }
      }
      std::string memory, io;
      for (const GuestExpect::Bar& b : want) {
        if (f.bars_assigned & (1u << b.index)) continue;
        std::string& list = b.io ? io : memory;
        list += (list.empty() ? "" : ", ") + std::to_string(b.index);
      }
      if (!memory.empty()) problems.push_back("BAR " + memory + " without an address");
      if (!io.empty()) c.note = "I/O BAR " + io + " without an address";
    }
    for (size_t i = 0; i < problems.size(); ++i) {
      c.problem += (i == 0 ? "" : "; ") + problems[i];
    }
    c.status = problems.empty() ? GuestStatus::kOk : GuestStatus::kMismatch;
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace pciplan
