// The spare hot-plug slot promise (issue 9): a plan made under pcieHotplugSlots=N leaves
// max(N, what was already free) free hot-pluggable PCIe slots and adds no controller beyond
// that; one made under pciHotplugSlots=M leaves at least M free conventional slots, and one
// bridge fewer would not do. Planning is checked over the whole range (0..64 PCIe on q35 and
// virt, 0..31 PCI on pc and q35); the real QEMU checks a bounded sample of it, in parallel:
// exactly the promised slots accept a hot-plug.
#include <gtest/gtest.h>

#include <map>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/plan/planner.h"
#include "pciplan/qmp/verify.h"
#include "test_support.h"

namespace pciplan {
namespace {

enum class Kind { kPcie, kPci };

struct Machine {
  const char* name;
  const char* os;
};

const Machine kPc{"pc", "<os><type arch='x86_64' machine='pc'>hvm</type></os>"};
const Machine kQ35{"q35", "<os><type arch='x86_64' machine='q35'>hvm</type></os>"};
const Machine kVirt{"virt",
                    "<os><type arch='aarch64' machine='virt'>hvm</type></os>"
                    "<cpu mode='custom'><model>cortex-a57</model></cpu>"};

// A small domain: a virtio disk, a virtio NIC and an e1000 (conventional) NIC.
Domain Small(const Machine& m, Kind kind, uint32_t n) {
  std::string xml =
      std::string("<domain type='qemu'><name>spares</name><memory>262144</memory>") + m.os +
      "<devices><disk type='file' device='disk'><source file='/x.img'/>"
      "<target dev='vda' bus='virtio'/></disk>"
      "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/>"
      "</interface><interface type='user'><mac address='52:54:00:00:00:02'/>"
      "<model type='e1000'/></interface></devices></domain>";
  Result<Domain> d = ReadDomain(xml);
  EXPECT_TRUE(d.ok());
  (kind == Kind::kPcie ? d->wishes.pcie_hotplug_slots : d->wishes.pci_hotplug_slots) = n;
  return std::move(d.value());
}

Plan PlanOf(const Domain& d) {
  Result<Plan> p = MakePlan(d, BuiltinCatalog(), PolicyName::kLibvirt);
  EXPECT_TRUE(p.ok()) << p.errors().front().message;
  return p.ok() ? std::move(p.value()) : Plan{};
}

int Controllers(const Plan& p) {
  int n = 0;
  for (const Device& d : p.devices) n += d.tag == "controller" && d.Is("@type", "pci");
  return n;
}

uint32_t Free(const Plan& p, Kind kind) {
  HotplugCapacity c = FreeHotplugSlots(p, BuiltinCatalog());
  return kind == Kind::kPcie ? c.pcie : c.pci;
}

void CheckPlanningRange(const Machine& m, Kind kind, uint32_t max) {
  Plan none = PlanOf(Small(m, kind, 0));
  uint32_t free0 = Free(none, kind);
  for (uint32_t n = 0; n <= max; ++n) {
    SCOPED_TRACE(std::string(m.name) + " N=" + std::to_string(n));
    Plan p = PlanOf(Small(m, kind, n));
    uint32_t free = Free(p, kind);
    EXPECT_GE(free, n);
    if (kind == Kind::kPcie) {
      // One root port per missing slot, nothing else.
      EXPECT_EQ(free, std::max(n, free0));
      EXPECT_EQ(Controllers(p) - Controllers(none), static_cast<int>(free - free0));
    } else if (free > free0) {
      // Something was added for the wish: without the last bridge (31 slots) it falls short.
      EXPECT_LT(free - 31, n);
    }
  }
}

TEST(HotplugSlots, PcieWishOnQ35AddsOneRootPortPerMissingSlotFrom0To64) {
  CheckPlanningRange(kQ35, Kind::kPcie, 64);
}
TEST(HotplugSlots, PcieWishOnVirtAddsOneRootPortPerMissingSlotFrom0To64) {
  CheckPlanningRange(kVirt, Kind::kPcie, 64);
}
TEST(HotplugSlots, PciWishOnPcIsMetWithTheFewestBridgesFrom0To31) {
  CheckPlanningRange(kPc, Kind::kPci, 31);
}
TEST(HotplugSlots, PciWishOnQ35IsMetWithTheFewestBridgesFrom0To31) {
  CheckPlanningRange(kQ35, Kind::kPci, 31);
}

struct Sample {
  const Machine* machine;
  Kind kind;
  uint32_t n;
};

struct Outcome {
  std::string what;
  uint32_t promised_pcie = 0, promised_pci = 0;
  uint32_t accepted_pcie = 0, accepted_pci = 0;
  bool ok = false;
  std::string report;
};

Outcome RunInQemu(const Sample& s) {
  Outcome o;
  o.what = std::string(s.machine->name) + (s.kind == Kind::kPcie ? " pcie=" : " pci=") +
           std::to_string(s.n);
  Domain d = Small(*s.machine, s.kind, s.n);
  Plan p = PlanOf(d);
  HotplugCapacity c = FreeHotplugSlots(p, BuiltinCatalog());
  o.promised_pcie = c.pcie;
  o.promised_pci = c.pci;
  Result<VerifyReport> r = Verify(d, p, BuiltinCatalog(), VerifyOptions{});
  if (!r) {
    o.report = r.errors().front().message;
    return o;
  }
  std::map<std::string, bool> pcie_bus;
  for (const PlanBus& b : PlanBuses(p, BuiltinCatalog())) {
    pcie_bus[b.name] = b.model->offers.Has(Connect::kPcie);
  }
  for (const ProbeCheck& probe : r->probes) {
    if (!probe.accepted) continue;
    ++(pcie_bus[probe.bus] ? o.accepted_pcie : o.accepted_pci);
  }
  o.ok = r->ok();
  if (!o.ok) o.report = RenderVerifyText(*r);
  return o;
}

TEST(HotplugSlots, QemuAcceptsExactlyThePromisedHotplugsOnASample) {
  std::vector<Sample> samples;
  for (uint32_t n : {0u, 1u, 5u, 8u, 9u, 23u, 64u}) {
    samples.push_back({&kQ35, Kind::kPcie, n});
    samples.push_back({&kVirt, Kind::kPcie, n});
  }
  for (uint32_t n : {0u, 1u, 2u, 27u, 31u}) {
    samples.push_back({&kPc, Kind::kPci, n});
    samples.push_back({&kQ35, Kind::kPci, n});
  }
  std::vector<Outcome> outcomes = pciplan::testing::RunBatched(samples, 4, RunInQemu);
  uint32_t probes = 0;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& o = outcomes[i];
    SCOPED_TRACE(o.what);
    EXPECT_TRUE(o.ok) << o.report;
    EXPECT_EQ(o.accepted_pcie, o.promised_pcie);
    EXPECT_EQ(o.accepted_pci, o.promised_pci);
    uint32_t wanted = samples[i].n;
    EXPECT_GE(samples[i].kind == Kind::kPcie ? o.accepted_pcie : o.accepted_pci, wanted);
    probes += o.accepted_pcie + o.accepted_pci;
  }
  std::printf("hot-plug slots: %zu plans verified in QEMU, %u hot-plugs accepted as promised\n",
              outcomes.size(), probes);
}

}  // namespace
}  // namespace pciplan
