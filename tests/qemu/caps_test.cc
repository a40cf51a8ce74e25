// pciplan caps against the installed QEMU 7.2: the bundled data agrees with what the binaries
// tell, every device and property the corpus's command lines use exists, the cache answers a
// second call without starting QEMU, and --qemu refuses what a binary lacks.
#include "pciplan/qmp/caps.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"
#include "pciplan/qmp/caps_data.h"
#include "test_support.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;
using testing::RunPciplan;
using testing::Slurp;

/// A private folder for one test, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pciplan-caps-XXXXXX").string();
    path = ::mkdtemp(tmpl.data()) ? fs::path(tmpl) : fs::path();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

QemuCaps CapsOf(const std::string& binary, const fs::path& cache) {
  CapsOptions o;
  o.qemu = binary;
  o.cache_dir = cache.string();
  Result<QemuCaps> caps = LoadQemuCaps(o, BuiltinCatalog());
  EXPECT_TRUE(caps.ok()) << (caps.ok() ? "" : caps.errors().front().message);
  return caps.ok() ? *caps : QemuCaps{};
}

TEST(Caps, TheBundledDataIsWhatTheInstalledQemuSays) {
  TempDir cache;
  for (const char* binary :
       {"qemu-system-x86_64", "qemu-system-aarch64", "qemu-system-riscv64",
        "qemu-system-ppc64"}) {
    SCOPED_TRACE(binary);
    QemuCaps caps = CapsOf(binary, cache.path);
    EXPECT_EQ(caps.version.substr(0, 4), "7.2.");
    std::vector<CapsFact> facts = CompareCapsWithData(caps, BuiltinCatalog());
    int agree = 0;
    for (const CapsFact& f : facts) {
      EXPECT_TRUE(f.agrees) << f.what << "; QEMU: " << f.binary;
      agree += f.agrees ? 1 : 0;
    }
    // Each family's alias, built-in functions and root hot-plug at least, and a controller.
    EXPECT_GE(facts.size(), 10u);
    std::printf("caps %s: %d/%zu facts of the bundled data agree; %zu machine types, %zu device "
                "types\n",
                binary, agree, facts.size(), caps.machines.size(), caps.device_types.size());
  }
}

TEST(Caps, EveryDeviceAndPropertyOfTheCorpusCommandLinesIsInTheBinary) {
  TempDir cache;
  // case -> "device\tproblem" of each recorded finding (caps_findings.tsv).
  std::map<std::string, std::set<std::string>> findings, found;
  std::istringstream known(Slurp(fs::path(PCIPLAN_TESTS_DIR) / "qemu" / "caps_findings.tsv"));
  for (std::string line; std::getline(known, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    findings[line.substr(0, tab)].insert(line.substr(tab + 1));
  }
  std::map<std::string, QemuCaps> by_binary;
  int domains = 0, devices = 0;
  for (const auto& e : fs::directory_iterator(PCIPLAN_CONFORMANCE_DIR)) {
    if (!fs::exists(e.path() / "expected.xml")) continue;
    SCOPED_TRACE(e.path().filename().string());
    Result<Domain> domain = ReadDomain(Slurp(e.path() / "input.xml"));
    if (!domain) continue;
    Result<Plan> plan = MakePlan(*domain, BuiltinCatalog(), PolicyName::kLibvirt);
    if (!plan) continue;  // the cases QEMU refuses, recorded as deviations
    auto binary = BuiltinCatalog().qemu().binaries.find(domain->arch);
    ASSERT_NE(binary, BuiltinCatalog().qemu().binaries.end());
    if (!by_binary.count(binary->second)) {
      by_binary[binary->second] = CapsOf(binary->second, cache.path);
    }
    Diagnostics problems = CheckPlanForQemu(*domain, *plan, BuiltinCatalog(),
                                            by_binary[binary->second]);
    const std::string name = e.path().filename().string();
    for (const Diagnostic& d : problems) {
      // The message after the binary's name: "has no device 'x'".
      size_t has = d.message.find(") has ");
      std::string problem = has == std::string::npos ? d.message : d.message.substr(has + 2);
      if (findings[name].count(d.device + "\t" + problem)) {
        found[name].insert(d.device + "\t" + problem);
      } else {
        ADD_FAILURE() << d.Render("input.xml");
      }
    }
    ++domains;
    devices += static_cast<int>(plan->devices.size());
  }
  for (const auto& [name, expected] : findings) EXPECT_EQ(found[name], expected) << name;
  EXPECT_GE(domains, 230);
  std::printf("caps: %d corpus domains (%d devices) use only devices and properties their QEMU "
              "has, but for the %zu recorded in caps_findings.tsv\n",
              domains, devices, found.size());
}

TEST(Caps, DataThatMiscountsTheVirtioMmioTransportsDisagrees) {
  TempDir cache;
  Catalog wrong = BuiltinCatalog();
  for (MachineFamily& f : wrong.machines) {
    if (f.name == "riscv-virt") f.virtio_mmio_transports = 32;  // aarch64 virt's count
  }
  QemuCaps caps = CapsOf("qemu-system-riscv64", cache.path);
  int disagree = 0;
  for (const CapsFact& f : CompareCapsWithData(caps, wrong)) {
    if (f.agrees) continue;
    ++disagree;
    EXPECT_EQ(f.what, "riscv-virt: virt has 32 virtio-mmio transports");
    EXPECT_EQ(f.binary, "8");
  }
  EXPECT_EQ(disagree, 1);
}

TEST(Caps, DataThatTakesPhbSlot0ForAHostBridgeDisagrees) {
  // QEMU's spapr PHB has nothing in slot 0: that libvirt never uses it is libvirt's choice.
  TempDir cache;
  Catalog wrong = BuiltinCatalog();
  const MachineFamily* pseries = wrong.FindMachine("ppc64", "pseries");
  ASSERT_NE(pseries, nullptr);
  wrong.controllers[pseries->root].min_slot_is_policy = false;
  QemuCaps caps = CapsOf("qemu-system-ppc64", cache.path);
  int disagree = 0;
  for (const CapsFact& f : CompareCapsWithData(caps, wrong)) {
    if (f.agrees) continue;
    ++disagree;
    EXPECT_EQ(f.what, "pseries: pseries-7.2 builds in 00.0 on its root bus");
    EXPECT_EQ(f.binary, "");
  }
  EXPECT_EQ(disagree, 1);
}

TEST(Caps, DataThatSaysARootPortRefusesAHotplugDisagrees) {
  TempDir cache;
  Catalog wrong = BuiltinCatalog();
  wrong.controllers[wrong.FindController("pcie-root-port")].qemu_hotplug = false;
  QemuCaps caps = CapsOf("qemu-system-x86_64", cache.path);
  std::vector<std::string> disagree;
  for (const CapsFact& f : CompareCapsWithData(caps, wrong)) {
    if (!f.agrees) disagree.push_back(f.what + "; QEMU: " + f.binary);
  }
  EXPECT_EQ(disagree, std::vector<std::string>{
                          "q35: pcie-root-port's slots 0 refuse a hot-plug of a PCIe device; "
                          "QEMU: hot-plug into 0"});
}

TEST(Caps, ASlotRangeThatIsNoPolicyMustBeAllQemuTakes) {
  TempDir cache;
  Catalog wrong = BuiltinCatalog();
  wrong.controllers[wrong.FindController("pci-bridge")].slots_are_policy = false;
  QemuCaps caps = CapsOf("qemu-system-x86_64", cache.path);
  std::vector<std::string> disagree;
  for (const CapsFact& f : CompareCapsWithData(caps, wrong)) {
    if (!f.agrees) disagree.push_back(f.what + "; QEMU: " + f.binary);
  }
  // Under ACPI hot-plug QEMU takes slot 0 of a pci-bridge; libvirt keeps it for the SHPC.
  EXPECT_EQ(disagree,
            (std::vector<std::string>{"pc: pci-bridge's bus has slots 1-31; QEMU: 0-31",
                                      "q35: pci-bridge's bus has slots 1-31; QEMU: 0-31"}));
}

TEST(Caps, EveryControllerIsProbedInEverySlotAndKeptInTheCacheDocument) {
  TempDir cache;
  QemuCaps caps = CapsOf("qemu-system-aarch64", cache.path);
  const CapsMachine* virt = caps.FindMachine("virt");
  ASSERT_NE(virt, nullptr);
  std::vector<std::string> models;
  for (const CapsController& c : virt->controllers) {
    models.push_back(c.model);
    EXPECT_EQ(c.error, "") << c.model;
    EXPECT_EQ(c.slots.size(), 32u) << c.model;
  }
  // The root bus, and each model virt may have whose QEMU device the binary has
  // (pci-expander-bus is pc's).
  EXPECT_EQ(models, (std::vector<std::string>{"pcie-root", "pci-bridge", "dmi-to-pci-bridge",
                                              "pcie-to-pci-bridge", "pcie-root-port",
                                              "pcie-switch-upstream-port",
                                              "pcie-switch-downstream-port",
                                              "pcie-expander-bus"}));
  // virt has no ACPI hot-plug: a pci-bridge's SHPC refuses slot 0 even on the command line,
  // and a dmi-to-pci-bridge takes no hot-plug at all.
  const CapsController* bridge = virt->FindController("pci-bridge");
  EXPECT_EQ(bridge->ColdSlots().count(0), 0u);
  EXPECT_EQ(bridge->ColdSlots().size(), 31u);
  const CapsController* dmi = virt->FindController("dmi-to-pci-bridge");
  EXPECT_FALSE(dmi->slots[5].hot_pci);
  EXPECT_TRUE(dmi->slots[5].cold_pci);
  EXPECT_NE(dmi->hot_error.find("does not support hotplugging"), std::string::npos);
  const CapsController* port = virt->FindController("pcie-root-port");
  EXPECT_TRUE(port->slots[0].hot_pcie);
  // The root bus, in the slots the board leaves free: the host bridge is at 00.0.
  const CapsController* root = virt->FindController("pcie-root");
  EXPECT_EQ(root->bus, "pcie.0");
  EXPECT_TRUE(root->slots[0].occupied);
  EXPECT_FALSE(root->slots[0].cold_pcie);
  EXPECT_TRUE(root->slots[1].cold_pcie);
  EXPECT_FALSE(root->slots[1].hot_pcie);
  Result<QemuCaps> back = CapsFromJson(CapsJson(caps));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->FindMachine("virt")->controllers, virt->controllers);
}

TEST(Caps, ACacheDocumentWhoseProbeStringsDifferInLengthIsRefused) {
  auto document = [](const std::string& hot_pcie) {
    return R"({"format": 3, "kind": "caps", "binary": "/q", "size": 1, "mtime_ns": 1,
      "version": "7.2.0", "package": "", "device_types": [], "device_aliases": {},
      "properties": {}, "machines": [{"name": "virt", "alias": "", "default": false,
      "deprecated": false, "family": "virt", "root_bus": "pcie.0", "root_hotplug": false,
      "virtio_mmio_transports": 32, "builtins": [], "controllers": [{"model": "pcie-root-port",
      "bus": "pci.1", "cold_pci": "yo", "cold_pcie": "y-", "hot_pci": "--", "hot_pcie": ")" +
           hot_pcie + R"("}]}]})";
  };
  Result<QemuCaps> good = CapsFromJson(document("y-"));
  ASSERT_TRUE(good.ok()) << good.errors().front().message;
  const CapsController& c = good->machines[0].controllers[0];
  EXPECT_EQ(c.slots, (std::vector<CapsSlot>{{0, true, true, false, true, false},
                                            {1, false, false, false, false, true}}));
  Result<QemuCaps> bad = CapsFromJson(document("y"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.errors().front().rule, Rule::kBadValue);
}

TEST(Caps, ASecondCallIsServedFromTheCacheWithoutStartingQemu) {
  TempDir dir;
  // A stand-in binary that logs each start and runs the real QEMU.
  fs::path log = dir.path / "starts.log";
  fs::path wrapper = dir.path / "qemu-system-x86_64";
  {
    std::ofstream w(wrapper);
    w << "#!/bin/sh\necho start >> '" << log.string() << "'\nexec qemu-system-x86_64 \"$@\"\n";
  }
  fs::permissions(wrapper, fs::perms::owner_all);
  auto starts = [&] {
    std::string text = Slurp(log);
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  };
  CapsOptions o;
  o.qemu = wrapper.string();
  o.cache_dir = (dir.path / "cache").string();
  bool started = false;
  Result<QemuCaps> first = LoadQemuCaps(o, BuiltinCatalog(), &started);
  ASSERT_TRUE(first.ok()) << first.errors().front().message;
  EXPECT_TRUE(started);
  const int after_first = starts();
  EXPECT_GE(after_first, 3);  // -machine none, then pc and q35
  Result<QemuCaps> second = LoadQemuCaps(o, BuiltinCatalog(), &started);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(started);
  EXPECT_EQ(starts(), after_first);
  EXPECT_EQ(CapsJson(*second), CapsJson(*first));

  // The command line reads the same cache.
  ASSERT_EQ(::setenv("XDG_CACHE_HOME", (dir.path / "xdg").c_str(), 1), 0);
  testing::RunResult r = RunPciplan(dir.path, {"caps", "--qemu", wrapper.string()}, {});
  EXPECT_EQ(r.status, 0) << r.err;
  const int after_cli = starts();
  EXPECT_GT(after_cli, after_first);
  r = RunPciplan(dir.path, {"caps", "--qemu", wrapper.string(), "--json"}, {});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(starts(), after_cli);
  Result<QemuCaps> json = CapsFromJson(r.out);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(json->binary, wrapper.string());

  // A changed binary (another mtime) is asked again; so is --refresh.
  struct timespec times[2] = {{0, UTIME_OMIT}, {1000000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, wrapper.c_str(), times, 0), 0);
  ASSERT_TRUE(LoadQemuCaps(o, BuiltinCatalog(), &started).ok());
  EXPECT_TRUE(started);
  o.refresh = true;
  ASSERT_TRUE(LoadQemuCaps(o, BuiltinCatalog(), &started).ok());
  EXPECT_TRUE(started);
}

TEST(Caps, CheckQemuRefusesAMachineTypeAndADeviceTheBinaryLacks) {
  TempDir dir;
  ASSERT_EQ(::setenv("XDG_CACHE_HOME", (dir.path / "xdg").c_str(), 1), 0);
  auto domain = [&](const std::string& machine, const std::string& nic) {
    fs::path p = dir.path / ("d-" + machine + "-" + nic + ".xml");
    std::ofstream(p) << "<domain type='qemu'>\n  <name>d</name>\n  <memory>262144</memory>\n"
                        "  <os><type arch='x86_64' machine='"
                     << machine
                     << "'>hvm</type></os>\n  <devices>\n"
                        "    <interface type='user'><model type='"
                     << nic << "'/></interface>\n  </devices>\n</domain>\n";
    return p.filename().string();
  };
  const std::string bin = "/usr/bin/qemu-system-x86_64";
  // Without --qemu both plan from the bundled data, which takes any pc-q35-* and passes an
  // interface model through as libvirt does.
  testing::RunResult r = RunPciplan(dir.path, {"check", domain("pc-q35-99.0", "e1000e")}, {});
  EXPECT_EQ(r.status, 0) << r.err;
  r = RunPciplan(dir.path, {"check", "--qemu", bin, domain("pc-q35-99.0", "e1000e")}, {});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "d-pc-q35-99.0-e1000e.xml:4: error: machine type 'pc-q35-99.0' is not one "
                   "/usr/bin/qemu-system-x86_64 (QEMU " +
                       CapsOf(bin, dir.path / "c").version + ") has [unknown-machine]\n");
  r = RunPciplan(dir.path, {"check", "--qemu", bin, domain("q35", "nosuchnic")}, {});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("d-q35-nosuchnic.xml:6: error: interface #0 (nosuchnic) at 0000:01:00.0: "
                       "/usr/bin/qemu-system-x86_64 (QEMU 7.2."),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(") has no device 'nosuchnic' [device-unsupported]\n"), std::string::npos);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  // What the binary has plans as without --qemu, an alias resolved as the binary resolves it.
  r = RunPciplan(dir.path, {"check", "--qemu", bin, domain("q35", "e1000e")}, {});
  EXPECT_EQ(r.status, 0) << r.err;
  r = RunPciplan(dir.path, {"check", "--qemu", "/nonexistent/qemu", domain("q35", "e1000e")}, {});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "pciplan: no QEMU binary '/nonexistent/qemu'\n");
}

/// The cache file caps wrote for `binary` in `xdg`/pciplan, with `drop` removed from the
/// properties of device type `type`: a document of a binary that lacks them.
void DropFromCachedCaps(const fs::path& xdg, const std::string& type,
                        const std::set<std::string>& drop) {
  int files = 0;
  for (const auto& e : fs::directory_iterator(xdg / "pciplan")) {
    ++files;
    Result<QemuCaps> caps = CapsFromJson(Slurp(e.path()));
    ASSERT_TRUE(caps.ok());
    ASSERT_TRUE(caps->properties.count(type));
    for (const std::string& p : drop) caps->properties[type].erase(p);
    std::ofstream(e.path(), std::ios::trunc) << CapsJson(*caps);
  }
  ASSERT_EQ(files, 1);
}

TEST(Caps, QemuArgsLeavesOutAHintTheBinaryLacksAndCheckRefusesAPropertyThePlanNeeds) {
  TempDir dir;
  ASSERT_EQ(::setenv("XDG_CACHE_HOME", (dir.path / "xdg").c_str(), 1), 0);
  const std::string bin = "/usr/bin/qemu-system-x86_64";
  auto domain = [&](const std::string& name, const std::string& hotplug) {
    std::ofstream(dir.path / name)
        << "<domain type='qemu'>\n  <name>d</name>\n  <memory>262144</memory>\n"
           "  <os><type arch='x86_64' machine='q35'>hvm</type></os>\n  <devices>\n"
           "    <controller type='pci' model='pcie-root-port'><target hotplug='"
        << hotplug << "'/></controller>\n  </devices>\n</domain>\n";
    return name;
  };
  testing::RunResult r = RunPciplan(dir.path, {"caps", "--qemu", bin}, {});
  ASSERT_EQ(r.status, 0) << r.err;
  // With the binary as it is, the port number and the hotplug switch are set.
  r = RunPciplan(dir.path, {"qemu-args", "--qemu", bin, domain("on.xml", "on")}, {});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(
      r.out.find(R"("driver":"pcie-root-port","chassis":1,"port":8,"id":"pci.1","hotplug":true)"),
      std::string::npos)
      << r.out;
  // A binary whose root port has neither: the port number and hotplug=on are hints, left out.
  DropFromCachedCaps(dir.path / "xdg", "pcie-root-port", {"port", "hotplug"});
  r = RunPciplan(dir.path, {"qemu-args", "--qemu", bin, "on.xml"}, {});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find(R"("driver":"pcie-root-port","chassis":1,"id":"pci.1","bus":"pcie.0")"),
            std::string::npos)
      << r.out;
  // Without --qemu, the bundled data's command line is unchanged.
  r = RunPciplan(dir.path, {"qemu-args", "on.xml"}, {});
  EXPECT_NE(r.out.find(R"("port":8)"), std::string::npos) << r.out;
  // A port that must not take a hot-plug needs hotplug=false: refused, on one line naming the
  // device and the binary.
  r = RunPciplan(dir.path, {"check", "--qemu", bin, domain("off.xml", "off")}, {});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("off.xml:6: error: controller pci index 1 (pcie-root-port) at "
                       "0000:00:01.0: /usr/bin/qemu-system-x86_64 (QEMU 7.2."),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(")'s device 'pcie-root-port' has no property 'hotplug' "
                       "[device-unsupported]\n"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  r = RunPciplan(dir.path, {"qemu-args", "--qemu", bin, "off.xml"}, {});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
}

const char* const kBinaries[] = {"qemu-system-x86_64", "qemu-system-aarch64",
                                 "qemu-system-riscv64", "qemu-system-ppc64"};

TEST(Caps, WrittenDataOfTheInstalledQemuLoadsAsTheBundledData) {
  TempDir cache;
  std::vector<DataFile> files = BuiltinDataFiles();
  for (const char* binary : kBinaries) {
    SCOPED_TRACE(binary);
    Result<std::vector<DataFile>> written =
        CapsDataFiles(CapsOf(binary, cache.path), BuiltinCatalog(), files);
    ASSERT_TRUE(written.ok());
    files = std::move(written.value());
  }
  Result<Catalog> loaded = LoadCatalog(files);
  ASSERT_TRUE(loaded.ok()) << loaded.errors().front().message;
  EXPECT_TRUE(*loaded == BuiltinCatalog());
  // Every file the binaries tell something of is marked; devices.json is theirs alone.
  std::set<std::string> marked;
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(files[i].name, BuiltinDataFiles()[i].name);
    if (files[i].text.find("; caps (/usr/bin/qemu-system-") != std::string::npos) {
      marked.insert(files[i].name);
    } else {
      EXPECT_EQ(files[i].text, BuiltinDataFiles()[i].text) << files[i].name;
    }
  }
  EXPECT_EQ(marked,
            (std::set<std::string>{"controllers.json", "machines/pc.json", "machines/pseries.json",
                                   "machines/q35.json", "machines/riscv-virt.json",
                                   "machines/virt.json", "qemu.json"}));
}

TEST(Caps, WrittenDataPutsWhatQemuSaysInPlaceOfWrongData) {
  TempDir cache;
  std::vector<DataFile> wrong = BuiltinDataFiles();
  for (DataFile& f : wrong) {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(f.text);
    if (f.name == "machines/riscv-virt.json") j["virtio_mmio_transports"] = 32;
    if (f.name == "machines/q35.json") j["reserved"].erase(1);  // 1f.3, the SMBus
    if (f.name == "controllers.json") {
      for (auto& m : j["models"]) {
        if (m["name"] == "pcie-root") m["qemu_hotplug"] = true;
        if (m["name"] == "pcie-root-port") m["qemu_hotplug"] = false;
        if (m["name"] == "dmi-to-pci-bridge") m["slots"] = {1, 31};
      }
    }
    f.text = j.dump();
  }
  Result<Catalog> wrong_catalog = LoadCatalog(wrong);
  ASSERT_TRUE(wrong_catalog.ok());
  ASSERT_FALSE(*wrong_catalog == BuiltinCatalog());
  std::vector<DataFile> files = wrong;
  for (const char* binary : {"qemu-system-x86_64", "qemu-system-riscv64"}) {
    Result<std::vector<DataFile>> written =
        CapsDataFiles(CapsOf(binary, cache.path), *wrong_catalog, files);
    ASSERT_TRUE(written.ok());
    files = std::move(written.value());
  }
  Result<Catalog> loaded = LoadCatalog(files);
  ASSERT_TRUE(loaded.ok()) << loaded.errors().front().message;
  // The SMBus comes back under QEMU's class rather than the file's words.
  const MachineFamily* q35 = loaded->FindMachine("x86_64", "q35");
  ASSERT_NE(q35, nullptr);
  ASSERT_EQ(q35->reserved.size(), 2u);
  EXPECT_EQ(q35->reserved[1].what, "class 0c05 (8086:2930)");
  Catalog expected = BuiltinCatalog();
  for (MachineFamily& family : expected.machines) {
    if (family.name == "q35") family.reserved[1].what = q35->reserved[1].what;
  }
  EXPECT_TRUE(*loaded == expected);
}

TEST(Caps, WriteDataWritesALoadableDataFolderAndAddsToOne) {
  TempDir dir;
  ASSERT_EQ(::setenv("XDG_CACHE_HOME", (dir.path / "xdg").c_str(), 1), 0);
  testing::RunResult r =
      RunPciplan(dir.path, {"caps", "--qemu", "qemu-system-x86_64", "--write-data", "out"}, {});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("out: 8 data files (from the bundled data), 4 with facts of "
                       "/usr/bin/qemu-system-x86_64"),
            std::string::npos)
      << r.out;
  r = RunPciplan(dir.path, {"caps", "--qemu", "qemu-system-aarch64", "--write-data", "out"}, {});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("out: 8 data files (from the folder), 3 with facts of "
                       "/usr/bin/qemu-system-aarch64"),
            std::string::npos)
      << r.out;
  std::vector<DataFile> files;
  for (const DataFile& f : BuiltinDataFiles()) {
    files.push_back({f.name, Slurp(dir.path / "out" / f.name)});
  }
  EXPECT_NE(files[0].text.find("caps (/usr/bin/qemu-system-x86_64"), std::string::npos);
  EXPECT_NE(files[0].text.find("caps (/usr/bin/qemu-system-aarch64"), std::string::npos);
  Result<Catalog> loaded = LoadCatalog(files);
  ASSERT_TRUE(loaded.ok()) << loaded.errors().front().message;
  EXPECT_TRUE(*loaded == BuiltinCatalog());
}

}  // namespace
}  // namespace pciplan
