// Address maps of libvirt domain XML: the canonical, sorted "IDENTITY | ADDRESS" lines the
// conformance corpus compares (format: tests/conformance/README.md, "Address map format").
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

namespace pciplan::conformance {

struct MapResult {
  std::vector<std::string> lines;  // sorted in natural order
  std::string error;               // non-empty when the XML could not be read
};

/// Sorted address-map lines of a <domain> element.
std::vector<std::string> AddressMapLines(const pugi::xml_node& domain);
/// The same, from XML text.
MapResult AddressMapFromXml(std::string_view xml);
/// identity -> address part, from map text (blank lines and '#' comments skipped).
std::map<std::string, std::string> ParseMap(std::string_view text);
/// Difference lines ("- only expected", "+ only actual", "~ differs => ..."), natural order.
std::vector<std::string> DiffMaps(const std::map<std::string, std::string>& expected,
                                  const std::map<std::string, std::string>& actual);
/// Natural order: digit runs compare as numbers, other runs byte by byte.
bool NaturalLess(std::string_view a, std::string_view b);

}  // namespace pciplan::conformance
