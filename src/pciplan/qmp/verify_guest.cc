#include "pciplan/qmp/verify_guest.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "pciplan/base/numbers.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/qmp/guest_initramfs.h"
#include "pciplan/qmp/qemu_process.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kPollMs = 50;
constexpr int kConsoleTailLines = 8;  // of the console in a boot failure
constexpr const char* kConsoleChardev = "pciplan-console";

/// A private folder removed with everything in it when the object goes.
class ScratchDir {
 public:
  ScratchDir() {
    std::error_code ec;
    fs::path base = fs::temp_directory_path(ec);
    std::string templ = ((ec ? fs::path("/tmp") : base) / "pciplan-guest-XXXXXX").string();
    if (mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The files a pattern names: itself, or with one '*' in its last component every file of that
/// folder the pattern matches, newest (greatest name, as Debian's versions sort) first.
std::vector<std::string> Expand(const std::string& pattern) {
  fs::path p(pattern);
  std::string leaf = p.filename().string();
  size_t star = leaf.find('*');
  std::error_code ec;
  if (star == std::string::npos) {
    return fs::is_regular_file(p, ec) ? std::vector<std::string>{pattern}
                                      : std::vector<std::string>{};
  }
  std::string prefix = leaf.substr(0, star), suffix = leaf.substr(star + 1);
  std::vector<std::string> found;
  for (fs::directory_iterator it(p.parent_path(), ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() >= prefix.size() + suffix.size() &&
        name.compare(0, prefix.size(), prefix) == 0 &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        it->is_regular_file(ec)) {
      found.push_back(it->path().string());
    }
  }
  std::sort(found.rbegin(), found.rend());
  return found;
}

Result<std::string> FindFirst(const std::vector<std::string>& patterns, const std::string& what) {
  for (const std::string& p : patterns) {
    std::vector<std::string> files = Expand(p);
    if (!files.empty()) return files.front();
  }
  std::string where;
  for (const std::string& p : patterns) where += (where.empty() ? "" : ", ") + p;
  return Error(Rule::kQemu, fmt::format("no {} found (looked for {}); scripts/setup.sh installs "
                                        "it, or name one with --{}",
                                        what, where, what));
}

/// `value` as the value of a QEMU option list ("file,path=..."), where a comma is written twice.
std::string OptionValue(const std::string& value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

/// Text on one line: line ends become "; ".
std::string OneLine(const std::string& text) {
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out += (out.empty() ? "" : "; ") + line;
  }
  return out;
}

/// The last lines of the guest's console, joined into one line.
std::string ConsoleTail(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  std::string out;
  size_t from = lines.size() > kConsoleTailLines ? lines.size() - kConsoleTailLines : 0;
  for (size_t i = from; i < lines.size(); ++i) out += (out.empty() ? "" : " | ") + lines[i];
  return out.empty() ? "(nothing: the firmware never started the kernel)" : out;
}

/// What QEMU's query-pci says of one function: its ids and where QEMU has it.
struct QemuFunction {
  PciChain chain;
  uint32_t vendor = 0, device = 0, class16 = 0;
  std::vector<GuestExpect::Bar> bars;
};

/// Walks query-pci's answer: each root bus (bus 0 and every expander bus, numbered as QEMU
/// and the guest number them) and, through each bridge the guest numbered, the buses below.
void WalkPci(const Json& devices, const PciChain& above, std::map<std::string, QemuFunction>& ids,
             std::map<PciChain, QemuFunction>& chains) {
  if (!devices.is_array()) return;
  for (const Json& d : devices) {
    QemuFunction f;
    f.chain = above;
    f.chain.hops.push_back({d.value("slot", 0u), d.value("function", 0u)});
    if (d.contains("id") && d["id"].is_object()) {
      f.vendor = d["id"].value("vendor", 0u);
      f.device = d["id"].value("device", 0u);
    }
    if (d.contains("class_info") && d["class_info"].is_object()) {
      f.class16 = d["class_info"].value("class", 0u);
    }
    for (const Json& r : d.value("regions", Json::array())) {
      if (!r.is_object() || r.value("bar", 99u) >= 6) continue;
      f.bars.push_back({r.value("bar", 0u), r.value("type", "") == "io"});
    }
    std::string qdev = d.value("qdev_id", "");
    if (!qdev.empty()) ids[qdev] = f;
    chains[f.chain] = f;
    if (d.contains("pci_bridge") && d["pci_bridge"].is_object()) {
      WalkPci(d["pci_bridge"].value("devices", Json::array()), f.chain, ids, chains);
    }
  }
}

void SetIds(GuestExpect& e, const QemuFunction& f) {
  e.vendor = f.vendor;
  e.device_id = f.device;
  e.class_code16 = f.class16;
  e.bars = f.bars;
}

}  // namespace

std::map<int, PlannedChain> PlannedChains(const Plan& plan, const Catalog& catalog) {
  std::map<uint32_t, int> controllers;  // index -> device
  for (size_t i = 0; i < plan.devices.size(); ++i) {
    const Device& d = plan.devices[i];
    if (d.tag != "controller" || !d.Is("@type", "pci")) continue;
    controllers[ParseDecimal(d.GetOr("@index", "0")).value_or(0)] = static_cast<int>(i);
  }
  std::map<int, PlannedChain> out;
  for (size_t i = 0; i < plan.devices.size(); ++i) {
    const Device& d = plan.devices[i];
    if (d.address.type != AddressType::kPci || d.address.pci.IsUnassigned()) continue;
    PlannedChain pc;
    std::vector<SlotFunction> hops = {{d.address.pci.slot, d.address.pci.function}};
    uint32_t bus = d.address.pci.bus;
    bool rooted = false;
    // Up through the controllers to a root; at most one step per controller (no cycle).
    for (size_t steps = 0; steps <= controllers.size() && !rooted; ++steps) {
      auto it = controllers.find(bus);
      if (it == controllers.end()) break;
      const Device& c = plan.devices[it->second];
      ControllerModelId m = catalog.FindController(c.GetOr("@model", ""));
      if (m < 0) break;
      const ControllerModel& model = catalog.controller(m);
      if (model.root) {
        pc.chain.root = 0;
        rooted = true;
      } else if (model.qemu_root_bus) {
        pc.chain.root = ParseDecimal(c.GetOr("target/@busNr", "0")).value_or(0);
        if (model.qemu_inner_bridge) hops.push_back({0, 0});
        if (std::optional<uint32_t> node = ParseDecimal(c.GetOr("target/node", ""))) {
          pc.numa_node = static_cast<int>(*node);
        }
        rooted = true;
      } else if (c.address.type == AddressType::kPci) {
        hops.push_back({c.address.pci.slot, c.address.pci.function});
        bus = c.address.pci.bus;
      } else {
        break;
      }
    }
    if (!rooted) continue;
    pc.chain.hops.assign(hops.rbegin(), hops.rend());
    out[static_cast<int>(i)] = std::move(pc);
  }
  return out;
}

bool GuestReport::ok() const {
  for (const GuestCheck& c : devices) {
    if (c.status == GuestStatus::kMismatch) return false;
  }
  return true;
}

Result<GuestReport> VerifyGuest(const Domain& domain, const Plan& plan, const Catalog& catalog,
                                const GuestOptions& options) {
  ScratchDir scratch;
  if (scratch.path().empty()) return Error(Rule::kQmp, "cannot create a temporary folder");
  Result<QemuCommand> cmd =
      BuildQemuCommand(domain, plan, catalog, QemuArgsOptions::ForVerify(scratch.path()));
  if (!cmd) return cmd.errors();
  const GuestFacts& facts = catalog.qemu().guest;
  auto sys = facts.systems.find(cmd->binary);
  if (sys == facts.systems.end()) {
    return Error(Rule::kQemu, fmt::format("verify --guest has no guest for {} (data/qemu.json "
                                          "guest/systems)",
                                          cmd->binary));
  }
  GuestReport report;
  report.binary = options.qemu.empty() ? cmd->binary : options.qemu;
  Result<std::string> kernel = options.kernel.empty() ? FindFirst(sys->second.kernels, "kernel")
                                                      : Result<std::string>(options.kernel);
  if (!kernel) return kernel.errors();
  report.kernel = *kernel;
  Result<std::string> busybox = options.busybox.empty() ? FindFirst(sys->second.busybox, "busybox")
                                                        : Result<std::string>(options.busybox);
  if (!busybox) return busybox.errors();
  std::string busybox_bytes = ReadFile(*busybox);
  if (Result<bool> elf = CheckStaticElf(busybox_bytes, sys->second.elf_machine, *busybox); !elf) {
    return elf.errors();
  }
  const std::string initrd = scratch.path() + "/initramfs.cpio";
  const std::string console = scratch.path() + "/console.log";
  {
    std::ofstream out(initrd, std::ios::binary);
    out << BuildGuestInitramfs(busybox_bytes);
    if (!out) return Error(Rule::kQmp, fmt::format("cannot write '{}'", initrd));
  }

  if (!sys->second.machine_options.empty()) {
    cmd->machine_options += (cmd->machine_options.empty() ? "" : ",") + sys->second.machine_options;
  }
  QemuLaunch launch;
  launch.binary = report.binary;
  launch.args = cmd->Argv();
  const std::vector<std::string>& prelude = cmd->prelude;
  if (std::find(prelude.begin(), prelude.end(), "-m") == prelude.end()) {
    launch.args.push_back("-m");
    launch.args.push_back(fmt::format("{}M", facts.memory_mib));
  }
  // -no-shutdown: the guest's power-off stops QEMU rather than ending it, so that query-pci
  // then shows the buses as the guest numbered them.
  for (const std::string& a :
       {std::string("-display"), std::string("none"), std::string("-accel"), std::string("tcg"),
        std::string("-no-reboot"), std::string("-no-shutdown"), std::string("-kernel"), *kernel,
        std::string("-initrd"), initrd, std::string("-append"),
        fmt::format("console={} {}", sys->second.console, facts.append), std::string("-chardev"),
        fmt::format("file,id={},path={}", kConsoleChardev, OptionValue(console)),
        std::string("-serial"), fmt::format("chardev:{}", kConsoleChardev)}) {
    launch.args.push_back(a);
  }
  for (const Device& d : plan.devices) {
    ControllerModelId m =
        d.tag == "controller" ? catalog.FindController(d.GetOr("@model", "")) : -1;
    if (m >= 0 && catalog.controller(m).qemu_root_bus) {
      launch.args.insert(launch.args.end(), sys->second.root_bus_args.begin(),
                         sys->second.root_bus_args.end());
      break;
    }
  }
  launch.timeout_ms = options.timeout_ms;
  Clock::time_point start = Clock::now();
  Result<std::unique_ptr<QemuProcess>> started = QemuProcess::Start(launch);
  if (!started) return started.errors();
  std::unique_ptr<QemuProcess> qemu = std::move(started.value());
  auto elapsed_ms = [&] {
    return static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
  };

  std::string text;
  for (;;) {
    text = ReadFile(console);
    if (report.init_ms == 0 && text.find(kGuestBeginMarker) != std::string::npos) {
      report.init_ms = elapsed_ms();
    }
    if (text.find(kGuestEndMarker) != std::string::npos) break;
    if (qemu->Exited()) {
      return Error(Rule::kQemu, fmt::format("QEMU stopped before the guest reported: {}; "
                                            "console: {}",
                                            OneLine(qemu->StderrText()), ConsoleTail(text)));
    }
    if (elapsed_ms() > options.timeout_ms) {
      qemu.reset();
      return Error(Rule::kQemu, fmt::format("the guest did not report within {} s (QEMU "
                                            "killed); console: {}",
                                            options.timeout_ms / 1000, ConsoleTail(text)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
  report.boot_ms = elapsed_ms();
  if (report.init_ms == 0) report.init_ms = report.boot_ms;
  // Wait for the power-off, so that the guest has stopped touching its buses.
  for (;;) {
    Result<Json> status = qemu->qmp().Execute("query-status", Json::object(), options.timeout_ms);
    if (!status) return status.errors();
    if (!status->value("running", false)) break;
    if (elapsed_ms() > options.timeout_ms) {
      return Error(Rule::kQemu, "the guest reported but did not power off");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
  Result<Json> pci = qemu->qmp().Execute("query-pci", Json::object(), options.timeout_ms);
  if (!pci) return pci.errors();
  qemu.reset();

  std::map<std::string, QemuFunction> by_id;
  std::map<PciChain, QemuFunction> by_chain;
  for (const Json& bus : pci->is_array() ? *pci : Json::array()) {
    PciChain root;
    root.root = bus.value("bus", 0u);
    WalkPci(bus.value("devices", Json::array()), root, by_id, by_chain);
  }
  Result<std::vector<GuestFunction>> seen = ParseGuestConsole(text);
  if (!seen) return seen.errors();

  std::map<int, PlannedChain> chains = PlannedChains(plan, catalog);
  std::vector<GuestExpect> expects;
  std::vector<std::string> qemu_moved;  // per expectation: where QEMU has it, when elsewhere
  auto add = [&](int device, const std::string& id, const std::string& driver, bool pci_dev) {
    GuestExpect e;
    e.device = DeviceRef::DescribeAt(plan.devices, static_cast<size_t>(device));
    e.id = id;
    e.driver = driver;
    e.pci = pci_dev;
    std::string moved;
    if (pci_dev) {
      auto c = chains.find(device);
      if (c != chains.end()) {
        e.chain = c->second.chain;
        e.numa_node = c->second.numa_node;
        e.numa_witness = sys->second.numa_witness;
      }
      auto q = id.empty() ? by_chain.find(e.chain) : by_chain.end();
      auto qi = id.empty() ? by_id.end() : by_id.find(id);
      if (qi != by_id.end()) {
        SetIds(e, qi->second);
        if (!(qi->second.chain == e.chain)) moved = qi->second.chain.ToString();
      } else if (q != by_chain.end()) {
        SetIds(e, q->second);
      }
    }
    expects.push_back(std::move(e));
    qemu_moved.push_back(std::move(moved));
  };
  for (const QemuDeviceArg& d : cmd->devices) {
    // A device with a virtio-mmio address that QEMU still puts on PCI (data's mmio_driver is a
    // PCI device) is where QEMU put it, and verify checks that; the guest check is for PCI.
    add(d.device, d.object.value("id", ""), d.object.value("driver", ""), d.pci);
  }
  for (const QemuBuiltin& b : cmd->builtins) add(b.device, "", "", true);
  report.devices = MatchGuest(expects, *seen);
  std::set<PciChain> matched;
  for (size_t i = 0; i < report.devices.size(); ++i) {
    GuestCheck& c = report.devices[i];
    if (c.seen) matched.insert(c.seen->chain);
    if (!qemu_moved[i].empty()) {
      c.status = GuestStatus::kMismatch;
      c.problem += (c.problem.empty() ? "" : "; ") + ("QEMU has it at " + qemu_moved[i]);
    }
  }
  for (const GuestFunction& f : *seen) {
    if (!matched.count(f.chain)) report.others.push_back(f);
  }
  return report;
}

namespace {

std::string Seen(const GuestCheck& c) {
  if (!c.seen) return "absent";
  const GuestFunction& f = *c.seen;
  return fmt::format("{} {:04x}:{:04x} class {:06x} node {}{} BARs {}/{}", f.name, f.vendor,
                     f.device, f.class_code, f.numa_node,
                     f.acpi_node ? fmt::format(" (ACPI proximity {})", *f.acpi_node) : "",
                     std::popcount(f.bars_assigned), std::popcount(f.bars_used));
}

const char* StatusWord(GuestStatus s) {
  switch (s) {
    case GuestStatus::kOk:
      return "OK";
    case GuestStatus::kMismatch:
      return "MISMATCH";
    case GuestStatus::kNotPci:
      return "n/a";
  }
  return "";
}

}  // namespace

std::string RenderGuestText(const GuestReport& report) {
  std::string out;
  int bad = 0, pci = 0;
  for (const GuestCheck& c : report.devices) {
    bad += c.status == GuestStatus::kMismatch ? 1 : 0;
    const GuestExpect& e = c.expect;
    std::string who = e.device + (e.id.empty() ? " (built in)" : fmt::format(" [{}]", e.id));
    if (c.status == GuestStatus::kNotPci) {
      out += fmt::format("{:<8} {}: virtio-mmio, no PCI function for the guest to show\n",
                         StatusWord(c.status), who);
      continue;
    }
    ++pci;
    std::string node =
        e.numa_node ? fmt::format(" (planned node {}, judged by {})", *e.numa_node,
                                  e.numa_witness == NumaWitness::kAcpi ? "ACPI" : "the kernel")
                    : "";
    out += fmt::format("{:<8} {}: planned {}, guest {}{}{}{}\n", StatusWord(c.status), who,
                       e.chain.ToString(), Seen(c), node, c.problem.empty() ? "" : ": " + c.problem,
                       c.note.empty() ? "" : " (note: " + c.note + ")");
  }
  out += fmt::format(
      "{}: {} PCI devices seen by the guest where planned, {} mismatches, {} other guest "
      "functions; booted {}: init after {:.1f} s, report done after {:.1f} s\n",
      bad == 0 ? "verified in the guest" : "NOT verified in the guest", pci - bad, bad,
      report.others.size(), report.kernel, report.init_ms / 1000.0, report.boot_ms / 1000.0);
  return out;
}

std::string RenderGuestJson(const GuestReport& report) {
  auto function = [](const GuestFunction& f) {
    return Json{{"path", f.path},
                {"chain", f.chain.ToString()},
                {"vendor", fmt::format("{:04x}", f.vendor)},
                {"device", fmt::format("{:04x}", f.device)},
                {"class", fmt::format("{:06x}", f.class_code)},
                {"numa_node", f.numa_node},
                {"acpi_node", f.acpi_node ? Json(*f.acpi_node) : Json(nullptr)},
                {"bars_used", f.bars_used},
                {"bars_assigned", f.bars_assigned}};
  };
  Json out;
  out["ok"] = report.ok();
  out["binary"] = report.binary;
  out["kernel"] = report.kernel;
  out["init_ms"] = report.init_ms;
  out["boot_ms"] = report.boot_ms;
  out["devices"] = Json::array();
  for (const GuestCheck& c : report.devices) {
    const GuestExpect& e = c.expect;
    Json j{{"device", e.device},
           {"id", e.id},
           {"driver", e.driver},
           {"status", c.status == GuestStatus::kOk         ? "ok"
                      : c.status == GuestStatus::kMismatch ? "mismatch"
                                                           : "not-pci"}};
    if (e.pci) {
      j["planned"] = e.chain.ToString();
      j["guest"] = c.seen ? function(*c.seen) : Json(nullptr);
      j["planned_numa_node"] = e.numa_node ? Json(*e.numa_node) : Json(nullptr);
      j["numa_witness"] = e.numa_witness == NumaWitness::kAcpi ? "acpi" : "kernel";
      if (!c.problem.empty()) j["problem"] = c.problem;
      if (!c.note.empty()) j["note"] = c.note;
    }
    out["devices"].push_back(std::move(j));
  }
  out["other_functions"] = Json::array();
  for (const GuestFunction& f : report.others) out["other_functions"].push_back(function(f));
  return out.dump(2) + "\n";
}

}  // namespace pciplan
