// The differential fuzzer in the suite: a fixed sample of generated domains, each planned with
// the default policy; every plan pciplan accepts must start in the real QEMU with every device
// and hot-plug probe where the plan says. The long run is scripts/fuzz-qemu.sh.
#include "qemu_fuzz.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "domain_generator.h"
#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"

namespace pciplan::fuzz {
namespace {

constexpr uint64_t kSeed = 20261202;
constexpr uint64_t kSample = 40;

TEST(QemuFuzz, GeneratorIsDeterministicFromItsSeed) {
  EXPECT_EQ(GenerateDomain(kSeed, 7).xml, GenerateDomain(kSeed, 7).xml);
  EXPECT_NE(GenerateDomain(kSeed, 7).xml, GenerateDomain(kSeed, 8).xml);
  EXPECT_NE(GenerateDomain(kSeed, 7).xml, GenerateDomain(kSeed + 1, 7).xml);
}

TEST(QemuFuzz, GeneratorCoversEveryMachineFamilyAndAddressForm) {
  std::set<std::string> families;
  std::map<std::string, int> forms;
  for (uint64_t n = 0; n < 200; ++n) {
    GeneratedDomain g = GenerateDomain(kSeed, n);
    families.insert(g.family);
    for (const char* form : {"<address type='pci'/>", "<address type='pci' bus=",
                             "<address type='pci' domain=", "chassis=", "port=", "busNr=",
                             "chassisNr=", "hotplug=", "<model name=", "primary='yes'"}) {
      if (g.xml.find(form) != std::string::npos) ++forms[form];
    }
  }
  EXPECT_EQ(families, (std::set<std::string>{"pc", "q35", "virt"}));
  EXPECT_EQ(forms.size(), 10u);
}

TEST(QemuFuzz, SeededSampleRunsInQemuAsPlanned) {
  FuzzOptions options;
  options.seed = kSeed;
  options.count = kSample;
  std::vector<FuzzResult> results = RunFuzz(options);
  std::map<Outcome, int> count;
  for (const FuzzResult& r : results) {
    ++count[r.outcome];
    SCOPED_TRACE(r.xml);
    EXPECT_NE(r.outcome, Outcome::kQemuRefused) << r.detail;
    EXPECT_NE(r.outcome, Outcome::kMismatch) << r.detail;
  }
  std::printf("fuzz seed %llu: %llu domains, %d refused by pciplan, %d verified in QEMU\n",
              static_cast<unsigned long long>(kSeed), static_cast<unsigned long long>(kSample),
              count[Outcome::kRefused], count[Outcome::kVerified]);
  // The sample must exercise QEMU, not only pciplan's refusals.
  EXPECT_GE(count[Outcome::kVerified], static_cast<int>(kSample / 4));
}

// Domains the fuzzer found QEMU refusing or misplacing, each now planned so that QEMU agrees.
struct Found {
  const char* name;
  const char* devices;
};

const Found kFound[] = {
    // QEMU numbers graphic consoles in command-line order; a primary qxl-vga must be console 0.
    {"primary qxl after a virtio video",
     "<video><model type='virtio'/></video><video><model type='qxl' primary='yes'/></video>"},
    // A root port on an expander bus of a higher index: the expander must come first.
    {"root port on a later expander bus",
     "<controller type='pci' index='0' model='pcie-root'/>"
     "<controller type='pci' index='3' model='pcie-root-port'>"
     "<address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/></controller>"
     "<controller type='pci' index='5' model='pcie-expander-bus'><target busNr='100'/>"
     "</controller>"},
    // hotplug='off' must reach QEMU, or a free port takes the hot-plug the plan says it refuses.
    {"free root port with hotplug off",
     "<controller type='pci' index='1' model='pcie-root-port'/>"
     "<controller type='pci' index='2' model='pcie-root-port'><target hotplug='off'/></controller>"
     "<controller type='pci' index='3' model='pcie-switch-upstream-port'/>"
     "<controller type='pci' index='4' model='pcie-switch-downstream-port'>"
     "<target hotplug='off'/></controller>"},
    // ACPI hot-plug, a dmi-to-pci-bridge's only kind, serves no bus behind an expander bus.
    {"dmi-to-pci-bridge behind an expander bus",
     "<controller type='pci' index='1' model='pcie-expander-bus'><target busNr='200'/>"
     "</controller><controller type='pci' index='2' model='dmi-to-pci-bridge'>"
     "<address type='pci' bus='0x01' slot='0x00'/></controller>"},
    // libvirt ignores the address of a memballoon model='none' (seed 11, domain 2459): there is
    // no device to put there, and the address is no reservation (conformance case 408).
    {"memballoon none with an address",
     "<memballoon model='none'><address type='pci' domain='0x0000' bus='0x00' slot='0x05' "
     "function='0x5'/></memballoon>"},
};

TEST(QemuFuzz, FoundDomainsRunInQemuAsPlanned) {
  for (const Found& f : kFound) {
    SCOPED_TRACE(f.name);
    Result<Domain> domain = ReadDomain(
        std::string("<domain type='qemu'><name>t</name><memory>524288</memory>"
                    "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>") +
        f.devices + "</devices></domain>");
    ASSERT_TRUE(domain.ok());
    Result<Plan> plan = MakePlan(*domain, BuiltinCatalog(), PolicyName::kLibvirt);
    ASSERT_TRUE(plan.ok()) << plan.errors().front().Render("t");
    Result<VerifyReport> report = Verify(*domain, *plan, BuiltinCatalog(), VerifyOptions{});
    ASSERT_TRUE(report.ok()) << report.errors().front().Render("t");
    EXPECT_TRUE(report->ok()) << RenderVerifyText(*report);
    int refused = 0;
    for (const ProbeCheck& p : report->probes) refused += !p.accepted;
    EXPECT_GE(refused, 1);  // pcie.0 at least; the hotplug='off' ports too
  }
}

}  // namespace
}  // namespace pciplan::fuzz
