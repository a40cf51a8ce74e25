// pciplan qemu-args against libvirt 9.0's own command line: for every valid conformance case,
// the -device objects of every PCI controller, PCI device and virtio-mmio device must agree with
// the ones libvirt writes for the same domain (recorded in libvirt-argv/ by
// record_libvirt_argv.py) in every property, except the few listed in kNotCompared with why.
#include "pciplan/emit/qemu_args.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"
#include "pciplan/qmp/qemu_process.h"
#include "test_support.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using pciplan::testing::Slurp;

// Every property libvirt writes is compared except these, each for the reason given. A property
// not listed here that libvirt writes and pciplan does not (or the other way round, or with
// another value) is a disagreement.
struct NotCompared {
  const char* property;
  const char* why;
};
const NotCompared kNotCompared[] = {
    {"drive", "backend id: qemu-args names its placeholder block devices itself"},
    {"netdev", "backend id: qemu-args emits NICs without a network backend"},
    {"rng", "backend id: virtio-rng uses QEMU's built-in random source"},
    {"fsdev", "backend id: qemu-args names its placeholder -fsdev itself"},
    {"memdev", "backend id: qemu-args names its placeholder memory backend itself"},
    {"audiodev", "backend id: qemu-args names its placeholder -audiodev itself"},
    {"chardev", "backend id: qemu-args names its placeholder -chardev itself"},
    {"vhostfd", "a file descriptor libvirt opens on the host"},
    {"guest-cid", "a context id libvirt picks when the guest starts (auto='yes' gives 0 here)"},
    {"bootindex", "boot order, not where a device sits"},
    {"max_outputs", "display configuration, not where a device sits"},
    {"vgamem_mb", "video memory size, not where a device sits"},
    {"vgamem", "video memory size, not where a device sits"},
    {"ram_size", "video memory size, not where a device sits"},
    {"vram_size", "video memory size, not where a device sits"},
    {"vram64_size_mb", "video memory size, not where a device sits"},
};

bool Compared(const std::string& property) {
  return std::none_of(std::begin(kNotCompared), std::end(kNotCompared),
                      [&](const NotCompared& n) { return property == n.property; });
}

Result<QemuCommand> CommandFor(const std::string& text) {
  Result<Domain> dom = ReadDomain(text);
  if (!dom) return dom.errors();
  Result<Plan> plan = MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
  if (!plan) return plan.errors();
  return BuildQemuCommand(*dom, *plan, BuiltinCatalog());
}

/// The compared properties of a -device object, as one line (keys sorted).
std::string Key(const Json& obj) {
  Json k = Json::object();
  for (const auto& [p, v] : obj.items()) {
    if (Compared(p)) k[p] = v;
  }
  return k.dump();
}

/// The -device objects that build the PCI topology, by identity (the id, or bus and addr for
/// the devices without one): every device on a PCI bus (it has an addr) and every virtio-mmio
/// device (no bus; QEMU's virtio-mmio devices are named "virtio-*-device"). Devices on other
/// buses (IDE, SCSI, USB, virtio-serial, HDA codecs) and bus-less devices that are not
/// virtio-mmio (pc-dimm, intel-iommu) are not qemu-args' business.
bool IsVirtioMmio(const Json& o) {
  std::string driver = o.value("driver", "");
  return driver.rfind("virtio-", 0) == 0 && driver.size() > 7 &&
         driver.compare(driver.size() - 7, 7, "-device") == 0;
}

std::map<std::string, Json> TopologyDevices(const std::vector<Json>& objects) {
  std::map<std::string, Json> out;
  for (const Json& o : objects) {
    if (!o.contains("addr") && (o.contains("bus") || !IsVirtioMmio(o))) continue;
    std::string name = o.contains("id")
                           ? o["id"].get<std::string>()
                           : o["bus"].get<std::string>() + "/" + o["addr"].get<std::string>();
    out[name] = o;
  }
  return out;
}

TEST(QemuArgs, DevicesAgreeWithLibvirtsCommandLine) {
  fs::path recorded = fs::path(PCIPLAN_TESTS_DIR) / "qemu" / "libvirt-argv";
  fs::path cases = PCIPLAN_CONFORMANCE_DIR;
  int domains = 0, agree = 0, devices = 0, properties = 0;
  std::vector<std::string> readdressed;
  for (const auto& e : fs::directory_iterator(recorded)) {
    std::string name = e.path().stem().string();
    SCOPED_TRACE(name);
    std::istringstream lines(Slurp(e.path()));
    std::string line;
    std::getline(lines, line);
    std::string machine = Json::parse(line).get<std::string>();
    std::vector<Json> theirs;
    while (std::getline(lines, line)) theirs.push_back(Json::parse(line));
    ++domains;
    Result<QemuCommand> cmd = CommandFor(Slurp(cases / name / "input.xml"));
    if (!cmd) {
      ADD_FAILURE() << "no command line: " << cmd.errors().front().message;
      continue;
    }
    // The -machine value starts with the machine type.
    EXPECT_EQ(machine.substr(0, machine.find(',')), cmd->machine);
    std::vector<Json> ours_list;
    for (const QemuDeviceArg& d : cmd->devices) ours_list.push_back(Json::parse(d.object.dump()));
    std::map<std::string, Json> ours = TopologyDevices(ours_list),
                                libvirt = TopologyDevices(theirs);
    bool same = true;
    uint32_t top = 0;  // our highest controller index
    for (const auto& [id, obj] : ours) {
      if (id.rfind("pci.", 0) == 0) top = std::max<uint32_t>(top, std::stoul(id.substr(4)));
    }
    std::vector<std::string> missing;
    for (const auto& [id, obj] : libvirt) {
      auto it = ours.find(id);
      if (it == ours.end()) {
        if (id.rfind("pci.", 0) == 0 && std::stoul(id.substr(4)) > top) {
          missing.push_back(id);
          continue;
        }
        ADD_FAILURE() << "missing -device " << Key(obj);
        same = false;
        continue;
      }
      properties += static_cast<int>(Json::parse(Key(obj)).size());
      if (Key(it->second) == Key(obj)) continue;
      // libvirt's domxml-to-native places user-mode interfaces anew, away from the address its
      // own XML gives them; our addresses are the XML's (the conformance test holds that).
      Json a = obj, b = it->second;
      for (Json* o : {&a, &b}) {
        o->erase("bus");
        o->erase("addr");
        o->erase("multifunction");
      }
      if (id.rfind("net", 0) == 0 && Key(a) == Key(b)) {
        readdressed.push_back(name + " " + id);
        continue;
      }
      ADD_FAILURE() << "libvirt " << Key(obj) << "\n    ours " << Key(it->second);
      same = false;
    }
    // Controllers beyond the XML's, which libvirt adds only for the interfaces it re-addresses.
    bool moved = !readdressed.empty() && readdressed.back().rfind(name + " ", 0) == 0;
    for (const std::string& id : missing) {
      if (moved) {
        readdressed.push_back(name + " " + id + " (added by libvirt for the moved interfaces)");
      } else {
        ADD_FAILURE() << "missing -device " << Key(libvirt[id]);
        same = false;
      }
    }
    for (const auto& [id, obj] : ours) {
      if (!libvirt.count(id)) {
        ADD_FAILURE() << "extra -device " << Key(obj);
        same = false;
      }
    }
    devices += static_cast<int>(libvirt.size());
    agree += same ? 1 : 0;
  }
  for (const std::string& r : readdressed) {
    std::printf("libvirt argv re-addresses interface, its XML wins: %s\n", r.c_str());
  }
  std::printf(
      "qemu-args: %d/%d domains agree with libvirt's -device objects (%d PCI and virtio-mmio "
      "devices, %d properties compared)\n",
      agree, domains, devices, properties);
  EXPECT_EQ(agree, domains);
  EXPECT_GE(domains, 298);
}

TEST(QemuArgs, AddrIsSlotAndFunctionInHex) {
  EXPECT_EQ(QemuAddr(PciAddress{0, 0, 0x1f, 0}), "0x1f");
  EXPECT_EQ(QemuAddr(PciAddress{0, 3, 1, 2}), "0x1.0x2");
}

TEST(QemuArgs, InterfaceModelIsTheDriverEvenWhenUnknownAndOnlyAMissingOneGetsTheDefault) {
  // libvirt passes the model through ('e1001' is for QEMU to refuse); rtl8139 is pc's default
  // model for an interface without one.
  Result<QemuCommand> cmd = CommandFor(R"(<domain type='qemu'><name>t</name>
    <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
    <interface type='user'><model type='e1001'/></interface>
    <interface type='user'/>
    </devices></domain>)");
  ASSERT_TRUE(cmd.ok()) << cmd.errors().front().message;
  std::map<std::string, std::string> drivers;
  for (const QemuDeviceArg& d : cmd->devices) {
    if (d.object.contains("id")) drivers[d.object["id"]] = d.object["driver"];
  }
  EXPECT_EQ(drivers["net0"], "e1001");
  EXPECT_EQ(drivers["net1"], "rtl8139");
}

TEST(QemuArgs, DeviceWithoutQemuDriverIsRefusedNamingIt) {
  Result<QemuCommand> cmd = CommandFor(R"(<domain type='qemu'><name>t</name>
    <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
    <watchdog model='ib700'><address type='pci' domain='0' bus='0' slot='9' function='0'/></watchdog>
    </devices></domain>)");
  ASSERT_FALSE(cmd.ok());
  EXPECT_EQ(cmd.errors().front().rule, Rule::kUnsupported);
  EXPECT_EQ(cmd.errors().front().address, "0000:00:09.0");
}

TEST(QemuArgs, ARootBusWithHotplugOffHasItTurnedOffInQemu) {
  // libvirt 9.0 (libvirt-oracle argv): <target hotplug='off'/> on pc's pci-root is
  // -global PIIX4_PM.acpi-root-pci-hotplug=off; q35's pcie-root has no such option.
  const std::string pc = R"(<domain type='qemu'><name>t</name>
    <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
    <controller type='pci' index='0' model='pci-root'>HOTPLUG</controller>
    <interface type='user'><model type='virtio'/></interface>
    </devices></domain>)";
  auto with = [&](const std::string& target) {
    std::string text = pc;
    return text.replace(text.find("HOTPLUG"), 7, target);
  };
  Result<QemuCommand> off = CommandFor(with("<target hotplug='off'/>"));
  ASSERT_TRUE(off.ok()) << off.errors().front().message;
  std::vector<std::string> argv = off->Argv();
  auto global = std::find(argv.begin(), argv.end(), "-global");
  ASSERT_NE(global, argv.end());
  EXPECT_EQ(*(global + 1), "PIIX4_PM.acpi-root-pci-hotplug=off");
  for (const std::string& target : {std::string(), std::string("<target hotplug='on'/>")}) {
    Result<QemuCommand> on = CommandFor(with(target));
    ASSERT_TRUE(on.ok()) << on.errors().front().message;
    std::vector<std::string> plain = on->Argv();
    EXPECT_EQ(std::count(plain.begin(), plain.end(), "-global"), 0) << target;
  }
  // The real QEMU: a hot-plug into a free slot of bus 0 is refused with the switch, taken
  // without it.
  for (bool hotplug_off : {true, false}) {
    SCOPED_TRACE(hotplug_off);
    Result<QemuCommand> cmd = CommandFor(with(hotplug_off ? "<target hotplug='off'/>" : ""));
    ASSERT_TRUE(cmd.ok());
    QemuLaunch launch{cmd->binary, cmd->Argv()};
    launch.args.insert(launch.args.begin(), {"-S", "-display", "none"});
    Result<std::unique_ptr<QemuProcess>> qemu = QemuProcess::Start(launch);
    ASSERT_TRUE(qemu.ok()) << qemu.errors().front().message;
    Result<Json> added = (*qemu)->qmp().Execute(
        "device_add", {{"driver", "virtio-net-pci"}, {"id", "probe"}, {"bus", "pci.0"},
                       {"addr", "0x1e"}});
    EXPECT_EQ(added.ok(), !hotplug_off);
    if (!added.ok()) {
      EXPECT_NE(added.errors().front().message.find("hot"), std::string::npos)
          << added.errors().front().message;
    }
  }
}

}  // namespace
}  // namespace pciplan
