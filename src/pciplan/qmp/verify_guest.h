// verify --guest: proves a plan from inside a booted guest. Boots a real Linux kernel under TCG
// with the plan's devices (the command line of qemu-args, stand-ins for host devices) and an
// initramfs that prints the guest's PCI functions on the serial console, then matches every
// planned PCI device to the guest's function at the same topology (guest_match.h).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"
#include "pciplan/qmp/guest_match.h"

namespace pciplan {

struct GuestOptions {
  std::string qemu;         // the binary; empty: the data's qemu-system-* for the arch
  std::string kernel;       // empty: the newest of data/qemu.json guest/systems/BINARY/kernels
  std::string busybox;      // empty: the first of .../busybox that exists
  int timeout_ms = 120000;  // from QEMU's start to the guest's last report line
};

struct GuestReport {
  std::string binary;
  std::string kernel;
  std::vector<GuestCheck> devices;
  std::vector<GuestFunction> others;  // guest functions no planned device is at (chipset, ...)
  int init_ms = 0;  // from QEMU's start to the report's first line (the kernel's boot)
  int boot_ms = 0;  // from QEMU's start to the report's last line

  bool ok() const;
};

/// Boots the guest of `plan`. Fails (a diagnostic) when no kernel or busybox is found, QEMU
/// cannot start, or the guest does not report within the timeout (QEMU is killed, and the
/// message ends with the console's last lines); mismatches are in the report.
Result<GuestReport> VerifyGuest(const Domain& domain, const Plan& plan, const Catalog& catalog,
                                const GuestOptions& options);

/// Where the guest should see one device of a plan.
struct PlannedChain {
  PciChain chain;
  std::optional<int> numa_node;  // the <target><node> of the expander bus it is behind
};

/// The chain of slot.functions at which the guest should see every PCI device of `plan`, by
/// index into plan.devices (controllers and endpoints; none for devices without a PCI address
/// or on a bus no controller of the plan makes). Expander buses (qemu_root_bus) start a root
/// bus numbered by their busNr; qemu_inner_bridge adds QEMU's bridge at 00.0 before their slots.
std::map<int, PlannedChain> PlannedChains(const Plan& plan, const Catalog& catalog);

std::string RenderGuestText(const GuestReport& report);
std::string RenderGuestJson(const GuestReport& report);

}  // namespace pciplan
