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
  kChassisClash,    // two ports share a chassis: QEMU refuses the second
  kControllerCycle,  // a controller plugged in behind itself: QEMU cannot create it
  kBusNrClash,       // two expander buses share a busNr: QEMU refuses the second
  kQemu,  // QEMU refused a command or its start; the message carries QEMU's own text
  kQmp,   // the QMP conversation failed: socket error, timeout, EOF, malformed message
  kUnsupported,
};

/// The stable id of a rule: "double-use", "slot-above-max", ...
std::string_view RuleId(Rule rule);

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  Rule rule = Rule::kUnsupported;
  std::string device;   // DeviceRef::Describe() of the device concerned, or empty
  std::string address;  // the address concerned ("0000:00:05.0"), or empty
  std::string message;  // lower-case start, no final period
  std::string hint;     // optional: what to do about it
  int line = 0;         // 1-based line in the input, 0 when unknown

  /// One line: "FILE:LINE: error: DEVICE at ADDRESS: MESSAGE [rule-id] (hint: ...)".
  std::string Render(std::string_view file) const;
};

using Diagnostics = std::vector<Diagnostic>;

/// Convenience constructor for an error.
Diagnostic Error(Rule rule, std::string message, std::string device = {},
                 std::string address = {});

}  // namespace pciplan
