// pciplan attach --config against libvirt 9.0's virsh attach-device --config: for every case of
// tests/attach/cases, the address map of the result equals libvirt's (expected.addrmap), or both
// refuse the device for the same problem (expected.error); DEVIATIONS.tsv cases must plan
// (libvirt-limit) or be refused (qemu-refuses). A ratchet: the pass count may not drop below
// ratchet.txt. Each result is also a fixed point of planning.
#include "pciplan/edit/attach.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "address_map.h"
#include "libvirt_errors.h"
#include "pciplan/domain/domain_reader.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"
#include "test_support.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;
using conformance::AddressMapFromXml;
using conformance::DiffMaps;
using conformance::MapResult;
using conformance::ParseMap;
using pciplan::testing::Slurp;

fs::path AttachDir() { return fs::path(PCIPLAN_TESTS_DIR) / "attach"; }

std::map<std::string, std::string> Deviations() {
  std::map<std::string, std::string> out;
  std::istringstream in(Slurp(AttachDir() / "DEVIATIONS.tsv"));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t tab = line.find('\t'), tab2 = line.find('\t', tab + 1);
    out[line.substr(0, tab)] = line.substr(tab + 1, tab2 - tab - 1);
  }
  return out;
}

/// Empty when the case passes, else why not.
std::string RunCase(const fs::path& dir, const std::string& deviation) {
  Result<Domain> domain = ReadDomain(Slurp(dir / "domain.xml"));
  if (!domain) return "domain.xml: " + domain.errors().front().message;
  Result<Edited> edited =
      AttachDevice(*domain, Slurp(dir / "device.xml"), BuiltinCatalog(), AttachMode::kConfig);
  if (deviation == "libvirt-limit") {
    return edited ? "" : "pciplan must plan it: " + edited.errors().front().Render("domain.xml");
  }
  if (deviation == "qemu-refuses") return edited ? "pciplan must refuse it" : "";
  if (fs::exists(dir / "expected.error")) {
    std::string libvirt = Slurp(dir / "expected.error");
    return CompareError(libvirt, edited ? Diagnostics{} : edited.errors());
  }
  if (!edited) return "refused: " + edited.errors().front().Render("domain.xml");
  MapResult ours = AddressMapFromXml(edited->xml);
  if (!ours.error.empty()) return "the output is not XML: " + ours.error;
  std::string text;
  for (const std::string& l : ours.lines) text += l + "\n";
  std::vector<std::string> diff =
      DiffMaps(ParseMap(Slurp(dir / "expected.addrmap")), ParseMap(text));
  if (!diff.empty()) {
    std::string out;
    for (const std::string& d : diff) out += "\n    " + d;
    return out;
  }
  // The result is stable: planning it again changes nothing.
  Result<Domain> again = ReadDomain(edited->xml);
  if (!again) return "output does not read back";
  Result<Plan> plan = MakePlan(*again, BuiltinCatalog(), PolicyName::kLibvirt);
  if (!plan) return "output does not plan: " + plan.errors().front().message;
  Result<std::string> xml = WriteDomain(*again, *plan, BuiltinCatalog());
  if (!xml || *xml != edited->xml) return "planning the output changes it";
  return {};
}

TEST(Attach, ConfigMatchesLibvirtsAttachDevice) {
  std::map<std::string, std::string> deviations = Deviations();
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(AttachDir() / "cases")) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  int pass = 0;
  for (const fs::path& dir : dirs) {
    std::string name = dir.filename().string();
    auto dev = deviations.find(name);
    std::string why = RunCase(dir, dev == deviations.end() ? "" : dev->second);
    if (why.empty()) {
      ++pass;
      if (dev != deviations.end())
        std::printf("deviation %s: %s: ok\n", name.c_str(), dev->second.c_str());
    } else {
      std::printf("FAIL %s: %s\n", name.c_str(), why.c_str());
    }
  }
  int best = 0;
  std::istringstream(Slurp(AttachDir() / "ratchet.txt").substr(5)) >> best;
  std::printf("attach: %d/%zu cases pass (recorded best %d)\n", pass, dirs.size(), best);
  EXPECT_GE(pass, best);
  EXPECT_GE(dirs.size(), 57u);
}

}  // namespace
}  // namespace pciplan
