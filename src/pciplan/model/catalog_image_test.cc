#include "pciplan/model/catalog_image.h"

#include <gtest/gtest.h>

#include "pciplan/model/model_loader.h"

namespace pciplan {
namespace {

Catalog FromJson() {
  Result<Catalog> cat = LoadCatalog(BuiltinDataFiles());
  EXPECT_TRUE(cat.ok()) << cat.errors().front().message;
  return std::move(cat.value());
}

// The image compiled into the binary holds what the JSON loader reads from data/, field by
// field (every struct's operator== is the compiler's member-wise one).
TEST(CatalogImage, BuiltinCatalogEqualsTheJsonLoaders) {
  Catalog json = FromJson();
  const Catalog& image = BuiltinCatalog();
  ASSERT_EQ(image.controllers.size(), json.controllers.size());
  for (size_t i = 0; i < json.controllers.size(); ++i) {
    EXPECT_TRUE(image.controllers[i] == json.controllers[i]) << json.controllers[i].name;
  }
  ASSERT_EQ(image.classes.size(), json.classes.size());
  for (size_t i = 0; i < json.classes.size(); ++i) {
    EXPECT_TRUE(image.classes[i] == json.classes[i]) << json.classes[i].name;
  }
  ASSERT_EQ(image.machines.size(), json.machines.size());
  for (size_t i = 0; i < json.machines.size(); ++i) {
    EXPECT_TRUE(image.machines[i] == json.machines[i]) << json.machines[i].name;
  }
  ASSERT_EQ(image.qemu().devices.size(), json.qemu().devices.size());
  for (size_t i = 0; i < json.qemu().devices.size(); ++i) {
    EXPECT_TRUE(image.qemu().devices[i] == json.qemu().devices[i]) << json.qemu().devices[i].name;
  }
  EXPECT_TRUE(image.qemu().guest == json.qemu().guest);
  EXPECT_TRUE(image.qemu() == json.qemu());
  EXPECT_TRUE(image == json);
  EXPECT_FALSE(json.qemu().devices.empty());
}

TEST(CatalogImage, EncodeDecodeRoundTrips) {
  Catalog json = FromJson();
  Result<Catalog> core = DecodeCatalog(EncodeCatalog(json));
  ASSERT_TRUE(core.ok()) << core.errors().front().message;
  Result<QemuFacts> qemu = DecodeQemuFacts(EncodeQemuFacts(json.qemu()));
  ASSERT_TRUE(qemu.ok()) << qemu.errors().front().message;
  EXPECT_TRUE(core->qemu().devices.empty());
  core->qemu_part.mutable_get() = std::move(qemu.value());
  EXPECT_TRUE(*core == json);
  // A changed field shows in the comparison and in the image.
  json.controllers.back().index_above_bus = !json.controllers.back().index_above_bus;
  EXPECT_FALSE(*core == json);
  EXPECT_NE(EncodeCatalog(*core), EncodeCatalog(json));
}

TEST(CatalogImage, DamagedImagesAreRejectedWithTheReason) {
  std::string image(BuiltinCatalogImage());
  auto error = [](std::string_view bytes) {
    Result<Catalog> r = DecodeCatalog(bytes);
    return r.ok() ? std::string("decoded") : r.errors().front().message;
  };
  EXPECT_EQ(error(image), "decoded");
  EXPECT_EQ(error(image.substr(0, 10)), "catalogue image (core): not an image");
  EXPECT_EQ(error(image.substr(0, image.size() - 1)),
            "catalogue image (core): payload size differs from the header's");
  std::string flipped = image;
  flipped[flipped.size() / 2] ^= 0x20;
  EXPECT_EQ(error(flipped), "catalogue image (core): payload hash differs from the header's");
  std::string version = image;
  version[8] = 99;
  EXPECT_EQ(error(version), "catalogue image (core): format 99, this build reads 5");
  // The QEMU image is not a core image: its payload ends before the core's fields do.
  EXPECT_EQ(error(BuiltinQemuImage()),
            "catalogue image (core): payload does not match the format");
}

}  // namespace
}  // namespace pciplan
