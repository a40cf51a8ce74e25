// Every independent problem of a domain, not only the first: `check` and `plan --all-errors`.
// Built over MakePlan, never inside it: the first problem is the one MakePlan (and libvirt)
// reports, and each further one is what planning finds once the devices already blamed are set
// aside. Pure: no I/O.
#pragma once

#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"
#include "pciplan/plan/planner.h"

namespace pciplan {

/// The most problems MakePlanAllProblems reports.
inline constexpr size_t kMaxProblems = 100;

/// The plan of `domain`, or every independent problem of it (at most kMaxProblems). The first
/// diagnostic is exactly MakePlan's first; the others follow in document order (by line). A
/// problem is set aside by dropping the blamed device's address (so each fixed address is
/// validated on its own), or, for a device without one, by leaving the device out; collecting
/// stops at a problem that names no device of the input (the domain as a whole), at one found
/// only after devices were set aside that names no input device (their consequence), and at
/// one that repeats.
Result<Plan> MakePlanAllProblems(const Domain& domain, const Catalog& catalog, PolicyName policy);

}  // namespace pciplan
