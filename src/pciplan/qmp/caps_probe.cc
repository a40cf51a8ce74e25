#include "pciplan/qmp/caps_probe.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "pciplan/qmp/qemu_process.h"

namespace pciplan {
namespace {

using Json = nlohmann::json;

constexpr uint32_t kSlots = 32;

/// One controller of the probe machine.
struct Node {
  ControllerModelId model = -1;
  int parent = -1;  // index into the nodes; -1: on the root bus
  uint32_t index = 0;
  uint32_t slot = 0;
  size_t target = 0;  // the probed controller whose chain it is part of
};

/// The probe machine: per probed model, a chain of controllers from the root bus to it.
struct Layout {
  std::vector<Node> nodes;
  std::vector<ControllerModelId> targets;  // one per probed model
  std::vector<int> target_node;            // its node; -1: the root bus
  std::set<uint32_t> root_used;            // the root bus's slots the machine takes itself
};

bool MayHave(const ControllerModel& c, const MachineFamily& f) {
  return c.machines.empty() ||
         std::find(c.machines.begin(), c.machines.end(), f.name) != c.machines.end();
}

/// The shortest chain of models from the root bus to each model the family may have (the
/// models it plugs into, by plugs_as and offers), earlier models first on a tie.
std::map<ControllerModelId, std::vector<ControllerModelId>> Chains(const ControllerProbeRequest& r,
                                                                   const Catalog& catalog,
                                                                   const QemuCaps& caps) {
  std::map<ControllerModelId, std::vector<ControllerModelId>> paths;
  const ControllerModel& root = catalog.controller(r.family->root);
  std::vector<ControllerModelId> level;
  for (ControllerModelId id = 0; id < static_cast<int>(catalog.controllers.size()); ++id) {
    const ControllerModel& c = catalog.controller(id);
    if (c.root || c.qemu.empty() || !c.plugs_as || !MayHave(c, *r.family)) continue;
    if (caps.DeviceType(c.qemu).empty()) continue;
    if (root.offers.Has(*c.plugs_as)) {
      paths[id] = {id};
      level.push_back(id);
    }
  }
  while (!level.empty()) {
    std::vector<ControllerModelId> next;
    for (ControllerModelId id = 0; id < static_cast<int>(catalog.controllers.size()); ++id) {
      const ControllerModel& c = catalog.controller(id);
      if (paths.count(id) || c.root || c.qemu.empty() || !c.plugs_as) continue;
      if (!MayHave(c, *r.family) || caps.DeviceType(c.qemu).empty()) continue;
      for (ControllerModelId parent : level) {
        if (!catalog.controller(parent).offers.Has(*c.plugs_as)) continue;
        paths[id] = paths[parent];
        paths[id].push_back(id);
        next.push_back(id);
        break;
      }
    }
    level = std::move(next);
  }
  return paths;
}

Layout MakeLayout(const ControllerProbeRequest& r, const Catalog& catalog, const QemuCaps& caps) {
  Layout l;
  const ControllerModel& root = catalog.controller(r.family->root);
  uint32_t root_slot = root.min_slot;
  uint32_t index = 0;
  for (const auto& [model, path] : Chains(r, catalog, caps)) {
    const size_t target = l.targets.size();
    int parent = -1;
    for (ControllerModelId id : path) {
      Node n;
      n.model = id;
      n.parent = parent;
      n.index = ++index;
      n.target = target;
      if (parent < 0) {
        while (root_slot <= root.max_slot && r.root_used.count(root_slot)) ++root_slot;
        n.slot = root_slot++;
      } else {
        n.slot = catalog.controller(l.nodes[static_cast<size_t>(parent)].model).min_slot;
      }
      parent = static_cast<int>(l.nodes.size());
      l.nodes.push_back(n);
    }
    if (root_slot > root.max_slot + 1) break;  // the root bus is full: probe what fits
    l.targets.push_back(model);
    l.target_node.push_back(parent);
  }
  // A chain that did not fit on the root bus is dropped whole.
  l.nodes.erase(std::remove_if(l.nodes.begin(), l.nodes.end(),
                               [&](const Node& n) { return n.target >= l.targets.size(); }),
                l.nodes.end());
  return l;
}

std::string BusOf(const Layout& l, int node, const Catalog& catalog, const MachineFamily& f) {
  if (node < 0) return catalog.controller(f.root).bus_alias;
  const Node& n = l.nodes[static_cast<size_t>(node)];
  return catalog.controller(n.model).BusName(n.index);
}

/// The -device object of a controller: what qemu-args writes for it, with the target defaults
/// of its model (chassis = index, port = slot, busNr counting down from 254 as libvirt does).
Json ControllerObject(const Layout& l, size_t i, const ControllerProbeRequest& r,
                      const Catalog& catalog, const QemuCaps& caps, uint32_t& bus_nr) {
  const Node& n = l.nodes[i];
  const ControllerModel& c = catalog.controller(n.model);
  Json obj{{"driver", c.qemu},
           {"id", c.BusName(n.index)},
           {"bus", BusOf(l, n.parent, catalog, *r.family)},
           {"addr", fmt::format("{:#x}", n.slot)}};
  auto props = caps.properties.find(caps.DeviceType(c.qemu));
  for (const auto& [attr, rule] : c.target) {
    auto prop = catalog.qemu().controller_properties.find(attr);
    if (prop == catalog.qemu().controller_properties.end()) continue;
    if (props != caps.properties.end() && !props->second.count(prop->second)) continue;
    if (rule == "index") {
      obj[prop->second] = n.index;
    } else if (rule == "slot-function") {
      obj[prop->second] = n.slot * 8;
    } else if (rule == "slot") {
      obj[prop->second] = n.slot;
    } else if (rule == "auto") {
      bus_nr -= 2;
      obj[prop->second] = bus_nr;
    }
  }
  return obj;
}

enum class Kind { kPci, kPcie };
enum class When { kCold, kHot };

struct Run {
  Kind kind;
  When when;
  // per target, per slot: taken
  std::vector<std::vector<bool>> taken;
  std::vector<std::string> first_error;       // per target
  std::vector<std::string> controller_error;  // per target: QEMU refused the controller
  Diagnostics failure;                        // QEMU could not be started at all
};

/// The id in "-device {...,"id":"X",...}: message" of QEMU's refusal, or empty.
std::string RefusedId(const std::string& message) {
  size_t dev = message.find("-device ");
  if (dev == std::string::npos) return {};
  size_t at = message.find("\"id\":\"", dev);
  if (at == std::string::npos) return {};
  at += 6;
  size_t end = message.find('"', at);
  return end == std::string::npos ? std::string() : message.substr(at, end - at);
}

/// QEMU's own words after the option it repeats: "PCI: slot 0 function 0 not available ...".
std::string Reason(const std::string& message) {
  std::string first = message.substr(0, message.find('\n'));
  size_t at = first.rfind("}: ");
  return at == std::string::npos ? first : first.substr(at + 3);
}

/// Whether a slot of a probed bus holds a device of the machine's own (the root bus's built-ins).
bool Occupied(const Layout& l, size_t target, uint32_t slot) {
  return l.target_node[target] < 0 && l.root_used.count(slot);
}

std::string ProbeId(When when, size_t target, uint32_t slot) {
  return fmt::format("pciplan-{}-{}-{}", when == When::kCold ? "cold" : "hot", target, slot);
}

void Execute(Run& run, const Layout& l, const ControllerProbeRequest& r, const Catalog& catalog,
             const QemuCaps& caps) {
  const std::string& driver =
      run.kind == Kind::kPci ? catalog.qemu().probe_pci_driver : catalog.qemu().probe_pcie_driver;
  const size_t targets = l.targets.size();
  run.taken.assign(targets, std::vector<bool>(kSlots, false));
  run.first_error.assign(targets, "");
  run.controller_error.assign(targets, "");
  std::vector<bool> dropped_target(targets, false);
  std::set<std::string> dropped_probes;
  // Every run starts the same controllers; a controller QEMU refuses takes its chain with it.
  for (size_t attempt = 0; attempt <= targets + targets * kSlots; ++attempt) {
    std::vector<std::string> args = {"-machine", r.machine};
    if (!r.cpu.empty()) {
      args.push_back("-cpu");
      args.push_back(r.cpu);
    }
    for (const char* a : {"-nodefaults", "-display", "none", "-S"}) args.push_back(a);
    uint32_t bus_nr = 256;
    for (size_t i = 0; i < l.nodes.size(); ++i) {
      Json obj = ControllerObject(l, i, r, catalog, caps, bus_nr);
      if (dropped_target[l.nodes[i].target]) continue;
      args.push_back("-device");
      args.push_back(obj.dump());
    }
    if (run.when == When::kCold) {
      for (size_t t = 0; t < targets; ++t) {
        if (dropped_target[t]) continue;
        for (uint32_t s = 0; s < kSlots; ++s) {
          std::string id = ProbeId(When::kCold, t, s);
          if (dropped_probes.count(id) || Occupied(l, t, s)) continue;
          args.push_back("-device");
          args.push_back(
              Json{{"driver", driver},
                   {"id", id},
                   {"bus", BusOf(l, l.target_node[t], catalog, *r.family)},
                   {"addr", fmt::format("{:#x}", s)}}
                  .dump());
        }
      }
    }
    QemuLaunch launch;
    launch.binary = r.binary;
    launch.args = std::move(args);
    launch.timeout_ms = r.timeout_ms;
    Result<std::unique_ptr<QemuProcess>> qemu = QemuProcess::Start(launch);
    if (!qemu) {
      const std::string message = qemu.errors().front().message;
      const std::string id = RefusedId(message);
      bool known = false;
      for (size_t t = 0; t < targets && !known; ++t) {
        for (uint32_t s = 0; s < kSlots && !known; ++s) {
          if (id != ProbeId(When::kCold, t, s)) continue;
          const std::string reason = Reason(message);
          dropped_probes.insert(id);
          // A refusal that names no slot is the bus's ("Only PCI/PCIe bridges can be plugged
          // into pxb-pcie"): no other slot of it is tried.
          if (reason.find("slot") == std::string::npos) {
            for (uint32_t other = 0; other < kSlots; ++other) {
              dropped_probes.insert(ProbeId(When::kCold, t, other));
            }
          }
          if (run.first_error[t].empty()) run.first_error[t] = reason;
          known = true;
        }
      }
      for (size_t i = 0; i < l.nodes.size() && !known; ++i) {
        const Node& n = l.nodes[i];
        if (dropped_target[n.target] || id != catalog.controller(n.model).BusName(n.index)) {
          continue;
        }
        // The chains through it: only its own (each target has a chain of its own).
        dropped_target[n.target] = true;
        run.controller_error[n.target] = Reason(message);
        known = true;
      }
      if (!known) {
        run.failure = qemu.errors();
        return;
      }
      continue;
    }
    QmpClient& qmp = (*qemu)->qmp();
    for (size_t t = 0; t < targets; ++t) {
      if (dropped_target[t]) continue;
      const std::string bus = BusOf(l, l.target_node[t], catalog, *r.family);
      if (run.when == When::kCold) {
        for (uint32_t s = 0; s < kSlots; ++s) {
          run.taken[t][s] = !dropped_probes.count(ProbeId(When::kCold, t, s)) && !Occupied(l, t, s);
        }
        continue;
      }
      // From the last slot down: slot 0 of a PCIe port's bus is its only device number, and a
      // device there makes QEMU refuse every other slot ("function 0 already occupied").
      for (uint32_t s = kSlots; s-- > 0;) {
        if (Occupied(l, t, s)) continue;
        Result<Json> added = qmp.Execute("device_add",
                                         Json{{"driver", driver},
                                              {"id", ProbeId(When::kHot, t, s)},
                                              {"bus", bus},
                                              {"addr", fmt::format("{:#x}", s)}},
                                         r.timeout_ms);
        run.taken[t][s] = added.ok();
        if (added) continue;
        const std::string reason = added.errors().front().message;
        if (run.first_error[t].empty()) run.first_error[t] = reason;
        // The bus's refusal ("Bus 'pci.3' does not support hotplugging") holds for every slot;
        // QEMU takes ~50 ms over each refusal (it drains RCU callbacks), so ask no more.
        if (reason.find("slot") == std::string::npos) break;
      }
    }
    return;
  }
  run.failure = Diagnostics{Error(Rule::kQemu, "QEMU refused too many probes")};
}

}  // namespace

Result<std::vector<CapsController>> ProbeControllers(const ControllerProbeRequest& request,
                                                     const Catalog& catalog, const QemuCaps& caps) {
  std::vector<CapsController> out;
  if (!request.family || request.family->root < 0 || catalog.qemu().probe_pci_driver.empty() ||
      catalog.qemu().probe_pcie_driver.empty()) {
    return out;
  }
  // The controllers' machine, and the bare machine for its root bus: four runs each.
  Layout root;
  root.targets = {request.family->root};
  root.target_node = {-1};
  root.root_used = request.root_used;
  const Layout controllers = MakeLayout(request, catalog, caps);
  std::vector<const Layout*> layouts = {&root};
  if (!controllers.targets.empty()) layouts.push_back(&controllers);
  std::vector<std::vector<Run>> runs;
  for (size_t i = 0; i < layouts.size(); ++i) {
    runs.push_back({{Kind::kPci, When::kCold, {}, {}, {}, {}},
                    {Kind::kPcie, When::kCold, {}, {}, {}, {}},
                    {Kind::kPci, When::kHot, {}, {}, {}, {}},
                    {Kind::kPcie, When::kHot, {}, {}, {}, {}}});
  }
  {
    // Each QEMU is started, asked and stopped by the thread that owns it (QemuProcess dies with
    // the thread that started it).
    std::vector<std::thread> threads;
    for (size_t i = 0; i < layouts.size(); ++i) {
      for (Run& run : runs[i]) {
        const Layout* layout = layouts[i];
        threads.emplace_back([&run, layout, &request, &catalog, &caps] {
          Execute(run, *layout, request, catalog, caps);
        });
      }
    }
    for (std::thread& t : threads) t.join();
  }
  for (const std::vector<Run>& of_layout : runs) {
    for (const Run& run : of_layout) {
      if (!run.failure.empty()) return run.failure;
    }
  }
  for (size_t i = 0; i < layouts.size(); ++i) {
    const Layout& layout = *layouts[i];
    const std::vector<Run>& run = runs[i];
    for (size_t t = 0; t < layout.targets.size(); ++t) {
      CapsController c;
      c.model = catalog.controller(layout.targets[t]).name;
      c.bus = BusOf(layout, layout.target_node[t], catalog, *request.family);
      for (const Run& r : run) {
        if (c.error.empty()) c.error = r.controller_error[t];
      }
      if (c.error.empty()) {
        for (uint32_t s = 0; s < kSlots; ++s) {
          CapsSlot slot{s, run[0].taken[t][s], run[1].taken[t][s], run[2].taken[t][s],
                        run[3].taken[t][s]};
          slot.occupied = Occupied(layout, t, s);
          c.slots.push_back(slot);
        }
        c.cold_error =
            run[0].first_error[t].empty() ? run[1].first_error[t] : run[0].first_error[t];
        c.hot_error =
            run[2].first_error[t].empty() ? run[3].first_error[t] : run[2].first_error[t];
      }
      out.push_back(std::move(c));
    }
  }
  // In the data's order, as CompareCapsWithData reads them.
  std::sort(out.begin(), out.end(), [&](const CapsController& a, const CapsController& b) {
    return catalog.FindController(a.model) < catalog.FindController(b.model);
  });
  return out;
}

}  // namespace pciplan
