// The non-PCI part of libvirt's define pipeline (facts: notes of the conformance work, checked
// against the corpus and the libvirt oracle): drive addresses, the implicit controllers disks
// and channels need, virtio-serial ports, USB ports (with the hubs libvirt adds), and the
// define-time checks that are not about PCI.
#pragma once

#include <string>
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

/// libvirt's virDiskNameToIndex: "vda" -> 0, "sdaa" -> 26; -1 when the name has no known
/// prefix (fd, hd, vd, sd, xvd, ubd) or is followed by anything but letters.
int DiskNameIndex(const std::string& name);

/// USB controller rules checked at parse time: a "none" controller excludes every other one,
/// and a USB2 companion needs its master at the same index.
bool CheckUsbControllers(const NonPciContext& ctx, Diagnostics& errs);
/// Gives every disk on a drive bus without an address its drive address, from its name.
bool AssignDriveAddresses(const NonPciContext& ctx, Diagnostics& errs);
/// Adds the controllers drive addresses and virtio channels refer to but that are missing,
/// appending them to the device list and the controller order.
bool AddImplicitControllers(const NonPciContext& ctx, Diagnostics& errs);
/// Gives virtio channels their virtio-serial ports; adds a controller when all are full.
bool AssignVirtioSerial(const NonPciContext& ctx, Diagnostics& errs);
/// Gives USB devices their ports, adding hubs when the root hubs have too few ports.
bool AssignUsbPorts(const NonPciContext& ctx, Diagnostics& errs);
/// Per-disk checks made after addressing: IDE disks only on IDE controller 0.
bool ValidateDiskDrives(const NonPciContext& ctx, Diagnostics& errs);
/// Checks after the controller checks: IDE on a machine without IDE, duplicate disk targets,
/// then duplicate host devices (libvirt's order).
bool ValidateIdeAndDuplicates(const NonPciContext& ctx, Diagnostics& errs);

}  // namespace pciplan
