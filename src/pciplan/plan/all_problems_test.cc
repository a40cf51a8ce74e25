#include "pciplan/plan/all_problems.h"

#include <gtest/gtest.h>

#include "pciplan/plan/plan_test_support.h"

namespace pciplan {
namespace {

using testing::DomainXml;

std::string PciAddr(const char* domain, const char* slot) {
  return std::string("<address type='pci' domain='") + domain + "' bus='0x00' slot='" + slot +
         "' function='0x0'/>";
}

// Three independent problems, one device each, on lines 2, 3 and 4.
const std::string kThreeProblems = DomainXml(
    "pc",
    "\n<disk type='file' device='disk'><target dev='vda' bus='virtio'/>" +
        PciAddr("0x0000", "0x05") +
        "</disk>\n<interface type='user'><model type='e1000'/>" + PciAddr("0x0000", "0x05") +
        "</interface>\n<interface type='user'><model type='virtio'/>" +
        PciAddr("0x0001", "0x06") + "</interface>\n<rng model='virtio'>" +
        PciAddr("0x0000", "0x05") + "</rng>\n");

Result<Plan> AllProblemsOf(const std::string& xml) {
  Result<Domain> d = ReadDomain(xml);
  EXPECT_TRUE(d.ok());
  return MakePlanAllProblems(d.value(), BuiltinCatalog(), PolicyName::kLibvirt);
}

TEST(AllProblems, ThreeIndependentProblemsAreReportedInDocumentOrder) {
  Result<Plan> all = AllProblemsOf(kThreeProblems);
  ASSERT_FALSE(all.ok());
  ASSERT_EQ(all.errors().size(), 3u);
  EXPECT_EQ(all.errors()[0].rule, Rule::kDoubleUse);
  EXPECT_EQ(all.errors()[0].line, 3);
  EXPECT_EQ(all.errors()[0].device, "interface #0 (e1000)");
  EXPECT_EQ(all.errors()[1].rule, Rule::kPciDomain);
  EXPECT_EQ(all.errors()[1].line, 4);
  EXPECT_EQ(all.errors()[1].device, "interface #1 (virtio)");
  EXPECT_EQ(all.errors()[2].rule, Rule::kDoubleUse);
  EXPECT_EQ(all.errors()[2].line, 5);
  EXPECT_EQ(all.errors()[2].address, "0000:00:05.0");
}

TEST(AllProblems, TheFirstProblemIsExactlyTheOnePlanningReports) {
  Result<Plan> first = testing::PlanXml(kThreeProblems);
  Result<Plan> all = AllProblemsOf(kThreeProblems);
  ASSERT_FALSE(first.ok());
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.errors().front().Render("f"), first.errors().front().Render("f"));
}

TEST(AllProblems, DoubleUseNamesTheDeviceHoldingTheAddressAndItsLine) {
  Result<Plan> all = AllProblemsOf(kThreeProblems);
  ASSERT_FALSE(all.ok());
  EXPECT_NE(all.errors()[0].message.find("already used by disk 'vda' on line 2"),
            std::string::npos)
      << all.errors()[0].message;
}

TEST(AllProblems, AValidDomainGetsItsPlan) {
  Result<Plan> all = AllProblemsOf(DomainXml(
      "q35", "<disk type='file' device='disk'><target dev='vda' bus='virtio'/></disk>"));
  ASSERT_TRUE(all.ok()) << all.errors().front().message;
  EXPECT_FALSE(all->devices.empty());
}

TEST(AllProblems, AProblemOfTheWholeDomainIsReportedAlone) {
  Result<Plan> all = AllProblemsOf(DomainXml(
      "no-such-machine",
      "<interface type='user'><model type='e1000'/>" + PciAddr("0x0001", "0x06") +
          "</interface>"));
  ASSERT_FALSE(all.ok());
  ASSERT_EQ(all.errors().size(), 1u);
  EXPECT_EQ(all.errors()[0].rule, Rule::kUnknownMachine);
}

TEST(AllProblems, AtMostKMaxProblemsAreReported) {
  std::string devices;
  for (int i = 0; i < 150; ++i) {
    devices += "\n<interface type='user'><model type='e1000'/>" + PciAddr("0x0001", "0x05") +
               "</interface>";
  }
  Result<Plan> all = AllProblemsOf(DomainXml("pc", devices));
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.errors().size(), kMaxProblems);
  EXPECT_EQ(all.errors().back().rule, Rule::kPciDomain);
}

}  // namespace
}  // namespace pciplan
