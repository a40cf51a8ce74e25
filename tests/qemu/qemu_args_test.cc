// pciplan qemu-args against libvirt 9.0's own command line: for every valid conformance case,
// the -device objects of every PCI controller and PCI device must agree with the ones libvirt
// writes for the same domain (recorded in libvirt-argv/ by record_libvirt_argv.py) in driver,
// id, bus, addr, multifunction, chassis, port, chassis_nr, bus_nr and numa_node.
#include "pciplan/emit/qemu_args.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"
#include "test_support.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using pciplan::testing::Slurp;

const char* const kCompared[] = {"driver",  "id",   "bus",        "addr",   "multifunction",
                                 "chassis", "port", "chassis_nr", "bus_nr", "numa_node"};

Result<QemuCommand> CommandFor(const std::string& text) {
  Result<Domain> dom = ReadDomain(text);
  if (!dom) return dom.errors();
  Result<Plan> plan = MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
  if (!plan) return plan.errors();
  return BuildQemuCommand(*dom, *plan, BuiltinCatalog());
}

/// The compared properties of a -device object, as one line.
std::string Key(const Json& obj) {
  Json k = Json::object();
  for (const char* p : kCompared) {
    if (obj.contains(p)) k[p] = obj[p];
  }
  return k.dump();
}

/// PCI -device objects by identity: the id, or bus and addr for the devices without one.
std::map<std::string, Json> PciDevices(const std::vector<Json>& objects) {
  std::map<std::string, Json> out;
  for (const Json& o : objects) {
    if (!o.contains("addr")) continue;
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
  int domains = 0, agree = 0, devices = 0;
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
    std::map<std::string, Json> ours = PciDevices(ours_list), libvirt = PciDevices(theirs);
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
  std::printf("qemu-args: %d/%d domains agree with libvirt's -device objects (%d PCI devices)\n",
              agree, domains, devices);
  EXPECT_EQ(agree, domains);
  EXPECT_GE(domains, 218);
}

TEST(QemuArgs, AddrIsSlotAndFunctionInHex) {
  EXPECT_EQ(QemuAddr(PciAddress{0, 0, 0x1f, 0}), "0x1f");
  EXPECT_EQ(QemuAddr(PciAddress{0, 3, 1, 2}), "0x1.0x2");
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

}  // namespace
}  // namespace pciplan
