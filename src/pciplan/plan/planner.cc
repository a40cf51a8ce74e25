#include "pciplan/plan/planner.h"

namespace pciplan {

Result<Plan> MakePlan(const Domain& domain, const Catalog& catalog, PolicyName policy) {
  switch (policy) {
    case PolicyName::kLibvirt:
      return domain.wishes.empty() ? PlanLibvirt(domain, catalog)
                                   : PlanWithWishes(domain, catalog);
  }
  return Error(Rule::kUnsupported, "unknown policy");
}

}  // namespace pciplan
