#include "pciplan/qmp/guest_initramfs.h"

#include <gtest/gtest.h>

#include <map>

namespace pciplan {
namespace {

struct CpioEntry {
  uint32_t mode = 0;
  uint32_t rdev_major = 0, rdev_minor = 0;
  std::string data;
};

/// Reads a newc archive back (the kernel's reader, in short); fails the test on a bad header.
std::map<std::string, CpioEntry> ReadCpio(const std::string& a) {
  std::map<std::string, CpioEntry> out;
  size_t at = 0;
  auto field = [&](size_t i) {
    return static_cast<uint32_t>(std::stoul(a.substr(at + 6 + 8 * i, 8), nullptr, 16));
  };
  while (at + 110 <= a.size()) {
    EXPECT_EQ(a.substr(at, 6), "070701");
    if (a.substr(at, 6) != "070701") break;
    uint32_t namesize = field(11), filesize = field(6);
    std::string name = a.substr(at + 110, namesize - 1);
    EXPECT_EQ(a[at + 110 + namesize - 1], '\0');
    size_t data = (at + 110 + namesize + 3) & ~size_t{3};
    if (name == "TRAILER!!!") break;
    out[name] = CpioEntry{field(1), field(9), field(10), a.substr(data, filesize)};
    at = (data + filesize + 3) & ~size_t{3};
  }
  EXPECT_EQ(a.size() % 4, 0u);
  return out;
}

TEST(GuestInitramfs, ArchiveHoldsInitBusyboxAndConsole) {
  std::map<std::string, CpioEntry> e = ReadCpio(BuildGuestInitramfs("BUSYBOX-BYTES"));
  ASSERT_TRUE(e.count("init"));
  EXPECT_EQ(e["init"].mode, 0100755u);
  EXPECT_EQ(e["init"].data, GuestInitScript());
  EXPECT_EQ(e["bin/busybox"].data, "BUSYBOX-BYTES");
  EXPECT_EQ(e["bin/busybox"].mode, 0100755u);
  EXPECT_EQ(e["dev/console"].mode, 0020600u);
  EXPECT_EQ(e["dev/console"].rdev_major, 5u);
  EXPECT_EQ(e["dev/console"].rdev_minor, 1u);
  for (const char* dir : {"bin", "dev", "proc", "sys"}) EXPECT_EQ(e[dir].mode, 0040755u) << dir;
}

TEST(GuestInitramfs, InitPrintsBetweenTheMarkersAndPowersOff) {
  std::string init = GuestInitScript();
  EXPECT_EQ(init.rfind("#!/bin/busybox sh\n", 0), 0u);
  size_t begin = init.find(std::string("echo ") + kGuestBeginMarker);
  size_t function = init.find(kGuestFunctionPrefix);
  size_t end = init.find(std::string("echo ") + kGuestEndMarker);
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(function, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  EXPECT_LT(begin, function);
  EXPECT_LT(function, end);
  EXPECT_GT(init.find("poweroff -f"), end);
}

std::string Elf(uint16_t machine, bool interp) {
  std::string e(64 + 2 * 56, '\0');
  e.replace(0, 4,
            "\x7f"
            "ELF");
  e[4] = 2;  // 64-bit
  e[5] = 1;  // little-endian
  e[0x12] = static_cast<char>(machine & 0xff);
  e[0x13] = static_cast<char>(machine >> 8);
  e[0x20] = 64;  // program headers right after the header
  e[0x36] = 56;
  e[0x38] = 2;
  e[64] = 1;                    // PT_LOAD
  e[64 + 56] = interp ? 3 : 1;  // PT_INTERP or another PT_LOAD
  return e;
}

TEST(GuestInitramfs, BusyboxMustBeStaticAndForTheGuest) {
  EXPECT_TRUE(CheckStaticElf(Elf(62, false), 62, "bb").ok());
  Result<bool> r = CheckStaticElf(Elf(62, true), 62, "bb");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors().front().message.find("'bb' is dynamically linked"), std::string::npos);
  r = CheckStaticElf(Elf(62, false), 183, "bb");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors().front().message.find("ELF machine 62, the guest needs 183"),
            std::string::npos);
  r = CheckStaticElf("#!/bin/sh\n", 62, "bb");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors().front().message.find("not an ELF"), std::string::npos);
}

}  // namespace
}  // namespace pciplan
