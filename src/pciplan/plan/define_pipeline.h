// The define pipeline: libvirt 9.0's define-time steps in its order (reference:
// libvirt-addressing.md section 2): controller list order, index assignment, machine and model
// defaults, implicit controllers, drive addresses, virtio-mmio, the two PCI passes (section 7),
// controller attribute defaults and validation. The mechanisms it uses on the bus tree
// (reservation, growth by a controller chain, multifunction) are in pci_mechanisms.cc; the
// choices a policy makes (virtio transport, spare slots) come from a PlacementChoices.
// Internal to plan/: policies use it, nothing outside plan/ includes it.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <memory_resource>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"
#include "pciplan/topology/bus_tree.h"

namespace pciplan {

/// The transport of the virtio devices whose address is open, on a machine with virtio-mmio.
enum class VirtioTransport { kPci, kVirtioMmio };

/// Slots the dry run keeps free after every device has its place (section 7.1): each one is
/// reserved like a device's, so a reservation that finds no free slot adds a controller.
struct SpareSlots {
  uint32_t pcie = 0;  // PCI Express hot-plug slots (root ports or switch downstream ports)
  uint32_t pci = 0;   // conventional PCI slots
  std::string_view note;  // said by --explain when a slot was reserved, or empty (a literal)
  ControllerModelId pcie_model = -1;  // >= 0: the PCIe spares are new controllers of this model
};

/// One controller of a chain a policy adds before PCI assignment: it plugs into the link
/// `parent` names (at `slot`, function 0), or, with parent -1, wherever the PCI passes put it.
struct ChainLink {
  ControllerModelId model = -1;
  int parent = -1;
  uint32_t slot = 0;
  bool wished_only = false;  // its bus takes only devices wishing its model (BusTree)
  int numa_node = -1;        // >= 0: its bus takes only devices wishing that NUMA node
  Props props;               // more of its attributes ("target/node", "target/@busNr")
};

/// Controllers a policy adds as one chain (e.g. a root port, a switch upstream port on it and
/// downstream ports on that). They get the next free indexes in chain order, so every parent
/// has a lower index than its children, as QEMU's command-line order needs.
struct ControllerChain {
  std::vector<ChainLink> links;
  std::string why;  // said by --explain for each controller of the chain
};

/// The choices of a placement policy over the define pipeline's mechanisms. One implementation
/// per policy (policy_libvirt.cc, policy_wishes.cc).
class PlacementChoices {
 public:
  virtual ~PlacementChoices() = default;
  /// The transport of every address-less virtio device, given all devices (machine with
  /// virtio-mmio only).
  virtual VirtioTransport OpenVirtioTransport(const std::vector<Device>& devices) const = 0;
  /// The spare slots to reserve. `libvirt_spare` tells whether libvirt 9.0 adds its one spare
  /// root port here (section 7.8: a domain without explicit PCI controllers that needed a bus).
  virtual SpareSlots Spares(bool libvirt_spare) const = 0;
  /// What an endpoint whose PCI address is open (device `dev` of the plan, from the input or
  /// added by the planner) needs from its slot, given what libvirt 9.0's rules say it needs
  /// (`libvirt_need`).
  virtual DeviceNeed NeedOfOpen(int dev, const Device& device, DeviceNeed libvirt_need) const {
    (void)dev;
    (void)device;
    return libvirt_need;
  }
  /// Controller chains to add before PCI assignment (libvirt adds none).
  virtual std::vector<ControllerChain> AddedChains() const { return {}; }
  /// Whether the plan must say how many more gap fillers fit (Plan::gap_filler_room); counting
  /// costs a probe of the whole tree, so only a policy that reads it asks.
  virtual bool WantsGapFillerRoom() const { return false; }
};

/// libvirt 9.0's choices: one virtio-mmio address anywhere makes every open virtio address
/// virtio-mmio (section 8); one spare root port where libvirt adds it (section 7.8).
class LibvirtChoices : public PlacementChoices {
 public:
  VirtioTransport OpenVirtioTransport(const std::vector<Device>& devices) const override;
  SpareSlots Spares(bool libvirt_spare) const override;
};

/// Runs the pipeline over `domain` under `choices`. Errors name the device, address and rule.
Result<Plan> RunDefinePipeline(const Domain& domain, const Catalog& catalog,
                               const PlacementChoices& choices);

inline constexpr uint32_t kMaxControllerIndex = 255;  // libvirt's limit, checked after addressing
// Indexes above this are refused before planning: libvirt would try (and fail) to create that
// many buses; pciplan refuses to allocate them.
inline constexpr uint32_t kMaxPlannableIndex = 1024;
/// libvirt looks for a free PHB target index up to 31 (qemuDomainAddressFindNewTargetIndex).
inline constexpr uint32_t kMaxTargetIndex = 31;

enum class Pass { kDryRun, kReal };
enum class From { kConfig, kAuto };

class DefinePipeline {
 public:
  DefinePipeline(const Domain& in, const Catalog& cat, const PlacementChoices& choices)
      : in_(in), cat_(cat), choices_(choices) {}

  Result<Plan> Run();

 private:
  // --- preparation (define pipeline before addressing) ---
  bool FindFamily();
  void BuildListOrders();
  bool AssignControllerIndexes();
  bool CheckModelNames();
  bool CheckControllers();
  void AddMachineDefaults();
  void ApplyModelDefaults();
  void ClassifyAll();
  void PrimeVirtioMmio();
  void DetachSerialConsole();
  void MirrorSerialConsole();
  void AddPolicyChains();

  // --- PCI assignment ---
  bool AssignPci();
  bool CreateSet(BusTree& tree, Pass pass);
  bool ChipsetPlacements(BusTree& tree, Pass pass);
  bool AssignDevices(BusTree& tree, Pass pass);
  bool PlaceOne(BusTree& tree, int dev, Pass pass);
  bool PlaceUsb2Companion(BusTree& tree, int dev, Pass pass);
  std::optional<PciAddress> ReserveNext(BusTree& tree, const DeviceNeed& need, int function,
                                        Pass pass, int dev);
  bool ReserveAddr(BusTree& tree, PciAddress addr, const DeviceNeed& need, From from, Pass pass,
                   int dev);
  bool Validate(const BusTree& tree, const PciAddress& addr, const DeviceNeed& need, From from,
                int dev);
  std::optional<int> GrowFor(BusTree& tree, uint32_t bus, const DeviceNeed& need, int dev);
  Diagnostic NoSlotForController(int dev) const;
  /// " (already used by DEVICE on line N)": the device other than `dev` that holds `addr`, or
  /// "" when no device has that address (a function the chipset reserved).
  std::string HolderOf(const PciAddress& addr, int dev) const;
  void SetMultifunction();
  uint32_t GapFillerRoom(const BusTree& tree) const;
  bool FillControllerDefaults();
  bool ValidateControllers();
  bool ValidateTargetOptions(int i, const std::array<const std::string*, 7>& targets);
  bool ValidateVideos();

  // --- helpers ---
  int AddDevice(Props props);
  /// Adds a PCI controller of model `model` with index `index` (its props built in order, no
  /// lookups) and appends it to the controller list.
  int AddPciController(uint32_t index, const std::string& model);
  /// Makes `a` the PCI address `pci`, nothing else set.
  static void SetPciAddress(Address& a, const PciAddress& pci);
  DeviceNeed NeedOf(int dev) const;
  /// Whether `dev` is a <controller type='pci'> (tag and type never change: looked up once).
  bool IsPciController(int dev) const {
    size_t k = static_cast<size_t>(dev);
    return k < pci_ctrl_.size() && pci_ctrl_[k] >= 0 ? pci_ctrl_[k] != 0 : LookUpPciController(dev);
  }
  bool LookUpPciController(int dev) const;
  /// Whether `dev` is a PCI controller AddPciController added, its props still exactly index,
  /// model and type "pci" (so two of one model differ only in the index).
  bool IsAddedController(int dev) const;
  int ControllerIndex(int dev) const {
    size_t k = static_cast<size_t>(dev);
    return k < index_cache_.size() && index_cache_[k] != -2 ? index_cache_[k] : ParseIndex(dev);
  }
  int ParseIndex(int dev) const;
  /// The catalogue model of PCI controller `dev` on this family, or nullptr. Looked up once
  /// per device from ClassifyAll on, when every controller has its final model attribute.
  const ControllerModel* PciModel(int dev) const {
    size_t k = static_cast<size_t>(dev);
    if (models_final_ && k < model_cache_.size() && model_cache_[k] != -2) {
      return model_cache_[k] < 0 ? nullptr : &cat_.controller(model_cache_[k]);
    }
    return FindPciModel(dev);
  }
  const ControllerModel* FindPciModel(int dev) const;
  /// Whether placement `p` may match device `dev` as far as its class tells (true when it has
  /// none yet): Placement::MayMatchClass.
  bool MayMatch(const Placement& p, int dev) const {
    const size_t k = static_cast<size_t>(dev);
    const DeviceClass* c = k < cls_.size() ? cls_[k] : nullptr;
    return !c || p.MayMatchClass(static_cast<size_t>(c - cat_.classes.data()));
  }
  ControllerModelId LookUpModel(int dev) const;
  int FindPciController(int index) const;
  std::string Describe(int dev) const;
  bool Fail(Rule rule, std::string message, int dev, std::string address = {});

  const Domain& in_;
  const Catalog& cat_;
  const PlacementChoices& choices_;
  const MachineFamily* fam_ = nullptr;
  // The per-device caches and scratch lists below live in one arena: a buffer inside the
  // pipeline, then the heap for large domains. Nothing is freed before the pipeline ends.
  alignas(std::max_align_t) std::byte arena_buffer_[4096];
  std::pmr::monotonic_buffer_resource arena_{arena_buffer_, sizeof arena_buffer_};
  std::vector<Device> devs_;
  std::pmr::vector<int> ctrl_order_{&arena_};   // libvirt's controller list order (section 6.1)
  std::pmr::vector<int> disk_order_{&arena_};   // disks grouped by bus, sorted by target (sec. 2)
  std::pmr::vector<int> video_order_{&arena_};  // primary video first
  std::pmr::vector<const DeviceClass*> cls_{&arena_};
  // IsPciController per device; -1 = not known yet.
  mutable std::pmr::vector<signed char> pci_ctrl_{&arena_};
  bool models_final_ = false;  // model attributes final: PciModel caches
  // Per device; -2 = not looked up yet.
  mutable std::pmr::vector<ControllerModelId> model_cache_{&arena_};
  // The last model name looked up and its id (the controllers a plan adds share a few models).
  mutable std::string last_model_name_;
  mutable ControllerModelId last_model_id_ = -2;
  int last_added_ = -1;  // the controller AddPciController added last
  std::pmr::vector<char> added_{&arena_};  // per device: added by AddPciController
  // The machine defaults AddMachineDefaults added: (device, its DefaultDevice), by device.
  std::pmr::vector<std::pair<int, const DefaultDevice*>> defaults_added_{&arena_};
  std::pmr::vector<std::pair<ControllerModelId, BusSetup>> grow_models_{&arena_};  // GrowFor's scratch
  // CreateSet's scratch: the devices with an explicit address, each device's tag position in
  // the catalogue's collect order, and those devices in that order.
  std::pmr::vector<int> explicit_present_{&arena_};
  std::pmr::vector<size_t> explicit_rank_{&arena_};
  std::pmr::vector<int> explicit_order_{&arena_};
  // ChipsetPlacements: per placement and device of the dry run, whether the placement matches
  // it (-1: not asked yet).
  std::pmr::vector<signed char> placement_hits_{&arena_};
  size_t placement_devices_ = 0;
  // AssignDevices' scratch: each device's assignment group, the groups in use, a group's list.
  std::pmr::vector<int> group_of_{&arena_};
  std::pmr::vector<char> group_used_{&arena_};
  std::pmr::vector<int> group_list_{&arena_};
  // ValidateTargetOptions: the last model and set of options (bits) it accepted.
  const ControllerModel* accepted_model_ = nullptr;
  uint32_t accepted_options_ = 0;
  // Parsed @index per device; -2 = not parsed yet.
  mutable std::pmr::vector<int> index_cache_{&arena_};
  void SetIndex(int dev, int index) {
    devs_[dev].Set("@index", std::to_string(index));
    if (index_cache_.size() < devs_.size()) index_cache_.resize(devs_.size(), -2);
    index_cache_[dev] = index;
  }
  // The first <console> with a serial target is libvirt's copy of the first <serial>: it has
  // no address of its own and is written with the serial port's (-1: none).
  std::set<int> wished_only_;  // controllers of policy chains kept for wishing devices
  std::map<int, int> numa_of_;  // controllers of policy chains kept for a NUMA node
  int console_mirror_ = -1;
  int mirrored_serial_ = -1;
  Diagnostics errs_;
  std::vector<std::string> notes_;
  uint32_t gap_filler_room_ = 0;  // see Plan::gap_filler_room
  // libvirt's refusal of a domain that pciplan planned anyway with one more bridge than libvirt
  // adds (GrowFor); it is the answer if that plan fails after all.
  std::optional<Diagnostic> libvirt_refusal_;
};

}  // namespace pciplan
