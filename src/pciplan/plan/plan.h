// Plan: the planner's result. The final device list (input devices in input order, keeping their
// source index, then the devices the planner added) with every address filled in, plus the
// notes explaining choices. The writer turns it back into XML.
#pragma once

#include <string>
#include <vector>

#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"

namespace pciplan {

struct Plan {
  const MachineFamily* family = nullptr;
  std::string machine;          // canonical machine type name ("pc-q35-7.2")
  std::vector<Device> devices;  // devices[i].source == i for every input device
  std::vector<std::string> notes;
  /// How many more of the family's gap-filling controller (a root port on q35 and virt, a
  /// pci-bridge on pc) the planned buses still have a free place for: what a policy can still
  /// add on the root bus before it must add a switch. Counted only when the policy asks
  /// (PlacementChoices::WantsGapFillerRoom), else 0.
  uint32_t gap_filler_room = 0;
};

}  // namespace pciplan
