#include "pciplan/domain/domain_reader.h"

#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace pciplan
