// Bad input never crashes or hangs the pipeline: every mutation of a corpus input (truncated,
// numbers made absurd, attributes emptied) ends in a plan or in diagnostics.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;

/// Runs the whole pipeline; true when it produced output or at least one diagnostic.
bool Survives(const std::string& text) {
  Result<Domain> dom = ReadDomain(text);
  if (!dom) return !dom.errors().empty();
  Result<Plan> plan = MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
  if (!plan) return !plan.errors().empty();
  Result<std::string> out = WriteDomain(*dom, *plan, BuiltinCatalog());
  return out.ok() || !out.errors().empty();
}

std::vector<std::string> Mutations(const std::string& text) {
  std::vector<std::string> out;
  for (size_t cut = 0; cut < text.size(); cut += std::max<size_t>(1, text.size() / 40)) {
    out.push_back(text.substr(0, cut));
  }
  // Replace every quoted number in turn by absurd values.
  const char* absurd[] = {"0xffffffff", "99999999999", "-1", "", "0x", "256", "0x1f", "abc"};
  size_t pos = 0;
  int n = 0;
  while ((pos = text.find("='", pos)) != std::string::npos && n < 60) {
    size_t end = text.find('\'', pos + 2);
    if (end == std::string::npos) break;
    std::string value = text.substr(pos + 2, end - pos - 2);
    if (!value.empty() && (std::isdigit(static_cast<unsigned char>(value[0])) || value.size() < 4)) {
      std::string m = text;
      m.replace(pos + 2, end - pos - 2, absurd[n % std::size(absurd)]);
      out.push_back(m);
      ++n;
    }
    pos = end + 1;
  }
  return out;
}

TEST(Robustness, MutatedCorpusInputsNeverCrash) {
  int runs = 0;
  int k = 0;
  for (const auto& e : fs::directory_iterator(PCIPLAN_CONFORMANCE_DIR)) {
    if (k++ % 5 != 0) continue;  // every fifth case keeps the test quick
    std::ifstream f(e.path() / "input.xml");
    std::stringstream ss;
    ss << f.rdbuf();
    for (const std::string& m : Mutations(ss.str())) {
      ASSERT_TRUE(Survives(m)) << e.path().filename();
      ++runs;
    }
  }
  std::printf("robustness: %d mutated domains, none crashed\n", runs);
  EXPECT_GT(runs, 1000);
}

TEST(Robustness, HugeControllerIndexIsRefusedNotAllocated) {
  EXPECT_TRUE(Survives("<domain><os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
                       "<controller type='pci' index='4000000000' model='pcie-root-port'/>"
                       "</devices></domain>"));
}

}  // namespace
}  // namespace pciplan
