// caps' controller probes: for one machine type of a family, start QEMU with one controller of
// each model the family may have (each behind the controllers it needs, found from the data's
// plugs_as and offers), then put a conventional PCI and a PCI Express probe device in every slot
// of each controller's bus, on the command line and by device_add.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "pciplan/base/result.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/qmp/caps.h"

namespace pciplan {

struct ControllerProbeRequest {
  std::string binary;   // absolute path
  std::string machine;  // -machine: name and options ("pc-q35-7.2,usb=off")
  std::string cpu;      // -cpu, or empty
  const MachineFamily* family = nullptr;
  std::set<uint32_t> root_used;  // the root bus's slots the machine takes itself
  int timeout_ms = 20000;
};

/// Probes every controller model the family may have whose QEMU device the binary has (caps
/// gives its types and properties). Four QEMU runs, in parallel: probes of each kind on the
/// command line (a probe QEMU refuses is recorded and QEMU started again without it) and by
/// device_add. A controller QEMU refuses is returned with its error and no slots. Fails with
/// Rule::kQemu when QEMU cannot be started at all.
Result<std::vector<CapsController>> ProbeControllers(const ControllerProbeRequest& request,
                                                     const Catalog& catalog, const QemuCaps& caps);

}  // namespace pciplan
