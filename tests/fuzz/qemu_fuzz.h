// The differential fuzzer against QEMU: plans generated domains with the default policy and
// runs verify on every plan pciplan accepts. A plan that QEMU refuses to start, or where a device
// or hot-plug probe is not where the plan says, is a finding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pciplan/qmp/verify.h"

namespace pciplan::fuzz {

enum class Outcome {
  kRefused,      // pciplan refused the domain (rule names why)
  kVerified,     // planned, and QEMU has every device and probe where the plan says
  kQemuRefused,  // planned, but QEMU did not start or stopped answering
  kMismatch,     // planned, QEMU started, but a device or probe is not as planned
};

struct FuzzResult {
  uint64_t n = 0;
  std::string family;
  Outcome outcome = Outcome::kRefused;
  std::string rule;    // kRefused: the first diagnostic's rule id
  std::string detail;  // the diagnostic, QEMU's message or the verify report
  std::string xml;     // the generated domain
};

struct FuzzOptions {
  uint64_t seed = 1;
  uint64_t first = 0;  // the first domain number of the stream
  uint64_t count = 0;
  int jobs = 0;  // QEMUs at once; 0: one per core
  Probes probes = Probes::kHotplug;
};

/// Plans and verifies domain `n` of stream `seed`.
FuzzResult FuzzOne(uint64_t seed, uint64_t n, Probes probes);

/// Domains first .. first+count-1 of `options.seed`, `jobs` at a time; results in domain order.
std::vector<FuzzResult> RunFuzz(const FuzzOptions& options);

}  // namespace pciplan::fuzz
