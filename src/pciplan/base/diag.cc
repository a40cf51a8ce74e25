#include "pciplan/base/diag.h"

#include <array>

namespace pciplan {
namespace {

constexpr std::array kRuleIds = {
    "xml-malformed",
    "xml-doctype",
    "not-a-domain",
    "not-a-device",
    "missing-os-type",
    "unknown-machine",
    "unknown-model",
    "bad-value",
    "limit-exceeded",
    "pci-domain",
    "slot-range",
    "function-range",
    "bus-range",
    "bus-missing",
    "slot-below-min",
    "slot-above-max",
    "connect-mismatch",
    "double-use",
    "integrated-bus0",
    "fixed-address",
    "root-model",
    "root-index",
    "root-address",
    "duplicate-index",
    "index-too-high",
    "index-not-above-bus",
    "no-free-slot",
    "cannot-add-controller",
    "cannot-add-bus",
    "chassis-range",
    "port-range",
    "chassisnr-range",
    "busnr-range",
    "target-index",
    "no-free-busnr",
    "expander-machine",
    "numa-node",
    "device-unsupported",
    "controller-count",
    "duplicate-hostdev",
    "duplicate-disk-target",
    "iommu-acpi",
    "video-primary-only",
    "hotplug",
    "drive-address",
    "usb-disabled",
    "usb-master",
    "bad-wish",
    "wish-unmet",
    "wish-contradicted",
    "bad-replan",
    "address-type",
    "drive-double-use",
    "usb-port",
    "usb-hub-missing",
    "usb-port-path",
    "usb-port-count",
    "device-machine",
    "smartcard-count",
    "memory-slot-range",
    "memory-slot-double-use",
    "single-device",
    "chassis-clash",
    "controller-cycle",
    "busnr-clash",
    "target-index-clash",
    "target-option",
    "model-name",
    "mmio-transports",
    "qemu",
    "qmp",
    "unsupported",
};
static_assert(kRuleIds.size() == static_cast<size_t>(Rule::kUnsupported) + 1);

}  // namespace

std::string_view RuleId(Rule rule) { return kRuleIds[static_cast<size_t>(rule)]; }

std::string Diagnostic::Render(std::string_view file) const {
  std::string out(file);
  if (line > 0) out += ":" + std::to_string(line);
  out += severity == Severity::kError ? ": error: " : ": warning: ";
  if (!device.empty()) {
    out += device;
    if (!address.empty()) out += " at " + address;
    out += ": ";
  } else if (!address.empty()) {
    out += address + ": ";
  }
  out += message;
  out += " [";
  out += RuleId(rule);
  out += "]";
  if (!hint.empty()) out += " (hint: " + hint + ")";
  return out;
}

Diagnostic Error(Rule rule, std::string message, std::string device, std::string address) {
  Diagnostic d;
  d.rule = rule;
  d.message = std::move(message);
  d.device = std::move(device);
  d.address = std::move(address);
  return d;
}

}  // namespace pciplan
