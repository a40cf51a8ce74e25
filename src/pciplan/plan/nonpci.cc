#include "pciplan/plan/nonpci.h"

namespace pciplan {

bool CheckNonPciInput(const NonPciContext& ctx, Diagnostics& errs) {
  (void)ctx;
  (void)errs;
  return true;
}

bool AddImplicitControllers(const NonPciContext& ctx, Diagnostics& errs) {
  (void)ctx;
  (void)errs;
  return true;
}

bool AssignNonPciAddresses(const NonPciContext& ctx, Diagnostics& errs) {
  (void)ctx;
  (void)errs;
  return true;
}

}  // namespace pciplan
