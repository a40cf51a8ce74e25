#include "qemu_fuzz.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "domain_generator.h"
#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"

namespace pciplan::fuzz {

FuzzResult FuzzOne(uint64_t seed, uint64_t n, Probes probes) {
  GeneratedDomain g = GenerateDomain(seed, n);
  FuzzResult r;
  r.n = n;
  r.family = g.family;
  r.xml = g.xml;
  Result<Domain> domain = ReadDomain(g.xml);
  Result<Plan> plan = domain ? MakePlan(*domain, BuiltinCatalog(), PolicyName::kLibvirt)
                             : Result<Plan>(domain.errors());
  if (!plan) {
    r.outcome = Outcome::kRefused;
    r.rule = RuleId(plan.errors().front().rule);
    r.detail = plan.errors().front().Render("fuzz.xml");
    return r;
  }
  VerifyOptions options;
  options.probes = probes;
  Result<VerifyReport> report = Verify(*domain, *plan, BuiltinCatalog(), options);
  if (!report) {
    r.outcome = Outcome::kQemuRefused;
    r.detail = report.errors().front().Render("fuzz.xml");
  } else if (!report->ok()) {
    r.outcome = Outcome::kMismatch;
    r.detail = RenderVerifyText(*report);
  } else {
    r.outcome = Outcome::kVerified;
  }
  return r;
}

std::vector<FuzzResult> RunFuzz(const FuzzOptions& options) {
  std::vector<FuzzResult> results(options.count);
  int jobs = options.jobs > 0 ? options.jobs
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<uint64_t> next{0};
  auto work = [&] {
    for (uint64_t k = next++; k < options.count; k = next++) {
      results[k] = FuzzOne(options.seed, options.first + k, options.probes);
    }
  };
  // The threads live until the whole run is done: each QEMU dies with the thread that started it
  // (PR_SET_PDEATHSIG), so they must not be short-lived.
  std::vector<std::thread> threads;
  for (int j = 0; j < jobs; ++j) threads.emplace_back(work);
  for (std::thread& t : threads) t.join();
  return results;
}

}  // namespace pciplan::fuzz
