#include "pciplan/emit/tree.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

#include "pciplan/base/numbers.h"
#include "pciplan/plan/hotplug.h"

namespace pciplan {
namespace {

/// One thing in a slot of a bus: a planned device, or a function the machine reserves.
struct Entry {
  uint32_t slot = 0;
  uint32_t function = 0;
  int device = -1;           // index in plan.devices, or -1 for a reserved function
  std::string reserved;      // what the machine keeps there
  std::optional<uint32_t> bus;  // the bus a PCI controller makes (its index)
};

/// A run of free slots of one bus.
struct FreeRun {
  uint32_t first = 0;
  uint32_t last = 0;
};

struct TreeBus {
  const PlanBus* bus = nullptr;
  std::vector<Entry> entries;  // by slot, then function
  std::vector<FreeRun> free;
  int node = -1;  // the NUMA node of the expander bus it is (or is behind), -1 when none
};

class Tree {
 public:
  Tree(const Plan& plan, const Catalog& catalog) : plan_(plan), buses_(PlanBuses(plan, catalog)) {
    for (const PlanBus& b : buses_) tree_[b.index].bus = &b;
    for (size_t i = 0; i < plan.devices.size(); ++i) {
      const Device& d = plan.devices[i];
      if (d.address.type != AddressType::kPci || d.address.pci.IsUnassigned()) continue;
      auto it = tree_.find(d.address.pci.bus);
      if (it == tree_.end()) continue;
      Entry e{d.address.pci.slot, d.address.pci.function, static_cast<int>(i), {}, {}};
      if (d.tag == "controller" && d.Is("@type", "pci")) {
        e.bus = ParseDecimal(d.GetOr("@index", "")).value_or(0);
      }
      it->second.entries.push_back(std::move(e));
    }
    if (plan.family && tree_.count(0)) {
      TreeBus& root = tree_[0];
      for (const ReservedFunction& r : plan.family->reserved) {
        bool taken = std::any_of(root.entries.begin(), root.entries.end(), [&](const Entry& e) {
          return e.slot == r.slot && e.function == r.function;
        });
        if (!taken) root.entries.push_back(Entry{r.slot, r.function, -1, r.what, {}});
      }
    }
    for (auto& [index, t] : tree_) {
      std::sort(t.entries.begin(), t.entries.end(), [](const Entry& a, const Entry& b) {
        return std::tie(a.slot, a.function) < std::tie(b.slot, b.function);
      });
      const ControllerModel& m = *t.bus->model;
      for (uint32_t s = m.min_slot; s <= m.max_slot; ++s) {
        if (t.bus->used.count(s)) continue;
        if (!t.free.empty() && t.free.back().last + 1 == s) {
          t.free.back().last = s;
        } else {
          t.free.push_back({s, s});
        }
      }
    }
  }

  const Plan& plan() const { return plan_; }
  const std::map<uint32_t, TreeBus>& buses() const { return tree_; }
  /// The NUMA node of a bus: its expander's, inherited down; -1 when none.
  int NodeOf(uint32_t index) const { return tree_.at(index).bus->numa_node; }
  std::string Name(const Entry& e) const {
    if (e.device < 0) return "reserved: " + e.reserved;
    return DeviceRef::DescribeAt(plan_.devices, static_cast<size_t>(e.device));
  }

 private:
  const Plan& plan_;
  std::vector<PlanBus> buses_;
  std::map<uint32_t, TreeBus> tree_;
};

std::string FreeText(const FreeRun& r, bool hotplug) {
  std::string slots = r.first == r.last ? fmt::format("free slot 0x{:02x}", r.first)
                                        : fmt::format("free slots 0x{:02x}-0x{:02x}", r.first,
                                                      r.last);
  return slots + (hotplug ? " (hot-pluggable)" : " (not hot-pluggable)");
}

void TextBus(const Tree& t, uint32_t index, const std::string& prefix, std::string& out) {
  const TreeBus& b = t.buses().at(index);
  size_t lines = b.entries.size() + b.free.size();
  size_t k = 0;
  auto branch = [&](bool last) { return prefix + (last ? "└── " : "├── "); };
  auto below = [&](bool last) { return prefix + (last ? "    " : "│   "); };
  for (const Entry& e : b.entries) {
    bool last = ++k == lines;
    out += branch(last) + fmt::format("{:02x}:{:02x}.{:x} {}", index, e.slot, e.function, t.Name(e));
    if (e.bus && t.buses().count(*e.bus)) {
      const TreeBus& child = t.buses().at(*e.bus);
      out += fmt::format(" -> bus {}{}", child.bus->name, child.bus->hotplug ? "" : ", no hot-plug");
      int node = t.NodeOf(*e.bus);
      if (node >= 0 && child.bus->model->qemu_root_bus) out += fmt::format(", NUMA node {}", node);
      out += "\n";
      TextBus(t, *e.bus, below(last), out);
    } else {
      out += "\n";
    }
  }
  for (const FreeRun& r : b.free) {
    bool last = ++k == lines;
    out += branch(last) + FreeText(r, b.bus->hotplug) + "\n";
  }
}

std::string DotQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string RenderTreeText(const Plan& plan, const Catalog& catalog) {
  Tree t(plan, catalog);
  std::string out;
  for (const auto& [index, b] : t.buses()) {
    if (!b.bus->model->root) continue;
    out += fmt::format("{} (controller pci index {}, {})\n", b.bus->name, index,
                       b.bus->model->name);
    TextBus(t, index, "", out);
  }
  return out;
}

std::string RenderTreeDot(const Plan& plan, const Catalog& catalog) {
  Tree t(plan, catalog);
  std::string out = "digraph pciplan {\n  rankdir=LR;\n  node [fontname=\"monospace\", fontsize=10];\n";
  std::map<int, std::vector<std::string>> by_node;  // NUMA node -> statements
  for (const auto& [index, b] : t.buses()) {
    std::string id = fmt::format("bus{}", index);
    std::string stmt = fmt::format(
        "  {} [shape=box, style=filled, fillcolor={}, label={}];\n", id,
        b.bus->hotplug ? "lightblue" : "lightgrey",
        DotQuote(fmt::format("{}\n{} (index {})", b.bus->name, b.bus->model->name, index)));
    for (const Entry& e : b.entries) {
      std::string at = fmt::format("{:02x}:{:02x}.{:x}", index, e.slot, e.function);
      if (e.bus) {
        stmt += fmt::format("  {} -> bus{} [label={}];\n", id, *e.bus, DotQuote(at));
        continue;
      }
      std::string node = fmt::format("dev_{}_{}_{}", index, e.slot, e.function);
      stmt += fmt::format("  {} [shape=ellipse{}, label={}];\n  {} -> {};\n", node,
                          e.device < 0 ? ", style=dotted" : "",
                          DotQuote(at + "\n" + t.Name(e)), id, node);
    }
    for (const FreeRun& r : b.free) {
      std::string node = fmt::format("free_{}_{}", index, r.first);
      stmt += fmt::format("  {} [shape=note, style=dashed, color={}, label={}];\n  {} -> {};\n",
                          node, b.bus->hotplug ? "darkgreen" : "grey",
                          DotQuote(FreeText(r, b.bus->hotplug)), id, node);
    }
    by_node[t.NodeOf(index)].push_back(std::move(stmt));
  }
  for (const auto& [node, stmts] : by_node) {
    if (node >= 0) {
      out += fmt::format("  subgraph cluster_numa{} {{\n  label=\"NUMA node {}\";\n", node, node);
    }
    for (const std::string& s : stmts) out += s;
    if (node >= 0) out += "  }\n";
  }
  return out + "}\n";
}

}  // namespace pciplan
