#include "pciplan/plan/all_problems.h"

#include <algorithm>

namespace pciplan {
namespace {

/// The input device `d` blames: the one on its line whose name it gives; -1 when none.
int BlamedDevice(const Domain& domain, const Diagnostic& d) {
  if (d.line <= 0 || d.input != InputFile::kDomain) return -1;
  for (size_t i = 0; i < domain.devices.size(); ++i) {
    if (domain.devices[i].line == d.line &&
        DeviceRef::DescribeAt(domain.devices, i) == d.device) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

bool Same(const Diagnostic& a, const Diagnostic& b) {
  return a.rule == b.rule && a.line == b.line && a.device == b.device && a.message == b.message;
}

}  // namespace

Result<Plan> MakePlanAllProblems(const Domain& domain, const Catalog& catalog,
                                 PolicyName policy) {
  Result<Plan> first = MakePlan(domain, catalog, policy);
  if (first) return first;
  Diagnostics all = first.errors();
  // The devices still in play: `work` is `domain` with blamed devices set aside; `origin[k]`
  // is the index in `domain` of work's device k (names are given as in the input, since a
  // device left out would change the ordinals of the devices after it).
  Domain work = domain;
  std::vector<size_t> origin(domain.devices.size());
  for (size_t i = 0; i < origin.size(); ++i) origin[i] = i;
  Diagnostic last = all.back();  // as planning `work` named it
  // Each round plans the whole domain again: the bound keeps a domain with thousands of bad
  // addresses linear (kMaxProblems plans), not quadratic.
  for (size_t round = 0; round <= domain.devices.size() && all.size() < kMaxProblems; ++round) {
    int k = BlamedDevice(work, last);
    if (k < 0) break;
    Device& blamed = work.devices[k];
    if (blamed.address.type != AddressType::kNone) {
      blamed.address = Address{};  // its address validated on its own: planned afresh now
    } else {
      work.devices.erase(work.devices.begin() + k);
      origin.erase(origin.begin() + k);
      for (size_t i = 0; i < work.devices.size(); ++i) work.devices[i].source = static_cast<int>(i);
    }
    Result<Plan> next = MakePlan(work, catalog, policy);
    if (next) break;
    last = next.errors().front();
    // A problem of no input device, found only once devices were set aside, is their
    // consequence (a wish naming a device left out), not a problem of its own.
    int w = BlamedDevice(work, last);
    if (w < 0) break;
    Diagnostic d = last;
    d.device = DeviceRef::DescribeAt(domain.devices, origin[w]);
    if (std::any_of(all.begin(), all.end(), [&](const Diagnostic& o) { return Same(o, d); })) break;
    all.push_back(std::move(d));
  }
  std::stable_sort(all.begin() + 1, all.end(),
                   [](const Diagnostic& a, const Diagnostic& b) { return a.line < b.line; });
  return all;
}

}  // namespace pciplan
