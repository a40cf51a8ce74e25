#include "pciplan/qmp/guest_initramfs.h"

#include <fmt/format.h>

#include <cstring>
#include <vector>

namespace pciplan {
namespace {

// cpio "newc" (the kernel's initramfs format, Documentation/driver-api/early-userspace/
// buffer-format.rst): a 110-byte ASCII header of 13 eight-digit hex fields after the magic,
// the name with its NUL, padding to 4 bytes, the data, padding to 4 bytes.
constexpr uint32_t kDir = 0040000;
constexpr uint32_t kFile = 0100000;
constexpr uint32_t kCharDev = 0020000;

struct Entry {
  std::string name;
  uint32_t mode = 0;
  std::string data;
  uint32_t rdev_major = 0;
  uint32_t rdev_minor = 0;
};

void Pad4(std::string& out) {
  while (out.size() % 4 != 0) out.push_back('\0');
}

void Append(std::string& out, const Entry& e, uint32_t ino) {
  out += fmt::format(
      "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}", ino,
      e.mode, 0, 0, (e.mode & kDir) != 0 ? 2 : 1, 0, e.data.size(), 0, 0, e.rdev_major,
      e.rdev_minor, e.name.size() + 1, 0);
  out += e.name;
  out.push_back('\0');
  Pad4(out);
  out += e.data;
  Pad4(out);
}

uint64_t Le(const std::string& s, size_t at, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  }
  return v;
}

}  // namespace

std::string GuestInitScript() {
  // Every line is read by ParseGuestConsole (guest_match.cc). Only shell builtins run in the
  // loop (read, cd -P, arithmetic): a fork and exec per function costs a guest with a few
  // hundred functions tens of seconds under TCG.
  return fmt::format(R"(#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo {begin}
for d in /sys/bus/pci/devices/*; do
  [ -e "$d/vendor" ] || continue
  read vendor < "$d/vendor"; read device < "$d/device"; read class < "$d/class"
  node=-1
  [ -e "$d/numa_node" ] && read node < "$d/numa_node"
  used=0; assigned=0; i=0
  while [ $i -lt 6 ] && read start end flags; do
    if [ $((flags)) -ne 0 ]; then
      used=$((used | 1 << i))
      [ $((start)) -ne 0 ] && assigned=$((assigned | 1 << i))
    fi
    i=$((i+1))
  done < "$d/resource"
  cd -P "$d"
  echo "{function} $PWD $vendor $device $class $node $used $assigned"
  cd /
done
[ -r /sys/firmware/acpi/tables/DSDT ] &&
  hexdump -v -e '"{dsdt} " 32/1 "%02x" "\n"' /sys/firmware/acpi/tables/DSDT
echo {end}
poweroff -f
)",
                     fmt::arg("begin", kGuestBeginMarker), fmt::arg("end", kGuestEndMarker),
                     fmt::arg("function", kGuestFunctionPrefix),
                     fmt::arg("dsdt", kGuestDsdtPrefix));
}

std::string BuildGuestInitramfs(const std::string& busybox) {
  std::vector<Entry> entries = {
      {"bin", kDir | 0755, "", 0, 0},
      {"bin/busybox", kFile | 0755, busybox, 0, 0},
      {"dev", kDir | 0755, "", 0, 0},
      {"dev/console", kCharDev | 0600, "", 5, 1},
      {"proc", kDir | 0755, "", 0, 0},
      {"sys", kDir | 0755, "", 0, 0},
      {"init", kFile | 0755, GuestInitScript(), 0, 0},
  };
  std::string out;
  out.reserve(busybox.size() + 4096);
  uint32_t ino = 1;
  for (const Entry& e : entries) Append(out, e, ino++);
  Append(out, Entry{"TRAILER!!!", 0, "", 0, 0}, 0);
  Pad4(out);
  return out;
}

Result<bool> CheckStaticElf(const std::string& elf, uint32_t machine, const std::string& what) {
  constexpr size_t kHeader = 64;  // ELF64 header
  if (elf.size() < kHeader || elf.compare(0, 4,
                                          "\x7f"
                                          "ELF") != 0) {
    return Error(Rule::kQemu, fmt::format("'{}' is not an ELF executable", what));
  }
  if (elf[4] != 2 || elf[5] != 1) {
    return Error(Rule::kQemu, fmt::format("'{}' is not a 64-bit little-endian ELF file", what));
  }
  uint64_t have = Le(elf, 0x12, 2);
  if (have != machine) {
    return Error(Rule::kQemu, fmt::format("'{}' is for ELF machine {}, the guest needs {}", what,
                                          have, machine));
  }
  uint64_t phoff = Le(elf, 0x20, 8), phentsize = Le(elf, 0x36, 2), phnum = Le(elf, 0x38, 2);
  constexpr uint64_t kPtInterp = 3;
  for (uint64_t i = 0; i < phnum; ++i) {
    uint64_t at = phoff + i * phentsize;
    if (phentsize < 4 || at + 4 > elf.size()) {
      return Error(Rule::kQemu, fmt::format("'{}' has a truncated program header", what));
    }
    if (Le(elf, at, 4) == kPtInterp) {
      return Error(Rule::kQemu,
                   fmt::format("'{}' is dynamically linked; the guest needs a static busybox "
                               "(Debian's busybox-static)",
                               what));
    }
  }
  return true;
}

}  // namespace pciplan
