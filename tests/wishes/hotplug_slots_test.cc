// The spare hot-plug slot promise (issue 9): a plan made under pcieHotplugSlots=N leaves
// max(N, what was already free) free hot-pluggable PCIe slots and adds no controller beyond
// that (one root port per slot while the root bus has room, then switches: a root port and an
// upstream port more per switch); one made under pciHotplugSlots=M leaves at least M free
// conventional slots, and one bridge fewer would not do. The whole range (0..64 PCIe on q35 and
// virt, also with a root bus crowded with endpoints; 0..31 PCI on pc and q35) is planned and
// started in the real QEMU, in parallel: exactly the promised slots accept a hot-plug.
#include <fmt/format.h>
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

enum class Root { kRoomy, kCrowded };

// A small domain: a virtio disk, a virtio NIC and an e1000 (conventional) NIC. Crowded, the
// root bus also holds e1000s on every slot 1..30 but slot 5, so that on q35 only 8 root ports
// fit (16 on virt, whose slot 31 is free too) and more spare slots need switches.
Domain Small(const Machine& m, Kind kind, uint32_t n, Root root = Root::kRoomy) {
  std::string crowd;
  for (uint32_t s = 1; root == Root::kCrowded && s <= 30; ++s) {
    if (s == 5) continue;
    crowd += fmt::format(
        "<interface type='user'><mac address='52:54:00:00:01:{:02x}'/><model type='e1000'/>"
        "<address type='pci' domain='0' bus='0' slot='{}' function='0'/></interface>",
        s, s);
  }
  std::string xml =
      std::string("<domain type='qemu'><name>spares</name><memory>262144</memory>") + m.os +
      "<devices><disk type='file' device='disk'><source file='/x.img'/>"
      "<target dev='vda' bus='virtio'/></disk>"
      "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/>"
      "</interface><interface type='user'><mac address='52:54:00:00:00:02'/>"
      "<model type='e1000'/></interface>" + crowd + "</devices></domain>";
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

int Controllers(const Plan& p, const char* model = nullptr) {
  int n = 0;
  for (const Device& d : p.devices) {
    n += d.tag == "controller" && d.Is("@type", "pci") && (!model || d.Is("@model", model));
  }
  return n;
}

uint32_t Free(const Plan& p, Kind kind) {
  HotplugCapacity c = FreeHotplugSlots(p, BuiltinCatalog());
  return kind == Kind::kPcie ? c.pcie : c.pci;
}

void CheckPlanningRange(const Machine& m, Kind kind, uint32_t max, Root root = Root::kRoomy) {
  Plan none = PlanOf(Small(m, kind, 0, root));
  uint32_t free0 = Free(none, kind);
  int most_switches = 0;
  for (uint32_t n = 0; n <= max; ++n) {
    SCOPED_TRACE(std::string(m.name) + " N=" + std::to_string(n));
    Plan p = PlanOf(Small(m, kind, n, root));
    uint32_t free = Free(p, kind);
    EXPECT_GE(free, n);
    if (kind == Kind::kPcie) {
      // One port per missing slot, and a root port and an upstream port per switch.
      int switches = Controllers(p, "pcie-switch-upstream-port");
      EXPECT_EQ(free, std::max(n, free0));
      EXPECT_EQ(Controllers(p) - Controllers(none), static_cast<int>(free - free0) + 2 * switches);
      EXPECT_LE(switches, (static_cast<int>(n) + 30) / 31);
      if (root == Root::kRoomy) {
        EXPECT_EQ(switches, 0);
      }
      most_switches = std::max(most_switches, switches);
    } else if (free > free0) {
      // Something was added for the wish: without the last bridge (31 slots) it falls short.
      EXPECT_LT(free - 31, n);
    }
  }
  if (root == Root::kCrowded) {
    EXPECT_EQ(most_switches, 2);
  }
}

TEST(HotplugSlots, PcieWishOnQ35AddsOneRootPortPerMissingSlotFrom0To64) {
  CheckPlanningRange(kQ35, Kind::kPcie, 64);
}
TEST(HotplugSlots, PcieWishOnVirtAddsOneRootPortPerMissingSlotFrom0To64) {
  CheckPlanningRange(kVirt, Kind::kPcie, 64);
}
TEST(HotplugSlots, PcieWishOnACrowdedQ35UsesSwitchesPastTheRootBusFrom0To64) {
  CheckPlanningRange(kQ35, Kind::kPcie, 64, Root::kCrowded);
}
TEST(HotplugSlots, PcieWishOnACrowdedVirtUsesSwitchesPastTheRootBusFrom0To64) {
  CheckPlanningRange(kVirt, Kind::kPcie, 64, Root::kCrowded);
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
  Root root = Root::kRoomy;
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
  o.what = std::string(s.machine->name) + (s.root == Root::kCrowded ? " crowded" : "") +
           (s.kind == Kind::kPcie ? " pcie=" : " pci=") + std::to_string(s.n);
  Domain d = Small(*s.machine, s.kind, s.n, s.root);
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

TEST(HotplugSlots, QemuAcceptsExactlyThePromisedHotplugsOverTheWholeRange) {
  std::vector<Sample> samples;
  for (uint32_t n = 0; n <= 64; ++n) {
    for (Root root : {Root::kRoomy, Root::kCrowded}) {
      samples.push_back({&kQ35, Kind::kPcie, n, root});
      samples.push_back({&kVirt, Kind::kPcie, n, root});
    }
  }
  for (uint32_t n = 0; n <= 31; ++n) {
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
