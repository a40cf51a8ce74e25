#include "address_map.h"

#include <gtest/gtest.h>

#include "test_support.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace pciplan::conformance {
namespace {

namespace fs = std::filesystem;

using pciplan::testing::Slurp;

std::string MapText(const std::string& xml) {
  MapResult r = AddressMapFromXml(xml);
  EXPECT_TRUE(r.error.empty()) << r.error;
  std::string out;
  for (const std::string& l : r.lines) out += l + "\n";
  return out;
}

std::string Devices(const std::string& inner) {
  return "<domain><devices>" + inner + "</devices></domain>";
}

TEST(AddressMap, EveryLibvirtOutputGivesItsRecordedMap) {
  int checked = 0;
  for (const auto& e : fs::directory_iterator(PCIPLAN_CONFORMANCE_DIR)) {
    if (!fs::exists(e.path() / "expected.addrmap")) continue;
    SCOPED_TRACE(e.path().filename().string());
    EXPECT_EQ(MapText(Slurp(e.path() / "expected.xml")), Slurp(e.path() / "expected.addrmap"));
    ++checked;
  }
  EXPECT_GE(checked, 233);  // the valid cases of the corpus
}

TEST(AddressMap, EscapesSpacesAndPercent) {
  EXPECT_EQ(MapText(Devices("<filesystem><target dir='a b%'/><address type='pci' "
                            "domain='0' bus='0' slot='3' function='0'/></filesystem>")),
            "filesystem target=a%20b%25 | pci 0000:00:03.0\n");
}

TEST(AddressMap, SecondSameIdentityGetsDup) {
  EXPECT_EQ(MapText(Devices("<controller type='pci' model='pcie-root-port'/>"
                            "<controller type='pci' model='pcie-root-port'/>")),
            "controller type=pci index=- model=pcie-root-port | -\n"
            "controller type=pci index=- model=pcie-root-port dup=1 | -\n");
}

TEST(AddressMap, NaturalOrderComparesNumbersAsNumbers) {
  EXPECT_TRUE(NaturalLess("index=2 x", "index=10 x"));
  EXPECT_FALSE(NaturalLess("index=10", "index=2"));
  EXPECT_TRUE(NaturalLess("a", "b"));
  EXPECT_TRUE(NaturalLess("index=007", "index=8"));
}

TEST(AddressMap, PrimaryVideoCountsFirst) {
  std::string map = MapText(Devices(
      "<video><model type='vga'/><address type='pci' domain='0' bus='0' slot='2' function='0'/>"
      "</video><video><model type='qxl' primary='yes'/><address type='pci' domain='0' bus='0' "
      "slot='1' function='0'/></video>"));
  EXPECT_EQ(map, "video#0 model=qxl | pci 0000:00:01.0\nvideo#1 model=vga | pci 0000:00:02.0\n");
}

TEST(AddressMap, EmptyPciAddressIsAllZero) {
  EXPECT_EQ(MapText(Devices("<memballoon model='virtio'><address type='pci'/></memballoon>")),
            "memballoon | pci 0000:00:00.0\n");
}

TEST(AddressMap, ControllerExtrasInDecimal) {
  EXPECT_EQ(MapText(Devices("<controller type='pci' index='1' model='pcie-root-port'><model "
                            "name='pcie-root-port'/><target chassis='1' port='0x10'/></controller>")),
            "controller type=pci index=1 model=pcie-root-port | - modelname=pcie-root-port "
            "chassis=1 port=16\n");
}

TEST(AddressMap, OctalNumbersAreRead) {
  EXPECT_EQ(MapText(Devices("<rng model='virtio'><address type='pci' domain='0' bus='0' "
                            "slot='010' function='0'/></rng>")),
            "rng#0 model=virtio | pci 0000:00:08.0\n");
}

TEST(AddressMap, HostdevSourceAddressIsNotItsGuestAddress) {
  EXPECT_EQ(MapText(Devices("<hostdev mode='subsystem' type='pci'><source><address "
                            "domain='0' bus='0x42' slot='0' function='0'/></source></hostdev>")),
            "");
}

TEST(AddressMap, UnknownAddressTypeListsSortedAttributes) {
  EXPECT_EQ(MapText(Devices("<panic model='isa'><address type='weird' z='1' a='2'/></panic>")),
            "panic#0 model=isa | weird a=2 z=1\n");
}

TEST(AddressMap, DiffNamesAddedMissingAndMoved) {
  std::vector<std::string> d = DiffMaps(ParseMap("a | pci 1\nb | pci 2\n"), ParseMap("b | pci 3\nc | -\n"));
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0], "- a | pci 1");
  EXPECT_EQ(d[1], "~ b | pci 2 => pci 3");
  EXPECT_EQ(d[2], "+ c | -");
}

}  // namespace
}  // namespace pciplan::conformance
