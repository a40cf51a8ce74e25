// libvirt's error messages and the pciplan rule each is about, for the corpus tests that must
// reject a domain "for the same problem libvirt names" (conformance, attach).
#pragma once

#include <optional>
#include <regex>
#include <string>

#include "pciplan/base/diag.h"

namespace pciplan {

/// The rule a libvirt error message is about (its wording is libvirt's, ours differs).
struct LibvirtError {
  const char* pattern;
  Rule rule;
};
inline const LibvirtError kLibvirtErrors[] = {
    {"Attempted double use of PCI Address", Rule::kDoubleUse},
    {"spapr-vio address", Rule::kDoubleUse},
    {"Invalid PCI address slot=", Rule::kSlotRange},
    {"Invalid PCI address function=", Rule::kFunctionRange},
    {"Invalid PCI address bus=", Rule::kBusRange},
    {"Only PCI domain 0 is available", Rule::kPciDomain},
    {"slot must be <=", Rule::kSlotAboveMax},
    {"slot must be >=", Rule::kSlotBelowMin},
    {"cannot be plugged into the PCI controller", Rule::kConnectMismatch},
    {"for this machine type, but model=", Rule::kRootModel},
    {"controllers with index", Rule::kDuplicateIndex},
    {"IDE controllers are unsupported", Rule::kDeviceUnsupported},
    {"isn't supported by this QEMU binary", Rule::kDeviceUnsupported},
    {"does not support machine type", Rule::kUnknownMachine},
    {"does not support video model", Rule::kDeviceUnsupported},
    {"USB is disabled for this domain", Rule::kUnsupported},
    {"Only 1 IDE controller", Rule::kControllerCount},
    {"Hostdev already exists", Rule::kDuplicateHostdev},
    {"duplicated for disk sources", Rule::kDuplicateDiskTarget},
    {"already exists", Rule::kDuplicateDiskTarget},
    {"controllers are not supported with this machine type", Rule::kExpanderMachine},
    {"only supported on 440fx", Rule::kExpanderMachine},
    {"busNr '", Rule::kBusNrRange},
    {"target index", Rule::kTargetIndex},
    {"Option 'modelName'", Rule::kModelName},
    {"attribute 'name' in element 'model'", Rule::kModelName},
    {"is not valid for PCI controller", Rule::kTargetOption},
    {"NUMA node", Rule::kNumaNode},
    {"too high, maximum is", Rule::kIndexTooHigh},
    {"index must be larger than bus", Rule::kIndexNotAboveBus},
    {"a PCI slot is needed to connect a PCI controller", Rule::kCannotAddController},
    {"must have PCI address", Rule::kFixedAddress},
    {"needs to be an integrated device", Rule::kIntegratedBus0},
    {"No more available PCI slots", Rule::kNoFreeSlot},
    {"Cannot automatically add a new PCI bus", Rule::kCannotAddBus},
    {"should have index 0", Rule::kRootIndex},
    {"should not have an address", Rule::kRootAddress},
    {"Found duplicate drive address", Rule::kDriveDoubleUse},
    {"in use by a SCSI disk", Rule::kDriveDoubleUse},
    {"in use by another SCSI host device", Rule::kDriveDoubleUse},
    {"Invalid address type", Rule::kAddressType},
    {"cannot have an address of type", Rule::kAddressType},
    {"unexpected address type for usb disk", Rule::kAddressType},
    {"address not supported for video type", Rule::kAddressType},
    {"Invalid address for a USB device", Rule::kAddressType},
    {"requested USB port", Rule::kUsbPort},
    {"there is no hub at port", Rule::kUsbHubMissing},
    {"Cannot parse <address> 'port' attribute", Rule::kUsbPortPath},
    {"controller only supports up to", Rule::kUsbPortCount},
    {"requires ACPI", Rule::kIommuAcpi},
    {"is only supported with", Rule::kDeviceMachine},
    {"lacks multiple smartcard support", Rule::kSmartcardCount},
    {"exceeds slots count", Rule::kMemorySlotRange},
    {"already being used by another memory device", Rule::kMemorySlotDoubleUse},
    {"failed to find an empty memory slot", Rule::kNoFreeSlot},
    {"Unknown disk name", Rule::kDriveAddress},
    {"only a single IOMMU device is supported", Rule::kSingleDevice},
    {"only a single vsock device is supported", Rule::kSingleDevice},
};

/// Empty when our diagnostics name the same problem as libvirt's message, else why not.
inline std::string CompareError(const std::string& libvirt, const Diagnostics& ours) {
  std::optional<Rule> want;
  for (const LibvirtError& e : kLibvirtErrors) {
    if (libvirt.find(e.pattern) != std::string::npos) {
      want = e.rule;
      break;
    }
  }
  if (!want) return "the test knows no rule for libvirt's message";
  if (ours.empty()) return "pciplan accepted the domain";
  const Diagnostic& d = ours.front();
  if (d.rule != *want) {
    return "pciplan reports [" + std::string(RuleId(d.rule)) + "], libvirt's message is [" +
           std::string(RuleId(*want)) + "]: " + d.Render("input.xml");
  }
  std::smatch m;
  static const std::regex kAddr("[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-9a-f]");
  if (std::regex_search(libvirt, m, kAddr)) {
    std::string addr = m.str();
    if (d.address != addr && d.message.find(addr) == std::string::npos) {
      return "libvirt names address " + addr + ", pciplan: " + d.Render("input.xml");
    }
  }
  return {};
}

}  // namespace pciplan
