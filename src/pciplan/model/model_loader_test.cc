#include "pciplan/model/model_loader.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace pciplan {
namespace {

/// The text of a built-in data file ("machines/q35.json").
std::string BuiltinText(const std::string& name) {
  for (const DataFile& f : BuiltinDataFiles()) {
    if (f.name == name) return f.text;
  }
  return {};
}

/// The catalogue's family of that name, or nullptr.
const MachineFamily* FamilyNamed(const Catalog& cat, const std::string& name) {
  for (const MachineFamily& m : cat.machines) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::vector<DataFile> WithFile(const std::string& name, const std::string& text) {
  std::vector<DataFile> files = BuiltinDataFiles();
  for (DataFile& f : files) {
    if (f.name == name) f.text = text;
  }
  return files;
}

TEST(ModelLoader, BuiltinCatalogLoads) {
  Result<Catalog> cat = LoadCatalog(BuiltinDataFiles());
  ASSERT_TRUE(cat.ok()) << cat.errors().front().message;
  EXPECT_EQ(cat->machines.size(), 5u);
}

TEST(ModelLoader, CatalogInvariantsHold) {
  const Catalog& cat = BuiltinCatalog();
  for (const ControllerModel& m : cat.controllers) {
    SCOPED_TRACE(m.name);
    EXPECT_FALSE(m.offers.Empty());
    EXPECT_LE(m.min_slot, m.max_slot);
    EXPECT_LE(m.max_slot, 31u);
    EXPECT_TRUE(m.root || m.plugs_as.has_value());
  }
  for (const MachineFamily& f : cat.machines) {
    SCOPED_TRACE(f.name);
    ASSERT_GE(f.root, 0);
    EXPECT_TRUE(cat.controller(f.root).root);
    EXPECT_GE(f.gap_filler, 0);
    for (const Placement& p : f.placements) EXPECT_FALSE(p.slots.empty());
  }
  for (const DeviceClass& c : cat.classes) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(c.connect == ConnectNeed::kNone || !c.group.empty());
  }
}

TEST(ModelLoader, ClassifyByElementIndexAgreesWithAScanOfEveryClass) {
  const Catalog& cat = BuiltinCatalog();
  ASSERT_TRUE(cat.class_index.Covers(cat.classes.size()));
  Catalog scanned = cat;
  scanned.class_index = ClassIndex{};  // no index: Classify scans every class
  ASSERT_FALSE(scanned.class_index.Covers(scanned.classes.size()));
  // Each class's own pattern (each listed property at each of its values, alone and together),
  // and an element no class has.
  int asked = 0;
  auto same = [&](const std::string& tag, const Props& props) {
    const DeviceClass* a = cat.Classify(tag, props);
    const DeviceClass* b = scanned.Classify(tag, props);
    ++asked;
    EXPECT_EQ(a ? a - cat.classes.data() : -1, b ? b - scanned.classes.data() : -1) << tag;
  };
  for (const DeviceClass& c : cat.classes) {
    SCOPED_TRACE(c.name);
    Props all;
    for (const auto& [path, values] : c.when.props) {
      for (const std::string& v : values) {
        Props one;
        one[path] = v;
        same(c.element, one);
      }
      all[path] = values.back();
    }
    same(c.element, all);
    same(c.element, Props{});
  }
  same("no-such-element", Props{});
  EXPECT_GT(asked, 2 * static_cast<int>(cat.classes.size()));
}

TEST(ModelLoader, APlacementRulesOutOnlyClassesWhoseDevicesNeverMatchIt) {
  // For every placement and class: devices of the class (each combination of its match's
  // values, with the placement's own properties added where the class leaves them open) match
  // the placement only when its bit for the class is set; and q35's forced SATA placement
  // keeps the SATA controller's class and rules out qemu-xhci's.
  const Catalog& cat = BuiltinCatalog();
  int ruled_out = 0, kept = 0;
  for (const MachineFamily& m : cat.machines) {
    for (const Placement& p : m.placements) {
      ASSERT_EQ(p.classes.size(), (cat.classes.size() + 63) / 64) << m.name;
      for (size_t c = 0; c < cat.classes.size(); ++c) {
        const DeviceClass& dc = cat.classes[c];
        SCOPED_TRACE(m.name + " " + p.match.element + " " + dc.name);
        // The class's values, one at a time for its first property, the first of the others.
        std::vector<Props> devices;
        const size_t first_values = dc.when.props.empty() ? 1 : dc.when.props[0].second.size();
        for (size_t k = 0; k < first_values; ++k) {
          Props d;
          for (size_t j = 0; j < dc.when.props.size(); ++j) {
            const auto& [path, values] = dc.when.props[j];
            d[path] = values[j == 0 ? k : 0];
          }
          for (const auto& [path, values] : p.match.props) {
            if (!d.contains(path)) d[path] = values.front();
          }
          devices.push_back(std::move(d));
        }
        bool any = false;
        for (const Props& d : devices) {
          if (cat.Classify(dc.element, d) != &dc) continue;  // an earlier class takes it
          any = any || p.match.Matches(dc.element, d);
        }
        if (any) {
          EXPECT_TRUE(p.MayMatchClass(c));
        }
        (p.MayMatchClass(c) ? kept : ruled_out)++;
      }
    }
  }
  EXPECT_GT(ruled_out, kept);
  const MachineFamily* q35 = FamilyNamed(cat, "q35");
  ASSERT_NE(q35, nullptr);
  auto class_of = [&](const std::string& tag, const Props& props) {
    const DeviceClass* c = cat.Classify(tag, props);
    return c ? static_cast<size_t>(c - cat.classes.data()) : cat.classes.size();
  };
  const size_t sata = class_of("controller", {{"@type", "sata"}, {"@index", "0"}});
  const size_t xhci = class_of("controller", {{"@type", "usb"}, {"@model", "qemu-xhci"}});
  ASSERT_LT(sata, cat.classes.size());
  ASSERT_LT(xhci, cat.classes.size());
  const Placement& forced_sata = q35->placements.front();
  ASSERT_EQ(forced_sata.mode, PlacementMode::kForced);
  EXPECT_TRUE(forced_sata.MayMatchClass(sata));
  EXPECT_FALSE(forced_sata.MayMatchClass(xhci));
}

TEST(ModelLoader, AClassesUsbCandidatesHoldEveryUsbMatchItsDevicesCanMeet) {
  const Catalog& cat = BuiltinCatalog();
  ASSERT_TRUE(cat.class_index.CoversUsb(cat.classes.size(), cat.usb_devices.size()));
  ASSERT_LE(cat.usb_devices.size(), ClassIndex::kUsbMasked);
  // A device of each class that also has each USB match's properties where the class's rule
  // leaves them open: when it is of that class and meets the match, the class has its bit.
  int met = 0;
  for (size_t c = 0; c < cat.classes.size(); ++c) {
    const DeviceClass& cls = cat.classes[c];
    SCOPED_TRACE(cls.name);
    for (size_t k = 0; k < cat.usb_devices.size(); ++k) {
      const Match& m = cat.usb_devices[k];
      Props props;
      for (const auto& [path, values] : m.props) props[path] = values.front();
      for (const auto& [path, values] : cls.when.props) props[path] = values.front();
      if (cat.Classify(cls.element, props) != &cls || !m.Matches(cls.element, props)) continue;
      ++met;
      EXPECT_NE(cat.class_index.UsbCandidates(c) & (uint64_t{1} << k), 0u) << k;
    }
  }
  EXPECT_GT(met, 0);
  // A PS/2 input takes no USB port (its class has no rule on the bus, but an earlier class
  // takes every USB input); a USB input may.
  const DeviceClass* ps2 = cat.Classify("input", Props{{"@type", "mouse"}, {"@bus", "ps2"}});
  const DeviceClass* usb = cat.Classify("input", Props{{"@type", "tablet"}, {"@bus", "usb"}});
  ASSERT_TRUE(ps2 && usb);
  EXPECT_EQ(cat.class_index.UsbCandidates(static_cast<size_t>(ps2 - cat.classes.data())), 0u);
  EXPECT_NE(cat.class_index.UsbCandidates(static_cast<size_t>(usb - cat.classes.data())), 0u);
  // An index built for other lists is not taken for these.
  Catalog more = cat;
  more.usb_devices.push_back(Match{"watchdog", "", {}});
  EXPECT_FALSE(more.class_index.CoversUsb(more.classes.size(), more.usb_devices.size()));
}

TEST(ModelLoader, MachineNamesMatchFamilies) {
  const Catalog& cat = BuiltinCatalog();
  struct Case {
    const char* arch;
    const char* machine;
    const char* family;
  } cases[] = {{"x86_64", "pc", "pc"},           {"x86_64", "pc-i440fx-7.2", "pc"},
               {"x86_64", "q35", "q35"},         {"x86_64", "pc-q35-5.1", "q35"},
               {"aarch64", "virt", "virt"},      {"aarch64", "virt-7.2", "virt"},
               {"riscv64", "virt", "riscv-virt"}, {"riscv64", "", "riscv-virt"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.machine);
    const MachineFamily* f = cat.FindMachine(c.arch, c.machine);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->name, c.family);
  }
  EXPECT_EQ(cat.FindMachine("aarch64", "q35"), nullptr);
  EXPECT_EQ(cat.FindMachine("x86_64", "isapc"), nullptr);
  // QEMU 7.2's riscv64 virt has no versioned names (corpus 595).
  EXPECT_EQ(cat.FindMachine("riscv64", "virt-7.2"), nullptr);
}

TEST(ModelLoader, AFamilysMachineTypeIsItsFirstNameThatIsNoPattern) {
  const Catalog& cat = BuiltinCatalog();
  EXPECT_EQ(cat.FindMachine("x86_64", "pc-i440fx-7.2")->MachineType(), "pc");
  EXPECT_EQ(cat.FindMachine("x86_64", "pc-q35-7.2")->MachineType(), "q35");
  EXPECT_EQ(cat.FindMachine("riscv64", "virt")->MachineType(), "virt");
  MachineFamily patterns_only;
  patterns_only.machine_names = {"virt-*"};
  EXPECT_EQ(patterns_only.MachineType(), "");
}

TEST(ModelLoader, AFamilyHasItsOwnVariantOfAControllerModel) {
  // pseries' pci-root is a PHB (spapr-pci-host-bridge, extra roots with a target index); every
  // other family keeps the plain pci-root, also when it is looked up by name alone.
  const Catalog& cat = BuiltinCatalog();
  const MachineFamily* pseries = cat.FindMachine("ppc64", "pseries-7.2");
  const MachineFamily* pc = cat.FindMachine("x86_64", "pc");
  ASSERT_NE(pseries, nullptr);
  ASSERT_NE(pc, nullptr);
  const ControllerModel& phb = cat.controller(pseries->root);
  EXPECT_EQ(phb.name, "pci-root");
  EXPECT_TRUE(phb.extra_roots);
  EXPECT_EQ(phb.qemu, "spapr-pci-host-bridge");
  EXPECT_EQ(phb.target.at("index"), "free");
  EXPECT_EQ(pseries->gap_filler, pseries->root);  // a full PHB makes another PHB
  EXPECT_EQ(cat.FindController("pci-root", "pseries"), pseries->root);
  EXPECT_EQ(cat.FindController("pci-root", "pc"), pc->root);
  EXPECT_EQ(cat.FindController("pci-root"), pc->root);
  EXPECT_NE(pc->root, pseries->root);
  EXPECT_FALSE(cat.controller(pc->root).extra_roots);
  EXPECT_EQ(cat.controller(pc->root).qemu, "");
  // A model no family has a variant of is found by name on every family.
  EXPECT_EQ(cat.FindController("pci-bridge", "pseries"), cat.FindController("pci-bridge"));
  // The bus of an extra root is named after its host bridge's id.
  EXPECT_EQ(phb.QemuId(0), "pci.0");
  EXPECT_EQ(phb.BusName(0), "pci.0");
  EXPECT_EQ(phb.QemuId(2), "pci.2");
  EXPECT_EQ(phb.BusName(2), "pci.2.0");
  EXPECT_EQ(cat.controller(cat.FindController("pci-bridge")).BusName(3), "pci.3");
}

/// The catalogue whose controllers.json has one model: a root with every field, and `patch` (a
/// JSON merge patch) applied to it.
Result<Catalog> WithOneController(const std::string& patch) {
  nlohmann::json model = nlohmann::json::parse(R"({"name": "x", "source": "", "qemu": "",
      "root": true, "plugs_as": "", "aggregate": false, "offers": ["pci"], "autoassign": true,
      "hotplug": true, "qemu_hotplug": true, "qemu_hotplug_acpi": false, "qemu_root_bus": false,
      "slots": [1, 31], "target": {}, "target_options": [], "machines": [], "machine_error": "",
      "index_above_bus": false})");
  model.merge_patch(nlohmann::json::parse(patch));
  nlohmann::json file = {{"defaults", nlohmann::json::object()},
                         {"models", nlohmann::json::array({model})}};
  return LoadCatalog(WithFile("controllers.json", file.dump()));
}

TEST(ModelLoader, ExtraRootsOnlyOnARootModel) {
  Result<Catalog> cat = WithOneController(
      R"({"qemu": "x", "root": false, "extra_roots": true, "plugs_as": "pci"})");
  ASSERT_FALSE(cat.ok());
  EXPECT_NE(cat.errors().front().message.find("/models/0/extra_roots: only a root model"),
            std::string::npos)
      << cat.errors().front().message;
}

TEST(ModelLoader, ATargetDefaultMustBeAnOptionOfTheModel) {
  Result<Catalog> cat = WithOneController(
      R"({"target": {"chassis": "index"}, "target_options": ["port", "colour"]})");
  ASSERT_FALSE(cat.ok());
  std::vector<std::string> messages;  // the first two; the machines then miss their models
  for (size_t i = 0; i < 2 && i < cat.errors().size(); ++i) {
    messages.push_back(cat.errors()[i].message);
  }
  EXPECT_EQ(messages, (std::vector<std::string>{
                          "controllers.json: /models/0/target_options: unknown option 'colour'",
                          "controllers.json: /models/0/target_options: the default for 'chassis' "
                          "is no option of the model"}));
}

TEST(ModelLoader, UnknownFieldIsRejectedWithItsPointer) {
  Result<Catalog> cat = WithOneController(R"({"colour": "red"})");
  ASSERT_FALSE(cat.ok());
  EXPECT_NE(cat.errors().front().message.find("controllers.json: /models/0/colour: unknown field"),
            std::string::npos)
      << cat.errors().front().message;
}

TEST(ModelLoader, SlotRangeOutsidePciIsRejected) {
  Result<Catalog> cat = WithOneController(R"({"slots": [1, 32]})");
  ASSERT_FALSE(cat.ok());
  EXPECT_NE(cat.errors().front().message.find("/models/0/slots"), std::string::npos);
}

TEST(ModelLoader, DanglingControllerReferenceIsRejected) {
  std::string q35 = BuiltinText("machines/q35.json");
  size_t at = q35.find("\"gap_filler\": \"pcie-root-port\"");
  ASSERT_NE(at, std::string::npos);
  q35.replace(at, 30, "\"gap_filler\": \"pcie-root-pork\"");
  Result<Catalog> cat = LoadCatalog(WithFile("machines/q35.json", q35));
  ASSERT_FALSE(cat.ok());
  EXPECT_NE(cat.errors().front().message.find("unknown controller model 'pcie-root-pork'"),
            std::string::npos);
}

TEST(ModelLoader, MalformedJsonIsRejectedNamingTheFile) {
  Result<Catalog> cat = LoadCatalog(WithFile("devices.json", "{"));
  ASSERT_FALSE(cat.ok());
  EXPECT_NE(cat.errors().front().message.find("devices.json"), std::string::npos);
}

TEST(ModelLoader, ADefaultDevicesElementIsItsTagAndNoProp) {
  Result<Catalog> cat = LoadCatalog(BuiltinDataFiles());
  ASSERT_TRUE(cat.ok());
  const MachineFamily* q35 = FamilyNamed(*cat, "q35");
  ASSERT_NE(q35, nullptr);
  const DefaultDevice* balloon = nullptr;
  for (const DefaultDevice& d : q35->default_devices) {
    EXPECT_FALSE(d.element.empty());
    EXPECT_FALSE(d.props.contains("element")) << d.element;
    if (d.element == "memballoon") balloon = &d;
  }
  ASSERT_NE(balloon, nullptr);
  EXPECT_EQ(balloon->props, (Props{{"@model", "virtio"}}));
}

TEST(ModelLoader, ADefaultDeviceKnowsItsClass) {
  const Catalog& cat = BuiltinCatalog();
  int with_class = 0;
  for (const MachineFamily& m : cat.machines) {
    for (const DefaultDevice& d : m.default_devices) {
      SCOPED_TRACE(m.name + " " + d.element);
      const DeviceClass* c = cat.Classify(d.element, d.props);
      EXPECT_EQ(d.class_id, c ? c - cat.classes.data() : -1);
      with_class += d.class_id >= 0;
    }
  }
  EXPECT_GT(with_class, 10);
}

TEST(ModelLoader, AModelTakesItsQemuNameOrTheNamesItLists) {
  const Catalog& cat = BuiltinCatalog();
  auto names = [&](const std::string& model) {
    ControllerModelId id = cat.FindController(model);
    EXPECT_GE(id, 0) << model;
    return id < 0 ? std::vector<std::string>{} : cat.controller(id).model_names;
  };
  EXPECT_EQ(names("pcie-root-port"), (std::vector<std::string>{"pcie-root-port", "ioh3420"}));
  EXPECT_EQ(names("dmi-to-pci-bridge"), (std::vector<std::string>{"i82801b11-bridge"}));
  EXPECT_EQ(names("pcie-root"), std::vector<std::string>{});
  // A list must start with the model's own QEMU device.
  Result<Catalog> bad = WithOneController(R"({"model_names": ["ioh3420"]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.errors().front().message.find("model_names: the first name must be"),
            std::string::npos)
      << bad.errors().front().message;
}

TEST(ModelLoader, ADefaultDeviceWithoutElementIsRejected) {
  std::string q35 = BuiltinText("machines/q35.json");
  const std::string balloon = "\"element\": \"memballoon\", ";
  size_t at = q35.find(balloon);
  ASSERT_NE(at, std::string::npos);
  q35.erase(at, balloon.size());
  Result<Catalog> cat = LoadCatalog(WithFile("machines/q35.json", q35));
  ASSERT_FALSE(cat.ok());
  EXPECT_NE(cat.errors().front().message.find("props: missing \"element\""), std::string::npos)
      << cat.errors().front().message;
}

}  // namespace
}  // namespace pciplan
