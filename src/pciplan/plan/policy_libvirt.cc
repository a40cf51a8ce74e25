// libvirt 9.0's choices over the define pipeline (reference: libvirt-addressing.md): one
// virtio-mmio address anywhere makes every open virtio address virtio-mmio (section 8), and one
// spare hot-pluggable root port for a new domain that needed a bus (section 7.8).
#include <algorithm>

#include "pciplan/plan/define_pipeline.h"
#include "pciplan/plan/planner.h"

namespace pciplan {

VirtioTransport LibvirtChoices::OpenVirtioTransport(const std::vector<Device>& devices) const {
  bool any = std::any_of(devices.begin(), devices.end(), [](const Device& d) {
    return d.address.type == AddressType::kVirtioMmio;
  });
  return any ? VirtioTransport::kVirtioMmio : VirtioTransport::kPci;
}

SpareSlots LibvirtChoices::Spares(bool libvirt_spare) const {
  if (!libvirt_spare) return {};
  return {1, 0, "added a spare hot-pluggable root port (libvirt's default)"};
}

Result<Plan> PlanLibvirt(const Domain& domain, const Catalog& catalog) {
  return RunDefinePipeline(domain, catalog, LibvirtChoices());
}

}  // namespace pciplan
