// Diagnostic: one problem found in the input or while planning, naming the device, the address
// and the rule broken. Every stage reports failures as values of this type.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pciplan {

/// Every rule pciplan enforces, each with a stable kebab-case id (RuleId) for tools and tests.
enum class Rule {
  kXmlMalformed,
  kXmlDoctype,
  kNotADomain,
  kNotADevice,
  kMissingOsType,
  kUnknownMachine,
  kUnknownModel,
  kBadValue,
  kLimitExceeded,
  kPciDomain,
  kSlotRange,
  kFunctionRange,
  kBusRange,
  kBusMissing,
  kSlotBelowMin,
  kSlotAboveMax,
  kConnectMismatch,
  kDoubleUse,
  kIntegratedBus0,
  kFixedAddress,
  kRootModel,
  kRootIndex,
  kRootAddress,
  kDuplicateIndex,
  kIndexTooHigh,
  kIndexNotAboveBus,
  kNoFreeSlot,
  kCannotAddController,
  kCannotAddBus,
  kChassisRange,
  kPortRange,
  kChassisNrRange,
  kBusNrRange,
  kTargetIndex,  // a PHB's target index out of range, or 0 on another than controller 0
  kNoFreeBusNr,
  kExpanderMachine,
  kNumaNode,
  kDeviceUnsupported,
  kControllerCount,
  kDuplicateHostdev,
  kDuplicateDiskTarget,
  kIommuAcpi,
  kVideoPrimaryOnly,
  kHotplug,
  kDriveAddress,
  kUsbDisabled,
  kUsbMaster,
  kBadWish,         // a wish that is malformed, unknown or names no device
  kWishUnmet,       // a wish the plan cannot meet
  kWishContradicted,  // an existing address contradicts a wish
  kBadReplan,         // a --replan naming no device
  kAddressType,      // an <address> type the device cannot have
  kDriveDoubleUse,   // two disks or SCSI host devices on one drive address
  kUsbPort,          // a USB port the controller or hub does not have
  kUsbHubMissing,    // a USB port path through a port with no hub
  kUsbPortPath,      // a USB port path that is not a number path of at most 4 levels
  kUsbPortCount,     // a ports= value the USB controller model cannot have
  kDeviceMachine,    // a device model the machine family cannot have
  kSmartcardCount,   // more than one smartcard, or one not at CCID 0:0
  kMemorySlotRange,  // a memory slot at or above <maxMemory slots>
  kMemorySlotDoubleUse,
  kSingleDevice,  // a second device of an element a domain has at most one of
  kChassisClash,    // two ports share a chassis: QEMU refuses the second
  kControllerCycle,  // a controller plugged in behind itself: QEMU cannot create it
  kBusNrClash,       // two expander buses share a busNr: QEMU refuses the second
  kTargetIndexClash,  // two PHBs share a target index: QEMU refuses the second
  kTargetOption,      // a <target> option the controller model does not have (libvirt refuses)
  kModelName,         // a PCI controller's <model name> libvirt does not know or not for its model
  kMmioTransports,   // more virtio-mmio devices than the machine has transports
  kQemu,  // QEMU refused a command or its start; the message carries QEMU's own text
  kQmp,   // the QMP conversation failed: socket error, timeout, EOF, malformed message
  kUnsupported,
};

/// The stable id of a rule: "double-use", "slot-above-max", ...
std::string_view RuleId(Rule rule);

enum class Severity { kError, kWarning };

/// Which input file a diagnostic's line points into: the domain, or the device file of attach
/// and detach.
enum class InputFile { kDomain, kDevice };

struct Diagnostic {
  Severity severity = Severity::kError;
  Rule rule = Rule::kUnsupported;
  std::string device;   // DeviceRef::Describe() of the device concerned, or empty
  std::string address;  // the address concerned ("0000:00:05.0"), or empty
  std::string message;  // lower-case start, no final period
  std::string hint;     // optional: what to do about it
  int line = 0;         // 1-based line in the input, 0 when unknown
  InputFile input = InputFile::kDomain;  // the file `line` is in

  /// One line: "FILE:LINE: error: DEVICE at ADDRESS: MESSAGE [rule-id] (hint: ...)".
  std::string Render(std::string_view file) const;
};

using Diagnostics = std::vector<Diagnostic>;

/// Convenience constructor for an error.
Diagnostic Error(Rule rule, std::string message, std::string device = {},
                 std::string address = {});

}  // namespace pciplan
