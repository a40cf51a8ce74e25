#include "pciplan/model/catalog_image.h"

#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>

namespace pciplan {
namespace {

constexpr char kMagic[8] = {'p', 'c', 'i', 'p', 'c', 'a', 't', '\0'};
// Raise when the payload's layout changes (a field added, removed or retyped).
constexpr uint32_t kFormatVersion = 5;
constexpr size_t kHeaderSize = sizeof(kMagic) + 4 + 4 + 8;

// The payload's check value: 64-bit words folded by multiply and rotate (FNV-1a's constants),
// the tail bytes one by one. Eight bytes a step: it is computed at every start of the CLI.
uint64_t Checksum(std::string_view bytes) {
  constexpr uint64_t kPrime = 0x100000001b3ull;
  uint64_t h = 0xcbf29ce484222325ull ^ bytes.size();
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    h = (h ^ w) * kPrime;
    h ^= h >> 29;
  }
  for (; i < bytes.size(); ++i) h = (h ^ static_cast<unsigned char>(bytes[i])) * kPrime;
  return h;
}

// The fields of each struct, in declaration order: what the image holds of it. A struct's
// field count is checked against its aggregate member count below, so a field added to
// machine_model.h without being added here fails the build.
template <class T, class U>
concept Is = std::same_as<std::remove_const_t<T>, U>;

template <Is<Match> T>
auto Fields(T& m) {
  return std::tie(m.element, m.role, m.props);
}
template <Is<ControllerModel> T>
auto Fields(T& m) {
  return std::tie(m.name, m.qemu, m.root, m.extra_roots, m.plugs_as, m.aggregate, m.offers,
                  m.autoassign, m.hotplug, m.qemu_hotplug, m.qemu_hotplug_acpi, m.qemu_root_bus,
                  m.qemu_inner_bridge, m.min_slot, m.max_slot, m.min_slot_is_policy,
                  m.slots_are_policy, m.bus_alias, m.target, m.target_options, m.model_names,
                  m.machines, m.machine_error, m.index_above_bus);
}
template <Is<DeviceClass> T>
auto Fields(T& c) {
  return std::tie(c.name, c.element, c.when, c.connect, c.group, c.virtio, c.mmio_transport,
                  c.integrated, c.companion_function, c.usb_ports, c.video_role, c.usb_master,
                  c.address_types, c.machines, c.machine_error, c.requires_acpi, c.usb_ports_max,
                  c.spapr_vio_reg, c.dimm_slot, c.address_ignored);
}
template <Is<UnsupportedDevice> T>
auto Fields(T& u) {
  return std::tie(u.match, u.message);
}
template <Is<DriveBus> T>
auto Fields(T& b) {
  return std::tie(b.bus, b.units, b.buses, b.implicit_model, b.max_controllers, b.hostdev_units,
                  b.unit_limits);
}
template <Is<DiskBuses> T>
auto Fields(T& b) {
  return std::tie(b.floppy, b.prefixes, b.fallback);
}
template <Is<HostdevIdentity> T>
auto Fields(T& h) {
  return std::tie(h.type, h.keys);
}
template <Is<Placement> T>
auto Fields(T& p) {
  return std::tie(p.match, p.slots, p.function, p.mode, p.multifunction, p.empty_address,
                  p.message, p.classes);
}
template <Is<ReservedFunction> T>
auto Fields(T& r) {
  return std::tie(r.slot, r.function, r.what);
}
template <Is<DefaultDevice> T>
auto Fields(T& d) {
  return std::tie(d.element, d.props, d.unless, d.with_graphics, d.class_id);
}
template <Is<MachineFamily> T>
auto Fields(T& m) {
  return std::tie(m.name, m.arches, m.machine_names, m.canonical_names, m.default_for,
                  m.default_for_is_policy, m.root,
                  m.gap_filler, m.bridge, m.pcie, m.conventional_growth, m.dry_run_reserve,
                  m.spare_port, m.numa_expander, m.numa_port, m.switch_upstream,
                  m.switch_downstream, m.virtio_mmio, m.virtio_mmio_transports,
                  m.acpi_pci_hotplug, m.root_hotplug_off, m.reserved, m.placements, m.model_defaults,
                  m.default_devices, m.unsupported_devices);
}
template <Is<QemuDevice> T>
auto Fields(T& d) {
  return std::tie(d.name, d.match, d.driver, d.driver_from, d.mmio_driver, d.alias, d.number,
                  d.bare_zero, d.props, d.attr_props, d.masterbus, d.backend, d.standin,
                  d.machines);
}
template <Is<QemuMachine> T>
auto Fields(T& m) {
  return std::tie(m.family, m.options, m.cpu, m.builtin);
}
template <Is<GuestSystem> T>
auto Fields(T& s) {
  return std::tie(s.console, s.kernels, s.busybox, s.elf_machine, s.root_bus_args,
                  s.machine_options, s.numa_witness);
}
template <Is<GuestFacts> T>
auto Fields(T& g) {
  return std::tie(g.append, g.memory_mib, g.systems);
}
template <Is<QemuFacts> T>
auto Fields(T& q) {
  return std::tie(q.version, q.binaries, q.machines, q.controller_properties, q.controller_switches,
                  q.probe_driver, q.probe_pci_driver, q.probe_pcie_driver, q.controller_hints,
                  q.copies, q.devices, q.guest);
}
// The core image: every field but qemu_part (its own image).
template <Is<Catalog> T>
auto Fields(T& c) {
  return std::tie(c.controllers, c.classes, c.machines, c.collect_order, c.assign_order,
                  c.output_order, c.device_elements, c.drive_buses, c.usb_devices,
                  c.usb_hub_ports, c.usb_port_depth, c.single_per_domain, c.virtio_serial_ports,
                  c.disk_buses, c.hostdev_identities);
}

// Counts an aggregate's members: the largest N for which T{Any x N} is well-formed.
struct Any {
  template <class U>
  operator U() const;  // NOLINT: only named in unevaluated contexts
};
template <class T, class... A>
constexpr size_t MemberCount() {
  if constexpr (requires { T{A{}..., Any{}}; }) {
    return MemberCount<T, A..., Any>();
  } else {
    return sizeof...(A);
  }
}
template <class T>
constexpr size_t FieldCount() {
  return std::tuple_size_v<decltype(Fields(std::declval<T&>()))>;
}
static_assert(MemberCount<Match>() == FieldCount<Match>());
static_assert(MemberCount<ControllerModel>() == FieldCount<ControllerModel>());
static_assert(MemberCount<DeviceClass>() == FieldCount<DeviceClass>());
static_assert(MemberCount<UnsupportedDevice>() == FieldCount<UnsupportedDevice>());
static_assert(MemberCount<DriveBus>() == FieldCount<DriveBus>());
static_assert(MemberCount<DiskBuses>() == FieldCount<DiskBuses>());
static_assert(MemberCount<HostdevIdentity>() == FieldCount<HostdevIdentity>());
static_assert(MemberCount<Placement>() == FieldCount<Placement>());
static_assert(MemberCount<ReservedFunction>() == FieldCount<ReservedFunction>());
static_assert(MemberCount<DefaultDevice>() == FieldCount<DefaultDevice>());
static_assert(MemberCount<MachineFamily>() == FieldCount<MachineFamily>());
static_assert(MemberCount<QemuDevice>() == FieldCount<QemuDevice>());
static_assert(MemberCount<QemuMachine>() == FieldCount<QemuMachine>());
static_assert(MemberCount<GuestSystem>() == FieldCount<GuestSystem>());
static_assert(MemberCount<GuestFacts>() == FieldCount<GuestFacts>());
static_assert(MemberCount<QemuFacts>() == FieldCount<QemuFacts>());
static_assert(MemberCount<Catalog>() == FieldCount<Catalog>() + 2);  // + qemu_part, class_index

template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};
template <class T>
struct IsMap : std::false_type {};
template <class K, class V>
struct IsMap<std::map<K, V>> : std::true_type {};
template <>
struct IsMap<Props> : std::true_type {};
template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <class T>
struct IsPair : std::false_type {};
template <class A, class B>
struct IsPair<std::pair<A, B>> : std::true_type {};

class Writer {
 public:
  template <class T>
  void Put(const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      Raw(static_cast<uint8_t>(v ? 1 : 0));
    } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
      Raw(v);
    } else if constexpr (std::is_same_v<T, std::string>) {
      Count(v.size());
      out_.append(v);
    } else if constexpr (std::is_same_v<T, ConnectKinds>) {
      uint16_t bits = 0;
      for (int i = 0; i < kConnectCount; ++i) {
        if (v.Has(static_cast<Connect>(i))) bits |= static_cast<uint16_t>(1u << i);
      }
      Raw(bits);
    } else if constexpr (IsVector<T>::value || IsMap<T>::value) {
      Count(v.size());
      for (const auto& e : v) Put(e);
    } else if constexpr (IsOptional<T>::value) {
      Put(v.has_value());
      if (v) Put(*v);
    } else if constexpr (IsPair<T>::value) {
      Put(v.first);
      Put(v.second);
    } else {
      std::apply([&](const auto&... f) { (Put(f), ...); }, Fields(v));
    }
  }

  std::string Finish() && {
    std::string image(kMagic, sizeof(kMagic));
    auto append = [&image](auto n) { image.append(reinterpret_cast<const char*>(&n), sizeof n); };
    append(kFormatVersion);
    append(static_cast<uint32_t>(out_.size()));
    append(Checksum(out_));
    return image + out_;
  }

 private:
  template <class T>
  void Raw(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void Count(size_t n) { Raw(static_cast<uint32_t>(n)); }

  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view payload) : in_(payload) {}

  template <class T>
  void Get(T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      uint8_t b = 0;
      Raw(b);
      v = b != 0;
    } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
      Raw(v);
    } else if constexpr (std::is_same_v<T, std::string>) {
      uint32_t n = Count(1);
      // Straight into the (new, empty) string: no aliasing checks, one copy.
      v.clear();
      v.append(in_.data(), n);
      in_.remove_prefix(n);
    } else if constexpr (std::is_same_v<T, ConnectKinds>) {
      uint16_t bits = 0;
      Raw(bits);
      v = ConnectKinds();
      for (int i = 0; i < kConnectCount; ++i) {
        if (bits & (1u << i)) v.Add(static_cast<Connect>(i));
      }
    } else if constexpr (IsVector<T>::value) {
      v.resize(Count(1));
      for (auto& e : v) Get(e);
    } else if constexpr (IsMap<T>::value) {
      v.clear();
      for (uint32_t n = Count(2); n > 0 && !failed_; --n) {
        std::pair<typename T::key_type, typename T::mapped_type> e;
        Get(e);
        v.insert(v.end(), std::move(e));
      }
    } else if constexpr (IsOptional<T>::value) {
      bool has = false;
      Get(has);
      if (has) {
        Get(v.emplace());
      } else {
        v.reset();
      }
    } else if constexpr (IsPair<T>::value) {
      Get(v.first);
      Get(v.second);
    } else {
      std::apply([&](auto&... f) { (Get(f), ...); }, Fields(v));
    }
  }

  bool ok() const { return !failed_ && in_.empty(); }

 private:
  template <class T>
  void Raw(T& v) {
    if (in_.size() < sizeof v) {
      failed_ = true;
      in_ = {};
      v = T{};
      return;
    }
    std::memcpy(&v, in_.data(), sizeof v);
    in_.remove_prefix(sizeof v);
  }
  // A count of elements each taking at least `min_bytes`: more than the rest could hold is a
  // truncated image (and never a huge allocation).
  uint32_t Count(size_t min_bytes) {
    uint32_t n = 0;
    Raw(n);
    if (static_cast<size_t>(n) * min_bytes > in_.size()) {
      failed_ = true;
      in_ = {};
      return 0;
    }
    return n;
  }

  std::string_view in_;
  bool failed_ = false;
};

template <class T>
std::string Encode(const T& value) {
  Writer w;
  w.Put(value);
  return std::move(w).Finish();
}

template <class T>
Result<T> Decode(std::string_view image, const char* what) {
  auto fail = [what](const std::string& why) {
    return Error(Rule::kBadValue, std::string("catalogue image (") + what + "): " + why);
  };
  if (image.size() < kHeaderSize || std::memcmp(image.data(), kMagic, sizeof(kMagic)) != 0) {
    return fail("not an image");
  }
  uint32_t version = 0;
  uint32_t size = 0;
  uint64_t hash = 0;
  std::memcpy(&version, image.data() + 8, 4);
  std::memcpy(&size, image.data() + 12, 4);
  std::memcpy(&hash, image.data() + 16, 8);
  if (version != kFormatVersion) {
    return fail("format " + std::to_string(version) + ", this build reads " +
                std::to_string(kFormatVersion));
  }
  std::string_view payload = image.substr(kHeaderSize);
  if (payload.size() != size) return fail("payload size differs from the header's");
  if (Checksum(payload) != hash) return fail("payload hash differs from the header's");
  T value{};
  Reader r(payload);
  r.Get(value);
  if (!r.ok()) return fail("payload does not match the format");
  return value;
}

}  // namespace

std::string EncodeCatalog(const Catalog& catalog) { return Encode(catalog); }

std::string EncodeQemuFacts(const QemuFacts& facts) { return Encode(facts); }

Result<Catalog> DecodeCatalog(std::string_view image) { return Decode<Catalog>(image, "core"); }

Result<QemuFacts> DecodeQemuFacts(std::string_view image) {
  return Decode<QemuFacts>(image, "qemu");
}

}  // namespace pciplan
