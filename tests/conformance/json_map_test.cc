// The JSON result of a plan names every device where the planned XML puts it: for every case
// of the conformance corpus, the address map (address_map.h) of the devices of `plan --json`
// equals the address map of the planned XML.
#include <gtest/gtest.h>

#include <filesystem>
#include <pugixml.hpp>
#include <string>
#include <vector>

#include "address_map.h"
#include "pciplan/domain/domain_reader.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/emit/result_json.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"
#include "test_support.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

/// The element `path` ("target", "source/address") below `el`, made when missing.
pugi::xml_node Child(pugi::xml_node el, const std::string& path) {
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    std::string name = path.substr(start, slash == std::string::npos ? slash : slash - start);
    pugi::xml_node c = el.child(name.c_str());
    el = c ? c : el.append_child(name.c_str());
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return el;
}

/// A <devices> element rebuilt from the JSON devices: each device's identity attributes and
/// its address, nothing else.
void AddDevices(pugi::xml_node devices, const Json& list) {
  for (const Json& d : list) {
    pugi::xml_node el = devices.append_child(d["element"].get<std::string>().c_str());
    for (const auto& [path, value] : d["attributes"].items()) {
      size_t at = path.rfind('@');
      std::string v = value.get<std::string>();
      if (at == std::string::npos) {
        Child(el, path).text().set(v.c_str());
      } else if (at == 0) {
        el.append_attribute(path.substr(1).c_str()).set_value(v.c_str());
      } else {
        Child(el, path.substr(0, at - 1)).append_attribute(path.substr(at + 1).c_str())
            .set_value(v.c_str());
      }
    }
    const Json& a = d["address"];
    if (a.is_null()) continue;
    pugi::xml_node addr = el.append_child("address");
    addr.append_attribute("type").set_value(a["type"].get<std::string>().c_str());
    if (a["type"] == "pci") {
      for (const char* k : {"domain", "bus", "slot", "function"}) {
        addr.append_attribute(k).set_value(std::to_string(a[k].get<uint32_t>()).c_str());
      }
      if (!a["multifunction"].is_null()) {
        addr.append_attribute("multifunction")
            .set_value(a["multifunction"].get<std::string>().c_str());
      }
      continue;
    }
    for (const auto& [name, value] : a["attributes"].items()) {
      addr.append_attribute(name.c_str()).set_value(value.get<std::string>().c_str());
    }
  }
}

TEST(JsonAddressMap, EqualsThePlannedXmlsForEveryConformanceCase) {
  int compared = 0;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(PCIPLAN_CONFORMANCE_DIR)) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    Result<Domain> domain = ReadDomain(testing::Slurp(dir / "input.xml"));
    if (!domain) continue;  // a rejected case: no plan, no map
    Result<Plan> plan = MakePlan(domain.value(), BuiltinCatalog(), PolicyName::kLibvirt);
    if (!plan) continue;
    Result<std::string> xml = WriteDomain(domain.value(), plan.value(), BuiltinCatalog());
    ASSERT_TRUE(xml.ok());
    conformance::MapResult from_xml = conformance::AddressMapFromXml(xml.value());
    ASSERT_EQ(from_xml.error, "");
    ResultParts parts;
    parts.kind = "plan";
    parts.file = "input.xml";
    parts.plan = &plan.value();
    Json j = ResultJson(parts, BuiltinCatalog());
    pugi::xml_document doc;
    AddDevices(doc.append_child("domain").append_child("devices"), j["devices"]);
    EXPECT_EQ(conformance::AddressMapLines(doc.document_element()), from_xml.lines);
    ++compared;
  }
  std::printf("JSON address maps: %d planned conformance cases compared\n", compared);
  // 246 cases are valid; pciplan refuses 3 of them on purpose (DEVIATIONS.tsv).
  EXPECT_GE(compared, 243);
}

}  // namespace
}  // namespace pciplan
