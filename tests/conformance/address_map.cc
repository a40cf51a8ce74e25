#include "address_map.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <variant>

#include <fmt/format.h>

namespace pciplan::conformance {
namespace {

/// A number read like strtoul(s, NULL, 0), or the raw text when it is not one.
using Num = std::variant<uint64_t, std::string>;

std::optional<Num> ParseNum(const pugi::xml_attribute& a) {
  if (!a) return std::nullopt;
  std::string raw = a.value();
  std::string t = raw;
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!t.empty() && ws(t.front())) t.erase(t.begin());
  while (!t.empty() && ws(t.back())) t.pop_back();
  int base = 10;
  std::string digits = t;
  if (t.size() >= 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
    base = 16;
    digits = t.substr(2);
  } else if (t.size() > 1 && t[0] == '0') {
    base = 8;
    digits = t.substr(1);
  }
  if (digits.empty()) return Num(raw);
  uint64_t v = 0;
  for (char c : digits) {
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : 99;
    if (d >= base) return Num(raw);
    v = v * base + static_cast<uint64_t>(d);
    if (v > (1ull << 60)) return Num(raw);
  }
  return Num(v);
}

std::optional<Num> ParseDec(const pugi::xml_attribute& a) {
  if (!a) return std::nullopt;
  std::string raw = a.value();
  std::string t = raw;
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.erase(t.begin());
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
  if (t.empty() || t.size() > 18 || !std::all_of(t.begin(), t.end(), ::isdigit)) return Num(raw);
  return Num(static_cast<uint64_t>(std::stoull(t)));
}

std::string Escape(std::string_view s) {
  if (s.empty()) return "\"\"";
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '|' || c == '%' || u < 32) {
      out += fmt::format("%{:02X}", u);
    } else {
      out += c;
    }
  }
  return out;
}

std::string Val(const pugi::xml_attribute& a) { return a ? Escape(a.value()) : "-"; }

std::string Dec(const Num& n) {
  return std::holds_alternative<uint64_t>(n) ? std::to_string(std::get<uint64_t>(n))
                                             : Escape(std::get<std::string>(n));
}

std::string Hex(const Num& n, int width) {
  return std::holds_alternative<uint64_t>(n) ? fmt::format("{:0{}x}", std::get<uint64_t>(n), width)
                                             : Escape(std::get<std::string>(n));
}

Num Or0(const std::optional<Num>& n) { return n ? *n : Num(uint64_t{0}); }

std::string PciText(const pugi::xml_node& a) {
  return Hex(Or0(ParseNum(a.attribute("domain"))), 4) + ":" +
         Hex(Or0(ParseNum(a.attribute("bus"))), 2) + ":" +
         Hex(Or0(ParseNum(a.attribute("slot"))), 2) + "." +
         Hex(Or0(ParseNum(a.attribute("function"))), 1);
}

std::string HexPrefixed(const Num& n) {
  return std::holds_alternative<uint64_t>(n) ? fmt::format("0x{:x}", std::get<uint64_t>(n))
                                             : Escape(std::get<std::string>(n));
}

std::string FormatAddress(const pugi::xml_node& a) {
  if (!a) return "-";
  pugi::xml_attribute type_attr = a.attribute("type");
  if (!type_attr) return "?";
  std::string t = type_attr.value();
  auto dec = [&](const char* k) { return Dec(Or0(ParseNum(a.attribute(k)))); };
  if (t == "pci") {
    std::string s = "pci " + PciText(a);
    if (std::string_view(a.attribute("multifunction").value()) == "on") s += " multifunction=on";
    return s;
  }
  if (t == "drive") {
    return "drive " + dec("controller") + ":" + dec("bus") + ":" + dec("target") + ":" + dec("unit");
  }
  if (t == "virtio-serial") return "virtio-serial " + dec("controller") + ":" + dec("bus") + ":" + dec("port");
  if (t == "ccid") return "ccid " + dec("controller") + ":" + dec("slot");
  if (t == "usb") {
    std::string ports;
    pugi::xml_attribute port = a.attribute("port");
    std::string pv = port.value();
    bool blank = std::all_of(pv.begin(), pv.end(), [](char c) { return c == ' ' || c == '\t'; });
    if (!port || blank) {
      ports = "0";
    } else {
      std::string trimmed = pv;
      while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\t')) trimmed.erase(trimmed.begin());
      while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\t')) trimmed.pop_back();
      size_t start = 0;
      for (;;) {
        size_t dot = trimmed.find('.', start);
        std::string part = trimmed.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        pugi::xml_document tmp;
        pugi::xml_attribute pa = tmp.append_child("x").append_attribute("v");
        pa.set_value(part.c_str());
        if (!ports.empty()) ports += ".";
        ports += Dec(*ParseNum(pa));
        if (dot == std::string::npos) break;
        start = dot + 1;
      }
    }
    return "usb " + dec("bus") + ":" + ports;
  }
  if (t == "ccw") {
    return "ccw " + Hex(Or0(ParseNum(a.attribute("cssid"))), 2) + "." +
           Hex(Or0(ParseNum(a.attribute("ssid"))), 1) + "." +
           Hex(Or0(ParseNum(a.attribute("devno"))), 4);
  }
  if (t == "spapr-vio") {
    std::optional<Num> reg = ParseNum(a.attribute("reg"));
    return "spapr-vio " + (reg ? HexPrefixed(*reg) : std::string("-"));
  }
  if (t == "isa") {
    std::string s = "isa";
    if (auto io = ParseNum(a.attribute("iobase"))) s += " iobase=" + HexPrefixed(*io);
    if (auto irq = ParseNum(a.attribute("irq"))) s += " irq=" + Dec(*irq);
    return s;
  }
  if (t == "dimm") {
    std::string s = "dimm";
    if (auto slot = ParseNum(a.attribute("slot"))) s += " slot=" + Dec(*slot);
    if (auto base = ParseNum(a.attribute("base"))) s += " base=" + HexPrefixed(*base);
    return s;
  }
  if (t == "virtio-mmio" || t == "none" || t == "unassigned" || t == "virtio-s390") return t;
  std::vector<std::pair<std::string, std::string>> rest;
  for (const pugi::xml_attribute& attr : a.attributes()) {
    if (std::string_view(attr.name()) != "type") rest.emplace_back(attr.name(), Escape(attr.value()));
  }
  std::sort(rest.begin(), rest.end());
  std::string s = t;
  for (const auto& [k, v] : rest) s += " " + k + "=" + v;
  return s;
}

std::vector<std::string> ControllerExtra(const pugi::xml_node& el) {
  std::vector<std::string> parts;
  pugi::xml_node model = el.child("model");
  if (model && model.attribute("name")) parts.push_back("modelname=" + Val(model.attribute("name")));
  if (pugi::xml_node target = el.child("target")) {
    for (const char* k : {"chassisNr", "chassis", "port", "busNr", "index"}) {
      pugi::xml_attribute a = target.attribute(k);
      if (!a) continue;
      std::string name = std::string_view(k) == "index" ? "targetindex" : k;
      parts.push_back(name + "=" + Dec(*ParseNum(a)));
    }
    pugi::xml_node node = target.child("node");
    if (node && node.first_child().type() == pugi::node_pcdata) {
      pugi::xml_document tmp;
      pugi::xml_attribute pa = tmp.append_child("x").append_attribute("v");
      pa.set_value(node.child_value());
      parts.push_back("node=" + Dec(*ParseNum(pa)));
    }
  }
  return parts;
}

/// The identity fields of an element; `natural` when they identify it without an ordinal.
struct IdentityParts {
  bool natural = false;
  std::vector<std::pair<std::string, std::string>> fields;
};

std::string AttrOf(const pugi::xml_node& el, const char* child, const char* name) {
  pugi::xml_node n = child ? el.child(child) : el;
  return n ? Val(n.attribute(name)) : "-";
}

IdentityParts Identity(const pugi::xml_node& el) {
  std::string tag = el.name();
  if (tag == "controller") {
    std::optional<Num> idx = ParseDec(el.attribute("index"));
    return {true, {{"type", Val(el.attribute("type"))},
                   {"index", idx ? Dec(*idx) : "-"},
                   {"model", Val(el.attribute("model"))}}};
  }
  if (tag == "disk") return {true, {{"dev", AttrOf(el, "target", "dev")}}};
  if (tag == "hostdev") {
    std::string mode = el.attribute("mode") ? el.attribute("mode").value() : "subsystem";
    pugi::xml_node src = el.child("source");
    if (mode == "subsystem" && std::string_view(el.attribute("type").value()) == "pci" &&
        el.attribute("type") && src && src.child("address")) {
      return {true, {{"source", PciText(src.child("address"))}}};
    }
    return {false, {{"type", Val(el.attribute("type"))}}};
  }
  if (tag == "shmem") return {true, {{"name", Val(el.attribute("name"))}}};
  if (tag == "filesystem") return {true, {{"target", AttrOf(el, "target", "dir")}}};
  if (tag == "memballoon" || tag == "vsock" || tag == "iommu" || tag == "nvram") return {true, {}};
  if (tag == "interface" || tag == "video") return {false, {{"model", AttrOf(el, "model", "type")}}};
  static const std::set<std::string> kModelAttr = {"sound", "watchdog", "panic", "tpm",
                                                   "memory", "crypto", "rng"};
  if (kModelAttr.count(tag)) return {false, {{"model", Val(el.attribute("model"))}}};
  if (tag == "input") return {false, {{"type", Val(el.attribute("type"))}, {"bus", Val(el.attribute("bus"))}}};
  if (tag == "console" || tag == "channel") return {false, {{"target", AttrOf(el, "target", "type")}}};
  if (tag == "redirdev") return {false, {{"bus", Val(el.attribute("bus"))}}};
  if (tag == "smartcard") return {false, {{"mode", Val(el.attribute("mode"))}}};
  if (tag == "hub") return {false, {{"type", Val(el.attribute("type"))}}};
  return {false, {}};
}

bool IsPrimaryVideo(const pugi::xml_node& v) {
  return std::string_view(v.child("model").attribute("primary").value()) == "yes";
}

}  // namespace

bool NaturalLess(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      size_t ie = i, je = j;
      while (ie < a.size() && digit(a[ie])) ++ie;
      while (je < b.size() && digit(b[je])) ++je;
      std::string_view da = a.substr(i, ie - i), db = b.substr(j, je - j);
      while (da.size() > 1 && da[0] == '0') da.remove_prefix(1);
      while (db.size() > 1 && db[0] == '0') db.remove_prefix(1);
      if (da.size() != db.size()) return da.size() < db.size();
      if (da != db) return da < db;
      i = ie;
      j = je;
      continue;
    }
    if (digit(a[i]) != digit(b[j])) {
      // A digit run against text: compare as Python does (int < str is an error there; the
      // corpus never mixes them at the same place), so fall back to byte order.
      return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
    }
    size_t ie = i, je = j;
    while (ie < a.size() && !digit(a[ie])) ++ie;
    while (je < b.size() && !digit(b[je])) ++je;
    std::string_view ta = a.substr(i, ie - i), tb = b.substr(j, je - j);
    if (ta != tb) {
      // Byte comparison of the whole text run, like Python comparing bytes objects.
      return ta < tb;
    }
    i = ie;
    j = je;
  }
  return (a.size() - i) < (b.size() - j);
}

std::vector<std::string> AddressMapLines(const pugi::xml_node& root) {
  pugi::xml_node domain = root;
  if (std::string_view(domain.name()) != "domain") domain = root.child("domain");
  std::vector<std::string> out;
  pugi::xml_node devices = domain.child("devices");
  if (!devices) return out;
  std::vector<pugi::xml_node> children;
  for (pugi::xml_node c : devices.children()) {
    if (c.type() == pugi::node_element) children.push_back(c);
  }
  // Ordinals: position among same-tag elements; a primary video counts first.
  std::map<pugi::xml_node_struct*, int> ordinal;
  std::map<std::string, int> counter;
  std::vector<pugi::xml_node> videos;
  for (const pugi::xml_node& c : children) {
    if (std::string_view(c.name()) == "video") {
      videos.push_back(c);
    } else {
      ordinal[c.internal_object()] = counter[c.name()]++;
    }
  }
  auto primary = std::find_if(videos.begin(), videos.end(), IsPrimaryVideo);
  if (primary != videos.end()) std::rotate(videos.begin(), primary, primary + 1);
  for (const pugi::xml_node& v : videos) ordinal[v.internal_object()] = counter["video"]++;

  std::vector<std::pair<std::string, std::string>> entries;
  for (const pugi::xml_node& c : children) {
    std::string tag = c.name();
    pugi::xml_node addr = c.child("address");
    if (tag != "controller" && !addr) continue;
    IdentityParts id = Identity(c);
    std::string ident = id.natural ? tag : tag + "#" + std::to_string(ordinal[c.internal_object()]);
    for (const auto& [k, v] : id.fields) ident += " " + k + "=" + v;
    std::string val = FormatAddress(addr);
    if (tag == "controller") {
      for (const std::string& e : ControllerExtra(c)) val += " " + e;
    }
    entries.emplace_back(ident, val);
  }
  std::map<std::string, int> seen;
  for (auto& e : entries) {
    int n = seen[e.first]++;
    if (n) e.first += " dup=" + std::to_string(n);
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& x, const auto& y) { return NaturalLess(x.first, y.first); });
  for (const auto& [i, v] : entries) out.push_back(i + " | " + v);
  return out;
}

MapResult AddressMapFromXml(std::string_view xml) {
  MapResult r;
  pugi::xml_document doc;
  pugi::xml_parse_result ok = doc.load_buffer(xml.data(), xml.size());
  if (!ok) {
    r.error = ok.description();
    return r;
  }
  r.lines = AddressMapLines(doc.document_element());
  return r;
}

std::map<std::string, std::string> ParseMap(std::string_view text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    start = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.empty() || line[0] == '#') continue;
    size_t bar = line.find(" | ");
    if (bar == std::string_view::npos) continue;
    out[std::string(line.substr(0, bar))] = std::string(line.substr(bar + 3));
  }
  return out;
}

std::vector<std::string> DiffMaps(const std::map<std::string, std::string>& expected,
                                  const std::map<std::string, std::string>& actual) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : expected) keys.push_back(k);
  for (const auto& [k, v] : actual) {
    if (!expected.count(k)) keys.push_back(k);
  }
  std::sort(keys.begin(), keys.end(), NaturalLess);
  std::vector<std::string> out;
  for (const std::string& k : keys) {
    auto e = expected.find(k);
    auto a = actual.find(k);
    if (a == actual.end()) {
      out.push_back("- " + k + " | " + e->second);
    } else if (e == expected.end()) {
      out.push_back("+ " + k + " | " + a->second);
    } else if (e->second != a->second) {
      out.push_back("~ " + k + " | " + e->second + " => " + a->second);
    }
  }
  return out;
}

}  // namespace pciplan::conformance
