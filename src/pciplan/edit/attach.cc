#include "pciplan/edit/attach.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>

#include "pciplan/base/numbers.h"
#include "pciplan/domain/domain_reader.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/plan/planner.h"

namespace pciplan {
namespace {

std::string Where(const Address& a) {
  if (a.type == AddressType::kPci) return a.pci.ToString();
  return a.type == AddressType::kNone ? "no address" : a.type_name;
}

/// Every device of `before` keeps its address in `after`; `moved_to[i]` is the index in
/// `after` of device i of `before`, or -1 when it was removed. A move is a planner bug or an
/// input the stability promise cannot keep, so it is refused, naming the device.
Result<bool> CheckUnmoved(const Plan& before, const Plan& after, const std::vector<int>& moved_to) {
  Diagnostics errs;
  for (size_t i = 0; i < before.devices.size() && i < moved_to.size(); ++i) {
    if (moved_to[i] < 0) continue;
    const Address& a = before.devices[i].address;
    const Address& b = after.devices[moved_to[i]].address;
    bool same = a.type == b.type && (a.type != AddressType::kPci || a.pci == b.pci) &&
                (a.type == AddressType::kPci || a.attrs == b.attrs);
    if (!same) {
      errs.push_back(Error(Rule::kFixedAddress,
                           fmt::format("the change would move it from {} to {}; an address once "
                                       "given is never changed",
                                       Where(a), Where(b)),
                           DeviceRef::DescribeAt(before.devices, i), Where(a)));
    }
  }
  if (!errs.empty()) return errs;
  return true;
}

/// Index of the device `edited` has and `original` lacks (they differ by one inserted device).
size_t InsertedIndex(const Domain& original, const Domain& edited) {
  for (size_t i = 0; i < original.devices.size(); ++i) {
    if (edited.devices[i].tag != original.devices[i].tag ||
        edited.devices[i].props != original.devices[i].props ||
        !(edited.devices[i].address == original.devices[i].address)) {
      return i;
    }
  }
  return original.devices.size();
}

/// Levenshtein distance, for "did you mean" (names are short).
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

/// Errors in the device file of attach or detach: their lines point into it.
Diagnostics InDeviceFile(Diagnostics errs) {
  for (Diagnostic& d : errs) d.input = InputFile::kDevice;
  return errs;
}

/// The device file's element read into a Device, refused unless it is one of the device
/// elements libvirt knows (a typo like <nterface> gets a "did you mean").
Result<Device> ReadDeviceFile(const std::string& device_xml, const Catalog& catalog) {
  Result<Device> dev = ReadDevice(device_xml);
  if (!dev) return InDeviceFile(std::move(dev).take_errors());
  const std::vector<std::string>& known = catalog.device_elements;
  if (std::find(known.begin(), known.end(), dev->tag) != known.end()) return dev;
  Diagnostic d = Error(Rule::kNotADevice,
                       fmt::format("<{}> is not a device element libvirt knows", dev->tag));
  d.line = dev->line;
  size_t best_distance = 3;  // suggest only close names
  for (const std::string& k : known) {
    size_t distance = EditDistance(dev->tag, k);
    if (distance < best_distance) {
      d.hint = fmt::format("did you mean <{}>?", k);
      best_distance = distance;
    }
  }
  return InDeviceFile({d});
}

/// Errors about an edited text: its line numbers match neither input file, so they are dropped.
Diagnostics WithoutLines(Diagnostics errs) {
  for (Diagnostic& d : errs) d.line = 0;
  return errs;
}

int PlannerAdded(const Plan& plan) {
  int n = 0;
  for (const Device& d : plan.devices) n += d.origin == Origin::kPlanner ? 1 : 0;
  return n;
}

/// Live: the slot the new device `dev` takes in the running guest of `before`.
Result<Address> LiveSlot(const Plan& before, const Catalog& catalog, const Device& dev,
                         const std::string& who) {
  if (dev.address.IsPresentPci()) {
    const PciAddress& want = dev.address.pci;
    for (const PlanBus& b : PlanBuses(before, catalog)) {
      if (b.index != want.bus) continue;
      if (!b.hotplug) {
        return Error(
            Rule::kHotplug,
            fmt::format("bus {} ({}) does not take hot-plugged devices", b.name, b.model->name),
            who, want.ToString());
      }
      if (b.used.count(want.slot)) {
        return Error(Rule::kDoubleUse,
                     fmt::format("slot {:#04x} of {} is in use", want.slot, b.name), who,
                     want.ToString());
      }
      return dev.address;
    }
    return Error(
        Rule::kBusMissing,
        fmt::format("the running guest has no PCI bus {}, and none can be added live", want.bus),
        who, want.ToString());
  }
  std::optional<PciAddress> slot = FindHotplugSlot(before, catalog, dev);
  if (!slot) {
    Diagnostic d = Error(Rule::kNoFreeSlot,
                         "no free hot-pluggable slot takes it, and a running guest cannot get "
                         "new root ports or switch ports",
                         who);
    d.hint =
        "attach it with --config and restart the guest, or keep spare hot-plug slots: add "
        "free pcie-root-port controllers while the guest is stopped";
    return d;
  }
  Address a;
  a.type = AddressType::kPci;
  a.type_name = "pci";
  a.pci = *slot;
  return a;
}

/// Whether `dev` is the device `want` names (libvirt's matching for detach-device).
bool Matches(const Device& dev, const Device& want) {
  if (dev.tag != want.tag) return false;
  auto same = [&](const char* path) {
    const std::string* a = dev.Get(path);
    const std::string* b = want.Get(path);
    return a && b && *a == *b;
  };
  if (want.tag == "disk") return same("target/@dev");
  if (want.tag == "interface" && want.Has("mac/@address")) return same("mac/@address");
  if (want.tag == "hostdev" && want.Has("source/address/")) {
    for (const char* k : {"source/address/@domain", "source/address/@bus", "source/address/@slot",
                          "source/address/@function"}) {
      auto n = [&](const Device& d) { return ParseUnsigned(d.GetOr(k, "0")).value_or(0); };
      if (n(dev) != n(want)) return false;
    }
    return true;
  }
  if (want.tag == "controller") {
    return same("@type") &&
           ParseDecimal(dev.GetOr("@index", "0")) == ParseDecimal(want.GetOr("@index", "0"));
  }
  if (want.address.type != AddressType::kNone) return dev.address == want.address;
  for (const char* k : {"@model", "model/@type", "@type", "@bus"}) {
    if (want.Has(k) && !same(k)) return false;
  }
  return true;
}

/// `domain` as a defined domain: planned, every address written. A domain that is planned
/// already comes back as it is.
struct Defined {
  std::optional<Domain> planned;  // the planned text read again, when planning changed it
  const Domain* given = nullptr;  // else the domain as given (planned already), not copied
  Plan plan;
  const Domain& domain() const { return planned ? *planned : *given; }
};

/// `domain` as a defined domain (planned, every address written) and its plan. A domain that
/// is planned already comes back as it is, with the plan just made. The wishes used are
/// `domain.wishes` (its metadata with the command line's over it), kept in the result.
Result<Defined> AsDefined(const Domain& domain, const Catalog& catalog) {
  Result<Plan> plan = MakePlan(domain, catalog, PolicyName::kLibvirt);
  if (!plan) return plan.errors();
  if (WritesNothing(domain, *plan)) return Defined{std::nullopt, &domain, std::move(plan.value())};
  Result<std::string> xml = WriteDomain(domain, *plan, catalog);
  if (!xml) return xml.errors();
  if (*xml == domain.text) return Defined{std::nullopt, &domain, std::move(plan.value())};
  Result<Domain> planned = ReadDomain(std::move(xml.value()));
  if (!planned) return planned.errors();
  planned->wishes = domain.wishes;
  Result<Plan> again = MakePlan(*planned, catalog, PolicyName::kLibvirt);
  if (!again) return again.errors();
  return Defined{std::move(planned.value()), nullptr, std::move(again.value())};
}

/// `wishes` without the device wishes that name `dev` (the device being attached) and no device
/// of `domain`: they speak of a device `domain` does not have yet.
Wishes WithoutWishesFor(const Wishes& wishes, const Device& dev, const Domain& domain) {
  std::vector<std::string> keys = WishKeysOf(dev);
  Wishes out = wishes;
  std::erase_if(out.devices, [&](const DeviceWish& w) {
    return std::find(keys.begin(), keys.end(), w.key) != keys.end() &&
           FindDeviceByKey(domain, w.key) < 0;
  });
  return out;
}

/// The device wishes of the new device `dev` (nullptr when none).
const DeviceWish* WishFor(const Wishes& wishes, const Device& dev) {
  for (const std::string& key : WishKeysOf(dev)) {
    const DeviceWish* w = wishes.Find(key);
    if (w && !w->empty()) return w;
  }
  return nullptr;
}

/// Live, under device wishes: the plan of `to_plan` with its new device `k` in the first free
/// slot of a hot-pluggable bus of `before` where the plan meets the wishes and adds nothing.
Result<Plan> PlanLiveUnderWish(Domain to_plan, size_t k, const Plan& before, const Catalog& catalog,
                               const DeviceWish& wish) {
  std::string who = DeviceRef::DescribeAt(to_plan.devices, k);
  for (const PlanBus& b : PlanBuses(before, catalog)) {
    if (!b.hotplug) continue;
    for (uint32_t s = b.model->min_slot; s <= b.model->max_slot; ++s) {
      if (b.used.count(s)) continue;
      Address& a = to_plan.devices[k].address;
      a = Address{};
      a.type = AddressType::kPci;
      a.type_name = "pci";
      a.pci = PciAddress{0, b.index, s, 0};
      Result<Plan> plan = MakePlan(to_plan, catalog, PolicyName::kLibvirt);
      if (plan && PlannerAdded(*plan) <= PlannerAdded(before)) return plan;
      break;  // the other free slots of this bus fare the same
    }
  }
  Diagnostic d = Error(Rule::kWishUnmet,
                       fmt::format("the wishes for '{}' cannot be met: no free hot-pluggable "
                                   "slot of the running guest meets them",
                                   wish.key),
                       who);
  d.hint = "attach it with --config and restart the guest";
  return d;
}

}  // namespace

Result<Edited> AttachDevice(const Domain& input, const std::string& device_xml,
                            const Catalog& catalog, AttachMode mode) {
  Result<Device> dev = ReadDeviceFile(device_xml, catalog);
  if (!dev) return dev.errors();
  Wishes wishes = input.wishes;
  if (mode == AttachMode::kLive) {
    // A running guest uses its spares; the reserve is refilled at the next --config attach or
    // plan, not live (no controller can be added).
    wishes.pcie_hotplug_slots.reset();
    wishes.pci_hotplug_slots.reset();
  }
  // libvirt attaches to a defined domain, whose addresses are all assigned: so does pciplan.
  // Copied only when its wishes change.
  Wishes base_wishes = WithoutWishesFor(wishes, *dev, input);
  std::optional<Domain> rewished;
  if (base_wishes != input.wishes) {
    rewished = input;
    rewished->wishes = std::move(base_wishes);
  }
  Result<Defined> defined = AsDefined(rewished ? *rewished : input, catalog);
  if (!defined) return defined.errors();
  if (mode == AttachMode::kLive && defined->domain().text != input.text) {
    return Error(Rule::kHotplug,
                 "the domain is not fully addressed, so it cannot describe a running guest "
                 "(run 'pciplan plan' on it first)");
  }
  const Domain& domain = defined->domain();
  const Plan* before = &defined->plan;
  std::pair<size_t, size_t> inserted;
  Result<std::string> text = InsertDeviceText(domain, *dev, device_xml, catalog, &inserted);
  if (!text) return text.errors();
  // Only the new element is read: the cost of the change, not of the domain.
  Result<Domain> edited = ReadWithInsertion(domain, std::move(text.value()), inserted);
  if (!edited) return WithoutLines(edited.errors());
  edited->wishes = input.wishes;  // the metadata's, with the command line's over it
  size_t k = InsertedIndex(domain, *edited);
  std::string who = DeviceRef::DescribeAt(edited->devices, k);
  // The edited domain under `wishes`: a copy only when they differ from its own.
  std::optional<Domain> rewished_edit;
  auto to_plan = [&]() -> Domain& {
    if (!rewished_edit) {
      rewished_edit = *edited;
      rewished_edit->wishes = wishes;
    }
    return *rewished_edit;
  };
  const DeviceWish* wish = WishFor(wishes, *dev);
  Result<Plan> after = Diagnostic{};
  if (mode == AttachMode::kLive && wish && dev->address.WantsPci()) {
    after = PlanLiveUnderWish(to_plan(), k, *before, catalog, *wish);
    if (!after) return after.errors();
  } else {
    if (mode == AttachMode::kLive) {
      const DeviceClass* cls = catalog.Classify(dev->tag, dev->props);
      if (cls && cls->connect != ConnectNeed::kNone &&
          (dev->address.WantsPci() || dev->address.IsPresentPci())) {
        Result<Address> slot = LiveSlot(*before, catalog, edited->devices[k], who);
        if (!slot) return slot.errors();
        to_plan().devices[k].address = *slot;
      }
    }
    after = MakePlan(rewished_edit || wishes != edited->wishes ? to_plan() : *edited, catalog,
                     PolicyName::kLibvirt);
  }
  if (!after) return WithoutLines(after.errors());
  if (mode == AttachMode::kLive && PlannerAdded(*after) > PlannerAdded(*before)) {
    return Error(Rule::kHotplug,
                 "it would need a new controller, and a running guest cannot get one", who);
  }
  std::vector<int> moved_to;
  for (size_t i = 0; i < domain.devices.size(); ++i)
    moved_to.push_back(static_cast<int>(i < k ? i : i + 1));
  // The original plan's added devices (defaults, controllers) come after the input's.
  for (size_t i = domain.devices.size(); i < before->devices.size(); ++i) moved_to.push_back(-1);
  if (Result<bool> r = CheckUnmoved(*before, *after, moved_to); !r) return r.errors();
  Result<std::string> xml = WriteDomain(*edited, *after, catalog);
  if (!xml) return xml.errors();
  HotplugCapacity left = FreeHotplugSlots(*after, catalog);
  Edited out{std::move(edited.value()), std::move(after.value()), std::move(xml.value()),
             static_cast<int>(k), left};
  return out;
}

namespace {

/// `wishes` without the device wishes that name one of the devices `removed` of `domain`.
Wishes WithoutWishesForRemoved(const Wishes& wishes, const Domain& domain,
                               const std::set<size_t>& removed) {
  Wishes out = wishes;
  std::erase_if(out.devices, [&](const DeviceWish& w) {
    int i = FindDeviceByKey(domain, w.key);
    return i >= 0 && removed.count(static_cast<size_t>(i));
  });
  return out;
}

/// `domain` without the devices `removed`, planned, every other address kept. The wishes for
/// the removed devices go too: from the wishes used, and from the metadata.
Result<Edited> Remove(const Domain& domain, const Plan& before, const std::set<size_t>& removed,
                      const Catalog& catalog) {
  std::string text = RemoveDevicesText(domain, std::vector<size_t>(removed.begin(), removed.end()));
  Result<Domain> edited = ReadDomain(std::move(text));
  if (!edited) return WithoutLines(edited.errors());
  Wishes metadata = WithoutWishesForRemoved(edited->wishes, domain, removed);
  if (!(metadata == edited->wishes)) {
    edited = ReadDomain(WithWishesText(*edited, metadata));
    if (!edited) return WithoutLines(edited.errors());
  }
  edited->wishes = WithoutWishesForRemoved(domain.wishes, domain, removed);
  Result<Plan> after = MakePlan(*edited, catalog, PolicyName::kLibvirt);
  if (!after) return WithoutLines(after.errors());
  std::vector<int> moved_to;
  int next = 0;
  for (size_t i = 0; i < domain.devices.size(); ++i)
    moved_to.push_back(removed.count(i) ? -1 : next++);
  if (Result<bool> r = CheckUnmoved(before, *after, moved_to); !r) return r.errors();
  Result<std::string> xml = WriteDomain(*edited, *after, catalog);
  if (!xml) return xml.errors();
  HotplugCapacity left = FreeHotplugSlots(*after, catalog);
  Edited out{std::move(edited.value()), std::move(after.value()), std::move(xml.value()), -1,
             left};
  return out;
}

/// Whether the planner added a PCI controller (to meet a spare-slot wish).
bool AddsPciController(const Plan& plan) {
  for (const Device& d : plan.devices) {
    if (d.origin == Origin::kPlanner && d.tag == "controller" && d.Is("@type", "pci")) return true;
  }
  return false;
}

}  // namespace

Result<int> FindDevice(const Domain& domain, const DetachRequest& request) {
  if (!request.alias.empty()) {
    for (size_t i = 0; i < domain.devices.size(); ++i) {
      if (domain.devices[i].Is("alias/@name", request.alias)) return static_cast<int>(i);
    }
    return Error(Rule::kUnknownModel, fmt::format("no device has the alias '{}'", request.alias));
  }
  Result<Device> want = ReadDevice(request.device_xml);
  if (!want) return InDeviceFile(std::move(want).take_errors());
  for (size_t i = 0; i < domain.devices.size(); ++i) {
    if (Matches(domain.devices[i], *want)) return static_cast<int>(i);
  }
  return Error(Rule::kUnknownModel, "no device of the domain matches it",
               DeviceRef::Describe(*want, 0));
}

Result<Edited> DetachDevice(const Domain& input, const DetachRequest& request,
                            const Catalog& catalog) {
  // Planned under `input.wishes` (the metadata's, with the command line's over it).
  Result<Defined> defined = AsDefined(input, catalog);
  if (!defined) return defined.errors();
  const Domain& domain = defined->domain();
  const Plan* before = &defined->plan;
  Result<int> found = FindDevice(domain, request);
  if (!found) return found.errors();
  std::set<size_t> removed = {static_cast<size_t>(*found)};
  if (request.prune == Prune::kEmptyControllers) {
    // Walk up from the device's bus while the controller providing it is left empty.
    const std::vector<Device>& devs = before->devices;
    const Address* at = &devs[*found].address;
    while (at->type == AddressType::kPci) {
      uint32_t bus = at->pci.bus;
      int ctrl = -1;
      bool busy = false;
      for (size_t i = 0; i < domain.devices.size(); ++i) {
        const Device& d = devs[i];
        if (d.tag == "controller" && d.Is("@type", "pci") &&
            ParseDecimal(d.GetOr("@index", "")) == bus) {
          ctrl = static_cast<int>(i);
        }
        if (!removed.count(i) && d.address.type == AddressType::kPci && d.address.pci.bus == bus &&
            !d.address.pci.IsUnassigned()) {
          busy = true;
        }
      }
      if (ctrl < 0 || busy) break;
      ControllerModelId m = catalog.FindController(devs[ctrl].GetOr("@model", ""));
      if (m < 0 || catalog.controller(m).root) break;
      // libvirt fills a gap in the PCI controller indexes with a new controller, so removing
      // one below the highest index that stays would only bring another in its place (found
      // by fuzzing: tests/fuzz/corpus/attach/crash-d53428314c27f012). It stays, empty.
      uint32_t index = ParseDecimal(devs[ctrl].GetOr("@index", "")).value_or(0);
      bool below_another = false;
      for (size_t i = 0; i < domain.devices.size(); ++i) {
        const Device& d = devs[i];
        if (removed.count(i) || static_cast<int>(i) == ctrl || d.tag != "controller" ||
            !d.Is("@type", "pci")) {
          continue;
        }
        below_another |= ParseDecimal(d.GetOr("@index", "")).value_or(0) > index;
      }
      if (below_another) break;
      removed.insert(static_cast<size_t>(ctrl));
      at = &devs[ctrl].address;
    }
  }
  Result<Edited> pruned = Remove(domain, *before, removed, catalog);
  bool reserve = domain.wishes.pcie_hotplug_slots || domain.wishes.pci_hotplug_slots;
  if (pruned && reserve && removed.size() > 1 && AddsPciController(pruned->plan)) {
    // The domain wishes spare slots and pruning took one: keeping the emptied controllers as
    // spares is better than pruning them and adding new ones elsewhere.
    return Remove(domain, *before, {static_cast<size_t>(*found)}, catalog);
  }
  return pruned;
}

}  // namespace pciplan
