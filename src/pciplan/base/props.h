// Props: an element's attributes as "path -> value" ("@type", "model/@type", "target/node"),
// shared by the domain (what a device says) and the model (what a rule matches).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pciplan {

/// a == b, inlined (string_view's == calls an out-of-line compare): the sizes first, then texts
/// of at most 16 bytes (names, paths, values) in two overlapping loads of each, longer ones in
/// one memcmp.
[[gnu::always_inline]] inline bool SameText(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  const char* x = a.data();
  const char* y = b.data();
  if (n >= 8 && n <= 16) {
    uint64_t x0, x1, y0, y1;
    std::memcpy(&x0, x, 8);
    std::memcpy(&x1, x + n - 8, 8);
    std::memcpy(&y0, y, 8);
    std::memcpy(&y1, y + n - 8, 8);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  if (n >= 4 && n < 8) {
    uint32_t x0, x1, y0, y1;
    std::memcpy(&x0, x, 4);
    std::memcpy(&x1, x + n - 4, 4);
    std::memcpy(&y0, y, 4);
    std::memcpy(&y1, y + n - 4, 4);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  if (n < 4) {
    // 0 to 3 bytes: the first, the middle and the last (some the same byte).
    return n == 0 || (x[0] == y[0] && x[n / 2] == y[n / 2] && x[n - 1] == y[n - 1]);
  }
  return std::memcmp(x, y, n) == 0;
}

/// "@attr" for an element's own attributes, "child/@attr", "child/grandchild/@attr" and
/// "child/grandchild" (text) below it; "child/" marks that a child exists.
///
/// A map from path to value kept as one vector sorted by path (the order of a
/// std::map<std::string, std::string>, which it replaces): a device has a handful of
/// properties, so a search over contiguous pairs beats a tree of nodes, and copying or
/// dropping a device costs one allocation instead of one per property. Lookups take string
/// views, so a literal path builds no string; find() on a short list scans it comparing lengths
/// first (most paths differ in length, so few bytes are compared), a binary search otherwise.
class Props {
 public:
  using key_type = std::string;
  using mapped_type = std::string;
  using value_type = std::pair<std::string, std::string>;
  using iterator = std::vector<value_type>::iterator;
  using const_iterator = std::vector<value_type>::const_iterator;

  Props() = default;
  Props(std::initializer_list<value_type> init) {
    items_.reserve(init.size());
    for (const value_type& p : init) emplace(p.first, p.second);
  }

  iterator begin() { return items_.begin(); }
  iterator end() { return items_.end(); }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  void clear() { items_.clear(); }
  void reserve(size_t n) { items_.reserve(n); }

  const_iterator find(std::string_view key) const { return items_.begin() + IndexOf(key); }
  iterator find(std::string_view key) { return items_.begin() + IndexOf(key); }
  size_t count(std::string_view key) const { return find(key) != items_.end() ? 1 : 0; }
  bool contains(std::string_view key) const { return find(key) != items_.end(); }
  const std::string& at(std::string_view key) const {
    auto it = find(key);
    if (it == items_.end()) throw std::out_of_range("Props::at");
    return it->second;
  }
  std::string& at(std::string_view key) {
    auto it = find(key);
    if (it == items_.end()) throw std::out_of_range("Props::at");
    return it->second;
  }
  std::string& operator[](std::string_view key) {
    auto it = LowerBound(key);
    if (it == items_.end() || it->first != key) {
      it = items_.emplace(it, std::string(key), std::string());
    }
    return it->second;
  }
  /// Inserts (key, value) unless `key` is there already, like std::map::emplace.
  template <class K, class V>
  std::pair<iterator, bool> emplace(K&& key, V&& value) {
    std::string_view k(key);
    // Appending in order (a reader walking sorted data) needs no search.
    if (items_.empty() || std::string_view(items_.back().first) < k) {
      items_.emplace_back(std::string(std::forward<K>(key)), std::string(std::forward<V>(value)));
      return {items_.end() - 1, true};
    }
    auto it = LowerBound(k);
    if (it != items_.end() && it->first == k) return {it, false};
    it = items_.emplace(it, std::string(std::forward<K>(key)), std::string(std::forward<V>(value)));
    return {it, true};
  }
  std::pair<iterator, bool> insert(value_type p) {
    return emplace(std::move(p.first), std::move(p.second));
  }
  /// std::map's hinted insert; the hint is not needed.
  iterator insert(const_iterator /*hint*/, value_type p) {
    return emplace(std::move(p.first), std::move(p.second)).first;
  }
  template <class V>
  std::pair<iterator, bool> insert_or_assign(std::string_view key, V&& value) {
    auto it = LowerBound(key);
    if (it != items_.end() && it->first == key) {
      it->second = std::forward<V>(value);
      return {it, false};
    }
    it = items_.emplace(it, std::string(key), std::string(std::forward<V>(value)));
    return {it, true};
  }
  size_t erase(std::string_view key) {
    auto it = find(key);
    if (it == items_.end()) return 0;
    items_.erase(it);
    return 1;
  }
  iterator erase(const_iterator it) { return items_.erase(it); }

  bool operator==(const Props&) const = default;

  /// Takes `items` as the whole list: they must be sorted by path, no path twice (what a
  /// reader that sorts what it collected has made). Costs no search.
  void AssignSorted(std::vector<value_type> items) { items_ = std::move(items); }

 private:
  /// Lists up to this long are scanned, longer ones searched by halves.
  static constexpr size_t kScanned = 16;

  /// Index of `key`, size() when absent.
  size_t IndexOf(std::string_view key) const {
    const size_t n = items_.size();
    if (n <= kScanned) {
      const value_type* p = items_.data();
      for (size_t i = 0; i < n; ++i) {
        if (SameText(p[i].first, key)) return i;
      }
      return n;
    }
    auto it = LowerBound(key);
    return it != items_.end() && it->first == key ? static_cast<size_t>(it - items_.begin()) : n;
  }
  const_iterator LowerBound(std::string_view key) const {
    return std::lower_bound(items_.begin(), items_.end(), key,
                            [](const value_type& p, std::string_view k) { return p.first < k; });
  }
  iterator LowerBound(std::string_view key) {
    return std::lower_bound(items_.begin(), items_.end(), key,
                            [](const value_type& p, std::string_view k) { return p.first < k; });
  }

  std::vector<value_type> items_;
};

}  // namespace pciplan
