// Golden command-line cases: each folder under tests/cli/cases holds `args` (one argument a
// line), `input.xml` and other inputs, `stdin` (optional), and the expected `expected.out`,
// `expected.err` and `expected.status`. The binary runs in the case folder; output is compared
// byte for byte. PCIPLAN_UPDATE_GOLDEN=1 rewrites the expected files (outputs pciplan owns).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "test_support.h"

namespace {

namespace fs = std::filesystem;

using pciplan::testing::Slurp;

using pciplan::testing::RunPciplan;
using pciplan::testing::RunResult;

TEST(Cli, GoldenCases) {
  bool update = std::getenv("PCIPLAN_UPDATE_GOLDEN") != nullptr;
  int cases = 0;
  for (const auto& e : fs::directory_iterator(fs::path(PCIPLAN_TESTS_DIR) / "cli" / "cases")) {
    if (!e.is_directory()) continue;
    fs::path dir = e.path();
    SCOPED_TRACE(dir.filename().string());
    std::vector<std::string> args;
    std::istringstream in(Slurp(dir / "args"));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) args.push_back(line);
    }
    RunResult r = RunPciplan(dir, args, dir / "stdin");
    if (update) {
      std::ofstream(dir / "expected.out", std::ios::binary) << r.out;
      std::ofstream(dir / "expected.err", std::ios::binary) << r.err;
      std::ofstream(dir / "expected.status") << r.status << "\n";
    }
    EXPECT_EQ(r.out, Slurp(dir / "expected.out"));
    EXPECT_EQ(r.err, Slurp(dir / "expected.err"));
    EXPECT_EQ(std::to_string(r.status) + "\n", Slurp(dir / "expected.status"));
    ++cases;
  }
  EXPECT_GE(cases, 8);
}

TEST(Cli, OutputFileIsWrittenAtomicallyAndKeepsPermissions) {
  fs::path dir = fs::temp_directory_path() / ("pciplan-cli-o-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(fs::path(PCIPLAN_SOURCE_DIR) / "examples" / "q35-server.xml", dir / "in.xml",
                fs::copy_options::overwrite_existing);
  std::ofstream(dir / "out.xml") << "old";
  fs::permissions(dir / "out.xml", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  RunResult r = RunPciplan(dir, {"plan", "in.xml", "-o", "out.xml"}, {});
  EXPECT_EQ(r.status, 0) << r.err;
  std::string out = Slurp(dir / "out.xml");
  EXPECT_NE(out.find("<address type='pci'"), std::string::npos);
  EXPECT_EQ(fs::status(dir / "out.xml").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  int leftovers = 0;
  for (const auto& e : fs::directory_iterator(dir)) leftovers += e.path().filename() != "in.xml" && e.path().filename() != "out.xml";
  EXPECT_EQ(leftovers, 0);
  fs::remove_all(dir);
}

#ifdef PCIPLAN_ORDERED_CLI
// The static CLI is linked with the functions of cmake/pciplan-cli.order side by side (a
// process maps its code 64 KiB at a time): those found in the binary fill hardly more 64 KiB
// blocks than their size needs, where scattered they took five times as many. It also fails
// when the list has gone stale (scripts/hot-order.sh writes it again).
TEST(Cli, StaticCliHasItsHotFunctionsSideBySide) {
  std::set<std::string> listed;
  std::istringstream order(Slurp(fs::path(PCIPLAN_SOURCE_DIR) / "cmake" / "pciplan-cli.order"));
  for (std::string line; std::getline(order, line);) {
    if (!line.empty() && line[0] != '#') listed.insert(line);
  }
  ASSERT_GT(listed.size(), 500u);
  FILE* nm = ::popen(("nm -S --defined-only " + std::string(PCIPLAN_BINARY)).c_str(), "r");
  ASSERT_NE(nm, nullptr);
  std::set<uint64_t> blocks;
  std::set<std::string> found;
  uint64_t bytes = 0;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, nm) != nullptr) {
    std::istringstream line(buf);
    std::string addr, size, type, name;
    if (!(line >> addr >> size >> type >> name)) continue;  // symbols without a size
    if (type != "t" && type != "T" && type != "W" && type != "i") continue;
    if (listed.count(name) == 0 || !found.insert(name).second) continue;
    uint64_t a = std::stoull(addr, nullptr, 16), n = std::stoull(size, nullptr, 16);
    bytes += n;
    for (uint64_t b = a >> 16; b <= (a + n - 1) >> 16; ++b) blocks.insert(b);
  }
  ::pclose(nm);
  // Most listed functions are still there (a few vanish with any change of the code).
  EXPECT_GE(found.size() * 4, listed.size() * 3) << found.size() << " of " << listed.size();
  uint64_t needed = (bytes + 0xffff) >> 16;
  EXPECT_LE(blocks.size(), needed + needed / 2 + 2)
      << found.size() << " functions, " << bytes << " bytes in " << blocks.size() << " blocks";
}
#endif

// `tree --svg` renders the graph with Graphviz (installed by scripts/setup.sh): a few corpus
// domains of every machine type, one with expander buses of two NUMA nodes.
TEST(Cli, TreeSvgRendersCorpusDomainsWithGraphviz) {
  fs::path dir = fs::temp_directory_path() / ("pciplan-cli-svg-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path root = fs::path(PCIPLAN_SOURCE_DIR) / "tests";
  const std::pair<fs::path, const char*> cases[] = {
      {root / "conformance/cases/001-q35-primary-vga/input.xml", "pcie.0"},
      {root / "conformance/cases/406-pc-no-machine-attribute/input.xml", "pci.0"},
      {root / "conformance/cases/407-virt-no-machine-attribute/input.xml",
       "pcie&#45;root&#45;port"},  // Graphviz writes '-' as an entity
      {root / "policies/cases/q35-numa-2-nodes-3-disks-each/input.xml", "NUMA node 1"},
  };
  for (const auto& [input, must_show] : cases) {
    SCOPED_TRACE(input.string());
    RunResult r = RunPciplan(dir, {"tree", input.string(), "--svg", "out.svg"}, {});
    ASSERT_EQ(r.status, 0) << r.err;
    std::string svg = Slurp(dir / "out.svg");
    EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
    EXPECT_NE(svg.find("<svg"), std::string::npos);
    EXPECT_NE(svg.find(must_show), std::string::npos);
  }
  // The README's picture (doc/q35-server.svg) is what tree --svg makes of the example.
  RunResult r = RunPciplan(
      dir, {"tree", (fs::path(PCIPLAN_SOURCE_DIR) / "examples/q35-server.xml").string(), "--svg",
            "example.svg"},
      {});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(Slurp(dir / "example.svg"), Slurp(fs::path(PCIPLAN_SOURCE_DIR) / "doc/q35-server.svg"))
      << "regenerate it: pciplan tree examples/q35-server.xml --svg doc/q35-server.svg";
  fs::remove_all(dir);
}

TEST(Cli, InvalidDomainLeavesTheOutputFileUntouched) {
  fs::path dir = fs::temp_directory_path() / ("pciplan-cli-bad-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "in.xml") << "<domain><os><type arch='x86_64' machine='q35'>hvm</type></os>"
                                   "<devices><controller type='pci' index='0' model='pci-root'/>"
                                   "</devices></domain>";
  std::ofstream(dir / "out.xml") << "old";
  RunResult r = RunPciplan(dir, {"plan", "in.xml", "-o", "out.xml"}, {});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(Slurp(dir / "out.xml"), "old");
  fs::remove_all(dir);
}

TEST(Cli, InPlaceWriteKilledAtAnyPointLeavesTheOldFileOrTheNewWhole) {
  fs::path dir = fs::temp_directory_path() / ("pciplan-cli-crash-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(fs::path(PCIPLAN_SOURCE_DIR) / "examples" / "q35-server.xml", dir / "in.xml",
                fs::copy_options::overwrite_existing);
  ASSERT_EQ(RunPciplan(dir, {"plan", "in.xml", "-o", "planned.xml"}, {}).status, 0);
  fs::path example = dir / "planned.xml";
  std::ofstream(dir / "nic.xml") << "<interface type='user'><mac address='52:54:00:00:00:09'/>"
                                    "<model type='virtio'/></interface>\n";
  // The new file, from a run that is not interrupted.
  fs::copy_file(example, dir / "vm.xml", fs::copy_options::overwrite_existing);
  RunResult whole = RunPciplan(dir, {"attach", "vm.xml", "nic.xml", "-o", "new.xml"}, {});
  ASSERT_EQ(whole.status, 0) << whole.err;
  std::string old_text = Slurp(example), new_text = Slurp(dir / "new.xml");
  ASSERT_NE(old_text, new_text);
  for (const char* point : {"mid-write", "before-fsync", "before-rename", "after-rename"}) {
    SCOPED_TRACE(point);
    fs::copy_file(example, dir / "vm.xml", fs::copy_options::overwrite_existing);
    ::setenv("PCIPLAN_CRASH_POINT", point, 1);
    RunResult r = RunPciplan(dir, {"attach", "vm.xml", "nic.xml", "--in-place"}, {});
    ::unsetenv("PCIPLAN_CRASH_POINT");
    EXPECT_EQ(r.status, 128 + SIGKILL);
    std::string now = Slurp(dir / "vm.xml");
    bool after = std::string(point) == "after-rename";
    EXPECT_EQ(now, after ? new_text : old_text);
  }
  fs::remove_all(dir);
}

TEST(Cli, AttachUnderWishFlagsInPlaceKeepsTheFileOnAnUnmetWishAndRecordsTheWishesUsed) {
  fs::path dir = fs::temp_directory_path() / ("pciplan-cli-wish-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path cases = fs::path(PCIPLAN_TESTS_DIR) / "cli" / "cases" / "attach-wish-new-device";
  fs::copy_file(cases / "input.xml", dir / "vm.xml", fs::copy_options::overwrite_existing);
  fs::copy_file(cases / "nic.xml", dir / "nic.xml", fs::copy_options::overwrite_existing);
  std::string original = Slurp(dir / "vm.xml");
  RunResult unmet = RunPciplan(
      dir, {"attach", "vm.xml", "nic.xml", "--in-place", "--wish", "ua-nic9:connection=pci-root"},
      {});
  EXPECT_EQ(unmet.status, 1);
  EXPECT_NE(unmet.err.find("[wish-unmet]"), std::string::npos) << unmet.err;
  EXPECT_EQ(Slurp(dir / "vm.xml"), original);
  // Recorded: the next plan, with no flags, keeps the reserve and the new device's place.
  RunResult ok = RunPciplan(dir,
                            {"attach", "vm.xml", "nic.xml", "--in-place", "--hotplug-slots",
                             "pcie=3", "--wish", "ua-nic9:bus=pci", "--write-wishes"},
                            {});
  ASSERT_EQ(ok.status, 0) << ok.err;
  std::string attached = Slurp(dir / "vm.xml");
  EXPECT_NE(attached.find("pcieHotplugSlots=\"3\""), std::string::npos);
  EXPECT_NE(attached.find("<pciplan:device name=\"ua-nic9\" bus=\"pci\"/>"), std::string::npos);
  RunResult again = RunPciplan(dir, {"plan", "vm.xml"}, {});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.out, attached);
  // Detach takes the same flags; the wish for the detached device leaves the metadata.
  RunResult gone =
      RunPciplan(dir, {"detach", "vm.xml", "--alias", "ua-nic9", "--hotplug-slots", "pcie=3"}, {});
  ASSERT_EQ(gone.status, 0) << gone.err;
  EXPECT_EQ(gone.out.find("ua-nic9"), std::string::npos);
  RunResult bad = RunPciplan(dir, {"detach", "vm.xml", "--alias", "ua-nic9", "--wish", "x"}, {});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("[bad-wish]"), std::string::npos) << bad.err;
  fs::remove_all(dir);
}

}  // namespace
