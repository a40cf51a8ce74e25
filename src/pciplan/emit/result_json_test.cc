#include "pciplan/emit/result_json.h"

#include <gtest/gtest.h>

#include "pciplan/model/model_loader.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/plan/plan_test_support.h"

namespace pciplan {
namespace {

using Json = nlohmann::ordered_json;
using testing::DomainXml;

const std::string kQ35 = DomainXml(
    "q35",
    "\n<disk type='file' device='disk'><target dev='vda' bus='virtio'/></disk>"
    "\n<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/>"
    "<alias name='ua-net0'/></interface>\n");

Json PlanDocument(const std::string& xml) {
  Result<Plan> plan = testing::PlanXml(xml);
  EXPECT_TRUE(plan.ok());
  ResultParts parts;
  parts.kind = "plan";
  parts.file = "vm.xml";
  parts.plan = &plan.value();
  return ResultJson(parts, BuiltinCatalog());
}

const Json* Find(const Json& devices, const std::string& name) {
  for (const Json& d : devices) {
    if (d["name"] == name) return &d;
  }
  return nullptr;
}

TEST(ResultJson, ADocumentCarriesFormatKindFileAndOk) {
  Json j = PlanDocument(kQ35);
  EXPECT_EQ(j["format"], kResultFormat);
  EXPECT_EQ(j["kind"], "plan");
  EXPECT_EQ(j["file"], "vm.xml");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["machine"], "pc-q35-7.2");
  EXPECT_EQ(j["family"], "q35");
  EXPECT_TRUE(j["diagnostics"].empty());
}

TEST(ResultJson, EachDeviceHasItsIdentityLineAndAddress) {
  Json j = PlanDocument(kQ35);
  const Json* net = Find(j["devices"], "interface 'ua-net0'");
  ASSERT_NE(net, nullptr) << j["devices"].dump(1);
  EXPECT_EQ((*net)["alias"], "ua-net0");
  EXPECT_EQ((*net)["mac"], "52:54:00:00:00:01");
  EXPECT_EQ((*net)["model"], "virtio");
  EXPECT_EQ((*net)["line"], 3);  // <devices> opens on line 1
  EXPECT_EQ((*net)["origin"], "input");
  EXPECT_EQ((*net)["address"]["type"], "pci");
  EXPECT_EQ((*net)["address"]["bus"], 1);  // libvirt places interfaces before disks
  EXPECT_EQ((*net)["address"]["pci"], "0000:01:00.0");
  const Json* vda = Find(j["devices"], "disk 'vda'");
  ASSERT_NE(vda, nullptr);
  EXPECT_EQ((*vda)["target"], "vda");
  EXPECT_EQ((*vda)["line"], 2);
}

TEST(ResultJson, AddedControllersSayWhatTheyConnect) {
  Json j = PlanDocument(kQ35);
  const Json* port = Find(j["devices"], "controller pci index 1 (pcie-root-port)");
  ASSERT_NE(port, nullptr);
  EXPECT_EQ((*port)["origin"], "added");
  EXPECT_TRUE((*port)["line"].is_null());
  EXPECT_EQ((*port)["controller"]["index"], "1");
  EXPECT_EQ((*port)["controller"]["model"], "pcie-root-port");
  bool found = false;
  for (const Json& a : j["added"]) {
    if (a["name"] != "controller pci index 1 (pcie-root-port)") continue;
    found = true;
    EXPECT_EQ(a["why"], "to connect interface 'ua-net0'");
    EXPECT_EQ(j["devices"][a["device"].get<size_t>()]["name"], a["name"]);
  }
  EXPECT_TRUE(found) << j["added"].dump(1);
}

TEST(ResultJson, PromisesAreTheFreeHotPluggableSlots) {
  Result<Plan> plan = testing::PlanXml(kQ35);
  ASSERT_TRUE(plan.ok());
  HotplugCapacity free = FreeHotplugSlots(plan.value(), BuiltinCatalog());
  Json j = PlanDocument(kQ35);
  EXPECT_EQ(j["promises"]["pcie"], free.pcie);
  EXPECT_EQ(j["promises"]["pci"], free.pci);
  EXPECT_EQ(j["promises"]["pcie"], 1u);  // libvirt's one spare root port
}

TEST(ResultJson, ARefusedDomainHasNoPlanAndEveryDiagnostic) {
  Diagnostic d = Error(Rule::kDoubleUse, "attempted double use of PCI address 0000:00:05.0",
                       "interface #0 (e1000)", "0000:00:05.0");
  d.line = 12;
  d.hint = "move it";
  ResultParts parts;
  parts.kind = "check";
  parts.file = "vm.xml";
  parts.diagnostics = {d, Error(Rule::kPciDomain, "only PCI domain 0 is available")};
  Json j = ResultJson(parts, BuiltinCatalog());
  EXPECT_EQ(j["ok"], false);
  EXPECT_TRUE(j["machine"].is_null());
  EXPECT_TRUE(j["devices"].empty());
  EXPECT_TRUE(j["promises"].is_null());
  ASSERT_EQ(j["diagnostics"].size(), 2u);
  const Json& e = j["diagnostics"][0];
  EXPECT_EQ(e["file"], "vm.xml");
  EXPECT_EQ(e["line"], 12);
  EXPECT_EQ(e["device"], "interface #0 (e1000)");
  EXPECT_EQ(e["address"], "0000:00:05.0");
  EXPECT_EQ(e["rule"], "double-use");
  EXPECT_EQ(e["hint"], "move it");
  EXPECT_EQ(e["text"], d.Render("vm.xml"));
  EXPECT_TRUE(j["diagnostics"][1]["line"].is_null());
  EXPECT_TRUE(j["diagnostics"][1]["device"].is_null());
}

TEST(ResultJson, DiagnosticsInTheDeviceFileNameIt) {
  Diagnostic d = Error(Rule::kNotADevice, "not a device");
  d.line = 1;
  d.input = InputFile::kDevice;
  Json e = DiagnosticJson(d, "vm.xml", "disk.xml");
  EXPECT_EQ(e["file"], "disk.xml");
}

TEST(ResultJson, VersionNamesLibvirtAndTheDataRelease) {
  std::string v = VersionText(BuiltinCatalog());
  EXPECT_EQ(v.rfind("pciplan ", 0), 0u) << v;
  EXPECT_NE(v.find("libvirt 9.0 behaviour"), std::string::npos) << v;
  EXPECT_NE(v.find("QEMU " + BuiltinCatalog().qemu().version + " data"), std::string::npos) << v;
  EXPECT_EQ(BuiltinCatalog().qemu().version, "7.2");
}

}  // namespace
}  // namespace pciplan
