// The QEMU command line of a plan: -machine, one -device per PCI controller and PCI (or
// virtio-mmio) device, with libvirt's ids and bus names, and the placeholder backends those
// devices cannot be created without. Data from data/qemu.json; no I/O.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "pciplan/base/address.h"
#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"

namespace pciplan {

/// What to do about devices that need the host's hardware (a PCI host device, vhost-vsock).
enum class HostDevices {
  kAsPlanned,  // emit them as the plan says (vfio-pci host=...)
  kStandIns,   // emit the data's stand-in endpoint at the same address (verify)
};

enum class DeviceIds { kAsLibvirt, kEveryDevice };

struct QemuArgsOptions {
  HostDevices host_devices = HostDevices::kAsPlanned;
  /// When not empty, 9p filesystems share this folder instead of their source (verify).
  std::string scratch_dir;
  /// Which devices get an id: libvirt's (USB2 companions have none), or every device, so that
  /// each can be found in QEMU's device tree (verify).
  DeviceIds ids = DeviceIds::kAsLibvirt;
  /// When set, the properties of each device type of the QEMU binary the command is for (caps):
  /// a controller property that is only a hint (data/qemu.json controller_hints) is left out
  /// where the binary's device lacks it. Not owned.
  const std::map<std::string, std::set<std::string>>* binary_properties = nullptr;

  /// What verify runs (in QEMU paused, or in a booted guest): host devices by stand-ins,
  /// filesystems sharing `scratch`, every device with an id.
  static QemuArgsOptions ForVerify(std::string scratch) {
    QemuArgsOptions o;
    o.host_devices = HostDevices::kStandIns;
    o.scratch_dir = std::move(scratch);
    o.ids = DeviceIds::kEveryDevice;
    return o;
  }
};

/// One -device of the command line.
struct QemuDeviceArg {
  nlohmann::ordered_json object;      // QEMU's JSON -device properties, "driver" first
  int device = -1;                    // index into Plan::devices
  bool pci = false;                   // on a PCI bus (bus and addr set)
  std::string bus;                    // "pcie.0", "pci.3"
  PciAddress address;                 // the planned address (pci only)
  bool controller = false;            // a PCI controller (it has a bus of its own)
  bool standin = false;               // a stand-in for a device needing host hardware
  std::vector<std::string> backends;  // its own placeholder options, as pairs: "-blockdev", JSON
};

/// A device QEMU's machine creates itself at its planned address (no -device).
struct QemuBuiltin {
  int device = -1;
  PciAddress address;
};

struct QemuCommand {
  std::string binary;                // "qemu-system-x86_64"
  std::string machine;               // "pc-q35-7.2"
  std::string machine_options;       // "usb=off"
  std::string cpu;                   // empty: QEMU's default
  std::vector<std::string> prelude;  // options before the devices: -m, -numa, backends
  std::vector<QemuDeviceArg> devices;
  std::vector<QemuBuiltin> builtins;

  /// The whole argument vector after the binary: -machine ... -nodefaults ... -device ...
  std::vector<std::string> Argv() const;
};

/// Builds the command line of `plan` (the planned `domain`). Fails, naming the device, when a
/// device with a PCI or virtio-mmio address has no QEMU device in the data.
Result<QemuCommand> BuildQemuCommand(const Domain& domain, const Plan& plan, const Catalog& catalog,
                                     const QemuArgsOptions& options = {});

/// The command as shell text ready to paste: the binary, then one option per line.
std::string RenderQemuShell(const QemuCommand& command);

/// {"binary":..., "machine":..., "devices":[...], "argv":[...]} for programs.
nlohmann::ordered_json RenderQemuJson(const QemuCommand& command);

/// "0x5" or "0x1.0x2": a slot and function as QEMU's addr property, as libvirt writes it.
std::string QemuAddr(const PciAddress& address);

}  // namespace pciplan
