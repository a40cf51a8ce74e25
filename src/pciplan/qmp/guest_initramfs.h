// The initramfs verify --guest boots: a cpio archive (newc, uncompressed, which every Linux
// kernel unpacks) holding a statically linked busybox and an /init script that prints the
// guest's PCI functions on the console between two marker lines and powers the guest off.
// Pure: the caller reads busybox and writes the archive.
#pragma once

#include <cstdint>
#include <string>

#include "pciplan/base/result.h"

namespace pciplan {

/// The lines /init prints around its report, and the prefix of each function's line:
///   pciplan-guest-function PATH VENDOR DEVICE CLASS NUMA_NODE USED ASSIGNED
/// PATH is the function's real sysfs path (/sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0);
/// USED has bit i set when BAR i (0-5) has a type, ASSIGNED when the guest gave it an address.
inline constexpr const char* kGuestBeginMarker = "pciplan-guest-begin";
inline constexpr const char* kGuestEndMarker = "pciplan-guest-end";
inline constexpr const char* kGuestFunctionPrefix = "pciplan-guest-function";
/// After the functions, the guest's ACPI DSDT (when it has ACPI), in lines of up to 32 bytes in
/// hex, each after this prefix: the firmware's own account of each root bus's NUMA proximity.
inline constexpr const char* kGuestDsdtPrefix = "pciplan-guest-dsdt";

/// The /init shell script (busybox sh).
std::string GuestInitScript();

/// The archive: /init, /bin/busybox (the bytes given), /dev/console, /proc, /sys.
std::string BuildGuestInitramfs(const std::string& busybox);

/// Checks that `elf` is a 64-bit little-endian executable for `machine` (ELF e_machine) with no
/// program interpreter (statically linked), as the guest's busybox must be. The failure names
/// `what` (the file) and says which of these it is not.
Result<bool> CheckStaticElf(const std::string& elf, uint32_t machine, const std::string& what);

}  // namespace pciplan
