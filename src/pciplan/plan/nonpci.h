// The non-PCI part of libvirt's define pipeline (facts: notes of the conformance work, checked
// against the corpus and the libvirt oracle): drive addresses, the implicit controllers disks
// and channels need, virtio-serial ports, USB ports (with the hubs libvirt adds), and the
// define-time checks that are not about PCI.
#pragma once

#include <memory_resource>
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
  std::pmr::vector<int>& controller_order;  // libvirt's controller list order
  std::pmr::vector<int>& disk_order;        // libvirt's disk list order
  // The class of each device (Catalog::Classify) once the pipeline has classified them, or
  // nullptr before; devices past its end are classified when asked (ClassOf).
  const std::pmr::vector<const DeviceClass*>* classes = nullptr;
};

/// The class of device `dev`: the pipeline's when it has one, else Catalog::Classify.
inline const DeviceClass* ClassOf(const NonPciContext& ctx, int dev) {
  const size_t i = static_cast<size_t>(dev);
  if (ctx.classes && i < ctx.classes->size()) return (*ctx.classes)[i];
  return ctx.catalog.Classify(ctx.devices[i].tag, ctx.devices[i].props);
}

/// libvirt's virDiskNameToIndex: "vda" -> 0, "sdaa" -> 26; -1 when the name has no known
/// prefix (fd, hd, vd, sd, xvd, ubd) or is followed by anything but letters.
int DiskNameIndex(const std::string& name);

/// Gives every disk without a bus attribute libvirt's bus: the floppy bus for floppies, else
/// the bus of its target name's prefix ("hda" -> ide), else the fallback. Runs before anything
/// groups disks by bus.
void ApplyDiskBuses(const Catalog& catalog, std::vector<Device>& devices);

/// Parse-time rules: at most one device of each Catalog::single_per_domain element; USB
/// controller rules: a "none" controller excludes every other one,
/// and a USB2 companion needs its master at the same index. Also every USB port path must be
/// dot-separated numbers of at most Catalog::usb_port_depth levels.
bool CheckUsbControllers(const NonPciContext& ctx, Diagnostics& errs);
/// How AddScsiHostdevControllers counts a SCSI host device without an address.
enum class Unaddressed { kController0, kSkip };
/// Adds the SCSI controllers SCSI host devices need, up to the highest controller their drive
/// addresses name; while parsing (kController0) an address-less one counts as controller 0.
bool AddScsiHostdevControllers(const NonPciContext& ctx, Unaddressed unaddressed);
/// Gives every disk on a drive bus without an address its drive address, from its name, then
/// every SCSI host device without one the first free unit (libvirt's
/// virDomainHostdevAssignAddress).
bool AssignDriveAddresses(const NonPciContext& ctx, Diagnostics& errs);
/// Adds the controllers drive addresses, virtio channels, the smartcard and SCSI host devices
/// refer to but that are missing, appending them to the device list and the controller order.
/// A smartcard without an address gets CCID 0:0.
bool AddImplicitControllers(const NonPciContext& ctx, Diagnostics& errs);
/// Gives devices whose class has a spapr-vio reg their reg: the class's first, else the next
/// free one 0x1000 above (libvirt does this on every machine, for ibmvscsi controllers).
bool AssignSpaprVio(const NonPciContext& ctx, Diagnostics& errs);
/// Gives memory devices that take a slot (dimm) the lowest free one below <maxMemory slots>;
/// a given slot must be below that count and not used twice.
bool AssignMemorySlots(const NonPciContext& ctx, Diagnostics& errs);
/// Per-device checks of libvirt's device validation: the address type fits the device, the
/// device model fits the machine family (and has ACPI when it needs it), a USB controller's
/// ports= is within its model's range, at most one smartcard, at CCID 0:0.
bool ValidateDevices(const NonPciContext& ctx, Diagnostics& errs);
/// Gives virtio channels their virtio-serial ports; adds a controller when all are full.
bool AssignVirtioSerial(const NonPciContext& ctx, Diagnostics& errs);
/// Gives USB devices their ports, adding hubs when the root hubs have too few ports.
bool AssignUsbPorts(const NonPciContext& ctx, Diagnostics& errs);
/// Per-disk checks made after addressing: IDE disks only on IDE controller 0.
bool ValidateDiskDrives(const NonPciContext& ctx, Diagnostics& errs);
/// Checks after the controller checks: IDE on a machine without IDE, duplicate disk targets,
/// duplicate drive addresses (disks on one bus, SCSI host devices), then duplicate host devices
/// (libvirt's order; a USB, SCSI, vhost-scsi or mdev host device is the same one when the keys
/// of Catalog::hostdev_identities agree).
bool ValidateIdeAndDuplicates(const NonPciContext& ctx, Diagnostics& errs);

}  // namespace pciplan
