// What libvirt 9.0 accepts and QEMU 7.2 then refuses to create: checks of a finished plan, run
// after libvirt's own validation (so a domain libvirt refuses keeps libvirt's error). Each rule
// was found by the differential fuzzer (tests/fuzz) and is a `qemu-refuses` deviation.
#pragma once

#include <span>
#include <vector>

#include "pciplan/base/diag.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"

namespace pciplan {

/// What the caller knows already of its devices as PCI controllers (the define pipeline's
/// per-device caches), so that the checks need not look it up again. Entries past a list's end
/// are not known.
struct KnownControllers {
  // Per device: its PCI controller model's id on the plan's machine family (the one
  // Catalog::FindController gives for its @model), -1 for none, -2 when not known.
  std::span<const ControllerModelId> models;
  // Per device: its @index as a number (ParseDecimal), -1 for none, -2 when not known.
  std::span<const int> indexes;
};

/// The planned `devices` against QEMU's own rules for PCI controllers:
/// - `chassis-clash`: two ports with a slot of their own (root ports, switch downstream ports)
///   share a `chassis`; QEMU registers each port's slot (always slot 0, libvirt sets no other)
///   in its chassis and refuses the second ("Can't add chassis slot, error -16").
/// - `busnr-clash`: two expander buses share a `busNr`; QEMU refuses the second ("Bus N is
///   already in use").
/// - `target-index-clash`: two spapr PHBs share a target index; QEMU refuses the second ("PHB N
///   already attached").
/// - `controller-cycle`: a controller sits, through the buses it plugs into, behind itself;
///   QEMU creates a controller only on a bus that already exists, so it can create none of them.
/// - `mmio-transports`: more virtio-mmio devices than `family` has virtio-mmio transports; QEMU
///   puts each on a transport of its own and refuses the first with none left ("No
///   'virtio-bus' bus found").
/// Returns one error per problem, naming the device, its address and the other controller.
Diagnostics CheckQemuRules(const std::vector<Device>& devices, const Catalog& catalog,
                           const MachineFamily& family, const KnownControllers& known = {});

}  // namespace pciplan
