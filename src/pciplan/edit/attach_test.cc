#include "pciplan/edit/attach.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/plan/planner.h"

namespace pciplan {
namespace {

/// A q35 domain planned by pciplan (fully addressed, like a defined libvirt domain), with
/// `metadata` (pciplan wishes) if given.
Domain PlannedQ35(const std::string& devices, const std::string& metadata = "") {
  Result<Domain> raw = ReadDomain(
      "<domain type='qemu'>\n  <name>t</name>\n" + metadata + "  <os>\n"
      "    <type arch='x86_64' machine='q35'>hvm</type>\n  </os>\n"
      "  <devices>\n" +
      devices + "  </devices>\n</domain>\n");
  EXPECT_TRUE(raw.ok());
  Result<Plan> plan = MakePlan(*raw, BuiltinCatalog(), PolicyName::kLibvirt);
  EXPECT_TRUE(plan.ok());
  Result<std::string> xml = WriteDomain(*raw, *plan, BuiltinCatalog());
  Result<Domain> planned = ReadDomain(*xml);
  EXPECT_TRUE(planned.ok());
  return std::move(planned.value());
}

const Device* FindTagged(const Plan& plan, const std::string& alias) {
  for (const Device& d : plan.devices) {
    if (d.Is("alias/@name", alias)) return &d;
  }
  return nullptr;
}

const char kDisk[] =
    "    <disk type='file' device='disk'>\n      <source file='/x.img'/>\n"
    "      <target dev='vda' bus='virtio'/>\n      <alias name='ua-vda'/>\n    </disk>\n";

TEST(Attach, LiveTakesTheSpareRootPortAndAddsNothing) {
  Domain dom = PlannedQ35(kDisk);
  Result<Edited> e = AttachDevice(dom,
                                  "<interface type='user'><mac address='52:54:00:00:00:01'/>"
                                  "<model type='virtio'/><alias name='ua-net'/></interface>",
                                  BuiltinCatalog(), AttachMode::kLive);
  ASSERT_TRUE(e.ok()) << e.errors().front().message;
  const Device* net = FindTagged(e->plan, "ua-net");
  ASSERT_NE(net, nullptr);
  EXPECT_EQ(net->address.type, AddressType::kPci);
  EXPECT_EQ(e->plan.devices.size(), dom.devices.size() + 1);
}

TEST(Attach, LiveWithoutAFreeHotplugSlotFailsWithAHint) {
  Domain dom = PlannedQ35(kDisk);
  Result<Edited> first = AttachDevice(dom,
                                      "<rng model='virtio'><backend model='random'>/dev/urandom"
                                      "</backend></rng>",
                                      BuiltinCatalog(), AttachMode::kLive);
  ASSERT_TRUE(first.ok()) << first.errors().front().message;
  Result<Domain> full = ReadDomain(first->xml);
  ASSERT_TRUE(full.ok());
  Result<Edited> second = AttachDevice(*full,
                                       "<rng model='virtio'><backend model='random'>"
                                       "/dev/urandom</backend></rng>",
                                       BuiltinCatalog(), AttachMode::kLive);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.errors().front().rule, Rule::kNoFreeSlot);
  EXPECT_FALSE(second.errors().front().hint.empty());
}

TEST(Attach, ConfigAddsARootPortWhenNoneIsFree) {
  Domain dom = PlannedQ35(kDisk);
  Result<Edited> one = AttachDevice(dom,
                                    "<rng model='virtio'><backend model='random'>/dev/urandom"
                                    "</backend></rng>",
                                    BuiltinCatalog(), AttachMode::kConfig);
  ASSERT_TRUE(one.ok());
  Result<Domain> full = ReadDomain(one->xml);
  Result<Edited> two =
      AttachDevice(*full, "<watchdog model='i6300esb'/>", BuiltinCatalog(), AttachMode::kConfig);
  ASSERT_TRUE(two.ok()) << two.errors().front().message;
  EXPECT_GT(two->plan.devices.size(), full->devices.size() + 1);  // controllers were added
}

TEST(Attach, FixedAddressInUseIsRefused) {
  Domain dom = PlannedQ35(kDisk);
  const Device* disk = nullptr;
  for (const Device& d : dom.devices) disk = d.tag == "disk" ? &d : disk;
  ASSERT_NE(disk, nullptr);
  std::string addr = AddressXml(disk->address, '\'');
  Result<Edited> e = AttachDevice(dom, "<watchdog model='i6300esb'>" + addr + "</watchdog>",
                                  BuiltinCatalog(), AttachMode::kConfig);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.errors().front().rule, Rule::kDoubleUse);
}

TEST(Attach, NewElementIsIndentedLikeItsSiblings) {
  Domain dom = PlannedQ35(kDisk);
  Result<Edited> e = AttachDevice(dom,
                                  "<disk type='file' device='disk'>\n  <source file='/y'/>\n"
                                  "  <target dev='vdb' bus='virtio'/>\n</disk>\n",
                                  BuiltinCatalog(), AttachMode::kConfig);
  ASSERT_TRUE(e.ok()) << e.errors().front().message;
  EXPECT_NE(e->xml.find("    </disk>\n    <disk type='file' device='disk'>\n      <source "
                        "file='/y'/>\n      <target dev='vdb' bus='virtio'/>\n"),
            std::string::npos)
      << e->xml;
}

TEST(Detach, ByAliasRemovesOnlyThatDeviceAndMovesNothing) {
  Domain dom = PlannedQ35(kDisk + std::string("    <interface type='user'><model type='virtio'/>"
                                              "<alias name='ua-net'/></interface>\n"));
  Result<Edited> e =
      DetachDevice(dom, DetachRequest{"ua-vda", "", Prune::kNothing}, BuiltinCatalog());
  ASSERT_TRUE(e.ok()) << e.errors().front().message;
  EXPECT_EQ(e->xml.find("ua-vda"), std::string::npos);
  EXPECT_EQ(e->domain.devices.size(), dom.devices.size() - 1);
  // Everything else is byte for byte the same, lines included.
  EXPECT_EQ(e->xml.size() + (dom.text.find("  </disk>\n") + 10 - dom.text.find("    <disk")),
            dom.text.size());
}

TEST(Detach, PruneRemovesTheEmptyRootPortButNotABusyOne) {
  // An attached disk takes the root port of the highest index (libvirt's spare): pruning
  // removes it with the disk.
  Domain dom = PlannedQ35(kDisk);
  Result<Edited> attached = AttachDevice(
      dom,
      "<disk type='file' device='disk'><source file='/y'/><target dev='vdb' bus='virtio'/>"
      "<alias name='ua-vdb'/></disk>",
      BuiltinCatalog(), AttachMode::kConfig);
  ASSERT_TRUE(attached.ok()) << attached.errors().front().message;
  Result<Edited> kept = DetachDevice(attached->domain, DetachRequest{"ua-vdb", "", Prune::kNothing},
                                     BuiltinCatalog());
  Result<Edited> pruned = DetachDevice(
      attached->domain, DetachRequest{"ua-vdb", "", Prune::kEmptyControllers}, BuiltinCatalog());
  ASSERT_TRUE(kept.ok() && pruned.ok());
  EXPECT_EQ(pruned->domain.devices.size() + 1, kept->domain.devices.size());
}

// libvirt fills a gap in the PCI controller indexes with a new controller: an emptied root port
// below the highest index stays (pruning it would only bring another controller in its place).
TEST(Detach, PruneKeepsAnEmptiedControllerBelowTheHighestIndex) {
  Domain dom = PlannedQ35(kDisk);
  Result<Edited> kept =
      DetachDevice(dom, DetachRequest{"ua-vda", "", Prune::kNothing}, BuiltinCatalog());
  Result<Edited> pruned =
      DetachDevice(dom, DetachRequest{"ua-vda", "", Prune::kEmptyControllers}, BuiltinCatalog());
  ASSERT_TRUE(kept.ok() && pruned.ok());
  EXPECT_EQ(pruned->xml, kept->xml);
}

TEST(Detach, UnknownAliasIsAnError) {
  Domain dom = PlannedQ35(kDisk);
  Result<Edited> e =
      DetachDevice(dom, DetachRequest{"ua-none", "", Prune::kNothing}, BuiltinCatalog());
  ASSERT_FALSE(e.ok());
}

TEST(Detach, DeviceXmlMatchesTheDiskByTarget) {
  Domain dom = PlannedQ35(kDisk);
  Result<int> i =
      FindDevice(dom, DetachRequest{"", "<disk><target dev='vda'/></disk>", Prune::kNothing});
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(dom.devices[*i].tag, "disk");
}

TEST(Attach, BadDeviceXmlIsRefusedNamingTheProblem) {
  Domain dom = PlannedQ35(kDisk);
  const std::pair<const char*, Rule> cases[] = {
      {"<disk", Rule::kXmlMalformed},
      {"<!DOCTYPE x [<!ENTITY a 'b'>]><rng model='virtio'/>", Rule::kXmlDoctype},
      {"<rng model='virtio'/><rng model='virtio'/>", Rule::kNotADomain},
      {"<domain/>", Rule::kNotADomain},
      {"", Rule::kXmlMalformed},
      {"<rng model='virtio'><address type='pci' slot='0x40'/></rng>", Rule::kSlotRange},
  };
  for (const auto& [xml, rule] : cases) {
    SCOPED_TRACE(xml);
    Result<Edited> e = AttachDevice(dom, xml, BuiltinCatalog(), AttachMode::kConfig);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.errors().front().rule, rule) << e.errors().front().message;
  }
}

TEST(Attach, ElementThatIsNotADeviceIsRefusedInTheDeviceFileWithASuggestion) {
  Domain dom = PlannedQ35(kDisk);
  const std::pair<const char*, const char*> cases[] = {
      {"<bogus/>", ""},
      {"<!-- a typo -->\n<nterface type='user'/>", "did you mean <interface>?"},
      {"<crypto model='virtio' type='qemu'/>", ""},  // libvirt 9.0 cannot attach it either
  };
  for (const auto& [xml, hint] : cases) {
    SCOPED_TRACE(xml);
    Result<Edited> e = AttachDevice(dom, xml, BuiltinCatalog(), AttachMode::kConfig);
    ASSERT_FALSE(e.ok());
    const Diagnostic& d = e.errors().front();
    EXPECT_EQ(d.rule, Rule::kNotADevice);
    EXPECT_EQ(d.input, InputFile::kDevice);
    EXPECT_EQ(d.line, std::string(xml).find('\n') == std::string::npos ? 1 : 2);
    EXPECT_EQ(d.hint, hint);
  }
}

TEST(Attach, MalformedDeviceFileErrorsPointIntoTheDeviceFile) {
  Domain dom = PlannedQ35(kDisk);
  Result<Edited> e = AttachDevice(dom, "<rng model='virtio'>\n<backend", BuiltinCatalog(),
                                  AttachMode::kConfig);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.errors().front().input, InputFile::kDevice);
  EXPECT_EQ(e.errors().front().line, 2);
}

TEST(Attach, MutatedDevicesNeverCrash) {
  Domain dom = PlannedQ35(kDisk);
  const std::string base =
      "<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/>"
      "<address type='pci' domain='0x0000' bus='0x0a' slot='0x00' function='0x0'/></interface>";
  int answered = 0;
  for (size_t cut = 0; cut <= base.size(); ++cut) {
    for (AttachMode mode : {AttachMode::kConfig, AttachMode::kLive}) {
      Result<Edited> e = AttachDevice(dom, base.substr(0, cut), BuiltinCatalog(), mode);
      answered += e.ok() || !e.errors().empty() ? 1 : 0;
    }
  }
  EXPECT_EQ(answered, static_cast<int>(2 * (base.size() + 1)));
}

const char kThreeSpares[] =
    "  <metadata><w:wishes xmlns:w='https://pciplan.dev/xmlns/wishes/1' version='1' "
    "pcieHotplugSlots='3'/></metadata>\n";

const char kRngDevice[] =
    "<rng model='virtio'><backend model='random'>/dev/urandom</backend>"
    "<alias name='ua-rng'/></rng>";

const char kNic[] = "<interface type='user'><mac address='52:54:00:00:00:07'/>"
                    "<model type='virtio'/><alias name='ua-nic'/></interface>";

TEST(Attach, ConfigUnderASpareSlotWishAddsANewSpareForTheOneItTakes) {
  Domain d = PlannedQ35(kDisk, kThreeSpares);
  Result<Edited> config = AttachDevice(d, kNic, BuiltinCatalog(), AttachMode::kConfig);
  ASSERT_TRUE(config.ok()) << config.errors().front().message;
  EXPECT_EQ(config->free.pcie, 3u);
  Result<Edited> live = AttachDevice(d, kNic, BuiltinCatalog(), AttachMode::kLive);
  ASSERT_TRUE(live.ok()) << live.errors().front().message;
  EXPECT_EQ(live->free.pcie, 2u);
}

TEST(Attach, DetachWithPruneKeepsAnEmptiedRootPortTheReserveNeeds) {
  Domain d = PlannedQ35(kDisk, kThreeSpares);
  Result<Edited> pruned =
      DetachDevice(d, DetachRequest{"ua-vda", "", Prune::kEmptyControllers}, BuiltinCatalog());
  ASSERT_TRUE(pruned.ok()) << pruned.errors().front().message;
  // Its root port stays as a fourth free one rather than go and come back elsewhere.
  EXPECT_EQ(pruned->free.pcie, 4u);
  EXPECT_EQ(pruned->domain.devices.size() + 1, d.devices.size());
}

Wishes NicWish(const std::string& name, const std::string& value) {
  DeviceWish w;
  w.key = "ua-nic";
  EXPECT_TRUE(SetDeviceWish(w, name, value).ok());
  Wishes out;
  out.devices.push_back(w);
  return out;
}

/// The controller model of the bus device `dev` is on in `plan`.
std::string BusModel(const Plan& plan, const Device& dev) {
  for (const PlanBus& b : PlanBuses(plan, BuiltinCatalog())) {
    if (b.index == dev.address.pci.bus) return b.model->name;
  }
  return "none";
}

TEST(AttachWishes, AWishNamingTheNewDeviceDecidesItsPlace) {
  struct Case {
    const char* name;
    const char* value;
    const char* model;  // of the bus it lands on
  };
  const Case cases[] = {
      {"hotpluggable", "no", "pcie-root"},
      {"bus", "pci", "pcie-to-pci-bridge"},
      {"connection", "pcie-root-port", "pcie-root-port"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.name) + "=" + c.value);
    Domain d = PlannedQ35(kDisk);
    d.wishes = NicWish(c.name, c.value);
    Result<Edited> e = AttachDevice(d, kNic, BuiltinCatalog(), AttachMode::kConfig);
    ASSERT_TRUE(e.ok()) << e.errors().front().Render("domain");
    const Device* nic = FindTagged(e->plan, "ua-nic");
    ASSERT_NE(nic, nullptr);
    EXPECT_EQ(BusModel(e->plan, *nic), c.model);
    // The disk stays where it was.
    EXPECT_EQ(FindTagged(e->plan, "ua-vda")->address, d.devices[0].address);
  }
  // Named by identity as well as by alias.
  Domain d = PlannedQ35(kDisk);
  d.wishes = NicWish("hotpluggable", "no");
  d.wishes.devices[0].key = "interface:52:54:00:00:00:07";
  Result<Edited> e = AttachDevice(d, kNic, BuiltinCatalog(), AttachMode::kConfig);
  ASSERT_TRUE(e.ok()) << e.errors().front().Render("domain");
  EXPECT_EQ(FindTagged(e->plan, "ua-nic")->address.pci.bus, 0u);
}

TEST(AttachWishes, AWishTheNewDeviceCannotMeetIsUnmetAndAWishForNoDeviceIsBad) {
  Domain d = PlannedQ35(kDisk);
  d.wishes = NicWish("connection", "pci-root");  // q35's root bus is pcie-root
  Result<Edited> e = AttachDevice(d, kNic, BuiltinCatalog(), AttachMode::kConfig);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.errors().front().rule, Rule::kWishUnmet);
  d.wishes.devices[0].key = "ua-nothing";
  d.wishes.devices[0].connection = "pcie-root-port";
  Result<Edited> none = AttachDevice(d, kNic, BuiltinCatalog(), AttachMode::kConfig);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.errors().front().rule, Rule::kBadWish);
}

TEST(AttachWishes, LiveTakesAFreeSlotThatMeetsTheWishOrSaysNoneDoes) {
  // Three spares; the first free slot is a root port, a PCI wish needs a bridge slot.
  Domain d = PlannedQ35(kDisk, kThreeSpares);
  d.wishes.pci_hotplug_slots = 1;
  Result<Edited> planned = AttachDevice(d, kRngDevice, BuiltinCatalog(), AttachMode::kConfig);
  ASSERT_TRUE(planned.ok()) << planned.errors().front().Render("domain");
  Result<Domain> running = ReadDomain(planned->xml);
  ASSERT_TRUE(running.ok());
  running->wishes = d.wishes;
  Domain pci = *running;
  pci.wishes = Overlay(pci.wishes, NicWish("bus", "pci"));
  Result<Edited> live = AttachDevice(pci, kNic, BuiltinCatalog(), AttachMode::kLive);
  ASSERT_TRUE(live.ok()) << live.errors().front().Render("domain");
  EXPECT_EQ(BusModel(live->plan, *FindTagged(live->plan, "ua-nic")), "pcie-to-pci-bridge");
  EXPECT_EQ(live->free.pci + 1, planned->free.pci);
  EXPECT_EQ(live->free.pcie, planned->free.pcie);
  Domain root = *running;
  root.wishes = Overlay(root.wishes, NicWish("hotpluggable", "no"));
  Result<Edited> refused = AttachDevice(root, kNic, BuiltinCatalog(), AttachMode::kLive);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.errors().front().rule, Rule::kWishUnmet);
}

TEST(AttachWishes, ConfigWithSpareSlotWishesGivenLikeFlagsKeepsTheReserve) {
  // The wishes come from the caller (the command line), not the metadata.
  Domain d = PlannedQ35(kDisk);
  d.wishes.pcie_hotplug_slots = 4;
  Result<Edited> e = AttachDevice(d, kNic, BuiltinCatalog(), AttachMode::kConfig);
  ASSERT_TRUE(e.ok()) << e.errors().front().Render("domain");
  EXPECT_EQ(FreeHotplugSlots(e->plan, BuiltinCatalog()).pcie, 4u);
  EXPECT_EQ(e->free.pcie, 4u);
  // Live under the same wish: uses a spare and says what is left.
  Result<Domain> running = ReadDomain(e->xml);
  ASSERT_TRUE(running.ok());
  running->wishes = d.wishes;
  Result<Edited> live = AttachDevice(*running, kRngDevice, BuiltinCatalog(), AttachMode::kLive);
  ASSERT_TRUE(live.ok()) << live.errors().front().Render("domain");
  EXPECT_EQ(live->free.pcie, 3u);
  EXPECT_EQ(live->plan.devices.size(), running->devices.size() + 1);  // nothing added
  // Detach under the wish keeps the reserve too (the freed port is a fifth spare).
  Result<Edited> gone = DetachDevice(
      *running, DetachRequest{"ua-nic", "", Prune::kEmptyControllers}, BuiltinCatalog());
  ASSERT_TRUE(gone.ok()) << gone.errors().front().Render("domain");
  EXPECT_GE(gone->free.pcie, 4u);
}

TEST(AttachWishes, DetachDropsTheWishesForTheDeviceItRemoves) {
  Domain d = PlannedQ35(kDisk,
                        "  <metadata><w:wishes xmlns:w='https://pciplan.dev/xmlns/wishes/1' "
                        "version='1'><w:device name='ua-vda' hotpluggable='yes'/></w:wishes>"
                        "</metadata>\n");
  ASSERT_EQ(d.wishes.devices.size(), 1u);
  Result<Edited> gone =
      DetachDevice(d, DetachRequest{"ua-vda", "", Prune::kNothing}, BuiltinCatalog());
  ASSERT_TRUE(gone.ok()) << gone.errors().front().Render("domain");
  Result<Domain> after = ReadDomain(gone->xml);
  ASSERT_TRUE(after.ok()) << after.errors().front().message;
  EXPECT_TRUE(after->wishes.devices.empty());
  Result<Plan> again = MakePlan(*after, BuiltinCatalog(), PolicyName::kLibvirt);
  EXPECT_TRUE(again.ok());
}

}  // namespace
}  // namespace pciplan

namespace pciplan {
namespace {

/// Every field ReadDomain fills, compared.
void ExpectSameDomain(const Domain& a, const Domain& b) {
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.machine, b.machine);
  EXPECT_EQ(a.acpi, b.acpi);
  EXPECT_EQ(a.numa_cells, b.numa_cells);
  EXPECT_EQ(a.memory_slots, b.memory_slots);
  EXPECT_EQ(a.has_graphics, b.has_graphics);
  EXPECT_EQ(a.devices_offset, b.devices_offset);
  EXPECT_TRUE(a.wishes == b.wishes);
  EXPECT_EQ(a.wishes_offset, b.wishes_offset);
  EXPECT_EQ(a.os_type_offset, b.os_type_offset);
  EXPECT_EQ(a.metadata_offset, b.metadata_offset);
  EXPECT_EQ(a.root_offset, b.root_offset);
  ASSERT_EQ(a.devices.size(), b.devices.size());
  for (size_t i = 0; i < a.devices.size(); ++i) {
    SCOPED_TRACE(i);
    const Device& x = a.devices[i];
    const Device& y = b.devices[i];
    EXPECT_EQ(x.tag, y.tag);
    EXPECT_TRUE(x.props == y.props);
    EXPECT_TRUE(x.address == y.address);
    EXPECT_EQ(x.origin, y.origin);
    EXPECT_EQ(x.source, y.source);
    EXPECT_EQ(x.offset, y.offset);
    EXPECT_EQ(x.line, y.line);
  }
}

std::string SlurpFile(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Attach reads only the element it inserts (ReadWithInsertion): the domain it gets must be the
// one reading the whole edited text gives, on every attach case (planned first, as attach
// does), wherever the device goes.
TEST(Attach, ReadingOnlyTheInsertedElementGivesTheDomainOfTheWholeText) {
  int compared = 0;
  for (const auto& e : std::filesystem::directory_iterator(
           std::filesystem::path(PCIPLAN_TESTS_DIR) / "attach" / "cases")) {
    SCOPED_TRACE(e.path().filename().string());
    Result<Domain> raw = ReadDomain(SlurpFile(e.path() / "domain.xml"));
    if (!raw) continue;
    Result<Plan> plan = MakePlan(*raw, BuiltinCatalog(), PolicyName::kLibvirt);
    if (!plan) continue;
    Result<std::string> xml = WriteDomain(*raw, *plan, BuiltinCatalog());
    ASSERT_TRUE(xml.ok());
    Result<Domain> dom = ReadDomain(*xml);
    ASSERT_TRUE(dom.ok());
    std::string element = SlurpFile(e.path() / "device.xml");
    Result<Device> dev = ReadDevice(element);
    if (!dev) continue;
    std::pair<size_t, size_t> inserted;
    Result<std::string> text = InsertDeviceText(*dom, *dev, element, BuiltinCatalog(), &inserted);
    if (!text) continue;
    ASSERT_NE(inserted.first, std::string::npos);
    // All that is new lies in the range it names.
    EXPECT_EQ(text->substr(0, inserted.first) + text->substr(inserted.second), dom->text);
    Result<Domain> whole = ReadDomain(*text);
    Result<Domain> part = ReadWithInsertion(*dom, *text, inserted);
    ASSERT_EQ(whole.ok(), part.ok());
    if (!whole) continue;
    ExpectSameDomain(*part, *whole);
    ++compared;
  }
  EXPECT_GT(compared, 50);  // the cases that plan and whose device reads (57 now)
}

}  // namespace
}  // namespace pciplan
