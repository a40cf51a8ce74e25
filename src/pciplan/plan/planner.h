// The planner: (Domain, Catalog, policy) -> Plan. Pure and deterministic: no I/O. Validation of
// fixed addresses happens inside planning, in libvirt's order, so a rejected domain reports the
// problem libvirt would report.
#pragma once

#include <string_view>

#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"

namespace pciplan {

enum class PolicyName {
  kLibvirt,  // libvirt 9.0's define-time assignment, reproduced exactly
};

/// Plans every open address of `domain`. A domain with no wishes (`domain.wishes`: its
/// metadata, overlaid by a policy file and flags) plans exactly as libvirt 9.0; one with wishes
/// plans under them (PlanWithWishes). Errors name the device, the address and the rule.
Result<Plan> MakePlan(const Domain& domain, const Catalog& catalog, PolicyName policy);

/// libvirt 9.0's policy (policy_libvirt.cc). Ignores `domain.wishes`.
Result<Plan> PlanLibvirt(const Domain& domain, const Catalog& catalog);

/// libvirt 9.0's policy where no wish speaks, the wishes of `domain.wishes` where they do
/// (policy_wishes.cc). Errors: a wish naming no device [bad-wish], a wish the machine or the
/// plan cannot meet [wish-unmet].
Result<Plan> PlanWithWishes(const Domain& domain, const Catalog& catalog);

}  // namespace pciplan
