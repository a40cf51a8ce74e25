// The command line's JSON documents (--json of plan, check, attach, detach, verify), every
// problem of a refused domain (check, plan --all-errors) and --version, run as a user runs them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using pciplan::testing::RunPciplan;
using pciplan::testing::RunResult;
using pciplan::testing::Slurp;

// Three independent problems, on lines 12, 17 and 22: a double use, an address in PCI domain
// 1, another double use.
constexpr const char* kThree = R"(<domain type='qemu'>
  <name>three</name>
  <memory unit='MiB'>512</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:aa:62:01'/>
      <model type='e1000'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:aa:62:02'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0001' bus='0x00' slot='0x06' function='0x0'/>
    </interface>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </rng>
  </devices>
</domain>
)";

constexpr const char* kGood = R"(<domain type='qemu'>
  <name>good</name>
  <memory unit='MiB'>512</memory>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:aa:62:01'/>
      <model type='virtio'/>
      <alias name='ua-net0'/>
    </interface>
  </devices>
</domain>
)";

constexpr const char* kDisk =
    "<disk type='file' device='disk'><target dev='vdb' bus='virtio'/></disk>\n";

class JsonCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pciplan-json-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "three.xml") << kThree;
    std::ofstream(dir_ / "good.xml") << kGood;
    std::ofstream(dir_ / "disk.xml") << kDisk;
  }
  void TearDown() override { fs::remove_all(dir_); }
  RunResult Run(const std::vector<std::string>& args) {
    return RunPciplan(dir_, args, dir_ / "no-stdin");
  }
  std::vector<std::string> Lines(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
      out.push_back(text.substr(start, nl - start));
    }
    return out;
  }
  fs::path dir_;
};

TEST_F(JsonCli, CheckReportsThreeIndependentProblemsInDocumentOrder) {
  RunResult r = Run({"check", "three.xml"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  std::vector<std::string> lines = Lines(r.err);
  ASSERT_EQ(lines.size(), 3u) << r.err;
  EXPECT_EQ(lines[0],
            "three.xml:12: error: interface #0 (e1000) at 0000:00:05.0: attempted double use of "
            "PCI address 0000:00:05.0 (already used by disk 'vda' on line 8) [double-use]");
  EXPECT_EQ(lines[1].rfind("three.xml:17: error: interface #1 (virtio) at 0001:00:06.0: ", 0), 0u);
  EXPECT_NE(lines[1].find("[pci-domain]"), std::string::npos);
  EXPECT_EQ(lines[2].rfind("three.xml:22: error: rng #0 (virtio) at 0000:00:05.0: ", 0), 0u);
}

TEST_F(JsonCli, PlanStopsAtTheFirstProblemUnlessAllErrors) {
  RunResult first = Run({"plan", "three.xml"});
  EXPECT_EQ(first.status, 1);
  EXPECT_EQ(first.out, "");
  ASSERT_EQ(Lines(first.err).size(), 1u) << first.err;
  RunResult all = Run({"plan", "--all-errors", "three.xml"});
  EXPECT_EQ(all.status, 1);
  EXPECT_EQ(all.out, "");
  EXPECT_EQ(Lines(all.err).size(), 3u) << all.err;
  EXPECT_EQ(Lines(all.err)[0], Lines(first.err)[0]);
  EXPECT_EQ(all.err, Run({"check", "three.xml"}).err);
}

TEST_F(JsonCli, CheckJsonListsEveryProblem) {
  RunResult r = Run({"check", "--json", "three.xml"});
  EXPECT_EQ(r.status, 1);
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["format"], 1);
  EXPECT_EQ(j["kind"], "check");
  EXPECT_EQ(j["file"], "three.xml");
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["diagnostics"].size(), 3u);
  std::vector<std::string> lines = Lines(r.err);
  ASSERT_EQ(lines.size(), 3u);
  std::vector<int> at = {12, 17, 22};
  std::vector<std::string> rules = {"double-use", "pci-domain", "double-use"};
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const Json& e = j["diagnostics"][i];
    EXPECT_EQ(e["file"], "three.xml");
    EXPECT_EQ(e["line"], at[i]);
    EXPECT_EQ(e["rule"], rules[i]);
    EXPECT_EQ(e["text"], lines[i]);
  }
  EXPECT_EQ(j["diagnostics"][2]["address"], "0000:00:05.0");
  EXPECT_EQ(j["diagnostics"][2]["device"], "rng #0 (virtio)");
}

TEST_F(JsonCli, PlanJsonCarriesTheXmlOrNamesTheFileItWasWrittenTo) {
  RunResult plain = Run({"plan", "good.xml"});
  ASSERT_EQ(plain.status, 0) << plain.err;
  RunResult inline_xml = Run({"plan", "--json", "good.xml"});
  ASSERT_EQ(inline_xml.status, 0) << inline_xml.err;
  Json j = Json::parse(inline_xml.out);
  EXPECT_EQ(j["kind"], "plan");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["xml"], plain.out);
  EXPECT_TRUE(j["output"].is_null());
  RunResult to_file = Run({"plan", "--json", "-o", "out.xml", "good.xml"});
  ASSERT_EQ(to_file.status, 0) << to_file.err;
  Json f = Json::parse(to_file.out);
  EXPECT_EQ(f["output"], "out.xml");
  EXPECT_TRUE(f["xml"].is_null());
  EXPECT_EQ(Slurp(dir_ / "out.xml"), plain.out);
  EXPECT_EQ(f["devices"], j["devices"]);
}

TEST_F(JsonCli, AttachAndDetachPrintTheirDocuments) {
  RunResult a = Run({"attach", "--json", "good.xml", "disk.xml", "-o", "more.xml"});
  ASSERT_EQ(a.status, 0) << a.err;
  Json j = Json::parse(a.out);
  EXPECT_EQ(j["kind"], "attach");
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["device_file"], "disk.xml");
  EXPECT_EQ(j["output"], "more.xml");
  const Json& attached = j["devices"][j["attached"].get<size_t>()];
  EXPECT_EQ(attached["target"], "vdb");
  EXPECT_EQ(attached["address"]["type"], "pci");
  RunResult d = Run({"detach", "--json", "more.xml", "--alias", "ua-net0"});
  ASSERT_EQ(d.status, 0) << d.err;
  Json k = Json::parse(d.out);
  EXPECT_EQ(k["kind"], "detach");
  EXPECT_EQ(k["detached"], "interface 'ua-net0'");
  EXPECT_TRUE(k["output"].is_null());
  EXPECT_NE(k["xml"].get<std::string>().find("vdb"), std::string::npos);
  for (const Json& dev : k["devices"]) EXPECT_NE(dev["alias"], "ua-net0");
  RunResult bad = Run({"detach", "--json", "more.xml", "--alias", "ua-none"});
  EXPECT_EQ(bad.status, 1);
  Json b = Json::parse(bad.out);
  EXPECT_EQ(b["ok"], false);
  ASSERT_EQ(b["diagnostics"].size(), 1u);
  EXPECT_EQ(b["diagnostics"][0]["text"].get<std::string>() + "\n", bad.err);
}

TEST_F(JsonCli, AnEmulatorThatCannotStartStillGivesADocument) {
  for (const char* qemu : {"/bin/false", "/nonexistent/qemu-system-x86_64"}) {
    SCOPED_TRACE(qemu);
    RunResult r = Run({"verify", "--json", "--qemu", qemu, "good.xml"});
    EXPECT_NE(r.status, 0);
    Json j = Json::parse(r.out);
    EXPECT_EQ(j["format"], 1);
    EXPECT_EQ(j["kind"], "verify");
    EXPECT_EQ(j["ok"], false);
    ASSERT_EQ(j["diagnostics"].size(), 1u);
    EXPECT_EQ(j["diagnostics"][0]["rule"], "qemu");
  }
}

TEST_F(JsonCli, AnUnreadableFileIsADocumentToo) {
  RunResult r = Run({"check", "--json", "missing.xml"});
  EXPECT_EQ(r.status, 2);
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["diagnostics"].size(), 1u);
  EXPECT_TRUE(j["diagnostics"][0]["rule"].is_null());
}

TEST_F(JsonCli, VersionNamesItsOwnReleaseLibvirtAndTheDataRelease) {
  RunResult r = Run({"--version"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "pciplan " PCIPLAN_PROJECT_VERSION " (libvirt 9.0 behaviour, QEMU 7.2 data)\n");
}

}  // namespace
