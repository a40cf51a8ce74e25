#include "pciplan/base/connect.h"

#include <gtest/gtest.h>

namespace pciplan {
namespace {

TEST(Connect, NamesRoundTrip) {
  for (int i = 0; i < kConnectCount; ++i) {
    Connect c = static_cast<Connect>(i);
    SCOPED_TRACE(std::string(ConnectName(c)));
    EXPECT_EQ(ConnectFromName(ConnectName(c)), c);
  }
  EXPECT_FALSE(ConnectFromName("pcie-root"));
}

TEST(Connect, FitsNeedsACommonKind) {
  struct Case {
    ConnectKinds offer, need;
    bool fits;
  } cases[] = {
      {{Connect::kPci, Connect::kPciBridge}, {Connect::kPci}, true},
      {{Connect::kPcie, Connect::kPcieRootPort}, {Connect::kPci}, false},
      {{Connect::kPcie, Connect::kPcieRootPort}, {Connect::kPcieRootPort}, true},
      {{}, {Connect::kPcie}, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.offer.ToString() + " <- " + c.need.ToString());
    EXPECT_EQ(Fits(c.offer, c.need), c.fits);
  }
}

TEST(Connect, FirstFollowsLibvirtsMessageOrder) {
  ConnectKinds k{Connect::kPciBridge, Connect::kPci};
  EXPECT_EQ(k.First(), Connect::kPci);
  EXPECT_EQ(ConnectDescription(Connect::kPci), "standard PCI device");
}

TEST(Connect, LibvirtFlagsOfPcieToPciBridgeIs2000) {
  // libvirt prints "connect flags 2000" for a pcie-to-pci-bridge it cannot place.
  EXPECT_EQ(ConnectKinds{Connect::kPcieToPciBridge}.LibvirtFlags(), 0x2000u);
}

}  // namespace
}  // namespace pciplan
