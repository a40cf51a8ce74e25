#include "pciplan/domain/domain_reader.h"

#include <fmt/format.h>
#include <pugixml.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <iterator>
#include <memory>
#include <set>

#include "pciplan/base/numbers.h"

namespace pciplan {
namespace {

constexpr unsigned kParseFlags = pugi::parse_default | pugi::parse_comments |
                                 pugi::parse_declaration | pugi::parse_doctype | pugi::parse_pi;

/// Whether `name` is among `seen` (the element names met so far among one element's children),
/// adding it when not: a short list is scanned, a long one (a hostile input) kept as a set.
class SeenNames {
 public:
  bool Insert(std::string_view name) {
    if (many_) return !many_->insert(name).second;
    for (size_t i = 0; i < count_; ++i) {
      if (few_[i] == name) return true;
    }
    if (count_ < std::size(few_)) {
      few_[count_++] = name;
      return false;
    }
    many_ = std::make_unique<std::set<std::string_view>>(std::begin(few_), std::end(few_));
    many_->insert(name);
    return false;
  }

 private:
  std::string_view few_[8];
  size_t count_ = 0;
  std::unique_ptr<std::set<std::string_view>> many_;
};

/// A path being built: the characters of [0, size) of a buffer grown as needed (std::string's
/// own appends cost a call each).
class PathBuffer {
 public:
  size_t size() const { return size_; }
  std::string_view view() const { return {buf_.data(), size_}; }
  void Append(std::string_view s, char then = 0) {
    size_t need = size_ + s.size() + 1;
    if (need > buf_.size()) Grow(need);
    std::memcpy(buf_.data() + size_, s.data(), s.size());
    size_ += s.size();
    if (then) buf_[size_++] = then;
  }
  void Prepend(char c, std::string_view s) {  // c then s
    size_t need = size_ + s.size() + 1;
    if (need > buf_.size()) Grow(need);
    buf_[size_++] = c;
    std::memcpy(buf_.data() + size_, s.data(), s.size());
    size_ += s.size();
  }
  void CutTo(size_t size) { size_ = size; }

 private:
  // Allocated on the first append (a domain without devices never needs it).
  void Grow(size_t need) { buf_.resize(std::max({need, 2 * buf_.size(), size_t{64}})); }

  std::string buf_;
  size_t size_ = 0;
};

/// Appends the properties of `node` below `path` (the node's own path, "" or ending in '/'),
/// `depth` levels of children deep, in document order. `path` is one buffer grown and cut back
/// on the way. Of two children of one name the first wins, its sibling is skipped whole. The
/// device's first <address> child (not a property) goes to `address`.
void CollectPropsAt(const pugi::xml_node& node, PathBuffer& path, int depth,
                    std::vector<Props::value_type>& items, pugi::xml_node* address) {
  const size_t base = path.size();
  for (pugi::xml_attribute a = node.first_attribute(); a; a = a.next_attribute()) {
    path.Prepend('@', a.name());
    std::string_view key = path.view();
    items.emplace_back(std::piecewise_construct, std::forward_as_tuple(key.data(), key.size()),
                       std::forward_as_tuple(a.value()));
    path.CutTo(base);
  }
  if (depth == 0) return;
  SeenNames seen;
  for (pugi::xml_node child = node.first_child(); child; child = child.next_sibling()) {
    std::string_view name = child.name();
    // The first node named address (as xml_node::child("address") finds it): the guest
    // address, parsed apart.
    if (base == 0 && !*address && name == "address") *address = child;
    if (child.type() != pugi::node_element) continue;
    if (base == 0 && name == "address") continue;
    if (seen.Insert(name)) continue;                // first child of a name wins
    path.Append(name, '/');
    std::string_view key = path.view();
    items.emplace_back(std::piecewise_construct, std::forward_as_tuple(key.data(), key.size()),
                       std::forward_as_tuple());
    const char* text = child.child_value();
    if (*text) {
      items.emplace_back(std::piecewise_construct,
                         std::forward_as_tuple(key.data(), key.size() - 1),
                         std::forward_as_tuple(text));
    }
    CollectPropsAt(child, path, depth - 1, items, address);
    path.CutTo(base);
  }
}

/// Whether the NUL-terminated `name` is `want`, compared inline (no strlen, no call).
bool NameIs(const char* name, std::string_view want) {
  for (size_t i = 0; i < want.size(); ++i) {
    if (name[i] != want[i]) return false;  // also stops at the end of a shorter name
  }
  return name[want.size()] == '\0';
}

/// Whether path `a` sorts before path `b` (std::string's order), compared inline: paths are
/// short and most differ in their first bytes, so a call to memcmp would cost more.
bool PathLess(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
  }
  return a.size() < b.size();
}

/// The properties of `node`, two levels of children deep, as one sorted list built once: what
/// the element says is collected in document order, sorted (stable: of two equal paths, two
/// attributes of one name, the first stays) and duplicates dropped. `path` is a buffer to reuse.
/// Returns the first <address> child (null when none).
pugi::xml_node CollectProps(const pugi::xml_node& node, PathBuffer& path, Props& props) {
  std::vector<Props::value_type> items;
  items.reserve(8);
  path.CutTo(0);
  pugi::xml_node address;
  CollectPropsAt(node, path, 2, items, &address);
  auto less = [](const Props::value_type& a, const Props::value_type& b) {
    return PathLess(a.first, b.first);
  };
  if (items.size() <= 32) {
    // Insertion sort: a device has a handful of properties, most of them in order already.
    for (size_t i = 1; i < items.size(); ++i) {
      if (!less(items[i], items[i - 1])) continue;
      Props::value_type moved = std::move(items[i]);
      size_t j = i;
      for (; j > 0 && less(moved, items[j - 1]); --j) items[j] = std::move(items[j - 1]);
      items[j] = std::move(moved);
    }
  } else {
    std::stable_sort(items.begin(), items.end(), less);
  }
  // Equal paths (an attribute written twice) are neighbours now: the first is kept.
  items.erase(std::unique(items.begin(), items.end(),
                          [](const Props::value_type& a, const Props::value_type& b) {
                            return a.first.size() == b.first.size() && !PathLess(a.first, b.first);
                          }),
              items.end());
  props.AssignSorted(std::move(items));
  return address;
}

Result<Address> ReadAddress(const pugi::xml_node& node, int line, const std::string& text) {
  Address addr;
  const char* type = node.attribute("type").value();
  addr.type_name = type;
  for (const pugi::xml_attribute& a : node.attributes()) {
    if (std::string_view(a.name()) != "type") addr.attrs.emplace(a.name(), a.value());
  }
  std::string_view t = type;
  if (t == "pci") {
    addr.type = AddressType::kPci;
    struct Field {
      const char* name;
      uint32_t max;
      uint32_t* out;
    };
    // Range checks happen while parsing, as in libvirt's virPCIDeviceAddressParseXML.
    Field fields[] = {{"domain", kMaxDomain, &addr.pci.domain},
                      {"bus", kMaxBus, &addr.pci.bus},
                      {"slot", kMaxSlot, &addr.pci.slot},
                      {"function", kMaxFunction, &addr.pci.function}};
    for (const Field& f : fields) {
      pugi::xml_attribute a = node.attribute(f.name);
      if (!a) continue;
      std::optional<uint32_t> v = ParseUnsigned(a.value());
      if (!v) {
        Diagnostic d = Error(Rule::kBadValue, std::string("PCI address ") + f.name + "='" +
                                                  a.value() + "' is not a number");
        d.line = line;
        return d;
      }
      if (*v > f.max) {
        Rule rule = std::string_view(f.name) == "slot"       ? Rule::kSlotRange
                    : std::string_view(f.name) == "function" ? Rule::kFunctionRange
                    : std::string_view(f.name) == "bus"      ? Rule::kBusRange
                                                             : Rule::kPciDomain;
        Diagnostic d = Error(rule, std::string("PCI address ") + f.name + "='" + a.value() +
                                       "' is out of range: must be <= " +
                                       std::to_string(f.max));
        d.line = line;
        return d;
      }
      *f.out = *v;
    }
    addr.multifunction = node.attribute("multifunction").value();
  } else if (t == "drive") {
    addr.type = AddressType::kDrive;
  } else if (t == "usb") {
    addr.type = AddressType::kUsb;
  } else if (t == "virtio-serial") {
    addr.type = AddressType::kVirtioSerial;
  } else if (t == "ccid") {
    addr.type = AddressType::kCcid;
  } else if (t == "virtio-mmio") {
    addr.type = AddressType::kVirtioMmio;
  } else {
    addr.type = AddressType::kOther;
  }
  (void)text;
  return addr;
}

Diagnostic At(Diagnostic d, int line) {
  d.line = line;
  return d;
}

// The namespace URI of an element's name: the xmlns:PREFIX (or xmlns) on it or an ancestor.
std::string NamespaceOf(const pugi::xml_node& n) {
  std::string_view name = n.name();
  size_t colon = name.find(':');
  std::string attr =
      colon == std::string_view::npos ? "xmlns" : "xmlns:" + std::string(name.substr(0, colon));
  for (pugi::xml_node a = n; a; a = a.parent()) {
    if (pugi::xml_attribute x = a.attribute(attr.c_str())) return x.value();
  }
  return "";
}

std::string_view LocalName(const pugi::xml_node& n) {
  std::string_view name = n.name();
  size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

bool IsNamespaceDecl(std::string_view attr) {
  return attr == "xmlns" || attr.substr(0, 6) == "xmlns:";
}

// pciplan's <wishes> element (namespace kWishesNamespace, version 1) into Wishes. Unknown
// attributes and children, other versions and bad values are errors at the element's line.
Result<Wishes> ReadWishes(const pugi::xml_node& node, const std::string& text) {
  auto fail = [&](const pugi::xml_node& at, std::string message) -> Diagnostic {
    return At(Error(Rule::kBadWish, "metadata: " + std::move(message)),
              LineOf(text, static_cast<size_t>(at.offset_debug())));
  };
  auto located = [&](const pugi::xml_node& at, Diagnostics errs) {
    for (Diagnostic& d : errs) {
      d.message = "metadata: " + d.message;
      d.line = LineOf(text, static_cast<size_t>(at.offset_debug()));
    }
    return errs;
  };
  if (NamespaceOf(node) != kWishesNamespace) {
    return fail(node, "pciplan wishes in namespace '" + NamespaceOf(node) +
                          "', this pciplan reads '" + std::string(kWishesNamespace) + "'");
  }
  if (LocalName(node) != "wishes") {
    return fail(node, "unknown element <" + std::string(node.name()) +
                          "> (pciplan's metadata element is <wishes>)");
  }
  std::string_view version = node.attribute("version").value();
  if (version != std::to_string(kWishesVersion)) {
    return fail(node, "<wishes version='" + std::string(version) +
                          "'> is not a version this pciplan reads (expected " +
                          std::to_string(kWishesVersion) + ")");
  }
  Wishes w;
  for (const pugi::xml_attribute& a : node.attributes()) {
    std::string_view name = a.name();
    if (name == "version" || IsNamespaceDecl(name)) continue;
    Result<bool> r = SetDomainWish(w, name, a.value());
    if (!r) return located(node, r.errors());
  }
  for (const pugi::xml_node& child : node.children()) {
    if (child.type() != pugi::node_element) continue;
    if (NamespaceOf(child) != kWishesNamespace || LocalName(child) != "device") {
      return fail(child, "unknown element <" + std::string(child.name()) +
                             "> in <wishes> (expected <device name='...'>)");
    }
    DeviceWish d;
    d.key = child.attribute("name").value();
    if (d.key.empty()) return fail(child, "<device> without a name");
    if (w.Find(d.key)) return fail(child, "two <device> wishes for '" + d.key + "'");
    for (const pugi::xml_attribute& a : child.attributes()) {
      std::string_view name = a.name();
      if (name == "name" || IsNamespaceDecl(name)) continue;
      Result<bool> r = SetDeviceWish(d, name, a.value());
      if (!r) return located(child, r.errors());
    }
    w.devices.push_back(std::move(d));
  }
  return w;
}

/// Length of the UTF-8 sequence at `i` and its code point, or 0 when it is not valid UTF-8
/// (overlong forms, surrogates and code points above U+10FFFF are not).
size_t Utf8Sequence(std::string_view s, size_t i, uint32_t& cp) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b = byte(i);
  size_t n = b < 0x80             ? 1
             : (b & 0xE0) == 0xC0 ? 2
             : (b & 0xF0) == 0xE0 ? 3
             : (b & 0xF8) == 0xF0 ? 4
                                  : 0;
  if (n == 0 || i + n > s.size()) return 0;
  cp = n == 1 ? b : b & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

Diagnostic EncodingError(std::string_view text, size_t offset, const std::string& what) {
  std::string owned(text.substr(0, offset));
  return At(Error(Rule::kXmlMalformed, fmt::format("{} at byte offset {}", what, offset)),
            LineOf(owned, offset));
}

/// XML 1.0's Char production: tab, line feed, carriage return, U+0020 and above, except the
/// two non-characters U+FFFE and U+FFFF (libxml2 refuses the others as "invalid Char value").
bool IsXmlChar(uint32_t cp) {
  return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp != 0xFFFE && cp != 0xFFFF);
}

/// Element depth, counted over start and end tags with comments, CDATA sections, processing
/// instructions, declarations and quoted attribute values skipped. Malformed markup is the
/// parser's to report; this only bounds the depth before anything is built.
std::optional<size_t> TooDeepAt(std::string_view s) {
  int depth = 0;
  size_t i = 0;
  auto skip_past = [&](std::string_view end) {
    size_t e = s.find(end, i);
    i = e == std::string_view::npos ? s.size() : e + end.size();
  };
  while (i < s.size()) {
    size_t lt = s.find('<', i);
    if (lt == std::string_view::npos) break;
    i = lt + 1;
    char c = i < s.size() ? s[i] : '\0';
    if (c == '!' && s.compare(i, 3, "!--") == 0) {
      skip_past("-->");
    } else if (c == '!' && s.compare(i, 8, "![CDATA[") == 0) {
      skip_past("]]>");
    } else if (c == '?' || c == '!') {
      skip_past(">");
    } else if (c == '/') {
      --depth;
      skip_past(">");
    } else {
      if (++depth > kMaxXmlDepth) return lt;
      // The start tag's end, past quoted attribute values (each found at once); "/>" closes the
      // element again.
      static constexpr std::array<bool, 256> kStops = [] {
        std::array<bool, 256> t{};
        t['\''] = t['"'] = t['>'] = true;
        return t;
      }();
      for (; i < s.size(); ++i) {
        while (i < s.size() && !kStops[static_cast<unsigned char>(s[i])]) ++i;
        if (i >= s.size()) break;
        char q = s[i];
        if (q == '\'' || q == '"') {
          size_t close = s.find(q, i + 1);
          if (close == std::string_view::npos) {
            i = s.size();
            break;
          }
          i = close;
        } else if (q == '>') {
          if (s[i - 1] == '/') --depth;
          ++i;
          break;
        }
      }
    }
  }
  return std::nullopt;
}

}  // namespace

Result<bool> CheckXmlText(std::string_view text) {
  // The '<' bytes, counted on the way: a document with no more of them than kMaxXmlDepth
  // cannot nest deeper, and needs no walk over its tags.
  size_t tags = 0;
  for (size_t i = 0; i < text.size();) {
    // Eight bytes at a time while all are ASCII (no top bit set) and those below 0x20 are
    // tab, line feed or carriage return. For a byte b below 0x80, b + 0x60 has its top bit
    // set exactly when b >= 0x20, and (b ^ c) + 0x7F exactly when b != c (no carry crosses
    // into the next byte).
    constexpr uint64_t kHigh = 0x8080808080808080ull, kOnes = 0x0101010101010101ull;
    while (i + 8 <= text.size()) {
      uint64_t w;
      std::memcpy(&w, text.data() + i, 8);
      if ((w & kHigh) != 0) break;
      uint64_t control = ~(w + 0x60 * kOnes) & kHigh;
      // Line feeds, the most of them, need no look at each byte.
      if (control != 0) control &= ((w ^ ('\n' * kOnes)) + 0x7F * kOnes);
      bool plain = true;
      for (; control != 0; control &= control - 1) {
        const unsigned char c = static_cast<unsigned char>(w >> (std::countr_zero(control) - 7));
        if (c != '\t' && c != '\n' && c != '\r') {
          plain = false;
          break;
        }
      }
      if (!plain) break;
      const uint64_t lt = ~((w ^ ('<' * kOnes)) + 0x7F * kOnes) & kHigh;
      tags += static_cast<size_t>(((lt >> 7) * kOnes) >> 56);
      i += 8;
    }
    if (i >= text.size()) break;
    unsigned char b = static_cast<unsigned char>(text[i]);
    if (b >= 0x20 && b < 0x80) {  // the common case, one byte
      tags += b == '<';
      ++i;
      continue;
    }
    uint32_t cp = 0;
    size_t n = Utf8Sequence(text, i, cp);
    if (n == 0) return EncodingError(text, i, fmt::format("invalid UTF-8 byte 0x{:02X}", b));
    if (cp == 0) return EncodingError(text, i, "NUL byte");
    if (!IsXmlChar(cp)) {
      return EncodingError(text, i, fmt::format("character U+{:04X} is not allowed in XML", cp));
    }
    i += n;
  }
  if (std::optional<size_t> at = tags > kMaxXmlDepth ? TooDeepAt(text) : std::nullopt) {
    return EncodingError(text, *at,
                         fmt::format("excessive depth in document: elements nested deeper than "
                                     "{} levels are refused, as libxml2 does",
                                     kMaxXmlDepth));
  }
  return true;
}

Result<Device> ReadDevice(const std::string& text) {
  if (text.size() > kMaxInputBytes) {
    return Error(Rule::kLimitExceeded, "device XML is " + std::to_string(text.size()) +
                                           " bytes; at most " + std::to_string(kMaxInputBytes) +
                                           " are accepted");
  }
  if (Result<bool> clean = CheckXmlText(text); !clean) return clean.errors();
  pugi::xml_document doc;
  pugi::xml_parse_result parsed =
      doc.load_buffer(text.data(), text.size(), kParseFlags, pugi::encoding_utf8);
  if (!parsed) {
    return At(Error(Rule::kXmlMalformed, std::string("malformed XML: ") + parsed.description()),
              LineOf(text, static_cast<size_t>(parsed.offset)));
  }
  int elements = 0;
  for (const pugi::xml_node& n : doc.children()) {
    if (n.type() == pugi::node_doctype) {
      return At(Error(Rule::kXmlDoctype,
                      "DOCTYPE declarations are not accepted (entities are never expanded)"),
                1);
    }
    if (n.type() == pugi::node_element) ++elements;
  }
  pugi::xml_node root = doc.document_element();
  std::string tag = root.name();
  if (elements != 1) {
    return At(Error(Rule::kNotADomain,
                    "expected one device element (<disk>, <interface>, ...), found " +
                        std::to_string(elements) + " elements"),
              1);
  }
  if (tag == "domain" || tag == "devices" || tag == "emulator") {
    return At(Error(Rule::kNotADomain,
                    "expected one device element (<disk>, <interface>, ...), found <" + tag + ">"),
              1);
  }
  Device dev;
  dev.tag = tag;
  dev.offset = static_cast<size_t>(root.offset_debug());
  dev.line = LineOf(text, dev.offset);
  PathBuffer path;
  if (pugi::xml_node a = CollectProps(root, path, dev.props)) {
    Result<Address> addr = ReadAddress(a, dev.line, text);
    if (!addr) {
      Diagnostics errs = std::move(addr).take_errors();
      for (Diagnostic& d : errs) d.device = DeviceRef::Describe(dev, 0);
      return errs;
    }
    dev.address = std::move(addr.value());
  }
  return dev;
}

int LineOf(const std::string& text, size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + offset, '\n'));
}

Result<Domain> ReadDomain(std::string text) {
  if (text.size() > kMaxInputBytes) {
    return Error(Rule::kLimitExceeded, "input is " + std::to_string(text.size()) +
                                           " bytes; at most " + std::to_string(kMaxInputBytes) +
                                           " are accepted");
  }
  if (Result<bool> clean = CheckXmlText(text); !clean) return clean.errors();
  Domain dom;
  dom.text = std::move(text);
  pugi::xml_document doc;
  pugi::xml_parse_result parsed = doc.load_buffer(dom.text.data(), dom.text.size(), kParseFlags,
                                                  pugi::encoding_utf8);
  if (!parsed) {
    return At(Error(Rule::kXmlMalformed, std::string("malformed XML: ") + parsed.description()),
              LineOf(dom.text, static_cast<size_t>(parsed.offset)));
  }
  for (pugi::xml_node n = doc.first_child(); n; n = n.next_sibling()) {
    if (n.type() == pugi::node_doctype) {
      return At(Error(Rule::kXmlDoctype,
                      "DOCTYPE declarations are not accepted (entities are never expanded)"),
                1);
    }
  }
  pugi::xml_node root = doc.document_element();
  if (!NameIs(root.name(), "domain")) {
    return At(Error(Rule::kNotADomain,
                    std::string("root element is <") + root.name() + ">, expected <domain>"),
              LineOf(dom.text, root.offset_debug()));
  }
  dom.root_offset = static_cast<size_t>(root.offset_debug());
  // The children read below, found in one walk: the first node of each name (as
  // xml_node::child(name) finds it).
  pugi::xml_node os, features, metadata, max_memory, cpu, devices;
  for (pugi::xml_node child = root.first_child(); child; child = child.next_sibling()) {
    const char* name = child.name();
    pugi::xml_node* slot = nullptr;
    switch (name[0]) {  // the first byte picks the one name to compare
      case 'o':
        slot = NameIs(name, "os") ? &os : nullptr;
        break;
      case 'c':
        slot = NameIs(name, "cpu") ? &cpu : nullptr;
        break;
      case 'd':
        slot = NameIs(name, "devices") ? &devices : nullptr;
        break;
      case 'f':
        slot = NameIs(name, "features") ? &features : nullptr;
        break;
      case 'm':
        slot = NameIs(name, "metadata")    ? &metadata
               : NameIs(name, "maxMemory") ? &max_memory
                                           : nullptr;
        break;
      default:
        break;
    }
    if (slot && !*slot) *slot = child;
  }
  pugi::xml_node os_type = os.child("type");
  if (!os_type) {
    return At(Error(Rule::kMissingOsType, "the domain has no <os><type> element"),
              LineOf(dom.text, root.offset_debug()));
  }
  dom.arch = os_type.attribute("arch").value();
  dom.machine = os_type.attribute("machine").value();
  dom.os_type_offset = static_cast<size_t>(os_type.offset_debug());
  dom.acpi = static_cast<bool>(features.child("acpi"));
  if (metadata) {
    dom.metadata_offset = static_cast<size_t>(metadata.offset_debug());
    for (const pugi::xml_node& m : metadata.children()) {
      if (m.type() != pugi::node_element) continue;
      if (NamespaceOf(m).rfind(kWishesNamespacePrefix, 0) != 0) continue;  // someone else's
      if (dom.wishes_offset != std::string::npos) {
        return At(Error(Rule::kBadWish, "metadata: two pciplan <wishes> elements"),
                  LineOf(dom.text, m.offset_debug()));
      }
      Result<Wishes> w = ReadWishes(m, dom.text);
      if (!w) return w.errors();
      dom.wishes = std::move(w.value());
      dom.wishes_offset = static_cast<size_t>(m.offset_debug());
    }
  }
  if (max_memory) {
    dom.memory_slots = ParseUnsigned(max_memory.attribute("slots").value()).value_or(0);
  }
  if (cpu) {
    for (const pugi::xml_node& cell : cpu.child("numa").children("cell")) {
      (void)cell;
      ++dom.numa_cells;
    }
  }
  if (!devices) return dom;
  dom.devices_offset = static_cast<size_t>(devices.offset_debug());
  int line = 1;
  size_t line_offset = 0;
  size_t elements = 0;
  for (pugi::xml_node child = devices.first_child(); child && elements <= kMaxDevices;
       child = child.next_sibling()) {
    elements += child.type() == pugi::node_element;
  }
  dom.devices.reserve(std::min(elements, kMaxDevices));
  PathBuffer path;  // reused by every device's properties
  for (const pugi::xml_node& child : devices.children()) {
    if (child.type() != pugi::node_element) continue;
    std::string_view tag = child.name();
    if (tag == "emulator") continue;
    if (tag == "graphics") dom.has_graphics = true;
    if (dom.devices.size() >= kMaxDevices) {
      return At(Error(Rule::kLimitExceeded,
                      "more than " + std::to_string(kMaxDevices) + " devices in <devices>"),
                LineOf(dom.text, child.offset_debug()));
    }
    Device& dev = dom.devices.emplace_back();  // filled in place
    dev.tag = tag;
    dev.offset = static_cast<size_t>(child.offset_debug());
    // Lines are counted from the previous device on, so reading stays linear.
    line += static_cast<int>(std::count(dom.text.begin() + static_cast<std::ptrdiff_t>(line_offset),
                                        dom.text.begin() + static_cast<std::ptrdiff_t>(dev.offset), '\n'));
    line_offset = dev.offset;
    dev.line = line;
    dev.source = static_cast<int>(dom.devices.size() - 1);
    if (pugi::xml_node a = CollectProps(child, path, dev.props)) {
      Result<Address> addr = ReadAddress(a, dev.line, dom.text);
      if (!addr) {
        Diagnostics errs = std::move(addr).take_errors();
        for (Diagnostic& d : errs) d.device = DeviceRef::Describe(dev, 0);
        return errs;
      }
      dev.address = std::move(addr.value());
    }
  }
  return dom;
}

Result<Domain> ReadWithInsertion(const Domain& before, std::string text,
                                 std::pair<size_t, size_t> inserted) {
  const size_t first = inserted.first, last = inserted.second;
  size_t length = last - first;
  bool plain = first != std::string::npos && last >= first && last <= text.size() &&
               text.size() == before.text.size() + length &&
               before.devices_offset != std::string::npos && first > before.devices_offset &&
               before.devices.size() < kMaxDevices &&
               text.compare(0, first, before.text, 0, first) == 0 &&
               text.compare(last, std::string::npos, before.text, first, std::string::npos) == 0;
  // The devices before the insertion point keep their index; the new one comes next.
  size_t k = 0;
  while (plain && k < before.devices.size() && before.devices[k].offset < first) ++k;
  Result<Device> dev =
      plain ? ReadDevice(text.substr(first, length)) : Result<Device>(Diagnostic{});
  if (!plain || !dev || dev->tag == "emulator") return ReadDomain(std::move(text));
  std::string_view snippet = std::string_view(text).substr(first, length);
  Domain dom;
  dom.arch = before.arch;
  dom.machine = before.machine;
  dom.acpi = before.acpi;
  dom.numa_cells = before.numa_cells;
  dom.memory_slots = before.memory_slots;
  dom.has_graphics = before.has_graphics || dev->tag == "graphics";
  dom.wishes = before.wishes;
  auto shift = [&](size_t offset) {
    return offset == std::string::npos || offset < first ? offset : offset + length;
  };
  dom.devices_offset = before.devices_offset;
  dom.wishes_offset = shift(before.wishes_offset);
  dom.os_type_offset = shift(before.os_type_offset);
  dom.metadata_offset = shift(before.metadata_offset);
  dom.root_offset = before.root_offset;
  int new_lines = static_cast<int>(std::count(snippet.begin(), snippet.end(), '\n'));
  dom.devices.reserve(before.devices.size() + 1);
  for (size_t i = 0; i < before.devices.size(); ++i) {
    if (i == k) dom.devices.emplace_back();
    Device d = before.devices[i];
    if (d.offset >= first) {
      d.offset += length;
      d.line += new_lines;
    }
    dom.devices.push_back(std::move(d));
  }
  if (k == before.devices.size()) dom.devices.emplace_back();
  Device& added = dom.devices[k];
  added = std::move(dev.value());
  int line_of_first = LineOf(text, first);
  added.line = line_of_first + (added.line - 1);
  added.offset += first;
  for (size_t i = 0; i < dom.devices.size(); ++i) dom.devices[i].source = static_cast<int>(i);
  dom.text = std::move(text);
  return dom;
}

}  // namespace pciplan
