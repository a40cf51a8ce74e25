#include "pciplan/domain/domain.h"

#include "pciplan/base/numbers.h"

namespace pciplan {

uint32_t Address::Number(const std::string& name) const {
  auto it = attrs.find(name);
  if (it == attrs.end()) return 0;
  return ParseUnsigned(it->second).value_or(0);
}

const std::string* Device::Get(const std::string& path) const {
  auto it = props.find(path);
  return it == props.end() ? nullptr : &it->second;
}

std::string Device::GetOr(const std::string& path, const std::string& fallback) const {
  const std::string* v = Get(path);
  return v ? *v : fallback;
}

std::string DeviceRef::Describe(const Device& dev, int ordinal) {
  std::string out = dev.tag;
  if (const std::string* alias = dev.Get("alias/@name")) return out + " '" + *alias + "'";
  if (dev.tag == "disk") {
    if (const std::string* t = dev.Get("target/@dev")) return out + " '" + *t + "'";
  }
  if (dev.tag == "controller") {
    out += " " + dev.GetOr("@type", "?");
    if (const std::string* i = dev.Get("@index")) out += " index " + *i;
    if (const std::string* m = dev.Get("@model")) out += " (" + *m + ")";
    return out;
  }
  if (dev.tag == "hostdev") {
    if (const std::string* bus = dev.Get("source/address/@bus")) {
      auto n = [&](const char* k) { return ParseUnsigned(dev.GetOr(k, "0")).value_or(0); };
      PciAddress a{n("source/address/@domain"), ParseUnsigned(*bus).value_or(0),
                   n("source/address/@slot"), n("source/address/@function")};
      return out + " " + a.ToString();
    }
  }
  if (dev.tag == "filesystem") {
    if (const std::string* t = dev.Get("target/@dir")) return out + " '" + *t + "'";
  }
  out += " #" + std::to_string(ordinal);
  const std::string* model = dev.Get("model/@type");
  if (!model) model = dev.Get("@model");
  if (model) out += " (" + *model + ")";
  return out;
}

}  // namespace pciplan
