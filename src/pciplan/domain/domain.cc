#include "pciplan/domain/domain.h"

#include <fmt/format.h>

#include "pciplan/base/numbers.h"

namespace pciplan {

uint32_t Address::Number(const std::string& name) const {
  auto it = attrs.find(name);
  if (it == attrs.end()) return 0;
  return ParseUnsigned(it->second).value_or(0);
}

std::string DeviceRef::DescribeAt(const std::vector<Device>& devs, size_t i) {
  int ordinal = 0;
  for (size_t k = 0; k < i; ++k) ordinal += devs[k].tag == devs[i].tag ? 1 : 0;
  return Describe(devs[i], ordinal);
}

std::string DeviceRef::Describe(const Device& dev, int ordinal) {
  if (const std::string* alias = dev.Get("alias/@name")) return fmt::format("{} '{}'", dev.tag, *alias);
  if (dev.tag == "disk") {
    if (const std::string* t = dev.Get("target/@dev")) return fmt::format("disk '{}'", *t);
  }
  if (dev.tag == "controller") {
    std::string out = fmt::format("controller {}", dev.GetOr("@type", "?"));
    if (const std::string* i = dev.Get("@index")) out += fmt::format(" index {}", *i);
    if (const std::string* m = dev.Get("@model")) out += fmt::format(" ({})", *m);
    return out;
  }
  if (dev.tag == "hostdev" && dev.Is("@type", "pci") && dev.Has("source/address/")) {
    auto n = [&](const char* k) { return ParseUnsigned(dev.GetOr(k, "0")).value_or(0); };
    PciAddress a{n("source/address/@domain"), n("source/address/@bus"),
                 n("source/address/@slot"), n("source/address/@function")};
    return fmt::format("hostdev {}", a.ToString());
  }
  if (dev.tag == "filesystem") {
    if (const std::string* t = dev.Get("target/@dir")) return fmt::format("filesystem '{}'", *t);
  }
  const std::string* model = dev.Get("model/@type");
  if (!model) model = dev.Get("@model");
  if (model) return fmt::format("{} #{} ({})", dev.tag, ordinal, *model);
  return fmt::format("{} #{}", dev.tag, ordinal);
}

}  // namespace pciplan
