// Property test of the stability promise: random sequences of attach (--config and --live),
// detach (with and without --prune) and plan on random domains of all three machine families.
// After every step no address that existed before it has changed, and the domain is a fixed
// point of planning; every few steps, and at the end, the real QEMU verifies the plan. The
// sequences come from fixed seeds, so a failure names a reproducible sequence.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "fuzz_checks.h"
#include "pciplan/domain/domain_reader.h"
#include "pciplan/edit/attach.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/plan/planner.h"
#include "pciplan/qmp/verify.h"

namespace pciplan {
namespace {

struct Family {
  const char* name;
  const char* os;  // the <os> and <cpu> part
};

const Family kFamilies[] = {
    {"pc", "<os><type arch='x86_64' machine='pc'>hvm</type></os>"},
    {"q35", "<os><type arch='x86_64' machine='q35'>hvm</type></os>"},
    {"virt",
     "<os><type arch='aarch64' machine='virt'>hvm</type></os>"
     "<cpu mode='custom'><model>cortex-a57</model></cpu>"},
};

/// A random device element with user alias `alias`; `n` makes names and MACs unique.
std::string RandomDevice(std::mt19937& rng, const std::string& family, int n,
                         const std::string& alias) {
  std::string a = "<alias name='" + alias + "'/>";
  std::string pci = rng() % 2 ? "<address type='pci'/>" : "";  // virt: PCI rather than mmio
  if (family != "virt") pci.clear();
  switch (rng() % 8) {
    case 0:
    case 1: {
      std::string dev = "vd";
      for (int k = n + 26;; k = k / 26 - 1) {  // vdaa, vdab, ...: never the base domain's
        dev.insert(2, 1, static_cast<char>('a' + k % 26));
        if (k < 26) break;
      }
      return fmt::format(
          "<disk type='file' device='disk'><source file='/var/lib/pciplan/{}.img'/>"
          "<target dev='{}' bus='virtio'/>{}{}</disk>",
          alias, dev, a, pci);
    }
    case 2:
      return fmt::format(
          "<interface type='user'><mac address='52:54:00:7e:{:02x}:{:02x}'/>"
          "<model type='virtio'/>{}{}</interface>",
          n / 256, n % 256, a, pci);
    case 3:
      return fmt::format(
          "<interface type='user'><mac address='52:54:00:7f:{:02x}:{:02x}'/>"
          "<model type='e1000'/>{}</interface>",
          n / 256, n % 256, a);
    case 4:
      return "<rng model='virtio'><backend model='random'>/dev/urandom</backend>" + a + pci +
             "</rng>";
    case 5:
      return fmt::format(
          "<hostdev mode='subsystem' type='pci' managed='no'><source><address "
          "domain='0x0000' bus='0x{:02x}' slot='0x{:02x}' function='0x0'/></source>"
          "{}</hostdev>",
          0x40 + n / 32, n % 32, a);
    case 6:
      return "<input type='tablet' bus='virtio'>" + a + pci + "</input>";
    default:
      return fmt::format("<controller type='scsi' index='{}' model='virtio-scsi'>{}{}</controller>",
                         n + 1, a, pci);
  }
}

struct Counts {
  int steps = 0, attached = 0, live_refused = 0, detached = 0, verified = 0;
  int reserve_checked = 0;
};

/// Whether the sequence's domain keeps spare hot-plug slots: wishes in its metadata, or given
/// to every step as the command line's --hotplug-slots would (overlaid on the domain's wishes).
enum class Reserve { kNone, kSpares, kSpareFlags };

/// The spare slots a sequence on family `f` wishes: 3 PCIe slots, or 2 PCI slots on pc.
HotplugCapacity Wanted(const Family& f, Reserve reserve) {
  HotplugCapacity want;
  if (reserve == Reserve::kNone) return want;
  bool pc = std::string_view(f.name) == "pc";
  (pc ? want.pci : want.pcie) = pc ? 2 : 3;
  return want;
}

void RunSequence(const Family& f, unsigned seed, Reserve reserve, Counts& counts) {
  SCOPED_TRACE(fmt::format("{} seed {}{}", f.name, seed,
                           reserve == Reserve::kSpares       ? " with spare slots"
                           : reserve == Reserve::kSpareFlags ? " with spare slots by flags"
                                                             : ""));
  HotplugCapacity want = Wanted(f, reserve);
  Wishes flags;  // the --hotplug-slots of every step (kSpareFlags)
  if (reserve == Reserve::kSpareFlags) {
    (want.pci ? flags.pci_hotplug_slots : flags.pcie_hotplug_slots) = want.pci + want.pcie;
  }
  std::string metadata =
      reserve != Reserve::kSpares
          ? ""
          : fmt::format(
                "<metadata><w:wishes xmlns:w='https://pciplan.dev/xmlns/wishes/1' "
                "version='1' {}HotplugSlots='{}'/></metadata>",
                want.pci ? "pci" : "pcie", want.pci + want.pcie);
  std::mt19937 rng(seed);
  std::string devices =
      "<disk type='file' device='disk'><source file='/var/lib/pciplan/b.img'/>"
      "<target dev='vda' bus='virtio'/><alias name='ua-base'/></disk>";
  Result<Domain> dom = ReadDomain(fmt::format(
      "<domain type='qemu'>\n  <name>p</name>\n  {}{}\n  <devices>\n    {}\n  </devices>\n"
      "</domain>\n",
      metadata, f.os, devices));
  ASSERT_TRUE(dom.ok());
  std::vector<std::string> aliases = {"ua-base"};
  Domain current = std::move(dom.value());
  for (int step = 0; step < 12; ++step) {
    SCOPED_TRACE(fmt::format("step {}", step));
    current.wishes = Overlay(current.wishes, flags);
    std::map<std::string, Address> before = pciplan::fuzz::AddressesByKey(current);
    Result<Edited> next = Diagnostic{};
    AttachMode mode = AttachMode::kConfig;
    unsigned op = rng() % 10;
    if (op < 6 || aliases.empty()) {
      std::string alias = fmt::format("ua-d{}", step + 100 * static_cast<int>(seed));
      std::string xml = RandomDevice(rng, f.name, step + 40 * static_cast<int>(seed % 5), alias);
      mode = op % 3 == 0 ? AttachMode::kLive : AttachMode::kConfig;
      next = AttachDevice(current, xml, BuiltinCatalog(), mode);
      if (!next && mode == AttachMode::kLive) {
        // A live attach may find no free hot-pluggable slot; then nothing changes.
        Rule r = next.errors().front().rule;
        EXPECT_TRUE(r == Rule::kNoFreeSlot || r == Rule::kHotplug) << next.errors().front().message;
        ++counts.live_refused;
        continue;
      }
      ASSERT_TRUE(next.ok()) << xml << ": " << next.errors().front().Render("domain");
      aliases.push_back(alias);
      ++counts.attached;
    } else {
      size_t pick = rng() % aliases.size();
      next =
          DetachDevice(current,
                       DetachRequest{aliases[pick], "",
                                     rng() % 2 == 0 ? Prune::kEmptyControllers : Prune::kNothing},
                       BuiltinCatalog());
      ASSERT_TRUE(next.ok()) << next.errors().front().Render("domain");
      aliases.erase(aliases.begin() + static_cast<std::ptrdiff_t>(pick));
      ++counts.detached;
    }
    ++counts.steps;
    Result<Domain> after = ReadDomain(next->xml);
    ASSERT_TRUE(after.ok());
    after->wishes = Overlay(after->wishes, flags);
    // No address that existed before the step has changed (removed devices aside).
    std::map<std::string, Address> now = pciplan::fuzz::AddressesByKey(*after);
    for (const auto& [key, addr] : before) {
      auto it = now.find(key);
      if (it != now.end()) {
        // The place must not change; multifunction='on' may be added when the planner puts a
        // new root port at another function of the slot (QEMU needs it on function 0).
        Address place = it->second;
        if (addr.multifunction.empty() && place.multifunction == "on") {
          place.multifunction.clear();
          place.attrs.erase("multifunction");
        }
        EXPECT_EQ(place, addr) << key << " moved from " << AddressXml(addr, '\'') << " to "
                                    << AddressXml(it->second, '\'') << " (op " << op << ")";
      }
    }
    // Every edit but a live attach (which uses the spares) keeps the reserve.
    bool used_spares = mode == AttachMode::kLive && next->device >= 0;
    if (!used_spares) {
      EXPECT_GE(next->free.pcie, want.pcie);
      EXPECT_GE(next->free.pci, want.pci);
      ++counts.reserve_checked;
    }
    // A fixed point of planning (after a live attach, planning refills the reserve instead).
    Result<Plan> plan = MakePlan(*after, BuiltinCatalog(), PolicyName::kLibvirt);
    ASSERT_TRUE(plan.ok()) << plan.errors().front().message;
    Result<std::string> again = WriteDomain(*after, *plan, BuiltinCatalog());
    ASSERT_TRUE(again.ok());
    if (!used_spares || reserve == Reserve::kNone) {
      EXPECT_EQ(*again, after->text);
    }
    if (step % 4 == 3 || step == 11) {
      VerifyOptions opt;
      Result<VerifyReport> report = Verify(*after, *plan, BuiltinCatalog(), opt);
      ASSERT_TRUE(report.ok()) << report.errors().front().message;
      EXPECT_TRUE(report->ok()) << RenderVerifyText(*report);
      ++counts.verified;
    }
    current = std::move(after.value());
  }
}

/// Sequences from seeds `first`..`last` on every family.
Counts RunAll(unsigned first, unsigned last, Reserve reserve) {
  Counts counts;
  for (const Family& f : kFamilies) {
    for (unsigned seed = first; seed <= last; ++seed) RunSequence(f, seed, reserve, counts);
  }
  return counts;
}

TEST(Stability, RandomAttachDetachSequencesMoveNothingAndRunInQemu) {
  Counts counts = RunAll(1, 8, Reserve::kNone);
  std::printf(
      "stability: %d steps (%d attached, %d live attaches refused for want of a slot, %d "
      "detached), %d plans verified in QEMU\n",
      counts.steps, counts.attached, counts.live_refused, counts.detached, counts.verified);
  EXPECT_GT(counts.verified, 40);
}

TEST(Stability, RandomSequencesUnderSpareSlotWishesKeepTheReserveAndMoveNothing) {
  Counts counts = RunAll(11, 14, Reserve::kSpares);
  std::printf(
      "stability with spare-slot wishes: %d steps (%d attached, %d detached), reserve kept "
      "after %d edits, %d plans verified in QEMU\n",
      counts.steps, counts.attached, counts.detached, counts.reserve_checked, counts.verified);
  EXPECT_GT(counts.reserve_checked, 60);
}

TEST(Stability, RandomSequencesUnderSpareSlotFlagsKeepTheReserveAndMoveNothing) {
  // The same promise when the wishes come from --hotplug-slots on every command instead of the
  // metadata: attach --config and detach keep the reserve, attach --live uses it.
  Counts counts = RunAll(21, 24, Reserve::kSpareFlags);
  std::printf(
      "stability with spare-slot flags: %d steps (%d attached, %d live attaches refused, %d "
      "detached), reserve kept after %d edits, %d plans verified in QEMU\n",
      counts.steps, counts.attached, counts.live_refused, counts.detached, counts.reserve_checked,
      counts.verified);
  EXPECT_GT(counts.reserve_checked, 60);
}

}  // namespace
}  // namespace pciplan
