// The wish corpus (tests/wishes/cases, inputs from make_cases.py): each domain carries pciplan
// wishes in its metadata, and some a replan.txt (devices planned with --replan, one a line:
// their fixed addresses contradict the wishes, so only replanning them gives a plan, and every
// other address must stay). Its plan must have the recorded address map (expected.addrmap) and
// promise (promise.txt: free hot-pluggable PCIe and PCI slots, at least what was wished);
// libvirt 9.0 must define the plan unchanged, wishes included (libvirt.xml, recorded by
// record.sh with the real libvirt); planning libvirt's output again moves nothing; and the real
// QEMU starts every plan with every device where planned and accepts a hot-plug into exactly
// the promised slots. PCIPLAN_UPDATE_GOLDEN=1 rewrites expected.addrmap and promise.txt (pciplan's
// own outputs), never libvirt.xml. The policy corpus (tests/policies/cases, domains planned
// under policy="integrated") is checked the same way.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "address_map.h"
#include "pciplan/domain/domain_reader.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/plan/planner.h"
#include "pciplan/qmp/verify.h"
#include "pciplan/qmp/verify_guest.h"
#include "test_support.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;
using conformance::AddressMapFromXml;
using conformance::DiffMaps;
using conformance::ParseMap;
using pciplan::testing::Slurp;

std::vector<fs::path> Cases(const char* corpus) {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(fs::path(PCIPLAN_TESTS_DIR) / corpus / "cases")) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

std::string MapText(const std::string& xml) {
  std::string text;
  for (const std::string& l : AddressMapFromXml(xml).lines) text += l + "\n";
  return text;
}

std::string Diff(const std::string& expected, const std::string& actual) {
  std::string out;
  for (const std::string& d : DiffMaps(ParseMap(expected), ParseMap(actual))) out += "\n  " + d;
  return out;
}

struct Planned {
  Domain domain;
  Plan plan;
  std::string xml;
};

/// The devices a case replans (replan.txt), or none.
std::vector<std::string> Replanned(const fs::path& dir) {
  std::vector<std::string> keys;
  std::istringstream in(fs::exists(dir / "replan.txt") ? Slurp(dir / "replan.txt") : "");
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) keys.push_back(line);
  }
  return keys;
}

Result<Planned> PlanText(const std::string& text, const std::vector<std::string>& replan = {}) {
  Result<Domain> d = ReadDomain(text);
  if (!d) return d.errors();
  if (!replan.empty()) {
    Result<Domain> dropped = DropAddresses(*d, replan);
    if (!dropped) return dropped.errors();
    d = std::move(dropped);
  }
  Result<Plan> p = MakePlan(*d, BuiltinCatalog(), PolicyName::kLibvirt);
  if (!p) return p.errors();
  Result<std::string> xml = WriteDomain(*d, *p, BuiltinCatalog());
  if (!xml) return xml.errors();
  return Planned{std::move(d.value()), std::move(p.value()), std::move(xml.value())};
}

std::string PromiseText(const HotplugCapacity& c) {
  return "pcie " + std::to_string(c.pcie) + "\npci " + std::to_string(c.pci) + "\n";
}

void CheckPlans(const char* corpus, size_t min_cases, int min_replanned,
                std::map<std::string, int>* counts = nullptr) {
  bool update = std::getenv("PCIPLAN_UPDATE_GOLDEN") != nullptr;
  std::vector<fs::path> dirs = Cases(corpus);
  EXPECT_GE(dirs.size(), min_cases);
  std::map<std::string, int> by_machine;
  int replanned = 0;
  for (const fs::path& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    std::vector<std::string> replan = Replanned(dir);
    Result<Planned> p = PlanText(Slurp(dir / "input.xml"), replan);
    ASSERT_TRUE(p.ok()) << p.errors().front().message;
    if (!replan.empty()) {
      // Without the replan the wishes are contradicted; with it only the replanned move.
      ++replanned;
      Result<Planned> fixed = PlanText(Slurp(dir / "input.xml"));
      ASSERT_FALSE(fixed.ok());
      EXPECT_EQ(fixed.errors().front().rule, Rule::kWishContradicted);
      Result<Domain> input = ReadDomain(Slurp(dir / "input.xml"));
      ASSERT_TRUE(input.ok());
      int moved = 0;
      for (size_t i = 0; i < input->devices.size(); ++i) {
        const Address& was = input->devices[i].address;
        if (was.WantsPci()) continue;
        if (!p->domain.devices[i].address.WantsPci()) {
          EXPECT_EQ(p->plan.devices[i].address, was) << DeviceRef::DescribeAt(input->devices, i);
        } else {
          moved += p->plan.devices[i].address == was ? 0 : 1;
        }
      }
      EXPECT_EQ(moved, static_cast<int>(replan.size()));
    }
    ASSERT_FALSE(p->domain.wishes.empty());
    ++by_machine[p->plan.family->name];
    by_machine["integrated"] += p->domain.wishes.policy == PolicyWish::kIntegrated;
    by_machine["numa"] += std::any_of(p->domain.wishes.devices.begin(),
                                      p->domain.wishes.devices.end(),
                                      [](const DeviceWish& d) { return d.numa_node.has_value(); });
    std::string map = MapText(p->xml);
    HotplugCapacity free = FreeHotplugSlots(p->plan, BuiltinCatalog());
    if (update) {
      std::ofstream(dir / "expected.addrmap") << map;
      std::ofstream(dir / "promise.txt") << PromiseText(free);
    }
    EXPECT_EQ(Diff(Slurp(dir / "expected.addrmap"), map), "");
    EXPECT_EQ(PromiseText(free), Slurp(dir / "promise.txt"));
    EXPECT_GE(free.pcie, p->domain.wishes.pcie_hotplug_slots.value_or(0));
    EXPECT_GE(free.pci, p->domain.wishes.pci_hotplug_slots.value_or(0));
    // libvirt defined the plan unchanged and kept the wishes.
    std::string libvirt = Slurp(dir / "libvirt.xml");
    ASSERT_FALSE(libvirt.empty()) << "no libvirt.xml: run tests/wishes/record.sh";
    EXPECT_EQ(Diff(map, MapText(libvirt)), "");
    Result<Planned> again = PlanText(libvirt);
    ASSERT_TRUE(again.ok()) << again.errors().front().message;
    EXPECT_EQ(again->domain.wishes, p->domain.wishes);
    EXPECT_EQ(Diff(map, MapText(again->xml)), "");
  }
  std::printf(
      "%s corpus: %zu cases (pc %d, q35 %d, virt %d; %d replanned, %d integrated, %d NUMA), "
      "libvirt kept every plan\n",
      corpus, dirs.size(), by_machine["pc"], by_machine["q35"], by_machine["virt"], replanned,
      by_machine["integrated"], by_machine["numa"]);
  if (counts) *counts = by_machine;
  EXPECT_GE(replanned, min_replanned);
  for (const char* m : {"pc", "q35", "virt"}) EXPECT_GE(by_machine[m], 10) << m;
}

struct Verified {
  std::string name;
  bool ok = false;
  std::string report;
  HotplugCapacity promised, accepted;
};

Verified VerifyCase(const fs::path& dir) {
  Verified v;
  v.name = dir.filename().string();
  Result<Planned> p = PlanText(Slurp(dir / "input.xml"), Replanned(dir));
  if (!p) {
    v.report = p.errors().front().message;
    return v;
  }
  v.promised = FreeHotplugSlots(p->plan, BuiltinCatalog());
  Result<VerifyReport> r = Verify(p->domain, p->plan, BuiltinCatalog(), VerifyOptions{});
  if (!r) {
    v.report = r.errors().front().message;
    return v;
  }
  std::map<std::string, bool> pcie;
  for (const PlanBus& b : PlanBuses(p->plan, BuiltinCatalog())) {
    pcie[b.name] = b.model->offers.Has(Connect::kPcie);
  }
  for (const ProbeCheck& probe : r->probes) {
    if (probe.accepted) ++(pcie[probe.bus] ? v.accepted.pcie : v.accepted.pci);
  }
  v.ok = r->ok();
  if (!v.ok) v.report = RenderVerifyText(*r);
  return v;
}

void CheckInQemu(const char* corpus) {
  std::vector<fs::path> dirs = Cases(corpus);
  std::vector<Verified> done = pciplan::testing::RunBatched(dirs, 4, VerifyCase);
  uint32_t accepted = 0;
  for (const Verified& v : done) {
    SCOPED_TRACE(v.name);
    EXPECT_TRUE(v.ok) << v.report;
    EXPECT_EQ(v.accepted.pcie, v.promised.pcie);
    EXPECT_EQ(v.accepted.pci, v.promised.pci);
    accepted += v.accepted.pcie + v.accepted.pci;
  }
  std::printf("%s corpus: %zu plans verified in QEMU, %u promised hot-plugs accepted\n", corpus,
              done.size(), accepted);
}

struct Booted {
  std::string name;
  bool ok = false;
  int devices = 0, numa_kernel = 0, numa_acpi = 0;
  std::string report;
};

/// Boots the case's plan with verify --guest: the guest must see every PCI device where
/// planned, and each device behind an expander bus of a NUMA node on that node: by the guest
/// kernel's numa_node on x86, by the _PXM of its root bus in the guest's ACPI tables on virt
/// (data/qemu.json "guest" says why).
Booted BootCase(const fs::path& dir) {
  Booted b;
  b.name = dir.filename().string();
  Result<Planned> p = PlanText(Slurp(dir / "input.xml"), Replanned(dir));
  if (!p) {
    b.report = p.errors().front().message;
    return b;
  }
  Result<GuestReport> r = VerifyGuest(p->domain, p->plan, BuiltinCatalog(), GuestOptions{});
  if (!r) {
    b.report = r.errors().front().message;
    return b;
  }
  for (const GuestCheck& c : r->devices) {
    b.devices += c.status == GuestStatus::kOk;
    if (c.status != GuestStatus::kOk || !c.expect.numa_node) continue;
    (c.expect.numa_witness == NumaWitness::kAcpi ? b.numa_acpi : b.numa_kernel) += 1;
  }
  b.ok = r->ok();
  if (!b.ok) b.report = RenderGuestText(*r);
  return b;
}

TEST(WishCorpus, PlansKeepTheirAddressMapAndPromiseAndLibvirtKeepsThem) {
  CheckPlans("wishes", 60, 3);
}
TEST(WishCorpus, EveryPlanRunsInQemuWithExactlyThePromisedHotplugSlots) { CheckInQemu("wishes"); }
TEST(PolicyCorpus, PlansKeepTheirAddressMapAndPromiseAndLibvirtKeepsThem) {
  std::map<std::string, int> counts;
  CheckPlans("policies", 70, 0, &counts);
  EXPECT_GE(counts["integrated"], 40);
  EXPECT_GE(counts["numa"], 30);
}
TEST(PolicyCorpus, EveryPlanRunsInQemuWithExactlyThePromisedHotplugSlots) {
  CheckInQemu("policies");
}
TEST(PolicyCorpus, EveryPlanBootsAndTheGuestSeesEveryDeviceWherePlanned) {
  std::vector<fs::path> dirs = Cases("policies");
  std::vector<Booted> done = pciplan::testing::RunBatched(dirs, 2, BootCase);
  int devices = 0, kernel = 0, acpi = 0;
  for (const Booted& b : done) {
    SCOPED_TRACE(b.name);
    EXPECT_TRUE(b.ok) << b.report;
    devices += b.devices;
    kernel += b.numa_kernel;
    acpi += b.numa_acpi;
  }
  std::printf("policies corpus: %zu plans booted, %d devices seen by the guest as planned; on "
              "their NUMA node: %d by the guest kernel, %d by the guest's ACPI tables\n",
              done.size(), devices, kernel, acpi);
  // Every NUMA wish of the corpus is judged on some guest: x86 by its kernel, virt by ACPI.
  EXPECT_GE(kernel, 161);
  EXPECT_GE(acpi, 74);
}

}  // namespace
}  // namespace pciplan
