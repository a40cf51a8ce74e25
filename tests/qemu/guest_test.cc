// verify --guest with a real kernel: a deterministic sample of the conformance corpus (every
// tenth of each machine family's valid cases, at least 10 per family) boots in QEMU under TCG
// and the guest must see every planned PCI device where the plan put it, or exactly what
// guest_findings.tsv records. Two guests boot at a time. Also the chains the plan gives, without
// QEMU.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"
#include "pciplan/qmp/verify_guest.h"
#include "test_support.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;
using pciplan::testing::Slurp;

constexpr int kPerFamily = 10;
constexpr int kParallelBoots = 2;

Plan PlanOf(const Domain& d, const Catalog& cat = BuiltinCatalog()) {
  Result<Plan> plan = MakePlan(d, cat, PolicyName::kLibvirt);
  EXPECT_TRUE(plan.ok()) << plan.errors().front().message;
  return plan.ok() ? *plan : Plan{};
}

std::map<std::string, std::string> ChainsById(const Plan& plan) {
  std::map<std::string, std::string> out;
  for (const auto& [i, c] : PlannedChains(plan, BuiltinCatalog())) {
    out[DeviceRef::DescribeAt(plan.devices, static_cast<size_t>(i))] =
        c.chain.ToString() + (c.numa_node ? " node " + std::to_string(*c.numa_node) : "");
  }
  return out;
}

constexpr const char* kPcExpander = R"(<domain type='qemu'><name>t</name>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <cpu><numa><cell id='0' cpus='0' memory='262144'/><cell id='1' cpus='1' memory='262144'/>
  </numa></cpu><devices>
  <controller type='pci' index='0' model='pci-root'/>
  <controller type='pci' index='1' model='pci-expander-bus'>
    <target busNr='200'><node>1</node></target>
    <address type='pci' domain='0' bus='0' slot='5' function='0'/></controller>
  <controller type='pci' index='2' model='pci-bridge'>
    <address type='pci' domain='0' bus='1' slot='3' function='0'/></controller>
  <interface type='user'><model type='e1000'/>
    <address type='pci' domain='0' bus='2' slot='4' function='0'/></interface>
  <memballoon model='none'/></devices></domain>)";

TEST(GuestChains, PlannedChainsFollowControllersAndExpanderBuses) {
  Result<Domain> d = ReadDomain(kPcExpander);
  ASSERT_TRUE(d.ok());
  std::map<std::string, std::string> chains = ChainsById(PlanOf(*d));
  // The pxb sits at 00:05.0; its bus is root bus 200 (c8), QEMU's own bridge at 00.0 of it
  // leads to the pxb's slots, then the pci-bridge at 03.0 and the NIC at 04.0 behind it.
  EXPECT_EQ(chains["controller pci index 1 (pci-expander-bus)"], "00:05.0");
  EXPECT_EQ(chains["controller pci index 2 (pci-bridge)"], "c8:00.0/03.0 node 1");
  EXPECT_EQ(chains["interface #0 (e1000)"], "c8:00.0/03.0/04.0 node 1");
  EXPECT_FALSE(chains.count("controller pci index 0 (pci-root)"));
}

TEST(GuestChains, Q35PortsAndSwitchesChainFromTheRootComplex) {
  Result<Domain> d = ReadDomain(R"(<domain type='qemu'><name>t</name>
    <os><type arch='x86_64' machine='q35'>hvm</type></os><devices>
    <controller type='pci' index='0' model='pcie-root'/>
    <controller type='pci' index='1' model='pcie-root-port'>
      <address type='pci' domain='0' bus='0' slot='4' function='2'/></controller>
    <controller type='pci' index='2' model='pcie-switch-upstream-port'>
      <address type='pci' domain='0' bus='1' slot='0' function='0'/></controller>
    <controller type='pci' index='3' model='pcie-switch-downstream-port'>
      <address type='pci' domain='0' bus='2' slot='7' function='0'/></controller>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend>
      <address type='pci' domain='0' bus='3' slot='0' function='0'/></rng>
    <memballoon model='none'/></devices></domain>)");
  ASSERT_TRUE(d.ok());
  std::map<std::string, std::string> chains = ChainsById(PlanOf(*d));
  EXPECT_EQ(chains["rng #0 (virtio)"], "00:04.2/00.0/07.0/00.0");
  EXPECT_EQ(chains["controller sata index 0"], "00:1f.2");
}

struct Job {
  std::string name;
  std::string family;
  Domain domain;
  Plan plan;
  std::optional<Result<GuestReport>> result;
  double seconds = 0;
};

/// Runs every job's guest, kParallelBoots at a time.
void BootAll(std::vector<Job>& jobs, const Catalog& cat) {
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < jobs.size();) {
      auto start = std::chrono::steady_clock::now();
      jobs[i].result = VerifyGuest(jobs[i].domain, jobs[i].plan, cat, GuestOptions{});
      jobs[i].seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kParallelBoots; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
}

TEST(VerifyGuest, ConformanceSampleIsSeenByTheGuestAsPlanned) {
  fs::path cases = PCIPLAN_CONFORMANCE_DIR;
  std::set<std::string> qemu_refuses;
  std::istringstream dev(Slurp(cases.parent_path() / "DEVIATIONS.tsv"));
  std::set<std::string> deviations;
  for (std::string line; std::getline(dev, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t tab = line.find('\t');
    deviations.insert(line.substr(0, tab));
    if (tab != std::string::npos && line.substr(tab + 1) == "qemu-refuses") {
      qemu_refuses.insert(line.substr(0, tab));
    }
  }
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(cases)) {
    if (e.is_directory()) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  std::map<std::string, std::vector<Job>> by_family;
  std::set<std::string> no_guest;
  for (const fs::path& dir : dirs) {
    std::string name = dir.filename().string();
    if (!fs::exists(dir / "expected.xml") && !deviations.count(name)) continue;
    Result<Domain> domain = ReadDomain(Slurp(dir / "input.xml"));
    if (!domain) continue;
    Result<Plan> plan = MakePlan(*domain, BuiltinCatalog(), PolicyName::kLibvirt);
    if (!plan) {
      EXPECT_TRUE(qemu_refuses.count(name)) << name << ": " << plan.errors().front().message;
      continue;
    }
    std::string family = plan->family->name;
    // A family whose binary has no guest in data/qemu.json (riscv-virt: no riscv64 kernel in
    // Debian 12; pseries: no ppc64 kernel in setup.sh's guests) is proven by
    // Verify.Every*PlanRunsInQemuAsPlanned only.
    auto binary = BuiltinCatalog().qemu().binaries.find(domain->arch);
    if (binary == BuiltinCatalog().qemu().binaries.end() ||
        !BuiltinCatalog().qemu().guest.systems.count(binary->second)) {
      no_guest.insert(family);
      continue;
    }
    by_family[family].push_back(Job{name, family, *domain, *plan, std::nullopt, 0});
  }
  for (const std::string& family : no_guest) {
    std::printf("verify --guest: no guest system for family %s\n", family.c_str());
  }
  EXPECT_EQ(no_guest, (std::set<std::string>{"pseries", "riscv-virt"}));
  // case -> device -> problem: what the guest is known to see otherwise (guest_findings.tsv).
  std::map<std::string, std::map<std::string, std::string>> findings;
  std::istringstream known(Slurp(fs::path(PCIPLAN_TESTS_DIR) / "qemu" / "guest_findings.tsv"));
  for (std::string line; std::getline(known, line);) {
    if (line.empty() || line[0] == '#') continue;
    size_t t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
    ASSERT_NE(t2, std::string::npos) << line;
    findings[line.substr(0, t1)][line.substr(t1 + 1, t2 - t1 - 1)] = line.substr(t2 + 1);
  }
  // Every tenth case of each family, from its first: spread over the corpus, and the same
  // sample on every run. A recorded finding the stride meets is checked as recorded, and the
  // case after it joins the sample, so that kPerFamily cases must verify.
  std::vector<Job> jobs;
  for (auto& [family, all] : by_family) {
    size_t step = std::max<size_t>(1, all.size() / kPerFamily);
    for (size_t i = 0, taken = 0; i < all.size() && taken < kPerFamily; i += step, ++taken) {
      if (findings.count(all[i].name) && i + 1 < all.size()) jobs.push_back(std::move(all[i++]));
      jobs.push_back(std::move(all[i]));
    }
  }
  BootAll(jobs, BuiltinCatalog());
  std::map<std::string, int> booted, verified, devices, recorded;
  std::map<std::string, double> seconds;
  std::map<std::string, std::string> sample;
  for (const Job& j : jobs) sample[j.family] += " " + j.name;
  for (const auto& [family, names] : sample) {
    std::printf("verify --guest sample %s:%s\n", family.c_str(), names.c_str());
  }
  for (const Job& j : jobs) {
    SCOPED_TRACE(j.name);
    ++booted[j.family];
    seconds[j.family] += j.seconds;
    ASSERT_TRUE(j.result.has_value());
    if (!j.result->ok()) {
      ADD_FAILURE() << j.result->errors().front().message;
      continue;
    }
    const GuestReport& r = j.result->value();
    std::map<std::string, std::string> mismatches;
    for (const GuestCheck& c : r.devices) {
      devices[j.family] += c.status == GuestStatus::kOk;
      if (c.status == GuestStatus::kMismatch) mismatches[c.expect.device] = c.problem;
    }
    auto known_here = findings.find(j.name);
    if (known_here != findings.end()) {
      EXPECT_EQ(mismatches, known_here->second) << RenderGuestText(r);
      ++recorded[j.family];
    } else if (r.ok()) {
      ++verified[j.family];
    } else {
      ADD_FAILURE() << RenderGuestText(r);
    }
  }
  for (const char* family : {"pc", "q35", "virt"}) {
    std::printf(
        "verify --guest %s: %d/%d domains seen as planned, %d as recorded in "
        "guest_findings.tsv, %d devices OK, %.1f s a boot\n",
        family, verified[family], booted[family], recorded[family], devices[family],
        booted[family] ? seconds[family] / booted[family] : 0.0);
    EXPECT_GE(verified[family], kPerFamily) << family;
    EXPECT_EQ(verified[family] + recorded[family], booted[family]) << family;
  }
}

TEST(VerifyGuest, ADeviceWhereTheGuestDoesNotSeeItIsAMismatch) {
  // Data that forgets QEMU's bridge inside a pxb: the plan's chains for the devices behind the
  // expander bus then miss a hop, and the real guest has nothing there.
  Catalog wrong = BuiltinCatalog();
  wrong.controllers[wrong.FindController("pci-expander-bus")].qemu_inner_bridge = false;
  Result<Domain> d = ReadDomain(kPcExpander);
  ASSERT_TRUE(d.ok());
  Plan plan = PlanOf(*d, wrong);
  Result<GuestReport> r = VerifyGuest(*d, plan, wrong, GuestOptions{});
  ASSERT_TRUE(r.ok()) << r.errors().front().message;
  EXPECT_FALSE(r->ok());
  std::map<std::string, std::string> problems;
  for (const GuestCheck& c : r->devices) {
    if (c.status == GuestStatus::kMismatch) problems[c.expect.device] = c.problem;
  }
  EXPECT_EQ(problems.size(), 2u) << RenderGuestText(*r);
  EXPECT_EQ(problems["interface #0 (e1000)"].rfind("absent", 0), 0u);
  EXPECT_EQ(problems["controller pci index 2 (pci-bridge)"].rfind("absent", 0), 0u);
}

TEST(VerifyGuest, CommandLineJsonShowsTheGuestsViewOfEveryDevice) {
  // The pc expander domain through the binary: the NIC behind the pxb's bridge, on node 1.
  fs::path dir = fs::temp_directory_path() / ("pciplan-guest-cli-" + std::to_string(getpid()));
  fs::create_directories(dir);
  { std::ofstream(dir / "in.xml") << kPcExpander; }
  pciplan::testing::RunResult r = pciplan::testing::RunPciplan(
      dir, {"verify", "--guest", "--json", "in.xml"}, dir / "no-stdin");
  fs::remove_all(dir);
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_GT(j["boot_ms"].get<int>(), 0);
  bool nic = false;
  for (const nlohmann::json& d : j["devices"]) {
    EXPECT_EQ(d["status"], "ok") << d.dump();
    if (d["device"] != "interface #0 (e1000)") continue;
    nic = true;
    EXPECT_EQ(d["planned"], "c8:00.0/03.0/04.0");
    EXPECT_EQ(d["guest"]["chain"], "c8:00.0/03.0/04.0");
    EXPECT_EQ(d["guest"]["vendor"], "8086");
    EXPECT_EQ(d["guest"]["numa_node"], 1);
    EXPECT_EQ(d["planned_numa_node"], 1);
  }
  EXPECT_TRUE(nic) << r.out;
}

TEST(VerifyGuest, ATemporaryFolderWithACommaAddsNoQemuOption) {
  // The console file's path goes into a -chardev option list, where a comma would start a
  // new option: it must be doubled.
  fs::path tmp = fs::temp_directory_path() / ("pciplan,guest=" + std::to_string(getpid()));
  fs::create_directories(tmp);
  const char* old = std::getenv("TMPDIR");
  std::string saved = old ? old : "";
  setenv("TMPDIR", tmp.c_str(), 1);
  Result<Domain> d = ReadDomain(kPcExpander);
  ASSERT_TRUE(d.ok());
  Result<GuestReport> r = VerifyGuest(*d, PlanOf(*d), BuiltinCatalog(), GuestOptions{});
  if (old) {
    setenv("TMPDIR", saved.c_str(), 1);
  } else {
    unsetenv("TMPDIR");
  }
  bool left = !fs::is_empty(tmp);
  fs::remove_all(tmp);
  ASSERT_TRUE(r.ok()) << r.errors().front().message;
  EXPECT_TRUE(r->ok()) << RenderGuestText(*r);
  EXPECT_FALSE(left);  // the scratch folder is gone
}

TEST(VerifyGuest, ABootPastTheTimeoutIsAnErrorAndQemuIsKilled) {
  Result<Domain> d = ReadDomain(kPcExpander);
  ASSERT_TRUE(d.ok());
  GuestOptions quick;
  quick.timeout_ms = 1500;  // QEMU starts, the kernel cannot have reached /init yet
  auto start = std::chrono::steady_clock::now();
  Result<GuestReport> r = VerifyGuest(*d, PlanOf(*d), BuiltinCatalog(), quick);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors().front().message.find("did not report within 1 s (QEMU killed)"),
            std::string::npos)
      << r.errors().front().message;
  EXPECT_LT(seconds, 10);
}

TEST(VerifyGuest, MissingKernelOrDynamicBusyboxIsAOneLineError) {
  Result<Domain> d = ReadDomain(kPcExpander);
  ASSERT_TRUE(d.ok());
  GuestOptions wrong;
  wrong.busybox = "/usr/bin/env";  // dynamically linked
  Result<GuestReport> r = VerifyGuest(*d, PlanOf(*d), BuiltinCatalog(), wrong);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors().front().message.find("'/usr/bin/env' is dynamically linked"),
            std::string::npos)
      << r.errors().front().message;
  Catalog nowhere = BuiltinCatalog();
  nowhere.qemu_part.mutable_get().guest.systems["qemu-system-x86_64"].kernels = {
      "/nonexistent/vmlinuz-*"};
  r = VerifyGuest(*d, PlanOf(*d), nowhere, GuestOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors().front().message.find(
                "no kernel found (looked for /nonexistent/vmlinuz-*); scripts/setup.sh"),
            std::string::npos)
      << r.errors().front().message;
}

}  // namespace
}  // namespace pciplan
