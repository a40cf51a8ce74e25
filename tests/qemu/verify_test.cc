// The real QEMU proves the plans: every valid conformance case (and every deviation case, which
// pciplan plans where libvirt refuses) is planned, started paused in the family's
// qemu-system-* (x86_64, aarch64, riscv64, ppc64), every device must sit at its planned address,
// every free slot the plan calls hot-pluggable must accept a hot-plug, and QEMU must refuse one
// where the plan says so.
// One test per machine family, so CTest runs them side by side.
#include "pciplan/qmp/verify.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"
#include "test_support.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;
using pciplan::testing::Slurp;

void VerifyFamily(const std::string& family) {
  fs::path cases = PCIPLAN_CONFORMANCE_DIR;
  std::map<std::string, std::string> deviations;  // case -> kind
  std::istringstream dev(Slurp(cases.parent_path() / "DEVIATIONS.tsv"));
  for (std::string line; std::getline(dev, line);) {
    size_t tab = line.find('\t');
    if (!line.empty() && line[0] != '#') {
      deviations[line.substr(0, tab)] = tab == std::string::npos ? "" : line.substr(tab + 1);
    }
  }
  int domains = 0, verified = 0, devices = 0, accepted = 0, refused = 0, warnings = 0;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(cases)) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& dir : dirs) {
    std::string name = dir.filename().string();
    if (!fs::exists(dir / "expected.xml") && !deviations.count(name)) continue;
    Result<Domain> domain = ReadDomain(Slurp(dir / "input.xml"));
    ASSERT_TRUE(domain.ok()) << name;
    Result<Plan> plan = MakePlan(*domain, BuiltinCatalog(), PolicyName::kLibvirt);
    // A domain QEMU refuses may be refused by pciplan too (the conformance test checks that).
    auto kind = deviations.find(name);
    if (!plan && kind != deviations.end() && kind->second == "qemu-refuses") continue;
    ASSERT_TRUE(plan.ok()) << name << ": " << plan.errors().front().message;
    if (plan->family->name != family) continue;
    SCOPED_TRACE(name);
    ++domains;
    Result<VerifyReport> report = Verify(*domain, *plan, BuiltinCatalog(), VerifyOptions{});
    if (!report) {
      ADD_FAILURE() << "QEMU: " << report.errors().front().message;
      continue;
    }
    if (report->ok()) {
      ++verified;
    } else {
      ADD_FAILURE() << RenderVerifyText(*report);
    }
    devices += static_cast<int>(report->devices.size());
    for (const ProbeCheck& p : report->probes) (p.accepted ? accepted : refused) += 1;
    for (const std::string& w : report->warnings) {
      std::printf("%s: warning: %s\n", name.c_str(), w.c_str());
      ++warnings;
    }
  }
  std::printf(
      "verify %s: verified %d/%d domains, %d devices, %d hot-plug probes accepted, %d refused "
      "as planned, %d warnings\n",
      family.c_str(), verified, domains, devices, accepted, refused, warnings);
  EXPECT_EQ(verified, domains);
  EXPECT_GT(domains, 50);
  EXPECT_GT(accepted, 0) << "no slot promised hot-pluggable was probed";
}

TEST(Verify, APromiseQemuDoesNotKeepIsAMismatch) {
  // Data that wrongly calls a pxb bus hot-pluggable: QEMU refuses the probes there.
  Catalog wrong = BuiltinCatalog();
  wrong.controllers[wrong.FindController("pci-expander-bus")].qemu_hotplug = true;
  Result<Domain> domain = ReadDomain(R"(<domain type='qemu'><name>t</name>
    <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
    <controller type='pci' index='0' model='pci-root'/>
    <controller type='pci' index='1' model='pci-expander-bus'><target busNr='200'/></controller>
    </devices></domain>)");
  ASSERT_TRUE(domain.ok());
  Result<Plan> plan = MakePlan(*domain, wrong, PolicyName::kLibvirt);
  ASSERT_TRUE(plan.ok()) << plan.errors().front().message;
  Result<VerifyReport> report = Verify(*domain, *plan, wrong, VerifyOptions{});
  ASSERT_TRUE(report.ok()) << report.errors().front().message;
  EXPECT_FALSE(report->ok());
  int refused = 0;
  for (const ProbeCheck& p : report->probes) {
    if (p.bus == "pci.1" && p.status == CheckStatus::kMismatch) ++refused;
  }
  EXPECT_EQ(refused, 32);
}

TEST(Verify, EveryPcPlanRunsInQemuAsPlanned) { VerifyFamily("pc"); }
TEST(Verify, EveryQ35PlanRunsInQemuAsPlanned) { VerifyFamily("q35"); }
TEST(Verify, EveryVirtPlanRunsInQemuAsPlanned) { VerifyFamily("virt"); }
TEST(Verify, EveryRiscvVirtPlanRunsInQemuAsPlanned) { VerifyFamily("riscv-virt"); }
TEST(Verify, EveryPseriesPlanRunsInQemuAsPlanned) { VerifyFamily("pseries"); }

}  // namespace
}  // namespace pciplan
