// The non-PCI part of libvirt's define pipeline: input checks that are not about PCI (IDE
// support, duplicate disk targets and host devices), implicit controllers (SATA, SCSI, IDE,
// virtio-serial) and the drive, USB-port and virtio-serial addresses libvirt assigns.
#pragma once

#include <vector>

#include "pciplan/base/diag.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"

namespace pciplan {

struct NonPciContext {
  const Catalog& catalog;
  const MachineFamily& family;
  const Domain& input;
  std::vector<Device>& devices;
  std::vector<int>& controller_order;  // libvirt's controller list order
  std::vector<int>& disk_order;        // libvirt's disk list order
};

/// Rejections libvirt makes while parsing: duplicate disk targets and host devices, IDE where
/// the machine has none. False (with a diagnostic appended) on the first problem.
bool CheckNonPciInput(const NonPciContext& ctx, Diagnostics& errs);
/// Adds the controllers that disks, channels and other devices refer to but that are missing,
/// appending them to the device list and the controller order.
bool AddImplicitControllers(const NonPciContext& ctx, Diagnostics& errs);
/// Fills drive, USB-port and virtio-serial addresses.
bool AssignNonPciAddresses(const NonPciContext& ctx, Diagnostics& errs);

}  // namespace pciplan
