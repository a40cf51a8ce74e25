#include "pciplan/domain/wishes.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "pciplan/base/numbers.h"
#include "pciplan/domain/domain.h"

namespace pciplan {
namespace {

// Far above any machine's hot-plug capacity (256 buses x 32 slots); refuses absurd requests.
constexpr uint32_t kMaxSpareSlots = 8192;

constexpr std::string_view kHowDevicesAreNamed =
    "a device is named by its alias, or disk:TARGET, interface:MAC, hostdev:SOURCE, "
    "controller:TYPE:INDEX";

Diagnostic BadWish(std::string message) { return Error(Rule::kBadWish, std::move(message)); }

std::string Hex(const std::string* v, int width) {
  std::optional<uint32_t> n = v ? ParseUnsigned(*v) : std::nullopt;
  return fmt::format("{:0{}x}", n.value_or(0), width);
}

void Upsert(Wishes& w, const DeviceWish& d) {
  for (DeviceWish& have : w.devices) {
    if (have.key != d.key) continue;
    if (d.hotpluggable != Hotpluggable::kUnset) have.hotpluggable = d.hotpluggable;
    if (d.bus != BusWish::kUnset) have.bus = d.bus;
    if (!d.connection.empty()) have.connection = d.connection;
    if (d.numa_node) have.numa_node = d.numa_node;
    return;
  }
  w.devices.push_back(d);
}

}  // namespace

bool Wishes::empty() const {
  return !pcie_hotplug_slots && !pci_hotplug_slots &&
         default_address_type == TransportWish::kUnset && policy == PolicyWish::kUnset &&
         devices.empty();
}

const DeviceWish* Wishes::Find(std::string_view key) const {
  for (const DeviceWish& d : devices) {
    if (d.key == key) return &d;
  }
  return nullptr;
}

Wishes Overlay(const Wishes& base, const Wishes& over) {
  Wishes out = base;
  if (over.pcie_hotplug_slots) out.pcie_hotplug_slots = over.pcie_hotplug_slots;
  if (over.pci_hotplug_slots) out.pci_hotplug_slots = over.pci_hotplug_slots;
  if (over.default_address_type != TransportWish::kUnset) {
    out.default_address_type = over.default_address_type;
  }
  if (over.policy != PolicyWish::kUnset) out.policy = over.policy;
  for (const DeviceWish& d : over.devices) Upsert(out, d);
  return out;
}

Result<bool> SetDeviceWish(DeviceWish& wish, std::string_view name, std::string_view value) {
  if (name == "hotpluggable") {
    if (value != "yes" && value != "no") {
      return BadWish(
          fmt::format("'{}': hotpluggable='{}', expected 'yes' or 'no'", wish.key, value));
    }
    wish.hotpluggable = value == "yes" ? Hotpluggable::kYes : Hotpluggable::kNo;
  } else if (name == "bus") {
    if (value != "pci" && value != "pcie") {
      return BadWish(fmt::format("'{}': bus='{}', expected 'pci' or 'pcie'", wish.key, value));
    }
    wish.bus = value == "pci" ? BusWish::kPci : BusWish::kPcie;
  } else if (name == "connection") {
    if (value.empty()) return BadWish(fmt::format("'{}': connection is empty", wish.key));
    wish.connection = std::string(value);
  } else if (name == "numaNode") {
    std::optional<uint32_t> n = ParseDecimal(std::string(value));
    if (!n || *n > 255) {
      return BadWish(fmt::format("'{}': numaNode='{}' is not a number from 0 to 255", wish.key,
                                 value));
    }
    wish.numa_node = *n;
  } else {
    return BadWish(
        fmt::format("'{}': unknown device wish '{}' (known: hotpluggable, bus, "
                    "connection, numaNode)",
                    wish.key, name));
  }
  return true;
}

Result<bool> SetDomainWish(Wishes& wishes, std::string_view name, std::string_view value) {
  if (name == "pcieHotplugSlots" || name == "pciHotplugSlots") {
    std::optional<uint32_t> n = ParseDecimal(std::string(value));
    if (!n || *n > kMaxSpareSlots) {
      return BadWish(
          fmt::format("{}='{}' is not a number from 0 to {}", name, value, kMaxSpareSlots));
    }
    (name == "pcieHotplugSlots" ? wishes.pcie_hotplug_slots : wishes.pci_hotplug_slots) = *n;
  } else if (name == "defaultAddressType") {
    if (value != "pci" && value != "virtio-mmio") {
      return BadWish(
          fmt::format("defaultAddressType='{}', expected 'pci' or 'virtio-mmio'", value));
    }
    wishes.default_address_type = value == "pci" ? TransportWish::kPci : TransportWish::kVirtioMmio;
  } else if (name == "policy") {
    if (value != "libvirt" && value != "integrated") {
      return BadWish(fmt::format("policy='{}', expected 'libvirt' or 'integrated'", value));
    }
    wishes.policy = value == "libvirt" ? PolicyWish::kLibvirt : PolicyWish::kIntegrated;
  } else {
    return BadWish(
        fmt::format("unknown wish '{}' (known: pcieHotplugSlots, pciHotplugSlots, "
                    "defaultAddressType, policy)",
                    name));
  }
  return true;
}

Result<Wishes> ParseHotplugSlotsFlag(std::string_view text) {
  Wishes w;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = std::min(text.find(',', start), text.size());
    std::string_view item = text.substr(start, comma - start);
    size_t eq = item.find('=');
    std::string_view kind = item.substr(0, eq);
    if (eq == std::string_view::npos || (kind != "pcie" && kind != "pci")) {
      return BadWish(fmt::format("--hotplug-slots '{}': expected pcie=N,pci=M", text));
    }
    Result<bool> r = SetDomainWish(w, kind == "pcie" ? "pcieHotplugSlots" : "pciHotplugSlots",
                                   item.substr(eq + 1));
    if (!r) return r.errors();
    start = comma + 1;
  }
  return w;
}

Result<DeviceWish> ParseWishFlag(std::string_view text) {
  size_t eq = text.find('=');
  size_t colon = eq == std::string_view::npos ? eq : text.rfind(':', eq);
  if (colon == std::string_view::npos || colon == 0) {
    return BadWish(fmt::format("--wish '{}': expected DEVICE:NAME=VALUE[,NAME=VALUE]", text));
  }
  DeviceWish w;
  w.key = std::string(text.substr(0, colon));
  std::string_view rest = text.substr(colon + 1);
  size_t start = 0;
  while (start <= rest.size()) {
    size_t comma = std::min(rest.find(',', start), rest.size());
    std::string_view item = rest.substr(start, comma - start);
    size_t e = item.find('=');
    if (e == std::string_view::npos) {
      return BadWish(fmt::format("--wish '{}': '{}' is not NAME=VALUE", text, item));
    }
    Result<bool> r = SetDeviceWish(w, item.substr(0, e), item.substr(e + 1));
    if (!r) return r.errors();
    start = comma + 1;
  }
  return w;
}

Result<Wishes> ParsePolicyFile(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return BadWish("malformed JSON");
  if (!j.is_object()) return BadWish("/: expected an object");
  auto as_text = [](const nlohmann::json& v) -> std::optional<std::string> {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
    return std::nullopt;
  };
  Wishes w;
  bool versioned = false;
  for (const auto& [key, value] : j.items()) {
    if (key == "version") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() != kWishesVersion) {
        return BadWish(
            fmt::format("/version: {} is not a version pciplan reads "
                        "(expected {})",
                        value.dump(), kWishesVersion));
      }
      versioned = true;
    } else if (key == "devices") {
      if (!value.is_object()) return BadWish("/devices: expected an object");
      for (const auto& [dkey, dvalue] : value.items()) {
        if (!dvalue.is_object()) {
          return BadWish(fmt::format("/devices/{}: expected an object", dkey));
        }
        DeviceWish d;
        d.key = dkey;
        for (const auto& [name, v] : dvalue.items()) {
          std::optional<std::string> value_text = as_text(v);
          if (!value_text) {
            return BadWish(fmt::format("/devices/{}/{}: expected a string", dkey, name));
          }
          Result<bool> r = SetDeviceWish(d, name, *value_text);
          if (!r) {
            Diagnostics e = r.errors();
            e.front().message = fmt::format("/devices/{}: {}", dkey, e.front().message);
            return e;
          }
        }
        Upsert(w, d);
      }
    } else {
      std::optional<std::string> v = as_text(value);
      Result<bool> r =
          v ? SetDomainWish(w, key, *v)
            : Result<bool>(BadWish(fmt::format("{}: expected a number or string", key)));
      if (!r) {
        Diagnostics e = r.errors();
        e.front().message = fmt::format("/{}: {}", key, e.front().message);
        return e;
      }
    }
  }
  if (!versioned) return BadWish("/version is missing (expected 1)");
  return w;
}

std::vector<std::string> WishKeysOf(const Device& d) {
  std::vector<std::string> keys;
  if (const std::string* alias = d.Get("alias/@name")) keys.push_back(*alias);
  if (d.tag == "disk") {
    if (const std::string* t = d.Get("target/@dev")) keys.push_back("disk:" + *t);
  } else if (d.tag == "interface") {
    if (const std::string* mac = d.Get("mac/@address")) keys.push_back("interface:" + *mac);
  } else if (d.tag == "hostdev") {
    if (d.Has("source/address/@bus")) {
      keys.push_back(fmt::format("hostdev:{}:{}:{}.{}", Hex(d.Get("source/address/@domain"), 4),
                                 Hex(d.Get("source/address/@bus"), 2),
                                 Hex(d.Get("source/address/@slot"), 2),
                                 Hex(d.Get("source/address/@function"), 1)));
    }
  } else if (d.tag == "controller") {
    if (d.Has("@type") && d.Has("@index")) {
      keys.push_back("controller:" + *d.Get("@type") + ":" + *d.Get("@index"));
    }
  }
  return keys;
}

int FindDeviceByKey(const Domain& domain, std::string_view key) {
  for (size_t i = 0; i < domain.devices.size(); ++i) {
    std::vector<std::string> keys = WishKeysOf(domain.devices[i]);
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) return static_cast<int>(i);
  }
  return -1;
}

Result<std::vector<int>> ResolveDeviceWishes(const Domain& domain, const Wishes& wishes) {
  std::vector<int> of(domain.devices.size(), -1);
  for (size_t w = 0; w < wishes.devices.size(); ++w) {
    const std::string& key = wishes.devices[w].key;
    int i = FindDeviceByKey(domain, key);
    if (i < 0) {
      return BadWish(fmt::format("the wish for '{}' names no device of the domain ({})", key,
                                 kHowDevicesAreNamed));
    }
    if (of[i] >= 0) {
      Diagnostic d = BadWish(
          fmt::format("wishes '{}' and '{}' name the same device", wishes.devices[of[i]].key, key));
      d.device = DeviceRef::DescribeAt(domain.devices, i);
      d.line = domain.devices[i].line;
      return d;
    }
    of[i] = static_cast<int>(w);
  }
  return of;
}

Result<Domain> DropAddresses(const Domain& domain, const std::vector<std::string>& keys) {
  Domain out = domain;
  for (const std::string& key : keys) {
    int i = FindDeviceByKey(domain, key);
    if (i < 0) {
      return Error(Rule::kBadReplan, fmt::format("--replan '{}' names no device of the domain ({})",
                                                 key, kHowDevicesAreNamed));
    }
    out.devices[i].address = Address{};
  }
  return out;
}

std::string WishesXml(const Wishes& w, const std::string& indent, const std::string& unit) {
  std::string out = fmt::format("<pciplan:wishes xmlns:pciplan=\"{}\" version=\"{}\"",
                                kWishesNamespace, kWishesVersion);
  if (w.pcie_hotplug_slots) out += fmt::format(" pcieHotplugSlots=\"{}\"", *w.pcie_hotplug_slots);
  if (w.pci_hotplug_slots) out += fmt::format(" pciHotplugSlots=\"{}\"", *w.pci_hotplug_slots);
  if (w.default_address_type != TransportWish::kUnset) {
    out += fmt::format(" defaultAddressType=\"{}\"",
                       w.default_address_type == TransportWish::kPci ? "pci" : "virtio-mmio");
  }
  if (w.policy != PolicyWish::kUnset) {
    out += fmt::format(" policy=\"{}\"", w.policy == PolicyWish::kLibvirt ? "libvirt" : "integrated");
  }
  if (w.devices.empty()) return out + "/>";
  out += ">\n";
  for (const DeviceWish& d : w.devices) {
    std::string escaped;
    for (char c : d.key) {
      switch (c) {
        case '&':
          escaped += "&amp;";
          break;
        case '<':
          escaped += "&lt;";
          break;
        case '"':
          escaped += "&quot;";
          break;
        default:
          escaped += c;
      }
    }
    out += indent + unit + fmt::format("<pciplan:device name=\"{}\"", escaped);
    if (d.hotpluggable != Hotpluggable::kUnset) {
      out +=
          fmt::format(" hotpluggable=\"{}\"", d.hotpluggable == Hotpluggable::kYes ? "yes" : "no");
    }
    if (d.bus != BusWish::kUnset) {
      out += fmt::format(" bus=\"{}\"", d.bus == BusWish::kPci ? "pci" : "pcie");
    }
    if (!d.connection.empty()) out += fmt::format(" connection=\"{}\"", d.connection);
    if (d.numa_node) out += fmt::format(" numaNode=\"{}\"", *d.numa_node);
    out += "/>\n";
  }
  return out + indent + "</pciplan:wishes>";
}

}  // namespace pciplan
