// verify: proves a plan with the real QEMU. Starts the machine paused from the plan's command
// line (stand-ins for host devices), reads back over QMP where every device landed, then
// hot-plugs a probe into every free slot the plan calls hot-pluggable and checks that QEMU
// refuses one where the plan says it must.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pciplan/base/address.h"
#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"

namespace pciplan {

enum class Probes {
  kHotplug,  // probe every free slot the plan calls hot-pluggable, and one it does not
  kNone,     // check the addresses only
};

struct VerifyOptions {
  std::string qemu;        // the binary; empty: the data's qemu-system-* for the arch
  int timeout_ms = 30000;  // for QEMU's start and each command
  Probes probes = Probes::kHotplug;
};

enum class CheckStatus { kOk, kMismatch };

/// Where one planned device is, by the plan and by QEMU.
struct DeviceCheck {
  std::string device;  // DeviceRef::Describe()
  std::string id;      // QEMU id, empty for machine built-ins
  std::string driver;
  std::string planned_bus;  // "virtio-mmio-bus" for a virtio-mmio device
  PciAddress planned;
  bool mmio = false;
  std::string actual_bus;  // empty when QEMU does not have it
  std::optional<PciAddress> actual;
  CheckStatus status = CheckStatus::kOk;
};

enum class ProbeExpect { kAccept, kRefuse };

/// One hot-plug probe: a device_add into a slot.
struct ProbeCheck {
  std::string bus;
  uint32_t slot = 0;
  ProbeExpect expect = ProbeExpect::kAccept;
  bool accepted = false;
  bool unplugged = false;    // device_del completed (DEVICE_DELETED) rather than left pending
  std::string qemu_message;  // QEMU's refusal, or its device_del error
  CheckStatus status = CheckStatus::kOk;
};

struct VerifyReport {
  std::string binary;
  std::vector<DeviceCheck> devices;
  std::vector<ProbeCheck> probes;
  std::vector<std::string> warnings;  // what QEMU has that the plan does not place

  bool ok() const;
};

/// Runs the real QEMU on `plan`. Fails (a diagnostic with QEMU's own message) when QEMU cannot
/// be started or stops answering; mismatches are in the report, not errors.
Result<VerifyReport> Verify(const Domain& domain, const Plan& plan, const Catalog& catalog,
                            const VerifyOptions& options);

/// The report as text: a line per device and probe, then a summary line.
std::string RenderVerifyText(const VerifyReport& report);
/// The report as JSON text.
std::string RenderVerifyJson(const VerifyReport& report);

}  // namespace pciplan
