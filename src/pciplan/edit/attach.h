// Attach and detach: the domain with one device more or less, planned, with every address that
// existed before kept. --config follows libvirt 9.0's attach-device --config (it may add
// controllers, and keeps the spare hot-plug slots the domain's wishes ask for); --live takes a
// free hot-pluggable slot only, adds nothing and says how many remain. The wishes are the
// domain's `wishes` (its metadata, with the command line's overlaid by the caller); a device
// wish may name the device being attached. Pure: text in, text out; the QEMU side of a live
// change is in qmp/live.h.
#pragma once

#include <string>
#include <vector>

#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/plan/plan.h"

namespace pciplan {

enum class AttachMode {
  kConfig,  // the next boot's definition: controllers may be added (libvirt's --config)
  kLive,    // a running guest: a free hot-pluggable slot only, no controller added
};

/// The domain after an attach or detach.
struct Edited {
  Domain domain;    // the edited input (before planning)
  Plan plan;        // its plan
  std::string xml;  // the planned XML
  int device = -1;  // attach: the new device's index in plan.devices
  HotplugCapacity free;  // the free hot-pluggable slots the result leaves
};

/// Adds the device element `device_xml` to `domain` and plans the result under `domain.wishes`
/// (live: without the spare-slot wishes, which a running guest uses up). A domain not yet fully
/// addressed is planned first, as libvirt's define would have (refused live). Fails when the
/// device XML is bad, when the device cannot be placed (naming what was tried), when its wishes
/// cannot be met [wish-unmet], or, live, when no free hot-pluggable slot fits it or it would
/// need a new controller.
Result<Edited> AttachDevice(const Domain& domain, const std::string& device_xml,
                            const Catalog& catalog, AttachMode mode);

enum class Prune {
  kNothing,           // only the device goes
  kEmptyControllers,  // also the PCI controllers on its path left with nothing behind them
};

struct DetachRequest {
  std::string alias;       // <alias name='...'/> of the device, or empty
  std::string device_xml;  // else a device element to match (disk target, MAC, hostdev
                           // source, controller type and index, address, model)
  Prune prune = Prune::kNothing;
};

/// Removes one device (the first that matches) and plans the result under `domain.wishes`; no
/// other address changes. The wishes naming a removed device are dropped (from the metadata
/// too). With `prune`, the controllers on the path to the device that are left empty go
/// too (never one with a device behind it, never a root).
Result<Edited> DetachDevice(const Domain& domain, const DetachRequest& request,
                            const Catalog& catalog);

/// The index in `domain.devices` of the device `request` names, or a diagnostic.
Result<int> FindDevice(const Domain& domain, const DetachRequest& request);

}  // namespace pciplan
