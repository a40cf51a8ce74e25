#include "pciplan/base/address.h"

#include <gtest/gtest.h>

#include "pciplan/base/numbers.h"

namespace pciplan {
namespace {

TEST(PciAddress, PrintsLowerCaseZeroPadded) {
  EXPECT_EQ((PciAddress{0, 0, 0x1f, 2}).ToString(), "0000:00:1f.2");
  EXPECT_EQ((PciAddress{1, 0xab, 3, 7}).ToString(), "0001:ab:03.7");
}

TEST(PciAddress, AllZeroDomainBusSlotIsUnassignedWhateverTheFunction) {
  EXPECT_TRUE((PciAddress{0, 0, 0, 5}).IsUnassigned());
  EXPECT_FALSE((PciAddress{0, 1, 0, 0}).IsUnassigned());
}

TEST(PciAddress, OrdersByDomainBusSlotFunction) {
  EXPECT_LT((PciAddress{0, 0, 2, 7}), (PciAddress{0, 1, 0, 0}));
  EXPECT_LT((PciAddress{0, 1, 1, 0}), (PciAddress{0, 1, 1, 1}));
}

TEST(Numbers, ParseLikeStrtoulBaseZero) {
  EXPECT_EQ(ParseUnsigned("0x1f"), 31u);
  EXPECT_EQ(ParseUnsigned("010"), 8u);
  EXPECT_EQ(ParseUnsigned(" 12 "), 12u);
  EXPECT_EQ(ParseUnsigned("0"), 0u);
  EXPECT_FALSE(ParseUnsigned("0x"));
  EXPECT_FALSE(ParseUnsigned("09"));
  EXPECT_FALSE(ParseUnsigned("-1"));
  EXPECT_FALSE(ParseUnsigned("99999999999"));
  EXPECT_EQ(ParseDecimal("010"), 10u);
}

}  // namespace
}  // namespace pciplan
