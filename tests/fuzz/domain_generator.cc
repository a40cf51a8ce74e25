#include "domain_generator.h"

#include <fmt/format.h>

#include <random>
#include <vector>

namespace pciplan::fuzz {
namespace {

/// Draws from a 64-bit Mersenne Twister, whose sequence the standard fixes.
class Dice {
 public:
  explicit Dice(uint64_t seed) : rng_(seed) {}
  /// 0 .. n-1.
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(rng_() % n); }
  /// True with probability percent/100.
  bool Chance(uint32_t percent) { return Below(100) < percent; }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Below(N)];
  }
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Below(static_cast<uint32_t>(items.size()))];
  }

 private:
  std::mt19937_64 rng_;
};

struct FamilyFacts {
  const char* name;
  const char* os;    // <os> and <cpu>
  const char* root;  // the root controller's model
  std::vector<const char*> controllers;
};

const FamilyFacts kFamilies[] = {
    {"pc", "<os><type arch='x86_64' machine='{}'>hvm</type></os><features><acpi/></features>",
     "pci-root",
     {"pci-bridge", "pci-bridge", "pci-expander-bus"}},
    {"q35", "<os><type arch='x86_64' machine='{}'>hvm</type></os><features><acpi/></features>",
     "pcie-root",
     {"pcie-root-port", "pcie-root-port", "pcie-root-port", "pcie-switch-upstream-port",
      "pcie-switch-downstream-port", "pcie-switch-downstream-port", "pcie-to-pci-bridge",
      "dmi-to-pci-bridge", "pci-bridge", "pcie-expander-bus"}},
    {"virt",
     "<os><type arch='aarch64' machine='{}'>hvm</type></os>"
     "<cpu mode='custom'><model>cortex-a57</model></cpu>",
     "pcie-root",
     {"pcie-root-port", "pcie-root-port", "pcie-root-port", "pcie-switch-upstream-port",
      "pcie-switch-downstream-port", "pcie-to-pci-bridge", "pci-bridge", "pcie-expander-bus"}},
};

const char* const kMachineNames[][2] = {
    {"pc", "pc-i440fx-7.2"}, {"q35", "pc-q35-7.2"}, {"virt", "virt-7.2"}};

/// QEMU device names a <model name> may give, per controller model (the first is libvirt's).
std::vector<const char*> ModelNames(const std::string& model) {
  if (model == "pcie-root-port") return {"pcie-root-port", "ioh3420"};
  if (model == "pci-bridge") return {"pci-bridge"};
  if (model == "dmi-to-pci-bridge") return {"i82801b11-bridge"};
  if (model == "pcie-to-pci-bridge") return {"pcie-pci-bridge"};
  if (model == "pcie-switch-upstream-port") return {"x3130-upstream"};
  if (model == "pcie-switch-downstream-port") return {"xio3130-downstream"};
  if (model == "pci-expander-bus") return {"pxb"};
  if (model == "pcie-expander-bus") return {"pxb-pcie"};
  return {};
}

class Generator {
 public:
  Generator(uint64_t seed, uint64_t n) : dice_(seed * 0x9E3779B97F4A7C15ull ^ (n + 1)) {}

  GeneratedDomain Run();

 private:
  std::string Address(uint32_t fixed_percent);
  std::string Controller(const std::string& model);
  std::string Endpoint();
  std::string OtherController();
  std::string Video();

  Dice dice_;
  const FamilyFacts* family_ = nullptr;
  std::vector<uint32_t> buses_ = {0};  // indexes given so far: addresses point at them
  int disks_ = 0, nics_ = 0, hostdevs_ = 0, shmems_ = 0, filesystems_ = 0, videos_ = 0;
  bool balloon_ = false, vsock_ = false, watchdog_ = false, iommu_ = false, primary_ = false;
  int sata_ = 0, scsi_ = 0, serials_ = 0, usb_ = 0;
};

/// No address, `<address type='pci'/>`, a bus only, or a whole address on a known bus.
std::string Generator::Address(uint32_t fixed_percent) {
  uint32_t roll = dice_.Below(100);
  if (roll < fixed_percent) {
    uint32_t bus = dice_.Pick(buses_);
    uint32_t slot = dice_.Chance(40) ? 0 : 1 + dice_.Below(dice_.Chance(80) ? 12 : 31);
    uint32_t function = dice_.Chance(85) ? 0 : dice_.Below(8);
    const char* mf = dice_.Chance(10) ? " multifunction='on'" : "";
    return fmt::format(
        "<address type='pci' domain='0x0000' bus='{:#04x}' slot='{:#04x}' function='{:#x}'{}/>",
        bus, slot, function, mf);
  }
  roll -= fixed_percent;
  if (roll < 15) return "<address type='pci'/>";
  if (roll < 25) return fmt::format("<address type='pci' bus='{:#04x}'/>", dice_.Pick(buses_));
  return "";
}

std::string Generator::Controller(const std::string& model) {
  std::string index;
  if (dice_.Chance(65)) {
    uint32_t i = dice_.Chance(85) ? static_cast<uint32_t>(buses_.size()) : 1 + dice_.Below(10);
    buses_.push_back(i);
    index = fmt::format(" index='{}'", i);
  }
  std::string target;
  bool port_like = model == "pcie-root-port" || model == "pcie-switch-downstream-port";
  if (port_like && dice_.Chance(35)) target += fmt::format(" chassis='{}'", dice_.Below(12));
  if (port_like && dice_.Chance(30)) target += fmt::format(" port='{:#x}'", dice_.Below(40));
  if (port_like && dice_.Chance(20)) target += dice_.Chance(50) ? " hotplug='off'" : " hotplug='on'";
  if (model == "pci-bridge" && dice_.Chance(30)) {
    target += fmt::format(" chassisNr='{}'", dice_.Below(12));
  }
  if (model.find("expander") != std::string::npos && dice_.Chance(60)) {
    target += fmt::format(" busNr='{}'", dice_.Chance(50) ? 200 + dice_.Below(56)
                                                          : 1 + dice_.Below(254));
  }
  std::string body;
  std::vector<const char*> names = ModelNames(model);
  if (!names.empty() && dice_.Chance(25)) {
    body += fmt::format("<model name='{}'/>", dice_.Pick(names));
  }
  if (!target.empty()) body += "<target" + target + "/>";
  body += Address(12);
  return fmt::format("<controller type='pci'{} model='{}'>{}</controller>", index, model, body);
}

std::string Generator::Video() {
  static const char* const kX86[] = {"qxl", "qxl", "virtio", "vga", "cirrus", "bochs", "vmvga"};
  std::string type = family_->name == std::string("virt") ? "virtio" : dice_.Pick(kX86);
  std::string primary;
  if (!primary_ && videos_ > 0 && dice_.Chance(50)) {
    primary = " primary='yes'";
    primary_ = true;
  }
  ++videos_;
  return fmt::format("<video><model type='{}'{}/>{}</video>", type, primary, Address(10));
}

std::string Generator::OtherController() {
  bool x86 = family_->name != std::string("virt");
  switch (dice_.Below(5)) {
    case 0: {
      static const char* const kUsb[] = {"qemu-xhci", "nec-xhci", "piix3-uhci", "ehci",
                                         "pci-ohci", "ich9-ehci1"};
      const char* model = dice_.Pick(kUsb);
      std::string out = fmt::format("<controller type='usb' index='{}' model='{}'>{}</controller>",
                                    usb_, model, Address(5));
      if (std::string(model) == "ich9-ehci1" && dice_.Chance(70)) {
        for (const char* c : {"ich9-uhci1", "ich9-uhci2", "ich9-uhci3"}) {
          out += fmt::format("\n    <controller type='usb' index='{}' model='{}'/>", usb_, c);
        }
      }
      ++usb_;
      return out;
    }
    case 1: {
      static const char* const kScsi[] = {"virtio-scsi", "virtio-scsi", "lsilogic", "lsisas1068",
                                          "lsisas1078", "virtio-transitional"};
      std::string model = dice_.Pick(kScsi);
      if (!x86) model = "virtio-scsi";  // lsi on virt: a listed libvirt defect (verify_test)
      return fmt::format("<controller type='scsi' index='{}' model='{}'>{}</controller>",
                         scsi_++, model, Address(10));
    }
    case 2:
      return fmt::format("<controller type='virtio-serial' index='{}'>{}</controller>",
                         serials_++, Address(10));
    default:
      if (family_->name != std::string("q35")) return "";
      return fmt::format("<controller type='sata' index='{}'>{}</controller>", ++sata_,
                         Address(10));
  }
}

std::string Generator::Endpoint() {
  bool x86 = family_->name != std::string("virt");
  switch (dice_.Below(17)) {
    case 0:
    case 1: {
      static const char* const kModels[] = {"", "", "", " model='virtio-transitional'",
                                            " model='virtio-non-transitional'"};
      int k = disks_++;
      return fmt::format(
          "<disk type='file' device='disk'{}><source file='/var/lib/pciplan/d{}.img'/>"
          "<target dev='vd{}{}' bus='virtio'/>{}</disk>",
          dice_.Pick(kModels), k, k >= 26 ? std::string(1, static_cast<char>('a' + k / 26 - 1)) : "",
          static_cast<char>('a' + k % 26), Address(10));
    }
    case 2:
    case 3: {
      static const char* const kX86[] = {"virtio", "virtio", "e1000", "e1000e", "rtl8139",
                                         "vmxnet3", "virtio-transitional"};
      static const char* const kArm[] = {"virtio", "virtio", "e1000e", "rtl8139"};
      int k = nics_++;
      return fmt::format(
          "<interface type='user'><mac address='52:54:00:00:{:02x}:{:02x}'/>"
          "<model type='{}'/>{}</interface>",
          k / 256, k % 256, x86 ? dice_.Pick(kX86) : dice_.Pick(kArm), Address(10));
    }
    case 4: {
      if (!x86) return "";
      static const char* const kSound[] = {"ich6", "ich9", "ac97", "es1370"};
      return fmt::format("<sound model='{}'>{}</sound>", dice_.Pick(kSound), Address(10));
    }
    case 5:
      if (videos_ >= 3) return "";
      return Video();
    case 6:
      if (balloon_) return "";
      balloon_ = true;
      return fmt::format("<memballoon model='{}'>{}</memballoon>",
                         dice_.Chance(15) ? "none" : "virtio", Address(10));
    case 7:
      return fmt::format(
          "<rng model='virtio'><backend model='random'>/dev/urandom</backend>{}</rng>",
          Address(10));
    case 8:
      if (watchdog_ || !x86) return "";
      watchdog_ = true;
      return fmt::format("<watchdog model='i6300esb' action='reset'>{}</watchdog>", Address(10));
    case 9:
      return fmt::format("<shmem name='shm{}'><model type='ivshmem-plain'/><size unit='M'>4</size>"
                         "{}</shmem>",
                         shmems_++, Address(10));
    case 10: {
      static const char* const kInputs[] = {"tablet", "mouse", "keyboard"};
      return fmt::format("<input type='{}' bus='virtio'>{}</input>", dice_.Pick(kInputs),
                         Address(10));
    }
    case 11: {
      int k = filesystems_++;
      return fmt::format(
          "<filesystem type='mount' accessmode='passthrough'><source dir='/var/lib/pciplan/fs{}'/>"
          "<target dir='fs{}'/>{}</filesystem>",
          k, k, Address(10));
    }
    case 12:
      if (vsock_) return "";
      vsock_ = true;
      return fmt::format("<vsock model='virtio'><cid auto='no' address='3'/>{}</vsock>",
                         Address(10));
    case 13:
      if (iommu_ || family_->name != std::string("q35")) return "";
      iommu_ = true;
      return fmt::format("<iommu model='virtio'>{}</iommu>", Address(10));
    case 14:
      if (!x86) return "";
      return fmt::format(
          "<serial type='pty'><target type='pci-serial' port='{}'/>{}</serial>", serials_++,
          Address(10));
    case 15: {
      int k = hostdevs_++;
      return fmt::format(
          "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' "
          "bus='{:#04x}' slot='{:#04x}' function='0x0'/></source>{}</hostdev>",
          0x40 + k / 32, k % 32, Address(10));
    }
    default:
      return OtherController();
  }
}

GeneratedDomain Generator::Run() {
  size_t f = dice_.Below(3);
  family_ = &kFamilies[f];
  std::string machine = kMachineNames[f][dice_.Below(2)];
  std::vector<std::string> devices;
  if (dice_.Chance(50)) {
    devices.push_back(fmt::format("<controller type='pci' index='0' model='{}'/>", family_->root));
  }
  uint32_t controllers = dice_.Below(7);
  for (uint32_t i = 0; i < controllers; ++i) {
    devices.push_back(Controller(dice_.Pick(family_->controllers)));
  }
  uint32_t endpoints = 1 + dice_.Below(8);
  for (uint32_t i = 0; i < endpoints; ++i) devices.push_back(Endpoint());
  std::string os = fmt::format(fmt::runtime(family_->os), machine);
  std::string xml = fmt::format(
      "<domain type='qemu'>\n  <name>fuzz</name>\n"
      "  <uuid>00000000-0000-4000-8000-000000000000</uuid>\n"
      "  <memory unit='KiB'>524288</memory>\n  <vcpu>2</vcpu>\n  {}\n  <devices>\n"
      "    <emulator>/usr/bin/qemu-system-{}</emulator>\n",
      os, f == 2 ? "aarch64" : "x86_64");
  // One element a line, so that an error's line number points at the device.
  for (const std::string& d : devices) {
    if (!d.empty()) xml += "    " + d + "\n";
  }
  xml += "  </devices>\n</domain>\n";
  return {family_->name, xml};
}

}  // namespace

GeneratedDomain GenerateDomain(uint64_t seed, uint64_t n) { return Generator(seed, n).Run(); }

}  // namespace pciplan::fuzz
