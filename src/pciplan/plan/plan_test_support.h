// Helpers shared by the planner's unit tests: a domain from a few device elements, planned by
// the libvirt policy with the built-in data.
#pragma once

#include <string>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"

namespace pciplan::testing {

/// A minimal domain of `machine` on `arch` with `devices` inside <devices>; `extra` goes
/// between <os> and <devices> (features, maxMemory, cpu).
inline std::string DomainXml(const std::string& machine, const std::string& devices,
                             const std::string& arch = "x86_64", const std::string& extra = "") {
  return "<domain type='qemu'><name>t</name><os><type arch='" + arch + "' machine='" + machine +
         "'>hvm</type></os>" + extra + "<devices>" + devices + "</devices></domain>";
}

/// The libvirt policy's plan of a domain XML, or the reader's or planner's errors.
inline Result<Plan> PlanXml(const std::string& xml) {
  Result<Domain> dom = ReadDomain(xml);
  if (!dom) return dom.errors();
  return MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
}

}  // namespace pciplan::testing
