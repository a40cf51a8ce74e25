#include "pciplan/topology/bus_tree.h"

#include <gtest/gtest.h>

#include "pciplan/model/model_loader.h"

namespace pciplan {
namespace {

/// Invariants every tree keeps: bitmaps agree with the slots they summarise.
void ExpectBusTreeConsistent(const BusTree& tree) {
  for (int b = 0; b < tree.size(); ++b) {
    const Bus& bus = tree.bus(b);
    for (uint32_t s = 0; s < 32; ++s) {
      bool in_range = bus.model >= 0 && s >= bus.min_slot && s <= bus.max_slot;
      bool free = in_range && bus.slots[s].functions == 0;
      EXPECT_EQ(((bus.free_slots >> s) & 1) != 0, free) << "bus " << b << " slot " << s;
    }
  }
}

class BusTreeTest : public ::testing::Test {
 protected:
  void Add(const char* model, BusSetup setup = BusSetup::kNormal) {
    ControllerModelId id = cat_.FindController(model);
    ASSERT_GE(id, 0) << model;
    tree_.Grow(1);
    tree_.SetModel(tree_.size() - 1, id, cat_.controller(id), setup);
  }
  static DeviceNeed Endpoint(Connect c) {
    DeviceNeed n;
    n.kinds.Add(c);
    n.autoassign = true;
    return n;
  }
  const Catalog& cat_ = BuiltinCatalog();
  BusTree tree_;
};

TEST_F(BusTreeTest, EndpointSkipsPcieRootAndTakesTheRootPort) {
  Add("pcie-root");
  Add("pcie-root-port");
  std::optional<PciAddress> a = tree_.FindFree(Endpoint(Connect::kPcie), -1);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, (PciAddress{0, 1, 0, 0}));
  ExpectBusTreeConsistent(tree_);
}

TEST_F(BusTreeTest, ClearEmptiesTheTreeAndGrowthAfterItStartsFresh) {
  Add("pcie-root");
  Add("pcie-root-port");
  tree_.Take(PciAddress{0, 0, 1, 0}, false);
  tree_.Take(PciAddress{0, 1, 0, 0}, false);
  tree_.Clear();
  EXPECT_EQ(tree_.size(), 0);
  Add("pcie-root");
  Add("pcie-root-port");
  EXPECT_FALSE(tree_.SlotInUse(PciAddress{0, 0, 1, 0}));
  EXPECT_FALSE(tree_.SlotInUse(PciAddress{0, 1, 0, 0}));
  std::optional<PciAddress> a = tree_.FindFree(Endpoint(Connect::kPcie), -1);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, (PciAddress{0, 1, 0, 0}));
  ExpectBusTreeConsistent(tree_);
}

TEST_F(BusTreeTest, ReservedRoomKeepsBusesInPlaceAsTheTreeGrows) {
  tree_.Reserve(70);
  Add("pcie-root");
  const Bus* first = &tree_.bus(0);
  for (int i = 0; i < 69; ++i) Add("pcie-root-port");
  EXPECT_EQ(&tree_.bus(0), first);
  // The open-bus bits of buses past the first 64 work as before.
  std::optional<PciAddress> a = tree_.FindFree(Endpoint(Connect::kPcie), -1);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, (PciAddress{0, 1, 0, 0}));
  ExpectBusTreeConsistent(tree_);
}

TEST_F(BusTreeTest, SetModelKeepsTakenFunctionsAndOpenAggregateSlots) {
  // A bus given a model after some of its functions were taken (growth, then the model):
  // a wholly taken slot is not free, an aggregate slot with a free function stays open.
  Add("pcie-root");
  tree_.Take(PciAddress{0, 0, 1, 0}, false);
  tree_.Take(PciAddress{0, 0, 2, 0}, true);
  tree_.Take(PciAddress{0, 0, 3, 0}, false);
  for (uint32_t f = 1; f < 8; ++f) tree_.Take(PciAddress{0, 0, 3, f}, false);
  ControllerModelId id = cat_.FindController("pcie-root");
  tree_.SetModel(0, id, cat_.controller(id), BusSetup::kNormal);
  const Bus& bus = tree_.bus(0);
  EXPECT_EQ((bus.free_slots >> 1) & 1u, 0u);
  EXPECT_EQ((bus.open_aggregate >> 1) & 1u, 0u);
  EXPECT_EQ((bus.open_aggregate >> 2) & 1u, 1u);
  EXPECT_EQ((bus.free_slots >> 2) & 1u, 0u);
  EXPECT_EQ((bus.free_slots >> 3) & 1u, 0u);
  EXPECT_EQ((bus.open_aggregate >> 3) & 1u, 0u);
  DeviceNeed port;
  port.kinds.Add(Connect::kPcieRootPort);
  port.aggregate = true;
  std::optional<PciAddress> a = tree_.FindFree(port, -1);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, (PciAddress{0, 0, 2, 1}));
  ExpectBusTreeConsistent(tree_);
}

TEST_F(BusTreeTest, RootPortsPackEightFunctionsPerSlot) {
  Add("pcie-root");
  DeviceNeed port;
  port.kinds.Add(Connect::kPcieRootPort);
  port.aggregate = true;
  for (uint32_t f = 0; f < 8; ++f) {
    std::optional<PciAddress> a = tree_.FindFree(port, -1);
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, (PciAddress{0, 0, 1, f}));
    tree_.Take(*a, true);
  }
  EXPECT_EQ(*tree_.FindFree(port, -1), (PciAddress{0, 0, 2, 0}));
  ExpectBusTreeConsistent(tree_);
}

TEST_F(BusTreeTest, ALowerFreeSlotWinsOverAPartlyUsedAggregateSlot) {
  Add("pcie-root");
  DeviceNeed port;
  port.kinds.Add(Connect::kPcieRootPort);
  port.aggregate = true;
  tree_.Take(PciAddress{0, 0, 2, 0}, true);
  EXPECT_EQ(*tree_.FindFree(port, -1), (PciAddress{0, 0, 1, 0}));
}

TEST_F(BusTreeTest, NonAggregateDeviceNeverSharesASlot) {
  Add("pci-root");
  tree_.Take(PciAddress{0, 0, 1, 0}, false);
  EXPECT_EQ(*tree_.FindFree(Endpoint(Connect::kPci), -1), (PciAddress{0, 0, 2, 0}));
}

TEST_F(BusTreeTest, ControllersOnlyBusRefusesEndpointsButTakesABridge) {
  Add("pcie-root");
  Add("pcie-root-port", BusSetup::kControllersOnly);
  EXPECT_FALSE(tree_.FindFree(Endpoint(Connect::kPcie), -1));
  DeviceNeed bridge;
  bridge.kinds.Add(Connect::kPcieToPciBridge);
  EXPECT_EQ(*tree_.FindFree(bridge, -1), (PciAddress{0, 1, 0, 0}));
}

TEST_F(BusTreeTest, HotplugNeedSkipsPortsWithHotplugOff) {
  Add("pcie-root");
  Add("pcie-root-port", BusSetup::kNoHotplug);
  Add("pcie-root-port");
  DeviceNeed live = Endpoint(Connect::kPcie);
  live.hotplug = true;
  EXPECT_EQ(*tree_.FindFree(live, -1), (PciAddress{0, 2, 0, 0}));
}

TEST_F(BusTreeTest, FullyReservedWhenEverySlotHasAFunctionTaken) {
  Add("pcie-root-port");
  EXPECT_FALSE(tree_.bus(0).FullyReserved());
  for (uint32_t f = 0; f < 8; ++f) tree_.Take(PciAddress{0, 0, 0, f}, false);
  EXPECT_TRUE(tree_.bus(0).FullyReserved());
  EXPECT_FALSE(tree_.FindFree(Endpoint(Connect::kPcie), -1));
  ExpectBusTreeConsistent(tree_);
}

TEST_F(BusTreeTest, SlotWithOneFunctionTakenCountsAsReserved) {
  // libvirt's qemuDomainPCIBusFullyReserved: a slot with any function in use is reserved, so a
  // pc bus 0 whose slot 1 has free functions (4-7) is full once every other slot is taken.
  Add("pcie-root-port");
  tree_.Take(PciAddress{0, 0, 0, 3}, false);
  EXPECT_TRUE(tree_.bus(0).FullyReserved());
  ExpectBusTreeConsistent(tree_);
}

TEST_F(BusTreeTest, RequestedFunctionIsGivenOnAFreeSlot) {
  Add("pci-root");
  EXPECT_EQ(*tree_.FindFree(Endpoint(Connect::kPci), 7), (PciAddress{0, 0, 1, 7}));
}

}  // namespace
}  // namespace pciplan
