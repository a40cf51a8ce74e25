#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/plan/planner.h"

namespace pciplan {
namespace {

Result<Plan> PlanWith(const std::string& machine, const std::string& devices, const Wishes& w,
                      const std::string& arch = "x86_64") {
  Result<Domain> dom =
      ReadDomain("<domain type='qemu'><name>t</name><os><type arch='" + arch + "' machine='" +
                 machine + "'>hvm</type></os><devices>" + devices + "</devices></domain>");
  if (!dom) return dom.errors();
  dom->wishes = w;
  return MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
}

int Count(const Plan& p, const std::string& model) {
  int n = 0;
  for (const Device& d : p.devices) n += d.Is("@model", model);
  return n;
}

Wishes Slots(std::optional<uint32_t> pcie, std::optional<uint32_t> pci) {
  Wishes w;
  w.pcie_hotplug_slots = pcie;
  w.pci_hotplug_slots = pci;
  return w;
}

Wishes Transport(TransportWish t) {
  Wishes w;
  w.default_address_type = t;
  return w;
}

AddressType AddressOf(const Plan& p, const std::string& tag) {
  for (const Device& d : p.devices) {
    if (d.tag == tag) return d.address.type;
  }
  return AddressType::kOther;
}

const char* kNet = "<interface type='user'><model type='virtio'/></interface>";

TEST(PlanWishes, PcieHotplugSlotsAddsExactlyTheMissingRootPorts) {
  // Empty q35: libvirt adds 2 root ports for USB and balloon plus 1 spare.
  for (uint32_t n : {0u, 1u, 2u, 5u, 9u, 20u}) {
    SCOPED_TRACE(n);
    Result<Plan> p = PlanWith("q35", "", Slots(n, std::nullopt));
    ASSERT_TRUE(p.ok()) << p.errors().front().message;
    EXPECT_EQ(FreeHotplugSlots(*p, BuiltinCatalog()).pcie, n);
    EXPECT_EQ(Count(*p, "pcie-root-port"), static_cast<int>(2 + n));
  }
}

TEST(PlanWishes, FreeRootPortsTheUserHasCount) {
  std::string ports;
  for (int i = 1; i <= 4; ++i) {
    ports += "<controller type='pci' index='" + std::to_string(i) + "' model='pcie-root-port'/>";
  }
  Result<Plan> p = PlanWith("q35", ports, Slots(3, std::nullopt));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  // USB and balloon take two of the four; two are free, one more is added.
  EXPECT_EQ(Count(*p, "pcie-root-port"), 5);
  EXPECT_EQ(FreeHotplugSlots(*p, BuiltinCatalog()).pcie, 3u);
}

TEST(PlanWishes, PciHotplugSlotsOnPcUsesFreeSlotsOfTheRootBusFirst) {
  Result<Plan> few = PlanWith("pc", kNet, Slots(std::nullopt, 3));
  ASSERT_TRUE(few.ok()) << few.errors().front().message;
  EXPECT_EQ(Count(*few, "pci-bridge"), 0);
  EXPECT_GE(FreeHotplugSlots(*few, BuiltinCatalog()).pci, 3u);
  Result<Plan> many = PlanWith("pc", kNet, Slots(std::nullopt, 31));
  ASSERT_TRUE(many.ok()) << many.errors().front().message;
  EXPECT_EQ(Count(*many, "pci-bridge"), 1);
  EXPECT_GE(FreeHotplugSlots(*many, BuiltinCatalog()).pci, 31u);
}

TEST(PlanWishes, PciHotplugSlotsOnQ35AddsOnePcieToPciBridge) {
  Result<Plan> p = PlanWith("q35", kNet, Slots(std::nullopt, 2));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(Count(*p, "pcie-to-pci-bridge"), 1);
  EXPECT_GE(FreeHotplugSlots(*p, BuiltinCatalog()).pci, 2u);
}

TEST(PlanWishes, PcieSlotsOnPcAreAWishUnmet) {
  Result<Plan> p = PlanWith("pc", "", Slots(1, std::nullopt));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.errors().front().rule, Rule::kWishUnmet);
}

TEST(PlanWishes, DefaultAddressTypeChoosesTheVirtioTransportOnVirt) {
  std::string devs = std::string(kNet) +
                     "<disk type='file' device='disk'><target dev='vda' bus='virtio'/>"
                     "<address type='virtio-mmio'/></disk>";
  Result<Plan> pci = PlanWith("virt", devs, Transport(TransportWish::kPci), "aarch64");
  ASSERT_TRUE(pci.ok()) << pci.errors().front().message;
  Result<Plan> mmio = PlanWith("virt", kNet, Transport(TransportWish::kVirtioMmio), "aarch64");
  ASSERT_TRUE(mmio.ok()) << mmio.errors().front().message;
  EXPECT_EQ(AddressOf(*pci, "interface"), AddressType::kPci);
  EXPECT_EQ(AddressOf(*mmio, "interface"), AddressType::kVirtioMmio);
  Result<Plan> x86 = PlanWith("q35", kNet, Transport(TransportWish::kVirtioMmio));
  ASSERT_FALSE(x86.ok());
  EXPECT_EQ(x86.errors().front().rule, Rule::kWishUnmet);
}

TEST(PlanWishes, AWishNamingNoDeviceIsAnError) {
  Wishes w;
  w.devices.push_back(DeviceWish{"ua-missing", Hotpluggable::kNo, BusWish::kUnset, "", std::nullopt});
  Result<Plan> p = PlanWith("q35", kNet, w);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.errors().front().rule, Rule::kBadWish);
}

// --- switches --------------------------------------------------------------------------------

// Endpoints with fixed addresses on every slot 1..30 of the root bus but those in `free`: what
// leaves the policy no room for root ports.
std::string FullRootBus(std::initializer_list<uint32_t> free, const std::string& extra = "") {
  std::string devs = "<controller type='usb' model='none'/><memballoon model='none'/>" + extra;
  for (uint32_t s = 1; s <= 30; ++s) {
    if (std::find(free.begin(), free.end(), s) != free.end()) continue;
    devs += "<interface type='user'><model type='e1000'/><address type='pci' domain='0' bus='0' "
            "slot='" + std::to_string(s) + "' function='0'/></interface>";
  }
  return devs;
}

uint32_t IndexOf(const Device& d) { return std::stoul(d.GetOr("@index", "0")); }

// Every switch port sits on a controller with a lower index (QEMU's -device order, libvirt's
// command line, needs the parent first), and nothing but switch ports sits on an upstream port.
void ExpectParentsFirst(const Plan& p) {
  std::map<uint32_t, std::string> model;
  for (const Device& d : p.devices) {
    if (d.Is("@type", "pci")) model[IndexOf(d)] = d.GetOr("@model", "");
  }
  for (const Device& d : p.devices) {
    if (d.address.type != AddressType::kPci || !d.Is("@type", "pci")) continue;
    EXPECT_LT(d.address.pci.bus, IndexOf(d)) << d.GetOr("@model", "");
    if (model[d.address.pci.bus] == "pcie-switch-upstream-port") {
      EXPECT_EQ(d.GetOr("@model", ""), "pcie-switch-downstream-port");
    }
  }
}

TEST(PlanWishes, PcieSlotsBeyondTheRootBusRoomComeFromSwitches) {
  // One free slot of the root bus on q35 (room for 8 root ports), two on virt (slot 31 is not
  // the chipset's there: 16). All but one of them are spares, the last holds a switch; more
  // slots mean a second switch.
  for (const char* arch : {"x86_64", "aarch64"}) {
    std::string machine = std::string(arch) == "x86_64" ? "q35" : "virt";
    uint32_t room = machine == "q35" ? 8 : 16;
    for (uint32_t n : {8u, 9u, 16u, 17u, 40u, 64u}) {
      SCOPED_TRACE(machine + " N=" + std::to_string(n));
      Result<Plan> p = PlanWith(machine, FullRootBus({5}), Slots(n, std::nullopt), arch);
      ASSERT_TRUE(p.ok()) << p.errors().front().message;
      EXPECT_EQ(FreeHotplugSlots(*p, BuiltinCatalog()).pcie, n);
      int switches = Count(*p, "pcie-switch-upstream-port");
      EXPECT_EQ(switches, n <= room ? 0 : n <= room - 1 + 32 ? 1 : 2);
      // One controller per free slot, and two more (root port, upstream port) per switch.
      EXPECT_EQ(Count(*p, "pcie-root-port") + Count(*p, "pcie-switch-downstream-port"),
                static_cast<int>(n) + switches);
      ExpectParentsFirst(*p);
    }
  }
}

TEST(PlanWishes, AFullRootBusHangsTheSwitchFromAFreePortOrRefuses) {
  // Slot 30 holds 8 free root ports of the user's: the switch hangs from one of them, with one
  // downstream port more than the 2 slots missing, since its port is no longer free.
  std::string ports;
  for (int f = 0; f < 8; ++f) {
    ports += "<controller type='pci' index='" + std::to_string(f + 1) +
             "' model='pcie-root-port'><address type='pci' domain='0' bus='0' slot='30' "
             "function='" + std::to_string(f) + "'" + (f == 0 ? " multifunction='on'" : "") +
             "/></controller>";
  }
  Result<Plan> p = PlanWith("q35", FullRootBus({30}, ports), Slots(10, std::nullopt));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(FreeHotplugSlots(*p, BuiltinCatalog()).pcie, 10u);
  EXPECT_EQ(Count(*p, "pcie-root-port"), 8);
  EXPECT_EQ(Count(*p, "pcie-switch-downstream-port"), 3);
  ExpectParentsFirst(*p);
  // Nothing free at all: a clear refusal.
  Result<Plan> none = PlanWith("q35", FullRootBus({}), Slots(1, std::nullopt));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.errors().front().rule, Rule::kWishUnmet);
  EXPECT_NE(none.errors().front().message.find("no free port takes a pcie-switch-upstream-port"),
            std::string::npos)
      << none.errors().front().message;
}

TEST(PlanWishes, AConnectionToADownstreamPortAddsASwitchOnlyWhenNoneIsFree) {
  Wishes w;
  for (const char* key : {"ua-a", "ua-b"}) {
    DeviceWish d;
    d.key = key;
    d.connection = "pcie-switch-downstream-port";
    w.devices.push_back(d);
  }
  const std::string nics =
      "<interface type='user'><model type='virtio'/><alias name='ua-a'/></interface>"
      "<interface type='user'><model type='virtio'/><alias name='ua-b'/></interface>";
  Result<Plan> p = PlanWith("q35", nics, w);
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(Count(*p, "pcie-switch-upstream-port"), 1);
  EXPECT_EQ(Count(*p, "pcie-switch-downstream-port"), 2);
  std::map<uint32_t, std::string> model;
  for (const Device& d : p->devices) {
    if (d.Is("@type", "pci")) model[IndexOf(d)] = d.GetOr("@model", "");
  }
  for (const Device& d : p->devices) {
    if (d.tag == "interface") {
      EXPECT_EQ(model[d.address.pci.bus], "pcie-switch-downstream-port");
    }
  }
  ExpectParentsFirst(*p);
  // With a switch of the user's that has two free downstream ports, nothing is added.
  Result<Plan> own = PlanWith(
      "q35",
      nics + "<controller type='pci' index='1' model='pcie-root-port'/><controller type='pci' "
             "index='2' model='pcie-switch-upstream-port'/><controller type='pci' index='3' "
             "model='pcie-switch-downstream-port'/><controller type='pci' index='4' "
             "model='pcie-switch-downstream-port'/>",
      w);
  ASSERT_TRUE(own.ok()) << own.errors().front().message;
  EXPECT_EQ(Count(*own, "pcie-switch-upstream-port"), 1);
  EXPECT_EQ(Count(*own, "pcie-switch-downstream-port"), 2);
}

}  // namespace
}  // namespace pciplan

namespace pciplan {
namespace {

Wishes OneDevice(const std::string& key, Hotpluggable h, BusWish bus, const std::string& conn) {
  Wishes w;
  w.devices.push_back(DeviceWish{key, h, bus, conn, std::nullopt});
  return w;
}

const char* kRng =
    "<rng model='virtio'><backend model='random'>/dev/urandom</backend><alias name='ua-rng'/>"
    "</rng>";

std::string RngAddress(const Plan& p) {
  for (const Device& d : p.devices) {
    if (d.tag == "rng") return d.address.pci.ToString();
  }
  return "none";
}

TEST(PlanWishes, DeviceWishesDecideTheSlotOfAnOpenAddress) {
  struct Case {
    const char* machine;
    Wishes wishes;
    const char* address;
  };
  const Case cases[] = {
      {"q35", OneDevice("ua-rng", Hotpluggable::kNo, BusWish::kUnset, ""), "0000:00:02.0"},
      {"q35", OneDevice("ua-rng", Hotpluggable::kUnset, BusWish::kPci, ""), "0000:04:01.0"},
      {"q35", OneDevice("ua-rng", Hotpluggable::kUnset, BusWish::kUnset, "pcie-to-pci-bridge"),
       "0000:04:01.0"},
      {"q35", OneDevice("ua-rng", Hotpluggable::kYes, BusWish::kPcie, ""), "0000:03:00.0"},
      {"pc", OneDevice("ua-rng", Hotpluggable::kNo, BusWish::kUnset, ""), "0000:00:03.0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.address);
    Result<Plan> p = PlanWith(c.machine, kRng, c.wishes);
    ASSERT_TRUE(p.ok()) << p.errors().front().message;
    EXPECT_EQ(RngAddress(*p), c.address);
  }
}

TEST(PlanWishes, ImpossibleDeviceWishesAreErrorsNamingTheWish) {
  struct Case {
    const char* machine;
    Wishes wishes;
    Rule rule;
  };
  const Case cases[] = {
      {"q35", OneDevice("ua-rng", Hotpluggable::kYes, BusWish::kUnset, "pcie-root"),
       Rule::kWishUnmet},
      {"q35", OneDevice("ua-rng", Hotpluggable::kNo, BusWish::kUnset, "pcie-root-port"),
       Rule::kWishUnmet},
      {"pc", OneDevice("ua-rng", Hotpluggable::kUnset, BusWish::kPcie, ""), Rule::kWishUnmet},
      {"q35", OneDevice("ua-rng", Hotpluggable::kUnset, BusWish::kUnset, "pci-root"),
       Rule::kWishUnmet},
      {"q35", OneDevice("ua-rng", Hotpluggable::kUnset, BusWish::kUnset, "pcie-rot-port"),
       Rule::kBadWish},
      {"pc",
       OneDevice("ua-rng", Hotpluggable::kUnset, BusWish::kUnset, "pcie-switch-downstream-port"),
       Rule::kWishUnmet},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(RuleId(c.rule));
    Result<Plan> p = PlanWith(c.machine, kRng, c.wishes);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.errors().front().rule, c.rule);
  }
}

TEST(PlanWishes, AnExistingAddressContradictingAWishIsReportedNotMoved) {
  std::string rng_on_port =
      "<controller type='pci' index='1' model='pcie-root-port'/>"
      "<rng model='virtio'><backend model='random'>/dev/urandom</backend><alias name='ua-rng'/>"
      "<address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></rng>";
  Result<Plan> p =
      PlanWith("q35", rng_on_port, OneDevice("ua-rng", Hotpluggable::kNo, BusWish::kUnset, ""));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.errors().front().rule, Rule::kWishContradicted);
  Result<Plan> agrees =
      PlanWith("q35", rng_on_port, OneDevice("ua-rng", Hotpluggable::kYes, BusWish::kUnset, ""));
  ASSERT_TRUE(agrees.ok()) << agrees.errors().front().message;
  EXPECT_EQ(RngAddress(*agrees), "0000:01:00.0");
}

/// A q35 domain with `devices`, planned and read back: every address written, like a defined
/// libvirt domain.
Domain PlannedQ35(const std::string& devices) {
  Result<Domain> raw = ReadDomain(
      "<domain type='qemu'><name>t</name><os><type arch='x86_64' machine='q35'>hvm"
      "</type></os><devices>" +
      devices + "</devices></domain>");
  EXPECT_TRUE(raw.ok());
  Result<Plan> plan = MakePlan(*raw, BuiltinCatalog(), PolicyName::kLibvirt);
  EXPECT_TRUE(plan.ok());
  Result<std::string> xml = WriteDomain(*raw, *plan, BuiltinCatalog());
  EXPECT_TRUE(xml.ok());
  Result<Domain> planned = ReadDomain(*xml);
  EXPECT_TRUE(planned.ok());
  return std::move(planned.value());
}

int IndexOf(const Domain& d, const std::string& alias) {
  for (size_t i = 0; i < d.devices.size(); ++i) {
    if (d.devices[i].Is("alias/@name", alias)) return static_cast<int>(i);
  }
  return -1;
}

/// Every device of `d` but `except` is where `d` has it in `p`.
void ExpectUnmovedBut(const Domain& d, const Plan& p, int except) {
  ASSERT_GE(p.devices.size(), d.devices.size());
  for (size_t i = 0; i < d.devices.size(); ++i) {
    if (static_cast<int>(i) == except) continue;
    EXPECT_EQ(p.devices[i].address, d.devices[i].address)
        << DeviceRef::DescribeAt(d.devices, i) << " moved";
  }
}

const char* kServer =
    "<disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/>"
    "<alias name='ua-vda'/></disk>"
    "<disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk>"
    "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/>"
    "<alias name='ua-net0'/></interface>"
    "<interface type='user'><mac address='52:54:00:00:00:02'/><model type='e1000'/></interface>"
    "<rng model='virtio'><backend model='random'>/dev/urandom</backend><alias name='ua-rng'/>"
    "</rng>";

TEST(Replan, AContradictedDeviceIsPlacedAsWishedAndNothingElseMoves) {
  Domain planned = PlannedQ35(kServer);
  int rng = IndexOf(planned, "ua-rng");
  ASSERT_GE(rng, 0);
  ASSERT_NE(planned.devices[rng].address.pci.bus, 0u);  // on a root port, as libvirt puts it
  Domain wished = planned;
  wished.wishes = OneDevice("ua-rng", Hotpluggable::kNo, BusWish::kUnset, "");
  Result<Plan> refused = MakePlan(wished, BuiltinCatalog(), PolicyName::kLibvirt);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.errors().front().rule, Rule::kWishContradicted);
  EXPECT_NE(refused.errors().front().hint.find("--replan ua-rng"), std::string::npos)
      << refused.errors().front().hint;
  Result<Domain> dropped = DropAddresses(wished, {"ua-rng"});
  ASSERT_TRUE(dropped.ok());
  Result<Plan> p = MakePlan(*dropped, BuiltinCatalog(), PolicyName::kLibvirt);
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_TRUE(p->devices[rng].address.IsPresentPci());
  EXPECT_EQ(p->devices[rng].address.pci.bus, 0u);  // the root bus, as wished
  ExpectUnmovedBut(planned, *p, rng);
  // Written back: the rng's <address> is replaced in place, every other line kept.
  Result<std::string> xml = WriteDomain(*dropped, *p, BuiltinCatalog());
  ASSERT_TRUE(xml.ok());
  Result<Domain> again = ReadDomain(*xml);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->devices.size(), planned.devices.size());
  EXPECT_EQ(again->devices[rng].address.pci, p->devices[rng].address.pci);
}

TEST(Replan, HotpluggableYesMovesARootBusDeviceToAPortAndKeepsTheOthers) {
  Domain planned = PlannedQ35(
      "<rng model='virtio'><backend model='random'>/dev/urandom</backend><alias name='ua-rng'/>"
      "<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></rng>" +
      std::string(kServer).substr(0, std::string(kServer).find("<rng")));
  int rng = IndexOf(planned, "ua-rng");
  ASSERT_GE(rng, 0);
  planned.wishes = OneDevice("ua-rng", Hotpluggable::kYes, BusWish::kUnset, "");
  Result<Plan> refused = MakePlan(planned, BuiltinCatalog(), PolicyName::kLibvirt);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.errors().front().rule, Rule::kWishContradicted);
  Result<Domain> dropped = DropAddresses(planned, {"ua-rng"});
  ASSERT_TRUE(dropped.ok());
  Result<Plan> p = MakePlan(*dropped, BuiltinCatalog(), PolicyName::kLibvirt);
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_NE(p->devices[rng].address.pci.bus, 0u);
  bool on_port = false;
  for (const PlanBus& b : PlanBuses(*p, BuiltinCatalog())) {
    on_port |= b.index == p->devices[rng].address.pci.bus && b.hotplug;
  }
  EXPECT_TRUE(on_port);
  ExpectUnmovedBut(planned, *p, rng);
}

TEST(Replan, AReplannedControllerKeepsItsIndexSoItsDevicesKeepTheirBus) {
  Domain planned = PlannedQ35(kServer);
  int vda = IndexOf(planned, "ua-vda");
  uint32_t bus = planned.devices[vda].address.pci.bus;
  ASSERT_NE(bus, 0u);
  std::string key = "controller:pci:" + std::to_string(bus);
  int port = FindDeviceByKey(planned, key);
  ASSERT_GE(port, 0);
  Result<Domain> dropped = DropAddresses(planned, {key});
  ASSERT_TRUE(dropped.ok());
  Result<Plan> p = MakePlan(*dropped, BuiltinCatalog(), PolicyName::kLibvirt);
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_TRUE(p->devices[port].address.IsPresentPci());
  EXPECT_EQ(p->devices[port].address.pci.bus, 0u);
  EXPECT_EQ(p->devices[port].GetOr("@index", ""), std::to_string(bus));
  EXPECT_EQ(p->devices[vda].address.pci.bus, bus);
  ExpectUnmovedBut(planned, *p, port);
}

}  // namespace
}  // namespace pciplan
