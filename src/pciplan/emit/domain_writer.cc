#include "pciplan/emit/domain_writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

#include "pciplan/base/numbers.h"
#include "pciplan/plan/nonpci.h"

namespace pciplan {
namespace {

// ---------------------------------------------------------------------------------------------
// A small scanner over well-formed XML (the input already parsed): finds where tags end, where
// an element's end tag is, and the attributes of a start tag.

struct AttrSpan {
  std::string_view name;   // into the scanned text
  size_t value_begin = 0;  // first character of the value
  size_t value_end = 0;    // the closing quote
  char quote = '\'';
};

struct StartTag {
  size_t lt = 0;         // the '<'
  size_t name_end = 0;   // first character after the element name
  size_t close = 0;      // the '>' (or the '/' of '/>')
  size_t after = 0;      // first character after the start tag
  bool self_closing = false;
  std::vector<AttrSpan> attrs;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

StartTag ScanStartTag(const std::string& t, size_t name_offset) {
  StartTag tag;
  tag.lt = name_offset - 1;
  size_t i = name_offset;
  while (i < t.size() && !IsSpace(t[i]) && t[i] != '>' && t[i] != '/') ++i;
  tag.name_end = i;
  while (i < t.size()) {
    char c = t[i];
    if (c == '>') {
      tag.close = i;
      tag.after = i + 1;
      return tag;
    }
    if (c == '/' && i + 1 < t.size() && t[i + 1] == '>') {
      tag.close = i;
      tag.after = i + 2;
      tag.self_closing = true;
      return tag;
    }
    if (IsSpace(c)) {
      ++i;
      continue;
    }
    AttrSpan a;
    size_t n = i;
    while (i < t.size() && !IsSpace(t[i]) && t[i] != '=') ++i;
    a.name = std::string_view(t).substr(n, i - n);
    while (i < t.size() && t[i] != '\'' && t[i] != '"') ++i;
    if (i >= t.size()) break;
    a.quote = t[i];
    a.value_begin = ++i;
    while (i < t.size() && t[i] != a.quote) ++i;
    a.value_end = i++;
    tag.attrs.push_back(a);
  }
  tag.close = tag.after = t.size();
  return tag;
}

/// Where the start tag at `name_offset` ends (StartTag::after) and whether it closes itself:
/// ScanStartTag's walk without collecting the attributes.
std::pair<size_t, bool> SkipStartTag(const std::string& t, size_t name_offset) {
  size_t i = name_offset;
  while (i < t.size() && !IsSpace(t[i]) && t[i] != '>' && t[i] != '/') ++i;
  while (i < t.size()) {
    char c = t[i];
    if (c == '>') return {i + 1, false};
    if (c == '/' && i + 1 < t.size() && t[i + 1] == '>') return {i + 2, true};
    if (IsSpace(c)) {
      ++i;
      continue;
    }
    while (i < t.size() && !IsSpace(t[i]) && t[i] != '=') ++i;
    while (i < t.size() && t[i] != '\'' && t[i] != '"') ++i;
    if (i >= t.size()) break;
    char quote = t[i++];
    while (i < t.size() && t[i] != quote) ++i;
    ++i;
  }
  return {t.size(), false};
}

/// The name offset of the first child element of an element whose content starts at `from`,
/// or nullopt when it has none (ScanElement's children.front(), without scanning them all).
/// When a comment, a CDATA section or a processing instruction starts at `lt` (a '<'), the
/// offset after it (the end of the text when it is not closed); else nullopt.
std::optional<size_t> SkipMarkup(const std::string& t, size_t lt) {
  for (const auto& [open, close] : {std::pair<std::string_view, std::string_view>{"<!--", "-->"},
                                    {"<![CDATA[", "]]>"},
                                    {"<?", "?>"}}) {
    if (t.compare(lt, open.size(), open) != 0) continue;
    size_t x = t.find(close, lt + open.size());
    return x == std::string::npos ? t.size() : x + close.size();
  }
  return std::nullopt;
}

std::optional<size_t> FirstChild(const std::string& t, size_t from) {
  size_t i = from;
  while (i < t.size()) {
    size_t lt = t.find('<', i);
    if (lt == std::string::npos) return std::nullopt;
    if (std::optional<size_t> skipped = SkipMarkup(t, lt)) {
      i = *skipped;
    } else if (t.compare(lt, 2, "</") == 0) {
      return std::nullopt;
    } else {
      return lt + 1;
    }
  }
  return std::nullopt;
}

struct Element {
  StartTag start;
  size_t end_tag = 0;  // the '<' of the end tag (== start.after for self-closing)
  size_t end = 0;      // first character after the element
  std::vector<size_t> children;  // name offsets of direct child elements
};

Element ScanElement(const std::string& t, size_t name_offset) {
  Element e;
  e.start = ScanStartTag(t, name_offset);
  if (e.start.self_closing) {
    e.end_tag = e.end = e.start.after;
    return e;
  }
  int depth = 0;
  size_t i = e.start.after;
  while (i < t.size()) {
    size_t lt = t.find('<', i);
    if (lt == std::string::npos) break;
    if (std::optional<size_t> skipped = SkipMarkup(t, lt)) {
      i = *skipped;
    } else if (t.compare(lt, 2, "</") == 0) {
      size_t gt = t.find('>', lt);
      if (depth == 0) {
        e.end_tag = lt;
        e.end = gt == std::string::npos ? t.size() : gt + 1;
        return e;
      }
      --depth;
      i = gt == std::string::npos ? t.size() : gt + 1;
    } else {
      auto [after, self_closing] = SkipStartTag(t, lt + 1);
      if (depth == 0) e.children.push_back(lt + 1);
      if (!self_closing) ++depth;
      i = after;
    }
  }
  e.end_tag = e.end = t.size();
  return e;
}

std::string_view NameAt(const std::string& t, size_t name_offset) {
  size_t i = name_offset;
  while (i < t.size() && !IsSpace(t[i]) && t[i] != '>' && t[i] != '/') ++i;
  return std::string_view(t).substr(name_offset, i - name_offset);
}

/// Whitespace before the element on its line, or nullopt when something else precedes it.
std::optional<std::string> IndentOf(const std::string& t, size_t lt) {
  size_t i = lt;
  while (i > 0 && (t[i - 1] == ' ' || t[i - 1] == '\t')) --i;
  if (i > 0 && t[i - 1] != '\n') return std::nullopt;
  return t.substr(i, lt - i);
}

// ---------------------------------------------------------------------------------------------
// Edits

struct Splice {
  size_t pos;
  size_t remove;
  std::string text;
  int seq;
};

class Editor {
 public:
  explicit Editor(const std::string& text) : t_(text) {}
  void Insert(size_t pos, std::string s) { splices_.push_back({pos, 0, std::move(s), seq_++}); }
  void Replace(size_t pos, size_t len, std::string s) {
    splices_.push_back({pos, len, std::move(s), seq_++});
  }
  /// The text with every edit applied, in one pass over it: cost linear in the text and the
  /// edits. At one position, insertions come in the order they were made, then a replacement,
  /// so that text inserted there lands before the replaced range instead of being eaten by it.
  /// Edits never overlap a replaced range (the writer replaces attribute values and whole
  /// elements it does not also edit inside).
  std::string Apply() {
    std::sort(splices_.begin(), splices_.end(), [](const Splice& a, const Splice& b) {
      if (a.pos != b.pos) return a.pos < b.pos;
      if ((a.remove > 0) != (b.remove > 0)) return b.remove > 0;
      return a.seq < b.seq;
    });
    size_t size = t_.size();
    for (const Splice& s : splices_) size += s.text.size();
    std::string out;
    out.reserve(size);
    size_t at = 0;
    for (const Splice& s : splices_) {
      if (s.pos < at) continue;  // inside a range already replaced
      out.append(t_, at, s.pos - at);
      out += s.text;
      at = s.pos + s.remove;
    }
    out.append(t_, at, std::string::npos);
    return out;
  }

 private:
  const std::string& t_;
  std::vector<Splice> splices_;
  int seq_ = 0;
};

/// Appends `v` escaped for an attribute value in `quote`s.
void AppendEscapedAttr(std::string& out, std::string_view v, char quote) {
  if (v.find_first_of("&<>'\"") == std::string_view::npos) {
    out += v;
    return;
  }
  for (char c : v) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += quote == '\'' ? "&apos;" : "'"; break;
      case '"': out += quote == '"' ? "&quot;" : "\""; break;
      default: out += c;
    }
  }
}

std::string EscapeAttr(std::string_view v, char quote) {
  std::string out;
  AppendEscapedAttr(out, v, quote);
  return out;
}

void AppendEscapedText(std::string& out, std::string_view v) {
  if (v.find_first_of("&<>") == std::string_view::npos) {
    out += v;
    return;
  }
  for (char c : v) {
    if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else {
      out += c;
    }
  }
}

// libvirt's attribute and child order, so that new elements read like libvirt's output.
int AttrRank(std::string_view name) {
  static const char* kOrder[] = {"type", "index", "model", "name", "chassisNr", "chassis", "port",
                                 "busNr", "hotplug", "domain", "bus", "slot", "function"};
  for (size_t i = 0; i < std::size(kOrder); ++i) {
    if (name == kOrder[i]) return static_cast<int>(i);
  }
  return 100;
}

int ChildRank(std::string_view name) {
  static const char* kOrder[] = {"driver", "source", "model", "target", "node", "alias", "address"};
  for (size_t i = 0; i < std::size(kOrder); ++i) {
    if (name == kOrder[i]) return static_cast<int>(i);
  }
  return 50;
}

/// A tree built from "path -> value" properties, for generating new elements. Names and values
/// point into the properties (and the literal names), which outlive the tree.
struct Node {
  std::string_view name;
  std::vector<std::pair<std::string_view, std::string_view>> attrs;
  std::string_view text;
  std::vector<Node> children;
};

Node& ChildNode(Node& n, std::string_view name) {
  for (Node& c : n.children) {
    if (c.name == name) return c;
  }
  n.children.push_back(Node{name, {}, {}, {}});
  return n.children.back();
}

void AddPath(Node& n, std::string_view path, std::string_view value) {
  if (path.empty()) return;
  if (path[0] == '@') {
    n.attrs.emplace_back(path.substr(1), value);
    return;
  }
  size_t slash = path.find('/');
  if (slash == std::string_view::npos) {
    ChildNode(n, path).text = value;
    return;
  }
  AddPath(ChildNode(n, path.substr(0, slash)), path.substr(slash + 1), value);
}

/// Stable insertion sort by `rank` of each element: a node has a handful of attributes and
/// children, and std::stable_sort would allocate a buffer for them.
template <class T, class RankFn>
void SortByRank(std::vector<T>& v, RankFn rank) {
  for (size_t i = 1; i < v.size(); ++i) {
    int r = rank(v[i]);
    if (rank(v[i - 1]) <= r) continue;
    T moved = std::move(v[i]);
    size_t j = i;
    while (j > 0 && rank(v[j - 1]) > r) {
      v[j] = std::move(v[j - 1]);
      --j;
    }
    v[j] = std::move(moved);
  }
}

void SortNode(Node& n) {
  SortByRank(n.attrs, [](const auto& a) { return AttrRank(a.first); });
  SortByRank(n.children, [](const Node& c) { return ChildRank(c.name); });
  for (Node& c : n.children) SortNode(c);
}

/// Appends a node; `indent` is its own indentation, `unit` one level. An empty unit with
/// `inline_style` writes everything on one line.
void RenderTo(std::string& out, const Node& n, std::string_view indent, std::string_view unit,
              bool inline_style, char quote, std::string_view raw_tail = {}) {
  out += '<';
  out += n.name;
  for (const auto& [k, v] : n.attrs) {
    out += ' ';
    out += k;
    out += '=';
    out += quote;
    AppendEscapedAttr(out, v, quote);
    out += quote;
  }
  if (n.children.empty() && n.text.empty() && raw_tail.empty()) {
    out += "/>";
    return;
  }
  out += '>';
  if (n.children.empty() && raw_tail.empty()) {
    AppendEscapedText(out, n.text);
  } else {
    std::string child_indent;
    if (!inline_style) {
      child_indent.reserve(indent.size() + unit.size());
      child_indent += indent;
      child_indent += unit;
    }
    for (const Node& c : n.children) {
      if (!inline_style) {
        out += '\n';
        out += child_indent;
      }
      RenderTo(out, c, child_indent, unit, inline_style, quote);
    }
    if (!raw_tail.empty()) {
      if (!inline_style) {
        out += '\n';
        out += child_indent;
      }
      out += raw_tail;
    }
    if (!inline_style) {
      out += '\n';
      out += indent;
    }
  }
  out += "</";
  out += n.name;
  out += '>';
}

std::string Render(const Node& n, std::string_view indent, std::string_view unit, bool inline_style,
                   char quote, std::string_view raw_tail = {}) {
  std::string out;
  RenderTo(out, n, indent, unit, inline_style, quote, raw_tail);
  return out;
}

bool SameAddress(const Address& a, const Address& b) {
  if (a.type != b.type) return false;
  if (a.type == AddressType::kNone) return true;
  if (a.type == AddressType::kPci) return a.pci == b.pci && a.multifunction == b.multifunction;
  return a.attrs == b.attrs && a.type_name == b.type_name;
}

/// What orders the devices the plan adds, and places them among the input's (libvirt's list
/// order, section 6.1): read once per device, not again by every comparison.
struct ListKey {
  int rank = 0;             // OutputRank of the tag
  bool controller = false;  // a <controller>
  std::string_view type;    // @type, "" when absent
  uint32_t index = 0;       // @index, 0 when absent or not a number
};

class Writer {
 public:
  Writer(const Domain& in, const Plan& plan, const Catalog& cat)
      : in_(in), plan_(plan), cat_(cat), t_(in.text), ed_(in.text) {}

  Result<std::string> Run();

 private:
  void EditDevice(const Device& before, const Device& after);
  void SetAttr(size_t name_offset, std::string_view attr, std::string_view value);
  /// Adds (name, xml) children to an element, each before the first child of a later kind;
  /// `scanned` is the element when the caller scanned it already.
  void AddChildren(size_t name_offset, const std::vector<std::pair<std::string, std::string>>& kids,
                   const Element* scanned = nullptr);
  void InsertNewDevice(const Device& dev, const ListKey& key);
  void FillEmptyDevices(const std::vector<const Device*>& added);
  /// Appends the new element of `dev`.
  void AppendDeviceXml(std::string& out, const Device& dev, std::string_view indent,
                       bool inline_style);
  std::string DeviceXml(const Device& dev, std::string_view indent, bool inline_style) {
    std::string out;
    AppendDeviceXml(out, dev, indent, inline_style);
    return out;
  }
  char QuoteOf(size_t name_offset) const;
  int OutputRank(const std::string& tag) const;
  ListKey KeyOf(const Device& dev) const;
  /// ListKey of every input device, computed once for all devices the plan adds.
  const std::vector<ListKey>& InputKeys();
  /// Where input device `i`'s element ends and its line's indentation (nullopt: none), scanned
  /// once however many new devices go after it.
  const std::pair<size_t, std::optional<std::string>>& EndOf(size_t i);

  const Domain& in_;
  const Plan& plan_;
  const Catalog& cat_;
  const std::string& t_;
  Editor ed_;
  std::string unit_ = "  ";
  char quote_ = '\'';
  std::vector<ListKey> input_keys_;
  std::vector<std::optional<std::pair<size_t, std::optional<std::string>>>> input_ends_;
};

char Writer::QuoteOf(size_t name_offset) const {
  // The first attribute's quote: the walk of ScanStartTag up to the first value.
  size_t i = name_offset;
  while (i < t_.size() && !IsSpace(t_[i]) && t_[i] != '>' && t_[i] != '/') ++i;
  while (i < t_.size()) {
    char c = t_[i];
    if (c == '>' || (c == '/' && i + 1 < t_.size() && t_[i + 1] == '>')) return quote_;
    if (c == '\'' || c == '"') return c;
    ++i;
  }
  return quote_;
}

int Writer::OutputRank(const std::string& tag) const {
  auto it = std::find(cat_.output_order.begin(), cat_.output_order.end(), tag);
  return it == cat_.output_order.end() ? static_cast<int>(cat_.output_order.size())
                                       : static_cast<int>(it - cat_.output_order.begin());
}

ListKey Writer::KeyOf(const Device& dev) const {
  ListKey k;
  k.rank = OutputRank(dev.tag);
  k.controller = dev.tag == "controller";
  if (const std::string* type = dev.Get("@type")) k.type = *type;
  const std::string* index = dev.Get("@index");
  k.index = index ? ParseDecimal(*index).value_or(0) : 0;
  return k;
}

const std::vector<ListKey>& Writer::InputKeys() {
  if (input_keys_.size() != in_.devices.size()) {
    input_keys_.clear();
    input_keys_.reserve(in_.devices.size());
    for (const Device& d : in_.devices) input_keys_.push_back(KeyOf(d));
  }
  return input_keys_;
}

const std::pair<size_t, std::optional<std::string>>& Writer::EndOf(size_t i) {
  if (input_ends_.size() != in_.devices.size()) input_ends_.resize(in_.devices.size());
  if (!input_ends_[i]) {
    Element e = ScanElement(t_, in_.devices[i].offset);
    input_ends_[i].emplace(e.end, IndentOf(t_, e.start.lt));
  }
  return *input_ends_[i];
}

void Writer::SetAttr(size_t name_offset, std::string_view attr, std::string_view value) {
  StartTag tag = ScanStartTag(t_, name_offset);
  char q = tag.attrs.empty() ? quote_ : tag.attrs.front().quote;
  for (const AttrSpan& a : tag.attrs) {
    if (a.name == attr) {
      ed_.Replace(a.value_begin, a.value_end - a.value_begin, EscapeAttr(value, a.quote));
      return;
    }
  }
  size_t pos = tag.attrs.empty() ? tag.name_end : tag.attrs.back().value_end + 1;
  std::string text = " ";
  text += attr;
  text += '=';
  text += q;
  AppendEscapedAttr(text, value, q);
  text += q;
  ed_.Insert(pos, std::move(text));
}

void Writer::AddChildren(size_t name_offset,
                         const std::vector<std::pair<std::string, std::string>>& kids,
                         const Element* scanned) {
  if (kids.empty()) return;
  std::optional<Element> own;
  if (!scanned) own = ScanElement(t_, name_offset);
  const Element& e = scanned ? *scanned : *own;
  std::optional<std::string> indent = IndentOf(t_, e.start.lt);
  if (e.start.self_closing) {
    // <x a='1'/>  ->  <x a='1'>CHILDREN</x>, on lines of their own when x has a line of its own.
    std::string_view name = NameAt(t_, name_offset);
    std::string body = ">";
    for (const auto& [kid, xml] : kids) {
      if (indent) {
        body += '\n';
        body += *indent;
        body += unit_;
      }
      body += xml;
    }
    if (indent) {
      body += '\n';
      body += *indent;
    }
    body += "</";
    body += name;
    body += '>';
    ed_.Replace(e.start.close, e.start.after - e.start.close, std::move(body));
    return;
  }
  bool multiline = t_.find('\n', e.start.after) < e.end_tag;
  std::string child_indent = indent ? *indent + unit_ : std::string();
  if (!e.children.empty()) {
    std::optional<std::string> ci = IndentOf(t_, e.children.front() - 1);
    if (ci) child_indent = *ci;
  }
  for (const auto& [kid, xml] : kids) {
    // Before the first child of a later kind (alias, address), else at the end.
    bool placed = false;
    for (size_t c : e.children) {
      std::string_view cname = NameAt(t_, c);
      if ((cname == "alias" || cname == "address") && ChildRank(cname) > ChildRank(kid)) {
        ed_.Insert(c - 1, multiline ? xml + "\n" + child_indent : xml);
        placed = true;
        break;
      }
    }
    if (placed) continue;
    if (multiline) {
      size_t ws = e.end_tag;
      while (ws > e.start.after && IsSpace(t_[ws - 1])) --ws;
      ed_.Insert(ws, "\n" + child_indent + xml);
    } else {
      ed_.Insert(e.end_tag, xml);
    }
  }
}

void Writer::EditDevice(const Device& before, const Device& after) {
  // An unchanged device (most of a planned domain's) costs no scan of its text.
  std::optional<char> quote;
  auto q = [&] {
    if (!quote) quote = QuoteOf(before.offset);
    return *quote;
  };
  std::optional<Element> scanned;
  auto element = [&]() -> const Element& {
    if (!scanned) scanned = ScanElement(t_, before.offset);
    return *scanned;
  };
  // Attributes the plan set or changed, grouped by the child element they live on. Both
  // property lists are sorted by path: one walk over the two finds what changed.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> new_children;
  auto old_it = before.props.begin();
  for (const auto& [path, value] : after.props) {
    while (old_it != before.props.end() && old_it->first < path) ++old_it;
    const std::string* old =
        old_it != before.props.end() && old_it->first == path ? &old_it->second : nullptr;
    if (old && *old == value) continue;
    if (!path.empty() && path.back() == '/') continue;
    if (path[0] == '@') {
      SetAttr(before.offset, std::string_view(path).substr(1), value);
      continue;
    }
    size_t slash = path.find('/');
    std::string child = path.substr(0, slash);
    std::string rest = slash == std::string::npos ? std::string() : path.substr(slash + 1);
    if (before.Has(child + "/") && !rest.empty() && rest[0] == '@' &&
        rest.find('/') == std::string::npos) {
      // Find the child's offset.
      for (size_t c : element().children) {
        if (NameAt(t_, c) == child) {
          SetAttr(c, std::string_view(rest).substr(1), value);
          break;
        }
      }
      continue;
    }
    new_children[child].emplace_back(rest, value);
  }
  std::vector<std::pair<std::string, std::string>> kids;
  for (auto& [child, paths] : new_children) {
    Node n{child, {}, {}, {}};
    for (const auto& [rest, value] : paths) AddPath(n, rest, value);
    SortNode(n);
    kids.emplace_back(child, Render(n, "", "", true, q()));
  }
  std::stable_sort(kids.begin(), kids.end(), [](const auto& a, const auto& b) {
    return ChildRank(a.first) < ChildRank(b.first);
  });
  if (after.address.type == AddressType::kNone && before.address.type != AddressType::kNone) {
    // An address libvirt drops: the element goes, with the indentation of its line.
    for (size_t c : element().children) {
      if (NameAt(t_, c) != "address") continue;
      Element a = ScanElement(t_, c);
      size_t from = a.start.lt;
      size_t line = t_.rfind('\n', from - 1);
      if (line != std::string::npos &&
          t_.find_first_not_of(" \t", line + 1) == from) {
        from = line;
      }
      ed_.Replace(from, a.end - from, "");
    }
    AddChildren(before.offset, kids, &element());
    return;
  }
  if (SameAddress(before.address, after.address) || after.address.type == AddressType::kNone) {
    AddChildren(before.offset, kids, scanned ? &*scanned : nullptr);
    return;
  }
  for (size_t c : element().children) {
    if (NameAt(t_, c) != "address") continue;
    if (before.address.type == AddressType::kPci && after.address.type == AddressType::kPci &&
        before.address.pci == after.address.pci) {
      SetAttr(c, "multifunction", after.address.multifunction);
      AddChildren(before.offset, kids, &element());
      return;
    }
    Element a = ScanElement(t_, c);
    ed_.Replace(a.start.lt, a.end - a.start.lt, AddressXml(after.address, QuoteOf(c)));
    AddChildren(before.offset, kids, &element());
    return;
  }
  kids.emplace_back("address", AddressXml(after.address, q()));
  AddChildren(before.offset, kids, &element());
}

void Writer::AppendDeviceXml(std::string& out, const Device& dev, std::string_view indent,
                             bool inline_style) {
  Node n{dev.tag, {}, {}, {}};
  for (const auto& [path, value] : dev.props) {
    if (!path.empty() && path.back() == '/') continue;
    AddPath(n, path, value);
  }
  SortNode(n);
  std::string addr = dev.address.type == AddressType::kNone ? std::string()
                                                            : AddressXml(dev.address, quote_);
  RenderTo(out, n, indent, inline_style ? std::string_view() : std::string_view(unit_),
           inline_style, quote_, addr);
}

void Writer::InsertNewDevice(const Device& dev, const ListKey& key) {
  // Where libvirt lists it: after the last device of an earlier kind; controllers after the
  // last controller of the same type with a lower index (section 6.1).
  int rank = key.rank;
  size_t after = std::string::npos;
  bool same_type_seen = false;
  const std::vector<ListKey>& keys = InputKeys();
  for (size_t i = 0; i < in_.devices.size(); ++i) {
    const ListKey& d = keys[i];
    if (d.rank < rank) {
      if (!same_type_seen) after = i;
      continue;
    }
    if (d.rank > rank) continue;
    if (key.controller) {
      bool same = d.type == key.type;
      if (same && d.index <= key.index) {
        after = i;
        same_type_seen = true;
      } else if (!same && !same_type_seen) {
        after = i;
      }
    } else {
      after = i;
    }
  }
  size_t pos;
  std::optional<std::string> indent;
  if (after != std::string::npos) {
    const auto& [end, own] = EndOf(after);
    pos = end;
    indent = own;
  } else {
    // First child of <devices> (after <emulator>, if any).
    Element devices = ScanElement(t_, in_.devices_offset);
    pos = devices.start.after;
    for (size_t c : devices.children) {
      if (NameAt(t_, c) == "emulator") pos = ScanElement(t_, c).end;
    }
    std::optional<std::string> di = IndentOf(t_, devices.start.lt);
    if (di) indent = *di + unit_;
  }
  std::string xml;
  if (indent) {
    xml += '\n';
    xml += *indent;
  }
  AppendDeviceXml(xml, dev, indent ? *indent : std::string_view(), !indent);
  ed_.Insert(pos, std::move(xml));
}

Result<std::string> Writer::Run() {
  // Indentation unit: the <devices> element's children relative to it.
  if (in_.devices_offset != std::string::npos) {
    StartTag devices = ScanStartTag(t_, in_.devices_offset);
    std::optional<std::string> di = IndentOf(t_, devices.lt);
    std::optional<size_t> first =
        devices.self_closing ? std::nullopt : FirstChild(t_, devices.after);
    if (di && first) {
      std::optional<std::string> ci = IndentOf(t_, *first - 1);
      if (ci && ci->size() > di->size() && ci->compare(0, di->size(), *di) == 0) {
        unit_ = ci->substr(di->size());
      }
    }
    StartTag root = ScanStartTag(t_, t_.find("<domain") + 1);
    if (!root.attrs.empty()) quote_ = root.attrs.front().quote;
  }
  // A <type> without machine= gets the machine type the plan was made for, as libvirt writes it.
  if (in_.machine.empty() && !plan_.machine.empty() && in_.os_type_offset != std::string::npos) {
    SetAttr(in_.os_type_offset, "machine", plan_.machine);
  }
  for (size_t i = 0; i < plan_.devices.size(); ++i) {
    const Device& d = plan_.devices[i];
    if (d.source >= 0) {
      EditDevice(in_.devices[d.source], d);
    }
  }
  // New devices sorted the way libvirt lists them, so that equal insertion points keep order.
  std::vector<std::pair<ListKey, const Device*>> added;
  for (const Device& d : plan_.devices) {
    if (d.source < 0) added.emplace_back(KeyOf(d), &d);
  }
  std::stable_sort(added.begin(), added.end(), [](const auto& a, const auto& b) {
    const ListKey& ka = a.first;
    const ListKey& kb = b.first;
    if (ka.rank != kb.rank) return ka.rank < kb.rank;
    if (ka.controller && ka.type == kb.type) return ka.index < kb.index;
    return false;
  });
  bool empty = in_.devices_offset == std::string::npos ||
               ScanStartTag(t_, in_.devices_offset).self_closing;
  if (empty && !added.empty()) {
    std::vector<const Device*> devices;
    devices.reserve(added.size());
    for (const auto& [key, d] : added) devices.push_back(d);
    FillEmptyDevices(devices);
  } else {
    for (const auto& [key, d] : added) InsertNewDevice(*d, key);
  }
  return ed_.Apply();
}

void Writer::FillEmptyDevices(const std::vector<const Device*>& added) {
  // A self-closing <devices/> is opened once for all the new devices; a domain without
  // <devices> (libvirt accepts it and adds its defaults) gets one after its last child. Each
  // device has a line of its own when the domain's elements have.
  Element root = ScanElement(t_, in_.root_offset);
  bool present = in_.devices_offset != std::string::npos;
  size_t lt = present ? ScanStartTag(t_, in_.devices_offset).lt
              : root.children.empty() ? root.start.lt
                                      : root.children.back() - 1;
  std::optional<std::string> outer = IndentOf(t_, lt);
  if (!present && root.children.empty()) outer = outer ? std::optional(*outer + unit_) : outer;
  std::string inner = outer ? *outer + unit_ : std::string();
  std::string body;
  for (const Device* d : added) {
    body += (outer ? "\n" + inner : std::string()) + DeviceXml(*d, inner, !outer);
  }
  if (outer) body += "\n" + *outer;
  if (present) {
    StartTag devices = ScanStartTag(t_, in_.devices_offset);
    ed_.Replace(devices.close, devices.after - devices.close, ">" + body + "</devices>");
  } else {
    size_t at = root.children.empty() ? root.start.after : ScanElement(t_, root.children.back()).end;
    ed_.Insert(at, (outer ? "\n" + *outer : std::string()) + "<devices>" + body + "</devices>");
  }
}

}  // namespace

namespace {

/// Appends ` key=QvalueQ`, the value escaped.
void AppendAttr(std::string& out, std::string_view key, const std::string& value, char q) {
  out += ' ';
  out += key;
  out += '=';
  out += q;
  if (value.find_first_of("&<>'\"") == std::string::npos) {
    out += value;
  } else {
    out += EscapeAttr(value, q);
  }
  out += q;
}

/// Appends ` key=Q0x..Q`: `value` in lower-case hex, at least `digits` digits.
void AppendHexAttr(std::string& out, std::string_view key, uint32_t value, int digits, char q) {
  static constexpr char kHex[] = "0123456789abcdef";
  char digits_buf[8];
  int n = 0;
  do {
    digits_buf[n++] = kHex[value & 0xf];
    value >>= 4;
  } while (value != 0 && n < 8);
  while (n < digits) digits_buf[n++] = '0';
  // " key='0x" + digits + "'" assembled here, appended at once.
  char buf[48];
  size_t len = 0;
  buf[len++] = ' ';
  size_t k = std::min(key.size(), sizeof(buf) - 16);
  key.copy(buf + len, k);
  len += k;
  buf[len++] = '=';
  buf[len++] = q;
  buf[len++] = '0';
  buf[len++] = 'x';
  while (n > 0) buf[len++] = digits_buf[--n];
  buf[len++] = q;
  out.append(buf, len);
}

}  // namespace

std::string AddressXml(const Address& a, char q) {
  std::string out;
  out.reserve(96);
  out += "<address";
  AppendAttr(out, "type", a.type_name, q);
  if (a.type == AddressType::kPci) {
    AppendHexAttr(out, "domain", a.pci.domain, 4, q);
    AppendHexAttr(out, "bus", a.pci.bus, 2, q);
    AppendHexAttr(out, "slot", a.pci.slot, 2, q);
    AppendHexAttr(out, "function", a.pci.function, 1, q);
    if (!a.multifunction.empty()) AppendAttr(out, "multifunction", a.multifunction, q);
  } else {
    static const char* kOrder[] = {"controller", "bus", "target", "unit", "port", "slot"};
    for (const char* k : kOrder) {
      auto it = a.attrs.find(k);
      if (it != a.attrs.end()) AppendAttr(out, k, it->second, q);
    }
    for (const auto& [name, value] : a.attrs) {
      // A plain reference for the lambda: clang 14 cannot capture a structured binding.
      const std::string& k = name;
      if (std::find_if(std::begin(kOrder), std::end(kOrder),
                       [&](const char* o) { return k == o; }) == std::end(kOrder)) {
        AppendAttr(out, k, value, q);
      }
    }
  }
  out += "/>";
  return out;
}

Result<std::string> WriteDomain(const Domain& input, const Plan& plan, const Catalog& catalog) {
  return Writer(input, plan, catalog).Run();
}

bool WritesNothing(const Domain& input, const Plan& plan) {
  // What Writer::Run edits: the machine attribute, changed devices, added devices.
  if (input.machine.empty() && !plan.machine.empty() && input.os_type_offset != std::string::npos) {
    return false;
  }
  for (const Device& d : plan.devices) {
    if (d.source < 0) return false;
    const Device& before = input.devices[static_cast<size_t>(d.source)];
    if (d.props != before.props || d.address != before.address) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Attach and detach: one device element added or removed, every other byte kept.

namespace {

/// `element` with its first line from the '<' on and every later line re-indented: the columns
/// the element's first line had in its own file are replaced by `indent`.
std::string Reindent(const std::string& element, size_t lt, const std::string& indent) {
  size_t line_start = element.rfind('\n', lt);
  size_t column = lt - (line_start == std::string::npos ? 0 : line_start + 1);
  size_t end = ScanElement(element, lt + 1).end;
  std::string body = element.substr(lt, end - lt);
  std::string out;
  size_t pos = 0;
  bool first = true;
  while (pos <= body.size()) {
    size_t nl = body.find('\n', pos);
    std::string line = body.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!first) {
      size_t strip = 0;
      while (strip < column && strip < line.size() && (line[strip] == ' ' || line[strip] == '\t')) {
        ++strip;
      }
      out += "\n" + indent + line.substr(strip);
    } else {
      out += line;
    }
    first = false;
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return out;
}

int Rank(const Catalog& cat, const std::string& tag) {
  auto it = std::find(cat.output_order.begin(), cat.output_order.end(), tag);
  return static_cast<int>(it - cat.output_order.begin());
}

}  // namespace

Result<std::string> InsertDeviceText(const Domain& input, const Device& device,
                                     const std::string& element, const Catalog& catalog,
                                     std::pair<size_t, size_t>* inserted) {
  if (inserted) *inserted = {std::string::npos, 0};
  if (input.devices_offset == std::string::npos) {
    return Error(Rule::kNotADomain, "the domain has no <devices> element");
  }
  const std::string& t = input.text;
  const std::vector<Device>& devs = input.devices;
  // libvirt 9.0's attach-device --config (tests/attach): a disk goes before the first disk of
  // its bus with a higher index, else after the last disk of its bus, else after the last disk;
  // a controller after the last controller of its type, else after the last controller; any
  // other device after the last of its element.
  int before = -1, after = -1;
  auto last = [&](auto pred) {
    int found = -1;
    for (size_t i = 0; i < devs.size(); ++i) {
      if (pred(devs[i])) found = static_cast<int>(i);
    }
    return found;
  };
  if (device.tag == "disk") {
    std::string bus = device.GetOr("target/@bus", "");
    int index = DiskNameIndex(device.GetOr("target/@dev", ""));
    for (size_t i = 0; i < devs.size() && before < 0; ++i) {
      if (devs[i].tag == "disk" && devs[i].Is("target/@bus", bus) &&
          DiskNameIndex(devs[i].GetOr("target/@dev", "")) > index) {
        before = static_cast<int>(i);
      }
    }
    if (before < 0)
      after = last([&](const Device& d) { return d.tag == "disk" && d.Is("target/@bus", bus); });
  } else if (device.tag == "controller") {
    std::string type = device.GetOr("@type", "");
    after = last([&](const Device& d) { return d.tag == "controller" && d.Is("@type", type); });
  }
  if (before < 0 && after < 0) after = last([&](const Device& d) { return d.tag == device.tag; });
  if (before < 0 && after < 0) {
    // The first of its kind: before the first device libvirt lists after it.
    int rank = Rank(catalog, device.tag);
    for (size_t i = 0; i < devs.size() && before < 0; ++i) {
      if (Rank(catalog, devs[i].tag) > rank) before = static_cast<int>(i);
    }
    if (before < 0 && !devs.empty()) after = static_cast<int>(devs.size()) - 1;
  }
  Editor ed(t);
  size_t lt = device.offset - 1;
  if (before >= 0 || after >= 0) {
    size_t ref = devs[before >= 0 ? before : after].offset;
    // A neighbour on a line of its own sets the indentation; one inside a line (a document
    // written on one line) gets the new element beside it, on the same line.
    std::optional<std::string> own = IndentOf(t, ref - 1);
    std::string xml = Reindent(element, lt, own.value_or(""));
    size_t pos = before >= 0 ? (own ? ref - 1 - own->size() : ref - 1) : ScanElement(t, ref).end;
    std::string text =
        before >= 0 ? (own ? *own + xml + "\n" : xml) : (own ? "\n" + *own + xml : xml);
    if (inserted) *inserted = {pos, pos + text.size()};
    ed.Insert(pos, std::move(text));
    return ed.Apply();
  }
  // An empty <devices>: the element becomes its only child.
  Element d = ScanElement(t, input.devices_offset);
  std::string outer = IndentOf(t, d.start.lt).value_or("  ");
  std::string indent = outer + "  ";
  std::string xml = Reindent(element, lt, indent);
  if (d.start.self_closing) {
    size_t slash = t.rfind('/', d.start.close);
    ed.Replace(slash, d.start.after - slash, ">\n" + indent + xml + "\n" + outer + "</devices>");
  } else {
    ed.Insert(d.end_tag, "\n" + indent + xml + "\n" + outer);
  }
  return ed.Apply();
}

std::string RemoveDevicesText(const Domain& input, const std::vector<size_t>& indexes) {
  const std::string& t = input.text;
  Editor ed(t);
  for (size_t index : indexes) {
    Element e = ScanElement(t, input.devices.at(index).offset);
    size_t from = e.start.lt, to = e.end;
    // Alone on its lines: the lines go too.
    std::optional<std::string> indent = IndentOf(t, from);
    size_t rest = to;
    while (rest < t.size() && (t[rest] == ' ' || t[rest] == '\t' || t[rest] == '\r')) ++rest;
    if (indent && (rest == t.size() || t[rest] == '\n')) {
      from -= indent->size();
      to = rest < t.size() ? rest + 1 : rest;
    }
    ed.Replace(from, to - from, "");
  }
  return ed.Apply();
}

}  // namespace pciplan

namespace pciplan {

std::string WithWishesText(const Domain& input, const Wishes& wishes) {
  const std::string& t = input.text;
  Editor ed(t);
  // The indentation unit: the first child of <domain>'s, else two spaces.
  Element root = ScanElement(t, input.root_offset);
  std::string unit = "  ";
  if (!root.children.empty()) {
    if (std::optional<std::string> i = IndentOf(t, root.children.front() - 1); i && !i->empty()) {
      unit = *i;
    }
  }
  if (input.wishes_offset != std::string::npos) {
    size_t lt = input.wishes_offset - 1;
    std::string indent = IndentOf(t, lt).value_or(unit + unit);
    ed.Replace(lt, ScanElement(t, input.wishes_offset).end - lt, WishesXml(wishes, indent, unit));
    return ed.Apply();
  }
  if (input.metadata_offset != std::string::npos) {
    Element m = ScanElement(t, input.metadata_offset);
    std::string indent = IndentOf(t, input.metadata_offset - 1).value_or(unit);
    std::string inner = indent + unit;
    if (m.start.self_closing) {
      ed.Replace(m.start.lt, m.end - m.start.lt,
                 "<metadata>\n" + inner + WishesXml(wishes, inner, unit) + "\n" + indent +
                     "</metadata>");
    } else {
      // Before the end tag, on a line of its own at the children's indentation.
      size_t line = m.end_tag;
      while (line > 0 && (t[line - 1] == ' ' || t[line - 1] == '\t')) --line;
      ed.Insert(line, (line > 0 && t[line - 1] == '\n' ? inner : "\n" + inner) +
                          WishesXml(wishes, inner, unit) + "\n" + (line == m.end_tag ? indent : ""));
    }
    return ed.Apply();
  }
  // A new <metadata> after the name, uuid, genid, title and description, where libvirt puts it.
  size_t after = root.start.after;
  for (size_t child : root.children) {
    std::string_view name = NameAt(t, child);
    if (name != "name" && name != "uuid" && name != "genid" && name != "title" &&
        name != "description") {
      break;
    }
    after = ScanElement(t, child).end;
  }
  std::string block = "<metadata>\n" + unit + unit + WishesXml(wishes, unit + unit, unit) + "\n" +
                      unit + "</metadata>";
  ed.Insert(after, "\n" + unit + block);
  return ed.Apply();
}

}  // namespace pciplan
