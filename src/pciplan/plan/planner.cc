#include "pciplan/plan/planner.h"

namespace pciplan {

Result<Plan> MakePlan(const Domain& domain, const Catalog& catalog, PolicyName policy) {
  switch (policy) {
    case PolicyName::kLibvirt:
      return PlanLibvirt(domain, catalog);
  }
  return Error(Rule::kUnsupported, "unknown policy");
}

}  // namespace pciplan
