#include "pciplan/emit/domain_writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "pciplan/base/numbers.h"
#include "pciplan/plan/nonpci.h"

namespace pciplan {
namespace {

/// A vector of trivially copyable items whose first N live inside it: a writer's lists hold a
/// handful of items, and a heap allocation (with its free) costs more than writing them. Past N
/// the items move to the heap, as in a std::vector. Not copyable or movable (it may point into
/// itself).
template <class T, size_t N>
class SmallVector {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  SmallVector() = default;
  SmallVector(const SmallVector&) = delete;
  SmallVector& operator=(const SmallVector&) = delete;

  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T& back() { return data_[size_ - 1]; }
  void clear() { size_ = 0; }
  /// Shrinks to `n` items (n <= size()), or keeps `n` items written at Room() (n <= size() +
  /// the room made).
  void resize(size_t n) { size_ = n; }
  /// Room for `n` more items, written at the returned pointer, then counted by resize(): one
  /// check for all of them instead of one per push_back.
  T* Room(size_t n) {
    if (n > capacity_ - size_) Grow(size_ + n);
    return data_ + size_;
  }
  void push_back(const T& item) {
    if (size_ == capacity_) Grow(size_ + 1);
    data_[size_++] = item;
  }
  void append(const T* items, size_t n) {
    if (n > capacity_ - size_) Grow(size_ + n);
    std::memcpy(static_cast<void*>(data_ + size_), items, n * sizeof(T));
    size_ += n;
  }
  void assign(const T* first, const T* last) {
    clear();
    append(first, static_cast<size_t>(last - first));
  }

 private:
  void Grow(size_t need) {
    std::vector<T> bigger(std::max(need, 2 * capacity_));
    std::memcpy(static_cast<void*>(bigger.data()), data_, size_ * sizeof(T));
    heap_ = std::move(bigger);
    data_ = heap_.data();
    capacity_ = heap_.size();
  }

  // Raw storage: items are written before they are read, so none is constructed up front.
  alignas(T) unsigned char inline_[N * sizeof(T)];
  T* data_ = reinterpret_cast<T*>(inline_);
  size_t size_ = 0;
  size_t capacity_ = N;
  std::vector<T> heap_;
};

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
  char quote = 0;        // the first attribute's quote, 0 when none (ScanElement only)
  std::vector<AttrSpan> attrs;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/// Whether two property lists are equal (Props::operator==), compared inline.
bool SameProps(const Props& a, const Props& b) {
  if (a.size() != b.size()) return false;
  for (auto x = a.begin(), y = b.begin(); x != a.end(); ++x, ++y) {
    if (!SameText(x->first, y->first) || !SameText(x->second, y->second)) return false;
  }
  return true;
}

/// Scans the start tag at `name_offset` into `tag`, whose attribute list keeps its capacity.
void ScanStartTagInto(const std::string& t, size_t name_offset, StartTag& tag) {
  tag.attrs.clear();
  tag.self_closing = false;
  tag.lt = name_offset - 1;
  size_t i = name_offset;
  while (i < t.size() && !IsSpace(t[i]) && t[i] != '>' && t[i] != '/') ++i;
  tag.name_end = i;
  while (i < t.size()) {
    char c = t[i];
    if (c == '>') {
      tag.close = i;
      tag.after = i + 1;
      return;
    }
    if (c == '/' && i + 1 < t.size() && t[i + 1] == '>') {
      tag.close = i;
      tag.after = i + 2;
      tag.self_closing = true;
      return;
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
}

StartTag ScanStartTag(const std::string& t, size_t name_offset) {
  StartTag tag;
  ScanStartTagInto(t, name_offset, tag);
  return tag;
}

/// Where the start tag at `name_offset` ends (StartTag::after) and whether it closes itself:
/// ScanStartTag's walk without collecting the attributes.
/// Bytes that stop the walk over a start tag: the quotes and '>'.
constexpr std::array<bool, 256> kTagStops = [] {
  std::array<bool, 256> t{};
  t['\''] = t['"'] = t['>'] = true;
  return t;
}();

/// Where a start tag ends, whether it closes itself, the quote of its first attribute (0 when
/// it has none).
struct TagEnd {
  size_t after;
  bool self_closing;
  char quote;
};

TagEnd SkipStartTag(const std::string& t, size_t name_offset) {
  // The text is well-formed (it was parsed): the tag ends at the first '>' outside a quoted
  // value, and closes itself when a '/' comes right before it.
  const char* p = t.data();
  const size_t n = t.size();
  size_t i = name_offset;
  char quote = 0;
  while (i < n) {
    while (i < n && !kTagStops[static_cast<unsigned char>(p[i])]) ++i;
    if (i >= n) break;
    char c = p[i];
    if (c == '>') return {i + 1, p[i - 1] == '/', quote};
    if (c == '\'' || c == '"') {
      if (!quote) quote = c;
      const void* close = std::memchr(p + i + 1, c, n - i - 1);
      if (!close) break;
      i = static_cast<size_t>(static_cast<const char*>(close) - p);
    }
    ++i;
  }
  return {n, false, quote};
}

/// The quote of the first attribute of the start tag at `name_offset`, 0 when it has none:
/// ScanStartTag's walk up to its first attribute's value, collecting nothing.
char FirstAttrQuote(const std::string& t, size_t name_offset) {
  size_t i = name_offset;
  while (i < t.size() && !IsSpace(t[i]) && t[i] != '>' && t[i] != '/') ++i;
  while (i < t.size()) {
    char c = t[i];
    if (c == '>' || (c == '/' && i + 1 < t.size() && t[i + 1] == '>')) return 0;
    if (IsSpace(c)) {
      ++i;
      continue;
    }
    while (i < t.size() && !IsSpace(t[i]) && t[i] != '=') ++i;
    while (i < t.size() && t[i] != '\'' && t[i] != '"') ++i;
    return i < t.size() ? t[i] : 0;
  }
  return 0;
}

/// The name offset of the first child element of an element whose content starts at `from`,
/// or nullopt when it has none (ScanElement's children.front(), without scanning them all).
/// When a comment, a CDATA section or a processing instruction starts at `lt` (a '<'), the
/// offset after it (the end of the text when it is not closed); else nullopt.
std::optional<size_t> SkipMarkup(const std::string& t, size_t lt) {
  if (lt + 1 >= t.size() || (t[lt + 1] != '!' && t[lt + 1] != '?')) return std::nullopt;
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

/// Scans the element at `name_offset` into `e`, whose lists keep their capacity.
void ScanElementInto(const std::string& t, size_t name_offset, Element& e) {
  e.children.clear();
  // The start tag's place, not its attributes (ScanStartTag has them).
  e.start.attrs.clear();
  e.start.lt = name_offset - 1;
  e.start.name_end = name_offset;
  while (e.start.name_end < t.size() && !IsSpace(t[e.start.name_end]) &&
         t[e.start.name_end] != '>' && t[e.start.name_end] != '/') {
    ++e.start.name_end;
  }
  TagEnd end = SkipStartTag(t, name_offset);
  e.start.after = end.after;
  e.start.self_closing = end.self_closing;
  e.start.quote = end.quote;
  e.start.close = e.start.self_closing ? e.start.after - 2
                  : e.start.after <= t.size() && t[e.start.after - 1] == '>' ? e.start.after - 1
                                                                              : t.size();
  if (e.start.self_closing) {
    e.end_tag = e.end = e.start.after;
    return;
  }
  int depth = 0;
  size_t i = e.start.after;
  while (i < t.size()) {
    size_t lt = t.find('<', i);
    if (lt == std::string::npos) break;
    if (std::optional<size_t> skipped = SkipMarkup(t, lt)) {
      i = *skipped;
    } else if (lt + 1 < t.size() && t[lt + 1] == '/') {
      size_t gt = t.find('>', lt);
      if (depth == 0) {
        e.end_tag = lt;
        e.end = gt == std::string::npos ? t.size() : gt + 1;
        return;
      }
      --depth;
      i = gt == std::string::npos ? t.size() : gt + 1;
    } else {
      TagEnd child = SkipStartTag(t, lt + 1);
      if (depth == 0) e.children.push_back(lt + 1);
      if (!child.self_closing) ++depth;
      i = child.after;
    }
  }
  e.end_tag = e.end = t.size();
}

Element ScanElement(const std::string& t, size_t name_offset) {
  Element e;
  ScanElementInto(t, name_offset, e);
  return e;
}

/// Whether the element at `name_offset` is named `name`.
bool IsNameAt(const std::string& t, size_t name_offset, std::string_view name) {
  size_t end = name_offset + name.size();
  return end < t.size() && t.compare(name_offset, name.size(), name) == 0 &&
         (IsSpace(t[end]) || t[end] == '>' || t[end] == '/');
}

std::string_view NameAt(const std::string& t, size_t name_offset) {
  size_t i = name_offset;
  while (i < t.size() && !IsSpace(t[i]) && t[i] != '>' && t[i] != '/') ++i;
  return std::string_view(t).substr(name_offset, i - name_offset);
}

/// Whitespace before the element on its line, or nullopt when something else precedes it.
std::optional<std::string_view> IndentViewOf(const std::string& t, size_t lt) {
  size_t i = lt;
  while (i > 0 && (t[i - 1] == ' ' || t[i - 1] == '\t')) --i;
  if (i > 0 && t[i - 1] != '\n') return std::nullopt;
  return std::string_view(t).substr(i, lt - i);
}

std::optional<std::string> IndentOf(const std::string& t, size_t lt) {
  std::optional<std::string_view> v = IndentViewOf(t, lt);
  if (!v) return std::nullopt;
  return std::string(*v);
}

// ---------------------------------------------------------------------------------------------
// Edits

/// One edit: `remove` bytes at `pos` replaced by [begin, begin + size) of the editor's buffer.
struct Splice {
  size_t pos;
  size_t remove;
  size_t begin;
  size_t size;
  int seq;
};

class Editor {
 public:
  explicit Editor(const std::string& text) : t_(text) {}
  void Insert(size_t pos, std::string_view s) { Replace(pos, 0, s); }
  void Replace(size_t pos, size_t len, std::string_view s) {
    size_t begin = buf_.size();
    buf_ += s;
    ReplaceWithAppended(pos, len, begin);
  }
  /// Where new text goes: append to it, then insert (or replace with) what was appended since
  /// a mark (its size() before), no string made for each edit.
  std::string& buffer() { return buf_; }
  void InsertAppended(size_t pos, size_t mark) { ReplaceWithAppended(pos, 0, mark); }
  void ReplaceWithAppended(size_t pos, size_t len, size_t mark) {
    ReplaceWithRange(pos, len, mark, buf_.size() - mark);
  }
  /// Inserts [begin, begin + size) of buffer(), text appended to it earlier.
  void InsertRange(size_t pos, size_t begin, size_t size) { ReplaceWithRange(pos, 0, begin, size); }
  void ReplaceWithRange(size_t pos, size_t len, size_t begin, size_t size) {
    // An insertion right after the previous one, at its place, of the text that follows its
    // text in the buffer (devices added one after another) extends it.
    if (len == 0 && !splices_.empty()) {
      Splice& last = splices_.back();
      if (last.pos == pos && last.remove == 0 && last.begin + last.size == begin) {
        last.size += size;
        return;
      }
    }
    splices_.push_back({pos, len, begin, size, seq_++});
  }
  /// The text with every edit applied, in one pass over it: cost linear in the text and the
  /// edits. At one position, insertions come in the order they were made, then a replacement,
  /// so that text inserted there lands before the replaced range instead of being eaten by it.
  /// Edits never overlap a replaced range (the writer replaces attribute values and whole
  /// elements it does not also edit inside).
  std::string Apply() {
    auto before = [](const Splice& a, const Splice& b) {
      if (a.pos != b.pos) return a.pos < b.pos;
      if ((a.remove > 0) != (b.remove > 0)) return b.remove > 0;
      return a.seq < b.seq;
    };
    if (!std::is_sorted(splices_.begin(), splices_.end(), before)) {
      std::sort(splices_.begin(), splices_.end(), before);
    }
    std::string out;
    out.reserve(t_.size() + buf_.size());
    size_t at = 0;
    for (const Splice& s : splices_) {
      if (s.pos < at) continue;  // inside a range already replaced
      out.append(t_, at, s.pos - at);
      out.append(buf_, s.begin, s.size);
      at = s.pos + s.remove;
    }
    out.append(t_, at, std::string::npos);
    return out;
  }

 private:
  const std::string& t_;
  std::string buf_;
  SmallVector<Splice, 16> splices_;
  int seq_ = 0;
};

/// Characters escaped in attribute values (& < > ' ") and in text (& < >), by byte.
constexpr std::array<bool, 256> SpecialBytes(std::string_view chars) {
  std::array<bool, 256> t{};
  for (char c : chars) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kAttrSpecial = SpecialBytes("&<>'\"");
constexpr std::array<bool, 256> kTextSpecial = SpecialBytes("&<>");

bool NeedsEscape(std::string_view v, const std::array<bool, 256>& special) {
  for (char c : v) {
    if (special[static_cast<unsigned char>(c)]) return true;
  }
  return false;
}
bool NeedsAttrEscape(std::string_view v) { return NeedsEscape(v, kAttrSpecial); }

/// memcpy(to, from, n) as a few moves of fixed size when n is at most 16 (most names and
/// values are; a call to memcpy costs more than the copy).
[[gnu::always_inline]] inline void CopyShort(char* to, const char* from, size_t n) {
  if (n >= 8 && n <= 16) {
    std::memcpy(to, from, 8);
    std::memcpy(to + n - 8, from + n - 8, 8);
  } else if (n >= 4 && n < 8) {
    std::memcpy(to, from, 4);
    std::memcpy(to + n - 4, from + n - 4, 4);
  } else if (n >= 2 && n < 4) {
    std::memcpy(to, from, 2);
    std::memcpy(to + n - 2, from + n - 2, 2);
  } else if (n == 1) {
    *to = *from;
  } else if (n > 16) {
    std::memcpy(to, from, n);
  }
}

/// Appends to a string through a buffer of its own: new elements are written a few characters
/// at a time, and each append to a std::string is a call.
class Sink {
 public:
  explicit Sink(std::string& out) : out_(out) {}
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;
  ~Sink() { Flush(); }
  // Inlined: a call per character or name would cost more than the copy.
  [[gnu::always_inline]] void Put(char c) {
    if (n_ == kSize) Flush();
    buf_[n_++] = c;
  }
  [[gnu::always_inline]] void Put(std::string_view v) {
    if (v.size() > kSize - n_) return PutLong(v);
    CopyShort(buf_ + n_, v.data(), v.size());
    n_ += v.size();
  }
  /// Room for `size` characters written at the returned pointer, then Wrote(size) (at most
  /// kSize).
  char* Reserve(size_t size) {
    if (size > kSize - n_) Flush();
    return buf_ + n_;
  }
  void Wrote(size_t size) { n_ += size; }
  /// Characters written so far, in the string and in the buffer.
  size_t Position() const { return out_.size() + n_; }
  /// The string, holding what was written before the last Flush().
  const std::string& text() const { return out_; }
  void Flush() {
    out_.append(buf_, n_);
    n_ = 0;
  }
  static constexpr size_t kSize = 512;

 private:
  void PutLong(std::string_view v) {
    Flush();
    if (v.size() > kSize) {
      out_ += v;
      return;
    }
    std::memcpy(buf_, v.data(), v.size());
    n_ = v.size();
  }

  std::string& out_;
  size_t n_ = 0;
  char buf_[kSize];
};

void PutEscapedAttrSlow(Sink& out, std::string_view v, char quote);

/// Puts `v` escaped for an attribute value in `quote`s (inlined: most values need no escape).
[[gnu::always_inline]] inline void PutEscapedAttr(Sink& out, std::string_view v, char quote) {
  if (!NeedsAttrEscape(v)) {
    out.Put(v);
    return;
  }
  PutEscapedAttrSlow(out, v, quote);
}

void PutEscapedAttrSlow(Sink& out, std::string_view v, char quote) {
  for (char c : v) {
    switch (c) {
      case '&': out.Put("&amp;"); break;
      case '<': out.Put("&lt;"); break;
      case '>': out.Put("&gt;"); break;
      case '\'': out.Put(quote == '\'' ? "&apos;" : "'"); break;
      case '"': out.Put(quote == '"' ? "&quot;" : "\""); break;
      default: out.Put(c);
    }
  }
}

void PutEscapedText(Sink& out, std::string_view v) {
  if (!NeedsEscape(v, kTextSpecial)) {
    out.Put(v);
    return;
  }
  for (char c : v) {
    if (c == '&') {
      out.Put("&amp;");
    } else if (c == '<') {
      out.Put("&lt;");
    } else if (c == '>') {
      out.Put("&gt;");
    } else {
      out.Put(c);
    }
  }
}

/// Appends `v` escaped for an attribute value in `quote`s.
void AppendEscapedAttr(std::string& out, std::string_view v, char quote) {
  if (!NeedsAttrEscape(v)) {
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

/// name == lit, the length a constant: the bytes compared in a move or two, no call.
template <size_t N>
[[gnu::always_inline]] inline bool Is(std::string_view name, const char (&lit)[N]) {
  return name.size() == N - 1 && std::memcmp(name.data(), lit, N - 1) == 0;
}

// libvirt's attribute and child order, so that new elements read like libvirt's output: type,
// index, model, name, chassisNr, chassis, port, busNr, hotplug, domain, bus, slot, function,
// then any other (found by first letter, then one compare).
int AttrRank(std::string_view name) {
  if (name.empty()) return 100;
  switch (name[0]) {
    case 't': return Is(name, "type") ? 0 : 100;
    case 'i': return Is(name, "index") ? 1 : 100;
    case 'm': return Is(name, "model") ? 2 : 100;
    case 'n': return Is(name, "name") ? 3 : 100;
    case 'c': return Is(name, "chassisNr") ? 4 : Is(name, "chassis") ? 5 : 100;
    case 'p': return Is(name, "port") ? 6 : 100;
    case 'b': return Is(name, "busNr") ? 7 : Is(name, "bus") ? 10 : 100;
    case 'h': return Is(name, "hotplug") ? 8 : 100;
    case 'd': return Is(name, "domain") ? 9 : 100;
    case 's': return Is(name, "slot") ? 11 : 100;
    case 'f': return Is(name, "function") ? 12 : 100;
    default: return 100;
  }
}

// driver, source, model, target, node, alias, address, then any other.
int ChildRank(std::string_view name) {
  if (name.empty()) return 50;
  switch (name[0]) {
    case 'd': return Is(name, "driver") ? 0 : 50;
    case 's': return Is(name, "source") ? 1 : 50;
    case 'm': return Is(name, "model") ? 2 : 50;
    case 't': return Is(name, "target") ? 3 : 50;
    case 'n': return Is(name, "node") ? 4 : 50;
    case 'a': return Is(name, "alias") ? 5 : Is(name, "address") ? 6 : 50;
    default: return 50;
  }
}

/// Puts (appends) the XML of one address element (AddressXml).
void PutAddressXml(Sink& out, const Address& a, char q);
void AppendAddressXml(std::string& out, const Address& a, char q);

/// One property of an element to write: its path (below some prefix) and its value.
struct PathValue {
  std::string_view path;
  std::string_view value;
};

/// Writes new elements from "path -> value" properties sorted by path, straight to text: the
/// paths below an element's child "c/" are neighbours in that order, so no tree is built.
/// Attributes come in libvirt's order (AttrRank), children in ChildRank order, each order
/// stable, children in the order their first path has; a child's text only when it has no
/// children. Its lists are reused from one element to the next.
class ElementWriter {
 public:
  /// Appends element `name` made of `props` (all paths starting with `prefix` characters that
  /// the element's own paths do not include: 0 for a device, "c/".size() for its child c);
  /// `indent` is its own indentation, `unit` one level; an empty unit with `inline_style`
  /// writes everything on one line. `tail` (optional) is an address written as its last child;
  /// `lead` (optional) is written first, before the element.
  ///
  /// Elements of one shape (the same name and paths, the same texts empty) are laid out alike,
  /// only their values differ: when an element has the shape of the one before, its layout is
  /// recorded (the text between the values, where each value goes), and a third one of the
  /// shape is written from that record without sorting or searching anything.
  void Write(Sink& sink, std::string_view name, const PathValue* props, size_t first,
             size_t last, size_t prefix, std::string_view indent, std::string_view unit,
             bool inline_style, char quote, const Address* tail = nullptr,
             std::string_view lead = {}) {
    props_ = props;
    unit_ = unit;
    inline_ = inline_style;
    quote_ = quote;
    sink.Put(lead);
    const bool same_shape = SameShape(name, props, first, last, prefix, indent, tail);
    if (same_shape && recorded_) {
      Replay(sink, props, first, tail);
      return;
    }
    if (!same_shape) KeepShape(name, props, first, last, prefix, indent, tail);
    // The second element of a shape is recorded while it is written.
    recording_ = same_shape;
    recorded_ = false;
    values_.clear();
    first_ = first;
    record_start_ = sink.Position();
    AssignIfOther(indent_, indent);
    Element(sink, name, kNoText, first, last, prefix, tail);
    if (recording_) {
      // The layout: the element's text between the values, copied once.
      sink.Flush();
      const std::string& out = sink.text();
      const size_t size = out.size() - record_start_;
      literals_.assign(out.data() + record_start_, out.data() + out.size());
      ops_.clear();
      size_t at = 0;
      for (const Op& v : values_) {
        if (v.begin > at) ops_.push_back({OpKind::kLiteral, 0, at, v.begin});
        ops_.push_back(v);
        at = v.end;
      }
      if (size > at) ops_.push_back({OpKind::kLiteral, 0, at, size});
    }
    recording_ = false;
    recorded_ = same_shape;
  }

 private:
  static constexpr size_t kNoText = std::string::npos;

  struct Attr {
    std::string_view name;
    size_t value;  // index in props_
    int rank;
  };
  struct Child {
    std::string_view name;
    size_t text = kNoText;       // index in props_ of its text, kNoText when none
    size_t first = 0, last = 0;  // its paths in props_ ([first, last), empty when none)
    int rank = 0;
  };
  /// One step of a recorded layout: literal text, a value (by its path's place among the
  /// element's paths), the address.
  enum class OpKind { kLiteral, kAttrValue, kTextValue, kTail };
  struct Op {
    OpKind kind;
    size_t place;       // a value's place among the element's paths
    size_t begin, end;  // where it is in the recorded element's text (literals_)
  };

  bool SameShape(std::string_view name, const PathValue* props, size_t first, size_t last,
                 size_t prefix, std::string_view indent, const Address* tail) const {
    if (!SameText(name, shape_name_) || last - first != shape_.size() || prefix != shape_prefix_ ||
        (tail != nullptr) != shape_tail_ || inline_ != shape_inline_ || quote_ != shape_quote_ ||
        !SameText(unit_, shape_unit_) || !SameText(indent, shape_indent_)) {
      return false;
    }
    for (size_t i = 0; i < shape_.size(); ++i) {
      const PathValue& p = props[first + i];
      const PathValue& k = shape_[i];
      if (p.value.empty() != k.value.empty() || !SameText(p.path, k.path)) return false;
    }
    return true;
  }
  void KeepShape(std::string_view name, const PathValue* props, size_t first, size_t last,
                 size_t prefix, std::string_view indent, const Address* tail) {
    shape_name_ = name;
    shape_.assign(props + first, props + last);
    shape_prefix_ = prefix;
    shape_tail_ = tail != nullptr;
    shape_inline_ = inline_;
    shape_quote_ = quote_;
    shape_unit_ = unit_;
    shape_indent_ = indent;
  }
  /// s = v, no call when s has that text already (a writer's names and indents repeat).
  static void AssignIfOther(std::string& s, std::string_view v) {
    if (!SameText(s, v)) s.assign(v);
  }
  void Replay(Sink& out, const PathValue* props, size_t first, const Address* tail) {
    for (const Op& op : ops_) {
      switch (op.kind) {
        case OpKind::kLiteral:
          out.Put(std::string_view(literals_.data() + op.begin, op.end - op.begin));
          break;
        case OpKind::kAttrValue:
          PutEscapedAttr(out, props[first + op.place].value, quote_);
          break;
        case OpKind::kTextValue:
          PutEscapedText(out, props[first + op.place].value);
          break;
        case OpKind::kTail:
          PutAddressXml(out, *tail, quote_);
          break;
      }
    }
  }

  // Writing, and recording where the values go when asked to (the text between them is
  // taken from the output afterwards).
  [[gnu::always_inline]] void Literal(Sink& out, std::string_view s) { out.Put(s); }
  [[gnu::always_inline]] void Literal(Sink& out, char c) { out.Put(c); }
  /// A line feed and the indentation, in one piece.
  void Line(Sink& out) {
    const size_t size = indent_.size() + 1;
    if (size > Sink::kSize) {
      out.Put('\n');
      out.Put(indent_);
      return;
    }
    char* p = out.Reserve(size);
    p[0] = '\n';
    CopyShort(p + 1, indent_.data(), indent_.size());
    out.Wrote(size);
  }
  /// `open`, `name`, `close` (short literals) in one piece.
  template <size_t N, size_t M>
  [[gnu::always_inline]] static void Tag(Sink& out, const char (&open)[N], std::string_view name,
                                         const char (&close)[M]) {
    const size_t size = N - 1 + name.size() + M - 1;
    if (size > Sink::kSize) {
      out.Put(std::string_view(open, N - 1));
      out.Put(name);
      out.Put(std::string_view(close, M - 1));
      return;
    }
    char* p = out.Reserve(size);
    std::memcpy(p, open, N - 1);
    CopyShort(p + N - 1, name.data(), name.size());
    std::memcpy(p + N - 1 + name.size(), close, M - 1);
    out.Wrote(size);
  }
  void RecordValue(const Sink& out, OpKind kind, size_t place, size_t begin) {
    values_.push_back({kind, place, begin - record_start_, out.Position() - record_start_});
  }
  void AttrValue(Sink& out, size_t i) {
    const size_t begin = out.Position();
    PutEscapedAttr(out, props_[i].value, quote_);
    if (recording_) RecordValue(out, OpKind::kAttrValue, i - first_, begin);
  }
  void TextValue(Sink& out, size_t i) {
    const size_t begin = out.Position();
    PutEscapedText(out, props_[i].value);
    if (recording_) RecordValue(out, OpKind::kTextValue, i - first_, begin);
  }
  void Tail(Sink& out, const Address& tail) {
    const size_t begin = out.Position();
    PutAddressXml(out, tail, quote_);
    if (recording_) RecordValue(out, OpKind::kTail, 0, begin);
  }

  template <class List, class RankFn>
  static void SortTail(List& v, size_t from, RankFn rank) {
    // Stable insertion sort: an element has a handful of attributes and children.
    for (size_t i = from + 1; i < v.size(); ++i) {
      if (rank(v[i - 1]) <= rank(v[i])) continue;
      auto moved = v[i];
      size_t j = i;
      while (j > from && rank(v[j - 1]) > rank(moved)) {
        v[j] = v[j - 1];
        --j;
      }
      v[j] = moved;
    }
  }

  void Element(Sink& out, std::string_view name, size_t text, size_t first, size_t last,
               size_t prefix, const Address* tail) {
    const PathValue* props = props_;
    const size_t attrs_at = attrs_.size(), children_at = children_.size();
    for (size_t i = first; i < last;) {
      std::string_view rest = props[i].path.substr(prefix);
      if (rest.empty()) {
        ++i;
        continue;
      }
      if (rest[0] == '@') {
        attrs_.push_back({rest.substr(1), i, AttrRank(rest.substr(1))});
        ++i;
        continue;
      }
      // Names are short: a loop is cheaper than calls to memchr and memcmp.
      size_t slash = 0;
      while (slash < rest.size() && rest[slash] != '/') ++slash;
      if (slash == rest.size()) slash = std::string_view::npos;
      std::string_view child = rest.substr(0, slash);
      size_t k = children_at;
      while (k < children_.size() && !SameText(children_[k].name, child)) ++k;
      if (k == children_.size()) children_.push_back({child, kNoText, 0, 0, ChildRank(child)});
      if (slash == std::string_view::npos) {
        children_[k].text = i;
        ++i;
        continue;
      }
      // The child's paths: every neighbour starting with "child/".
      size_t j = i + 1;
      const size_t below = prefix + slash + 1;
      while (j < last && props[j].path.size() >= below &&
             SameText(props[j].path.substr(prefix, slash + 1), rest.substr(0, slash + 1))) {
        ++j;
      }
      children_[k].first = i;
      children_[k].last = j;
      i = j;
    }
    SortTail(attrs_, attrs_at, [](const Attr& a) { return a.rank; });
    SortTail(children_, children_at, [](const Child& c) { return c.rank; });
    Tag(out, "<", name, "");
    for (size_t a = attrs_at; a < attrs_.size(); ++a) {
      const std::string_view key = attrs_[a].name;
      const std::string_view value = props[attrs_[a].value].value;
      const size_t size = key.size() + value.size() + 4;
      if (size <= Sink::kSize && !NeedsAttrEscape(value)) {
        // ` key='value'` in one piece, the most common case.
        char* p = out.Reserve(size);
        const size_t at = out.Position() + key.size() + 3;  // where the value goes
        p[0] = ' ';
        CopyShort(p + 1, key.data(), key.size());
        p += key.size() + 1;
        p[0] = '=';
        p[1] = quote_;
        CopyShort(p + 2, value.data(), value.size());
        p[value.size() + 2] = quote_;
        out.Wrote(size);
        if (recording_) {
          values_.push_back({OpKind::kAttrValue, attrs_[a].value - first_, at - record_start_,
                             at + value.size() - record_start_});
        }
        continue;
      }
      Literal(out, ' ');
      Literal(out, key);
      Literal(out, '=');
      Literal(out, quote_);
      AttrValue(out, attrs_[a].value);
      Literal(out, quote_);
    }
    const bool no_children = children_.size() == children_at;
    const bool no_text = text == kNoText || props[text].value.empty();
    if (no_children && no_text && !tail) {
      Literal(out, "/>");
    } else {
      Literal(out, '>');
      if (no_children && !tail) {
        TextValue(out, text);
      } else {
        const size_t indent_size = indent_.size();
        if (!inline_) indent_ += unit_;
        for (size_t c = children_at; c < children_.size(); ++c) {
          if (!inline_) {
            Line(out);
          }
          // Copied: the recursion may grow the list.
          Child child = children_[c];
          Element(out, child.name, child.text, child.first, child.last,
                  prefix + child.name.size() + 1, nullptr);
        }
        if (tail) {
          if (!inline_) {
            Line(out);
          }
          Tail(out, *tail);
        }
        indent_.resize(indent_size);
        if (!inline_) {
          Line(out);
        }
      }
      Tag(out, "</", name, ">");
    }
    attrs_.resize(attrs_at);
    children_.resize(children_at);
  }

  const PathValue* props_ = nullptr;
  std::string_view unit_;
  bool inline_ = false;
  char quote_ = '\'';
  std::string indent_;
  SmallVector<Attr, 16> attrs_;
  SmallVector<Child, 16> children_;
  // The shape of the element written last and, once a second element had it, its layout. Its
  // views point where Write's arguments did: into the devices, the input text and the
  // writer's own strings, which outlive the next call.
  std::string_view shape_name_;
  SmallVector<PathValue, 32> shape_;
  size_t shape_prefix_ = 0;
  bool shape_tail_ = false, shape_inline_ = false;
  char shape_quote_ = 0;
  std::string_view shape_unit_, shape_indent_;
  bool recording_ = false, recorded_ = false;
  size_t first_ = 0;
  size_t record_start_ = 0;     // where the recorded element starts in the output
  SmallVector<Op, 32> values_;  // the values of the element being recorded
  SmallVector<Op, 64> ops_;
  SmallVector<char, 512> literals_;
};

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
  int type_id = -1;         // the type's number (Writer::TypeId): equal types, equal numbers
  uint32_t index = 0;       // @index, 0 when absent or not a number
};

/// A child element the plan adds to a device: its name and its XML, [begin, end) of a buffer.
struct NewChild {
  std::string_view name;
  size_t begin = 0, end = 0;
};

constexpr size_t kNone = std::string::npos;


/// The later of two device indexes, either kNone (none).
size_t Later(size_t a, size_t b) { return a == kNone ? b : b == kNone ? a : std::max(a, b); }

class Writer {
 public:
  Writer(const Domain& in, const Plan& plan, const Catalog& cat)
      : in_(in), plan_(plan), cat_(cat), t_(in.text), ed_(in.text) {
    // Room for the edits and for the new devices' text (an element is about this long), so
    // that the buffer is allocated once.
    size_t added = 0;
    for (const Device& d : plan.devices) added += d.source < 0;
    ed_.buffer().reserve(in.text.size() + 160 * added);
  }

  Result<std::string> Run();

 private:
  void EditDevice(const Device& before, const Device& after);
  void SetAttr(size_t name_offset, std::string_view attr, std::string_view value);
  /// Adds children (their XML in the editor's buffer) to the element `e`, each before the first
  /// child of a
  /// later kind.
  void AddChildren(size_t name_offset, const SmallVector<NewChild, 8>& kids, const Element& e);
  /// Writes the element of new device `dev` to `out`, a sink of the editor's buffer that the
  /// new devices share (flushed once after the last).
  void InsertNewDevice(Sink& out, const Device& dev, const ListKey& key);
  /// A new device and its list key.
  struct Added {
    ListKey key;
    const Device* dev;
  };
  void FillEmptyDevices(const SmallVector<Added, 16>& added);
  /// Appends the new element of `dev`.
  void AppendDeviceXml(Sink& out, const Device& dev, std::string_view indent,
                       bool inline_style, std::string_view lead = {});
  std::string DeviceXml(const Device& dev, std::string_view indent, bool inline_style) {
    std::string out;
    {
      Sink sink(out);
      AppendDeviceXml(sink, dev, indent, inline_style);
    }
    return out;
  }
  char QuoteOf(size_t name_offset) const;
  /// Where input device `dev`'s end tag starts and the quote of its first attribute, found
  /// without scanning its children: when it is on one line, has no <address> or <alias> child
  /// and is followed by white space and the next device (nullopt otherwise).
  struct QuickEnd {
    size_t end_tag;
    char quote;
  };
  std::optional<QuickEnd> QuickEndOf(const Device& dev) const;
  int OutputRank(std::string_view tag);
  /// A number per distinct controller type, so that keys compare types as integers.
  int TypeId(std::string_view type) {
    for (size_t i = 0; i < types_.size(); ++i) {
      if (SameText(types_[i], type)) return static_cast<int>(i);
    }
    types_.push_back(type);
    return static_cast<int>(types_.size() - 1);
  }
  ListKey KeyOf(const Device& dev);
  /// The input device a new device of `key` goes after (libvirt's list order), kNone when it
  /// goes first. The input's keys are indexed once for all devices the plan adds.
  size_t InsertAfter(const ListKey& key);
  /// Where input device `i`'s element ends and its line's indentation (nullopt: none), scanned
  /// once however many new devices go after it.
  const std::pair<size_t, std::optional<std::string_view>>& EndOf(size_t i);
  /// Where a device that goes first is inserted (after <emulator>, if any) and its
  /// indentation, found once.
  const std::pair<size_t, std::optional<std::string>>& FirstSlot();

  const Domain& in_;
  const Plan& plan_;
  const Catalog& cat_;
  const std::string& t_;
  Editor ed_;
  std::string unit_ = "  ";
  char quote_ = '\'';
  // Output ranks of the tags met so far (a handful), tags pointing into the devices.
  struct TagRank {
    std::string_view tag;
    int rank;
  };
  SmallVector<TagRank, 32> ranks_;
  int controller_rank_ = -1;
  SmallVector<std::string_view, 8> types_;  // pointing into the devices
  // The input's keys, and its devices by rank: by_rank_[rank_begin_[r] .. rank_begin_[r + 1])
  // are the indexes of the devices of rank r, in order; last_at_most_[r] the last device of
  // rank <= r (kNone when none).
  bool indexed_ = false;
  std::vector<ListKey> input_keys_;
  std::vector<size_t> index_;  // holds the three below
  size_t* by_rank_ = nullptr;
  size_t* rank_begin_ = nullptr;
  size_t* last_at_most_ = nullptr;
  std::vector<std::optional<std::pair<size_t, std::optional<std::string_view>>>> input_ends_;
  std::optional<std::pair<size_t, std::optional<std::string>>> first_slot_;
  // Reused from one device to the next.
  ElementWriter writer_;
  SmallVector<PathValue, 32> paths_;
  SmallVector<std::string_view, 8> kid_names_;
  SmallVector<NewChild, 8> kids_;
  std::string child_indent_;
  std::string lead_;  // a line feed and a new device's indentation
  Element scanned_;
  StartTag tag_;
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

int Writer::OutputRank(std::string_view tag) {
  for (const TagRank& r : ranks_) {
    if (SameText(r.tag, tag)) return r.rank;
  }
  const std::vector<std::string>& order = cat_.output_order;
  int rank = static_cast<int>(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    if (SameText(order[i], tag)) {
      rank = static_cast<int>(i);
      break;
    }
  }
  if (ranks_.size() < 32) ranks_.push_back({tag, rank});
  return rank;
}

/// ParseDecimal(s).value_or(0), a short run of digits read in place.
uint32_t IndexValue(std::string_view s) {
  if (s.empty() || s.size() > 9) return ParseDecimal(s).value_or(0);
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return ParseDecimal(s).value_or(0);
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v;
}

ListKey Writer::KeyOf(const Device& dev) {
  ListKey k;
  k.rank = OutputRank(dev.tag);
  k.controller = SameText(dev.tag, "controller");
  // Type and index order controllers only: they are compared between devices of the rank of
  // <controller>, and read for those only.
  if (controller_rank_ < 0) controller_rank_ = OutputRank("controller");
  if (!k.controller && k.rank != controller_rank_) return k;
  // The element's own attributes sort before its children ('@' is below every letter): one
  // walk over them.
  const std::string* index = nullptr;
  for (const auto& [path, value] : dev.props) {
    if (path.empty() || path[0] < '@') continue;
    if (path[0] != '@') break;
    if (Is(path, "@type")) {
      k.type = value;
    } else if (Is(path, "@index")) {
      index = &value;
    }
  }
  k.type_id = TypeId(k.type);
  k.index = index ? IndexValue(*index) : 0;
  return k;
}

size_t Writer::InsertAfter(const ListKey& key) {
  // No input device: every new one goes first (no index to build).
  if (in_.devices.empty()) return kNone;
  const size_t ranks = cat_.output_order.size() + 1;  // an unknown tag ranks last
  if (!indexed_) {
    indexed_ = true;
    const size_t n = in_.devices.size();
    input_keys_.reserve(n);
    for (const Device& d : in_.devices) input_keys_.push_back(KeyOf(d));
    // The three lists in one allocation, and the next free place of each rank after them.
    index_.assign(ranks + 1 + ranks + n + ranks, 0);
    rank_begin_ = index_.data();
    last_at_most_ = rank_begin_ + ranks + 1;
    by_rank_ = last_at_most_ + ranks;
    size_t* next = by_rank_ + n;
    std::fill(last_at_most_, last_at_most_ + ranks, kNone);
    for (size_t i = 0; i < n; ++i) {
      size_t r = static_cast<size_t>(input_keys_[i].rank);
      ++rank_begin_[r + 1];
      last_at_most_[r] = i;
    }
    for (size_t r = 1; r < ranks; ++r) last_at_most_[r] = Later(last_at_most_[r - 1], last_at_most_[r]);
    for (size_t r = 0; r < ranks; ++r) rank_begin_[r + 1] += rank_begin_[r];
    std::copy(rank_begin_, rank_begin_ + ranks, next);
    for (size_t i = 0; i < n; ++i) {
      by_rank_[next[static_cast<size_t>(input_keys_[i].rank)]++] = i;
    }
  }
  // After the last device of an earlier kind or of its own; a controller after the last
  // controller of its type with an index not above its own, else after the last device of an
  // earlier kind or a controller of another type (section 6.1).
  const size_t r = static_cast<size_t>(key.rank);
  if (!key.controller) return last_at_most_[r];
  size_t same = kNone, other = r > 0 ? last_at_most_[r - 1] : kNone;
  for (size_t k = rank_begin_[r]; k < rank_begin_[r + 1]; ++k) {
    size_t i = by_rank_[k];
    const ListKey& d = input_keys_[i];
    if (d.type_id != key.type_id) {
      other = Later(other, i);
    } else if (d.index <= key.index) {
      same = i;
    }
  }
  return same != kNone ? same : other;
}

const std::pair<size_t, std::optional<std::string_view>>& Writer::EndOf(size_t i) {
  if (input_ends_.size() != in_.devices.size()) input_ends_.resize(in_.devices.size());
  if (!input_ends_[i]) {
    Element e = ScanElement(t_, in_.devices[i].offset);
    input_ends_[i].emplace(e.end, IndentViewOf(t_, e.start.lt));
  }
  return *input_ends_[i];
}

const std::pair<size_t, std::optional<std::string>>& Writer::FirstSlot() {
  if (!first_slot_) {
    // First child of <devices> (after <emulator>, if any).
    Element devices = ScanElement(t_, in_.devices_offset);
    size_t pos = devices.start.after;
    for (size_t c : devices.children) {
      if (NameAt(t_, c) == "emulator") pos = ScanElement(t_, c).end;
    }
    std::optional<std::string> indent;
    if (std::optional<std::string_view> di = IndentViewOf(t_, devices.start.lt)) {
      indent.emplace(*di);
      *indent += unit_;
    }
    first_slot_.emplace(pos, std::move(indent));
  }
  return *first_slot_;
}

void Writer::SetAttr(size_t name_offset, std::string_view attr, std::string_view value) {
  ScanStartTagInto(t_, name_offset, tag_);
  char q = tag_.attrs.empty() ? quote_ : tag_.attrs.front().quote;
  std::string& b = ed_.buffer();
  const size_t mark = b.size();
  for (const AttrSpan& a : tag_.attrs) {
    if (a.name == attr) {
      AppendEscapedAttr(b, value, a.quote);
      ed_.ReplaceWithAppended(a.value_begin, a.value_end - a.value_begin, mark);
      return;
    }
  }
  size_t pos = tag_.attrs.empty() ? tag_.name_end : tag_.attrs.back().value_end + 1;
  b += ' ';
  b += attr;
  b += '=';
  b += q;
  AppendEscapedAttr(b, value, q);
  b += q;
  ed_.InsertAppended(pos, mark);
}

void Writer::AddChildren(size_t name_offset, const SmallVector<NewChild, 8>& kids,
                         const Element& e) {
  if (kids.empty()) return;
  std::string& b = ed_.buffer();
  std::optional<std::string_view> indent = IndentViewOf(t_, e.start.lt);
  if (e.start.self_closing) {
    // <x a='1'/>  ->  <x a='1'>CHILDREN</x>, on lines of their own when x has a line of its own.
    std::string_view name = NameAt(t_, name_offset);
    std::string body = ">";
    for (const NewChild& kid : kids) {
      if (indent) {
        body += '\n';
        body += *indent;
        body += unit_;
      }
      body.append(b, kid.begin, kid.end - kid.begin);
    }
    const size_t mark = b.size();
    b += body;
    if (indent) {
      b += '\n';
      b += *indent;
    }
    b += "</";
    b += name;
    b += '>';
    ed_.ReplaceWithAppended(e.start.close, e.start.after - e.start.close, mark);
    return;
  }
  const bool multiline =
      std::string_view(t_).substr(e.start.after, e.end_tag - e.start.after).find('\n') !=
      std::string_view::npos;
  child_indent_.clear();
  if (multiline) {  // only then are children indented
    if (indent) {
      child_indent_ += *indent;
      child_indent_ += unit_;
    }
    if (!e.children.empty()) {
      if (std::optional<std::string_view> ci = IndentViewOf(t_, e.children.front() - 1)) {
        child_indent_.assign(*ci);
      }
    }
  }
  for (const NewChild& kid : kids) {
    // Before the first child of a later kind (alias, address), else at the end. The kid's
    // text is in the editor's buffer already: it is inserted from there.
    const size_t size = kid.end - kid.begin;
    bool placed = false;
    for (size_t c : e.children) {
      std::string_view cname = IsNameAt(t_, c, "alias")     ? "alias"
                               : IsNameAt(t_, c, "address") ? "address"
                                                            : std::string_view();
      if (!cname.empty() && ChildRank(cname) > ChildRank(kid.name)) {
        ed_.InsertRange(c - 1, kid.begin, size);
        if (multiline) {
          const size_t mark = b.size();
          b += '\n';
          b += child_indent_;
          ed_.InsertAppended(c - 1, mark);
        }
        placed = true;
        break;
      }
    }
    if (placed) continue;
    if (multiline) {
      size_t ws = e.end_tag;
      while (ws > e.start.after && IsSpace(t_[ws - 1])) --ws;
      const size_t mark = b.size();
      b += '\n';
      b += child_indent_;
      ed_.InsertAppended(ws, mark);
      ed_.InsertRange(ws, kid.begin, size);
    } else {
      ed_.InsertRange(e.end_tag, kid.begin, size);
    }
  }
}

void Writer::EditDevice(const Device& before, const Device& after) {
  // An unchanged device (most of a planned domain's) costs no scan of its text.
  bool scanned = false;
  auto element = [&]() -> const Element& {
    if (!scanned) {
      ScanElementInto(t_, before.offset, scanned_);
      scanned = true;
    }
    return scanned_;
  };
  // New children are quoted like the element's first attribute (they are added to it, so it
  // is scanned anyway).
  auto q = [&] {
    char quote = element().start.quote;
    return quote ? quote : quote_;
  };
  // Attributes the plan set or changed, on the element or on a child it has; the paths of new
  // child elements are kept (in path order) for below. Both property lists are sorted by path:
  // one walk over the two finds what changed.
  paths_.clear();
  if (!SameProps(before.props, after.props)) {
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
      std::string_view p = path;
      size_t slash = p.find('/');
      std::string_view child = p.substr(0, slash);
      std::string_view rest = slash == std::string_view::npos ? std::string_view() : p.substr(slash + 1);
      if (!rest.empty() && rest[0] == '@' && rest.find('/') == std::string_view::npos &&
          before.Has(p.substr(0, slash + 1))) {
        // Find the child's offset.
        for (size_t c : element().children) {
          if (NameAt(t_, c) == child) {
            SetAttr(c, rest.substr(1), value);
            break;
          }
        }
        continue;
      }
      paths_.push_back({p, value});
    }
  }
  // New child elements, one per name (in name order, then libvirt's child order), each made of
  // the paths below it.
  kid_names_.clear();
  for (const PathValue& pv : paths_) {
    std::string_view child = pv.path.substr(0, pv.path.find('/'));
    if (std::find(kid_names_.begin(), kid_names_.end(), child) == kid_names_.end()) {
      kid_names_.push_back(child);
    }
  }
  std::sort(kid_names_.begin(), kid_names_.end());
  std::stable_sort(kid_names_.begin(), kid_names_.end(), [](std::string_view a, std::string_view b) {
    return ChildRank(a) < ChildRank(b);
  });
  kids_.clear();
  std::string& b = ed_.buffer();
  for (std::string_view child : kid_names_) {
    size_t first = 0;
    auto below = [&](size_t i) {
      std::string_view p = paths_[i].path;
      return p.size() > child.size() && p[child.size()] == '/' &&
             p.compare(0, child.size(), child) == 0;
    };
    while (first < paths_.size() && !below(first)) ++first;
    size_t last = first;
    while (last < paths_.size() && below(last)) ++last;
    NewChild kid{child, b.size(), 0};
    {
      Sink sink(b);
      writer_.Write(sink, child, paths_.data(), first, last, child.size() + 1, "", "", true, q());
    }
    kid.end = b.size();
    kids_.push_back(kid);
  }
  if (after.address.type == AddressType::kNone && before.address.type != AddressType::kNone) {
    // An address libvirt drops: the element goes, with the indentation of its line.
    for (size_t c : element().children) {
      if (!IsNameAt(t_, c, "address")) continue;
      Element a = ScanElement(t_, c);
      size_t from = a.start.lt;
      size_t line = t_.rfind('\n', from - 1);
      if (line != std::string::npos &&
          t_.find_first_not_of(" \t", line + 1) == from) {
        from = line;
      }
      ed_.Replace(from, a.end - from, "");
    }
    AddChildren(before.offset, kids_, element());
    return;
  }
  if (SameAddress(before.address, after.address) || after.address.type == AddressType::kNone) {
    if (!kids_.empty()) AddChildren(before.offset, kids_, element());
    return;
  }
  if (kids_.empty() && !scanned) {
    // No other new child: when the element has no <address> or <alias> child, the new address
    // goes last, before the end tag, found from the next device when the element is on one
    // line.
    if (std::optional<QuickEnd> quick = QuickEndOf(before)) {
      const size_t begin = b.size();
      AppendAddressXml(b, after.address, quick->quote ? quick->quote : quote_);
      ed_.InsertRange(quick->end_tag, begin, b.size() - begin);
      return;
    }
  }
  for (size_t c : element().children) {
    if (!IsNameAt(t_, c, "address")) continue;
    if (before.address.type == AddressType::kPci && after.address.type == AddressType::kPci &&
        before.address.pci == after.address.pci) {
      SetAttr(c, "multifunction", after.address.multifunction);
      AddChildren(before.offset, kids_, element());
      return;
    }
    Element a = ScanElement(t_, c);
    const size_t mark = b.size();
    AppendAddressXml(b, after.address, QuoteOf(c));
    ed_.ReplaceWithAppended(a.start.lt, a.end - a.start.lt, mark);
    AddChildren(before.offset, kids_, element());
    return;
  }
  NewChild address{"address", b.size(), 0};
  AppendAddressXml(b, after.address, q());
  address.end = b.size();
  kids_.push_back(address);
  AddChildren(before.offset, kids_, element());
}

std::optional<Writer::QuickEnd> Writer::QuickEndOf(const Device& dev) const {
  const size_t i = static_cast<size_t>(&dev - in_.devices.data());
  if (i + 1 >= in_.devices.size()) return std::nullopt;
  TagEnd start = SkipStartTag(t_, dev.offset);
  if (start.self_closing || start.after >= t_.size()) return std::nullopt;
  // Only white space between the element and the next device: its last '>' ends "</TAG>".
  size_t gt = in_.devices[i + 1].offset - 1;
  while (gt > start.after && IsSpace(t_[gt - 1])) --gt;
  if (gt <= start.after || t_[gt - 1] != '>') return std::nullopt;
  --gt;
  size_t lt = t_.rfind('<', gt);
  if (lt == std::string::npos || lt < start.after || t_[lt + 1] != '/' ||
      t_.compare(lt + 2, dev.tag.size(), dev.tag) != 0) {
    return std::nullopt;
  }
  for (size_t k = lt + 2 + dev.tag.size(); k < gt; ++k) {
    if (!IsSpace(t_[k])) return std::nullopt;
  }
  // On one line: the new child goes right before the end tag, no indentation to match.
  if (std::memchr(t_.data() + start.after, '\n', lt - start.after)) return std::nullopt;
  // No <address> (one a replan dropped from the device is still in the text) and no <alias>
  // anywhere inside, which a new address would go before or replace.
  for (size_t from = start.after; from < lt;) {
    const void* next = std::memchr(t_.data() + from, '<', lt - from);
    if (!next) break;
    size_t at = static_cast<size_t>(static_cast<const char*>(next) - t_.data());
    if (IsNameAt(t_, at + 1, "address") || IsNameAt(t_, at + 1, "alias")) return std::nullopt;
    from = at + 1;
  }
  return QuickEnd{lt, start.quote};
}

void Writer::AppendDeviceXml(Sink& out, const Device& dev, std::string_view indent,
                             bool inline_style, std::string_view lead) {
  paths_.clear();
  PathValue* const first = paths_.Room(dev.props.size());
  PathValue* p = first;
  for (const auto& [path, value] : dev.props) {
    if (!path.empty() && path.back() == '/') continue;  // a child's marker: its paths make it
    *p++ = {path, value};
  }
  paths_.resize(static_cast<size_t>(p - first));
  writer_.Write(out, dev.tag, paths_.data(), 0, paths_.size(), 0, indent,
                inline_style ? std::string_view() : std::string_view(unit_), inline_style, quote_,
                dev.address.type == AddressType::kNone ? nullptr : &dev.address, lead);
}

void Writer::InsertNewDevice(Sink& out, const Device& dev, const ListKey& key) {
  // Where libvirt lists it: after the last device of an earlier kind; controllers after the
  // last controller of the same type with a lower index (section 6.1).
  size_t after = InsertAfter(key);
  size_t pos;
  std::optional<std::string_view> indent;
  if (after != kNone) {
    const auto& [end, own] = EndOf(after);
    pos = end;
    indent = own;
  } else {
    const auto& [first, own] = FirstSlot();
    pos = first;
    if (own) indent = *own;
  }
  const size_t mark = out.Position();
  // A line of its own: a line feed and the indentation first (kept for the next device, most
  // have the same).
  if (indent && (lead_.empty() || !SameText(std::string_view(lead_).substr(1), *indent))) {
    lead_.assign(1, '\n');
    lead_ += *indent;
  }
  AppendDeviceXml(out, dev, indent ? *indent : std::string_view(), !indent,
                  indent ? std::string_view(lead_) : std::string_view());
  ed_.InsertRange(pos, mark, out.Position() - mark);
}

Result<std::string> Writer::Run() {
  // Indentation unit: the <devices> element's children relative to it.
  bool devices_self_closing = false;
  if (in_.devices_offset != std::string::npos) {
    const TagEnd devices = SkipStartTag(t_, in_.devices_offset);
    devices_self_closing = devices.self_closing;
    std::optional<std::string_view> di = IndentViewOf(t_, in_.devices_offset - 1);
    std::optional<size_t> first =
        devices.self_closing ? std::nullopt : FirstChild(t_, devices.after);
    if (di && first) {
      std::optional<std::string_view> ci = IndentViewOf(t_, *first - 1);
      if (ci && ci->size() > di->size() && ci->substr(0, di->size()) == *di) {
        unit_.assign(ci->substr(di->size()));
      }
    }
    if (char q = FirstAttrQuote(t_, t_.find("<domain") + 1)) quote_ = q;
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
  SmallVector<Added, 16> added;
  for (const Device& d : plan_.devices) {
    if (d.source < 0) added.push_back({KeyOf(d), &d});
  }
  auto listed_before = [](const Added& a, const Added& b) {
    const ListKey& ka = a.key;
    const ListKey& kb = b.key;
    if (ka.rank != kb.rank) return ka.rank < kb.rank;
    if (ka.controller && ka.type_id == kb.type_id) return ka.index < kb.index;
    return false;
  };
  if (added.size() <= 32) {
    // Stable insertion sort: the plan adds a handful of devices, most in order already.
    for (size_t i = 1; i < added.size(); ++i) {
      if (!listed_before(added[i], added[i - 1])) continue;
      const Added moved = added[i];
      size_t j = i;
      for (; j > 0 && listed_before(moved, added[j - 1]); --j) added[j] = added[j - 1];
      added[j] = moved;
    }
  } else {
    std::stable_sort(added.begin(), added.end(), listed_before);
  }
  bool empty = in_.devices_offset == std::string::npos || devices_self_closing;
  if (empty && !added.empty()) {
    FillEmptyDevices(added);
  } else {
    Sink out(ed_.buffer());
    for (const Added& a : added) InsertNewDevice(out, *a.dev, a.key);
  }
  return ed_.Apply();
}

void Writer::FillEmptyDevices(const SmallVector<Added, 16>& added) {
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
  for (const Added& a : added) {
    body += (outer ? "\n" + inner : std::string()) + DeviceXml(*a.dev, inner, !outer);
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

/// Puts ` key=QvalueQ`, the value escaped.
void PutAttr(Sink& out, std::string_view key, std::string_view value, char q) {
  out.Put(' ');
  out.Put(key);
  out.Put('=');
  out.Put(q);
  PutEscapedAttr(out, value, q);
  out.Put(q);
}

/// "000102...feff": each byte's two lower-case hex digits.
constexpr std::array<char, 512> kHexPairs = [] {
  constexpr char kHex[] = "0123456789abcdef";
  std::array<char, 512> t{};
  for (int i = 0; i < 256; ++i) {
    t[2 * i] = kHex[i >> 4];
    t[2 * i + 1] = kHex[i & 0xf];
  }
  return t;
}();

/// Writes `key` (" name=", a literal) and Q0x..Q at `p`: `value` in lower-case hex, at least
/// `min_digits` digits. Returns the end. Inlined, so that the key's copy is a few moves.
[[gnu::always_inline]] inline char* PutHexAttr(char* p, std::string_view key, uint32_t value,
                                               int min_digits, char q) {
  std::memcpy(p, key.data(), key.size());
  p += key.size();
  *p++ = q;
  *p++ = '0';
  *p++ = 'x';
  const int digits = std::max(static_cast<int>(std::bit_width(value) + 3) / 4, min_digits);
  // From the last digit back, two at a time (a byte's pair from a table).
  char* const end = p + digits;
  char* d = end;
  int left = digits;
  for (; left >= 2; left -= 2, value >>= 8) {
    d -= 2;
    std::memcpy(d, &kHexPairs[2 * (value & 0xff)], 2);
  }
  if (left) *--d = kHexPairs[2 * (value & 0xf) + 1];
  *end = q;
  return end + 1;
}

void PutAddressXml(Sink& out, const Address& a, char q) {
  if (a.type == AddressType::kPci && a.type_name.size() <= 16 && !NeedsAttrEscape(a.type_name)) {
    // The common case assembled in place: <address type='pci' domain='0x0000' bus='0x00'
    // slot='0x00' function='0x0'/>, each number in lower-case hex with at least 4, 2, 2, 1
    // digits.
    char* const start = out.Reserve(160);
    char* p = start;
    auto put = [&p](std::string_view v) {
      std::memcpy(p, v.data(), v.size());
      p += v.size();
    };
    put("<address type=");
    *p++ = q;
    CopyShort(p, a.type_name.data(), a.type_name.size());
    p += a.type_name.size();
    *p++ = q;
    // Called directly (not through a lambda), so that each key's copy is a move of known size.
    p = PutHexAttr(p, " domain=", a.pci.domain, 4, q);
    p = PutHexAttr(p, " bus=", a.pci.bus, 2, q);
    p = PutHexAttr(p, " slot=", a.pci.slot, 2, q);
    p = PutHexAttr(p, " function=", a.pci.function, 1, q);
    out.Wrote(static_cast<size_t>(p - start));
    if (!a.multifunction.empty()) PutAttr(out, "multifunction", a.multifunction, q);
    out.Put("/>");
    return;
  }
  out.Put("<address");
  PutAttr(out, "type", a.type_name, q);
  if (a.type == AddressType::kPci) {
    auto hex = [&out, q](std::string_view key, uint32_t value, int min_digits) {
      std::string digits = fmt::format("{:0{}x}", value, min_digits);
      out.Put(' ');
      out.Put(key);
      out.Put('=');
      out.Put(q);
      out.Put("0x");
      out.Put(digits);
      out.Put(q);
    };
    hex("domain", a.pci.domain, 4);
    hex("bus", a.pci.bus, 2);
    hex("slot", a.pci.slot, 2);
    hex("function", a.pci.function, 1);
    if (!a.multifunction.empty()) PutAttr(out, "multifunction", a.multifunction, q);
  } else {
    static constexpr std::string_view kOrder[] = {"controller", "bus",  "target",
                                                  "unit",       "port", "slot"};
    for (std::string_view k : kOrder) {
      auto it = a.attrs.find(k);
      if (it != a.attrs.end()) PutAttr(out, k, it->second, q);
    }
    for (const auto& [name, value] : a.attrs) {
      // A plain reference for the lambda: clang 14 cannot capture a structured binding.
      const std::string& k = name;
      if (std::find(std::begin(kOrder), std::end(kOrder), k) == std::end(kOrder)) {
        PutAttr(out, k, value, q);
      }
    }
  }
  out.Put("/>");
}

void AppendAddressXml(std::string& out, const Address& a, char q) {
  Sink sink(out);
  PutAddressXml(sink, a, q);
}

}  // namespace

std::string AddressXml(const Address& a, char q) {
  std::string out;
  out.reserve(96);
  AppendAddressXml(out, a, q);
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
