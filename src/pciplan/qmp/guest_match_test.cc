#include "pciplan/qmp/guest_match.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "pciplan/qmp/guest_initramfs.h"

namespace pciplan {
namespace {

// What a q35 guest printed (kernel lines mixed in, CR LF line ends as a serial console has).
constexpr const char* kConsole =
    "[    0.512000] random: crng init done\r\n"
    "pciplan-guest-begin\r\n"
    "pciplan-guest-function /sys/devices/pci0000:00/0000:00:00.0 0x8086 0x29c0 0x060000 -1 0 0\r\n"
    "pciplan-guest-function /sys/devices/pci0000:00/0000:00:02.0 0x1b36 0x000c 0x060400 -1 1 1\r\n"
    "[    1.100000] virtio_net probe\r\n"
    "pciplan-guest-function /sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0 0x1af4 0x1041 "
    "0x020000 -1 2 2\r\n"
    "pciplan-guest-function /sys/devices/pci0000:80/0000:80:00.0/0000:81:00.0 0x1af4 0x1042 "
    "0x010000 1 18 16\r\n"
    "pciplan-guest-end\r\n"
    "[    2.000000] reboot: Power down\r\n";

std::vector<GuestFunction> Seen() {
  Result<std::vector<GuestFunction>> seen = ParseGuestConsole(kConsole);
  EXPECT_TRUE(seen.ok()) << seen.errors().front().message;
  return seen.ok() ? *seen : std::vector<GuestFunction>{};
}

GuestExpect Expect(uint32_t root, std::vector<SlotFunction> hops, uint32_t vendor, uint32_t device,
                   uint32_t cls) {
  GuestExpect e;
  e.device = "test device";
  e.id = "t";
  e.chain = PciChain{root, std::move(hops)};
  e.vendor = vendor;
  e.device_id = device;
  e.class_code16 = cls;
  return e;
}

TEST(GuestMatch, SysfsPathGivesTheChainNotTheBusNumbers) {
  std::optional<PciChain> c =
      ChainFromSysfsPath("/sys/devices/pci0000:00/0000:00:1c.3/0000:05:00.0/0000:06:1f.7");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->root, 0u);
  EXPECT_EQ(c->hops, (std::vector<SlotFunction>{{0x1c, 3}, {0, 0}, {0x1f, 7}}));
  EXPECT_EQ(c->ToString(), "00:1c.3/00.0/1f.7");
  // arm64: the host bridge is a platform device; an expander bus's root is its busNr.
  c = ChainFromSysfsPath("/sys/devices/platform/4010000000.pcie/pci0000:80/0000:80:01.0");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ToString(), "80:01.0");
  EXPECT_FALSE(ChainFromSysfsPath("/sys/devices/pci0000:00"));
  EXPECT_FALSE(ChainFromSysfsPath("/sys/devices/platform/serial8250"));
  EXPECT_FALSE(ChainFromSysfsPath("/sys/devices/pci0000:00/0000:00:02.9"));
}

TEST(GuestMatch, ConsoleIsParsedBetweenTheMarkers) {
  std::vector<GuestFunction> seen = Seen();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[2].name, "0000:01:00.0");
  EXPECT_EQ(seen[2].chain.ToString(), "00:02.0/00.0");
  EXPECT_EQ(seen[2].vendor, 0x1af4u);
  EXPECT_EQ(seen[2].device, 0x1041u);
  EXPECT_EQ(seen[2].class_code, 0x020000u);
  EXPECT_EQ(seen[3].numa_node, 1);
  EXPECT_EQ(seen[3].bars_used, 0x12u);  // BARs 1 and 4
  EXPECT_EQ(seen[3].bars_assigned, 0x10u);
}

TEST(GuestMatch, UnfinishedOrGarbledReportIsAnError) {
  std::string text = kConsole;
  Result<std::vector<GuestFunction>> r =
      ParseGuestConsole(text.substr(0, text.find(kGuestEndMarker)));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors().front().message.find("no end line"), std::string::npos);
  r = ParseGuestConsole("Kernel panic - not syncing\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors().front().message.find("no report"), std::string::npos);
  r = ParseGuestConsole(
      "pciplan-guest-begin\npciplan-guest-function /sys/devices/pci0000:00/0000:00:02.0 0x1b36"
      "\npciplan-guest-end\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors().front().message.find("unreadable line"), std::string::npos);
}

TEST(GuestMatch, PlannedDevicesAreFoundByTopology) {
  std::vector<GuestExpect> e = {Expect(0, {{2, 0}}, 0x1b36, 0x000c, 0x0604),
                                Expect(0, {{2, 0}, {0, 0}}, 0x1af4, 0x1041, 0x0200)};
  GuestExpect mmio;
  mmio.device = "rng #0";
  mmio.pci = false;
  e.push_back(mmio);
  std::vector<GuestCheck> checks = MatchGuest(e, Seen());
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_EQ(checks[0].status, GuestStatus::kOk) << checks[0].problem;
  EXPECT_EQ(checks[1].status, GuestStatus::kOk) << checks[1].problem;
  ASSERT_TRUE(checks[1].seen);
  EXPECT_EQ(checks[1].seen->name, "0000:01:00.0");
  EXPECT_EQ(checks[2].status, GuestStatus::kNotPci);
}

TEST(GuestMatch, MismatchesAreReportedWithTheirReason) {
  // The NIC planned behind the port at 02.0 but the guest has it at 03.0: absent. The disk on
  // the expander bus has a BAR without an address and the wrong node; the port is the wrong
  // device.
  GuestExpect disk = Expect(0x80, {{0, 0}, {0, 0}}, 0x1af4, 0x1042, 0x0100);
  disk.numa_node = 0;
  std::vector<GuestExpect> e = {Expect(0, {{3, 0}, {0, 0}}, 0x1af4, 0x1041, 0x0200), disk,
                                Expect(0, {{2, 0}}, 0x8086, 0x244e, 0x0604),
                                Expect(0, {{0, 0}}, 0x8086, 0x29c0, 0x0601)};
  std::vector<GuestCheck> checks = MatchGuest(e, Seen());
  ASSERT_EQ(checks.size(), 4u);
  EXPECT_EQ(checks[0].status, GuestStatus::kMismatch);
  EXPECT_EQ(checks[0].problem, "absent");
  EXPECT_FALSE(checks[0].seen);
  EXPECT_EQ(checks[1].status, GuestStatus::kMismatch);
  EXPECT_EQ(checks[1].problem, "NUMA node 1, planned 0; BAR 1 without an address");
  EXPECT_EQ(checks[2].status, GuestStatus::kMismatch);
  EXPECT_EQ(checks[2].problem, "vendor:device 1b36:000c, QEMU 8086:244e");
  EXPECT_EQ(checks[3].status, GuestStatus::kMismatch);
  EXPECT_EQ(checks[3].problem, "class 0600, QEMU 0601");
}

TEST(GuestMatch, BarsTheGuestDroppedAreCountedFromQemu) {
  // The kernel resets a BAR it found no room for: the guest lists BAR 0 of the port, QEMU has
  // BARs 0 and 2 too. A memory BAR without an address is a mismatch, an I/O one a note.
  GuestExpect port = Expect(0, {{2, 0}}, 0x1b36, 0x000c, 0x0604);
  port.bars = std::vector<GuestExpect::Bar>{{0, false}, {2, false}};
  std::vector<GuestCheck> checks = MatchGuest({port}, Seen());
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].status, GuestStatus::kMismatch);
  EXPECT_EQ(checks[0].problem, "BAR 2 without an address");
  port.bars = std::vector<GuestExpect::Bar>{{0, false}, {2, true}, {3, true}};
  checks = MatchGuest({port}, Seen());
  EXPECT_EQ(checks[0].status, GuestStatus::kOk) << checks[0].problem;
  EXPECT_EQ(checks[0].note, "I/O BAR 2, 3 without an address");
  port.bars = std::vector<GuestExpect::Bar>{{0, false}};
  checks = MatchGuest({port}, Seen());
  EXPECT_EQ(checks[0].status, GuestStatus::kOk);
  EXPECT_EQ(checks[0].note, "");
}

/// A Device of AML holding `body`, with a one-byte PkgLength when it fits, else two bytes.
std::string AmlDevice(const std::string& name, const std::string& body) {
  std::string out = "\x5b\x82";
  size_t length = 1 + name.size() + body.size();
  if (length < 64) {
    out.push_back(static_cast<char>(length));
  } else {
    length += 1;
    out.push_back(static_cast<char>(0x40 | (length & 0x0f)));
    out.push_back(static_cast<char>(length >> 4));
  }
  return out + name + body;
}

std::string AmlName(const std::string& name, const std::string& value) {
  return "\x08" + name + value;
}

TEST(GuestMatch, AcpiHostBridgesGiveTheirRootBusesProximity) {
  using namespace std::string_literals;
  // The main host bridge (_BBN 0, no _PXM), an expander bus 0xfb on node 1 with a slot device
  // nested in it, one on bus 0xfe on node 0 (Zero), one whose _PXM comes only inside a nested
  // device (not the bridge's), and one with a word-sized _PXM.
  std::string filler(80, '\x70');  // long enough for a two-byte PkgLength
  std::string aml =
      "DSDT"s + AmlDevice("PCI0", AmlName("_BBN", "\x00"s) + filler) +
      AmlDevice("PCFB", AmlName("_BBN", "\x0a\xfb") + AmlName("_PXM", "\x01") +
                            AmlDevice("S00_", AmlName("_PXM", "\x0a\x07"))) +
      AmlDevice("PCFE", AmlName("_BBN", "\x0a\xfe") + AmlName("_PXM", "\x00"s) + filler) +
      AmlDevice("PCF0", AmlName("_BBN", "\x0a\xf0") + AmlDevice("S00_", AmlName("_PXM", "\x01"))) +
      AmlDevice("PCE0", AmlName("_BBN", "\x0a\xe0") + AmlName("_PXM", "\x0b\x03\x01"));
  EXPECT_EQ(AcpiRootBusNodes(aml),
            (std::map<uint32_t, int>{{0xe0, 0x103}, {0xfb, 1}, {0xfe, 0}}));
  // Cut anywhere, it reads no byte outside the text and finds no more than the whole.
  for (size_t n = 0; n <= aml.size(); ++n) {
    std::map<uint32_t, int> part = AcpiRootBusNodes(std::string_view(aml).substr(0, n));
    EXPECT_LE(part.size(), 3u);
  }
}

TEST(GuestMatch, QemusVirtDsdtGivesEachExpanderBusItsNode) {
  // The DSDT a virt guest of QEMU 7.2 read under UEFI, as verify --guest's /init printed it:
  // pxb-pcie busNr 254 on node 0, busNr 251 on node 1 (policy case virt-numa-2-nodes).
  std::ifstream in(std::string(PCIPLAN_TESTS_DIR) + "/qemu/virt-2-pxb-dsdt.txt");
  std::stringstream lines;
  lines << in.rdbuf();
  ASSERT_FALSE(lines.str().empty());
  std::string console = "pciplan-guest-begin\r\n"
                        "pciplan-guest-function /sys/devices/platform/4010000000.pcie/pci0000:fb/"
                        "0000:fb:00.0/0000:fc:00.0 0x1af4 0x1041 0x020000 -1 18 18\r\n"
                        "pciplan-guest-function /sys/devices/platform/4010000000.pcie/pci0000:00/"
                        "0000:00:03.0 0x1b36 0x000c 0x060400 -1 1 1\r\n" +
                        lines.str() + "pciplan-guest-end\r\n";
  Result<std::vector<GuestFunction>> seen = ParseGuestConsole(console);
  ASSERT_TRUE(seen.ok()) << seen.errors().front().message;
  ASSERT_EQ(seen->size(), 2u);
  EXPECT_EQ((*seen)[0].acpi_node, 1);
  EXPECT_EQ((*seen)[0].numa_node, -1);
  EXPECT_FALSE((*seen)[1].acpi_node);  // the main host bridge has no proximity

  // Judged by ACPI: node 1 is right, node 0 a mismatch; judged by the kernel (-1) both are.
  GuestExpect net = Expect(0xfb, {{0, 0}, {0, 0}}, 0x1af4, 0x1041, 0x0200);
  net.numa_node = 1;
  net.numa_witness = NumaWitness::kAcpi;
  EXPECT_EQ(MatchGuest({net}, *seen)[0].status, GuestStatus::kOk);
  net.numa_node = 0;
  std::vector<GuestCheck> checks = MatchGuest({net}, *seen);
  EXPECT_EQ(checks[0].status, GuestStatus::kMismatch);
  EXPECT_EQ(checks[0].problem, "ACPI proximity of its root bus 1, planned 0");
  net.numa_node = 1;
  net.numa_witness = NumaWitness::kKernel;
  checks = MatchGuest({net}, *seen);
  EXPECT_EQ(checks[0].problem, "NUMA node -1, planned 1");
}

}  // namespace
}  // namespace pciplan
