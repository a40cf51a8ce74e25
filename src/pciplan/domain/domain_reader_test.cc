#include "pciplan/domain/domain_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace pciplan {
namespace {

std::string Q35(const std::string& devices) {
  return "<domain>\n<os><type arch='x86_64' machine='q35'>hvm</type></os>\n<devices>\n" + devices +
         "\n</devices>\n</domain>\n";
}

std::string Nested(int depth) {
  std::string open, close;
  for (int i = 2; i < depth; ++i) {  // <domain> and <metadata> are the first two levels
    open += "<x>";
    close += "</x>";
  }
  return "<domain><os><type arch='x86_64' machine='q35'>hvm</type></os><metadata>" + open + close +
         "</metadata></domain>";
}

TEST(DomainReader, InvalidUtf8InAValueIsRefusedNamingLineAndByteOffset) {
  std::string text = Q35("<interface type='user'><mac address='\xFF'/></interface>");
  Result<Domain> d = ReadDomain(text);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.errors().front().rule, Rule::kXmlMalformed);
  EXPECT_EQ(d.errors().front().line, 4);
  EXPECT_EQ(d.errors().front().Render("vm.xml"),
            "vm.xml:4: error: invalid UTF-8 byte 0xFF at byte offset " +
                std::to_string(text.find('\xFF')) + " [xml-malformed]");
}

TEST(DomainReader, MalformedUtf8SequencesAreRefused) {
  const char* cases[] = {
      "\xC0\xAF",          // overlong '/'
      "\xE0\x80\xAF",      // overlong, three bytes
      "\xED\xA0\x80",      // a UTF-16 surrogate
      "\xF4\x90\x80\x80",  // above U+10FFFF
      "\xC3",              // truncated
      "\x80",              // a lone continuation byte
  };
  for (const char* bad : cases) {
    SCOPED_TRACE(bad);
    Result<Domain> d = ReadDomain(Q35(std::string("<disk><source file='") + bad + "'/></disk>"));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.errors().front().rule, Rule::kXmlMalformed);
    EXPECT_EQ(d.errors().front().line, 4);
  }
}

TEST(DomainReader, NulByteIsRefused) {
  std::string disk = "<disk><source file='a";
  disk += '\0';
  disk += "b'/></disk>";
  Result<Domain> d = ReadDomain(Q35(disk));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.errors().front().rule, Rule::kXmlMalformed);
  EXPECT_EQ(d.errors().front().line, 4);
}

TEST(DomainReader, ControlCharacterXmlForbidsIsRefused) {
  Result<Domain> d = ReadDomain(Q35("<disk><source file='a\x01'/></disk>"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.errors().front().rule, Rule::kXmlMalformed);
}

TEST(DomainReader, ValidMultibyteUtf8IsAccepted) {
  Result<Domain> d =
      ReadDomain(Q35("<disk><source file='/srv/\xC3\xA9t\xC3\xA9/\xE2\x82\xAC/\xF0\x9F\x92\xBE'/>"
                     "<target dev='vda' bus='virtio'/></disk>\t\r"));
  ASSERT_TRUE(d.ok()) << d.errors().front().message;
  EXPECT_EQ(d->devices.size(), 1u);
}

TEST(DomainReader, DeviceXmlWithInvalidUtf8IsRefused) {
  Result<Device> d = ReadDevice("<disk>\n<target dev='\xFE'/></disk>");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.errors().front().rule, Rule::kXmlMalformed);
  EXPECT_EQ(d.errors().front().line, 2);
}

TEST(DomainReader, NestingAtLibxml2sLimitIsAcceptedAndOneDeeperRefused) {
  // libvirt 9.0 defines a domain nested 257 levels deep and refuses 258 ("Excessive depth in
  // document: 256 use XML_PARSE_HUGE option").
  EXPECT_TRUE(ReadDomain(Nested(kMaxXmlDepth)).ok());
  Result<Domain> d = ReadDomain(Nested(kMaxXmlDepth + 1));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.errors().front().rule, Rule::kXmlMalformed);
}

TEST(DomainReader, AMillionLevelsAreRefusedBeforeParsing) {
  Result<Domain> d = ReadDomain(Nested(1000000));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.errors().front().rule, Rule::kXmlMalformed);
}

TEST(DomainReader, DepthIgnoresCommentsCdataQuotedBracketsAndEmptyElements) {
  std::string noise;
  for (int i = 0; i < 400; ++i) {
    noise += "<!-- <a> --><![CDATA[<b>]]><?pi <c>?><e k='>' v=\"<d>\"/>";
  }
  Result<Domain> d = ReadDomain(Q35(noise));
  EXPECT_TRUE(d.ok()) << d.errors().front().message;
}

// CheckXmlText looks at eight bytes at a time: a byte XML forbids is found at every place in
// the word, and the white space it allows is let through at every place.
TEST(DomainReader, ForbiddenControlBytesAreFoundAtEveryPlaceInAWord) {
  for (size_t pad = 0; pad < 16; ++pad) {
    SCOPED_TRACE(pad);
    std::string text = Q35("<disk><source file='" + std::string(pad, 'a') + "\x1F" + "'/></disk>");
    Result<Domain> d = ReadDomain(text);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.errors().front().message, "character U+001F is not allowed in XML at byte offset " +
                                              std::to_string(text.find('\x1F')));
    for (char space : {'\t', '\n', '\r'}) {
      EXPECT_TRUE(ReadDomain(Q35(std::string(pad, ' ') + space + "<disk/>" + space)).ok());
    }
  }
}

// The '<' bytes are counted on the way to decide whether the depth needs a look: the count
// goes on where non-ASCII text sends the scan byte by byte.
TEST(DomainReader, DepthIsCheckedWhenNonAsciiTextIsBetweenTheTags) {
  auto nested = [](int depth) {
    std::string open = "<domain><os><type arch='x86_64' machine='q35'>hvm</type></os><metadata>";
    std::string close = "</metadata></domain>";
    for (int i = 2; i < depth; ++i) {
      open += "<x>\xC3\xA9";
      close.insert(0, "</x>");
    }
    return open + close;
  };
  EXPECT_TRUE(ReadDomain(nested(kMaxXmlDepth)).ok());
  Result<Domain> d = ReadDomain(nested(kMaxXmlDepth + 1));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.errors().front().rule, Rule::kXmlMalformed);
}

}  // namespace
// A device's properties are one list sorted by path whatever order the element writes them in;
// of two children of one name the first is read and the second skipped whole, of an attribute
// written twice the first; the first <address> child is the address, not a property.
TEST(DomainReader, PropertiesAreSortedAndTheFirstOfTwoNamesWins) {
  Result<Domain> dom = ReadDomain(Q35(
      "<disk type='file' device='disk'><target dev='vda' bus='virtio'/><source file='/a'/>"
      "<address type='pci' bus='0x03' slot='0x00'/><address type='pci' bus='0x04'/>"
      "<target dev='vdb' tray='open'/><serial>s1</serial><driver name='qemu' type='raw'/>"
      "</disk>"));
  ASSERT_TRUE(dom.ok()) << dom.errors().front().message;
  ASSERT_EQ(dom->devices.size(), 1u);
  const Device& disk = dom->devices[0];
  std::vector<std::pair<std::string, std::string>> expected = {
      {"@device", "disk"},       {"@type", "file"},         {"driver/", ""},
      {"driver/@name", "qemu"},  {"driver/@type", "raw"},   {"serial", "s1"},
      {"serial/", ""},           {"source/", ""},           {"source/@file", "/a"},
      {"target/", ""},           {"target/@bus", "virtio"}, {"target/@dev", "vda"}};
  std::vector<std::pair<std::string, std::string>> got(disk.props.begin(), disk.props.end());
  EXPECT_EQ(got, expected);
  EXPECT_EQ(disk.address.type, AddressType::kPci);
  EXPECT_EQ(disk.address.pci.bus, 3u);
  EXPECT_TRUE(disk.Is("target/@dev", "vda"));
  EXPECT_FALSE(disk.Has("target/@tray"));
  EXPECT_FALSE(disk.Has("address/"));
}

// Paths longer than Props scans (sixteen) are found by halves, and paths that share their first
// bytes sort by the rest.
TEST(DomainReader, ManyPropertiesAreFoundAndSorted) {
  std::string children;
  for (char c = 'a'; c <= 't'; ++c) children += std::string("<target") + c + " dev='" + c + "'/>";
  Result<Domain> dom = ReadDomain(Q35("<disk type='file' device='disk'>" + children + "</disk>"));
  ASSERT_TRUE(dom.ok()) << dom.errors().front().message;
  const Props& props = dom->devices[0].props;
  EXPECT_EQ(props.size(), 2u + 2u * 20u);
  EXPECT_TRUE(std::is_sorted(props.begin(), props.end()));
  for (char c = 'a'; c <= 't'; ++c) {
    EXPECT_TRUE(dom->devices[0].Is(std::string("target") + c + "/@dev", std::string(1, c))) << c;
  }
  EXPECT_FALSE(dom->devices[0].Has("targetu/@dev"));
}

}  // namespace pciplan
