// Benchmarks (Google Benchmark; timing lives here, never in tests):
// - per machine type (pc, q35, virt), parse / plan / write / whole for N devices, with
//   complexity fits and the time per device (per_device), and the pugixml parse + serialize of
//   the same documents as the floor;
// - the conformance corpus on one and two threads (as plan --batch -j 2 runs it, without the
//   file I/O), qemu-args of the corpus;
// - attach to planned q35 domains of 10, 50 and 200 disks beside one whole plan of the same
//   domains.
#include <benchmark/benchmark.h>
#include <pugixml.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/edit/attach.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"

namespace {

using pciplan::BuiltinCatalog;
using pciplan::PolicyName;

std::vector<std::string> CorpusInputs() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(PCIPLAN_CONFORMANCE_DIR)) {
    std::ifstream f(e.path() / "input.xml");
    if (!f) continue;
    std::stringstream ss;
    ss << f.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

// The machine types of the per-N benchmarks (range(0)).
struct Machine {
  const char* arch;
  const char* type;
};
constexpr Machine kMachines[] = {{"x86_64", "pc"}, {"x86_64", "q35"}, {"aarch64", "virt"}};

std::string DiskName(int i) {
  std::string suffix;
  int n = i;
  do {
    suffix.insert(suffix.begin(), static_cast<char>('a' + n % 26));
    n = n / 26 - 1;
  } while (n >= 0);
  return "vd" + suffix;
}

/// A domain of the machine type with `devices` PCI endpoints: virtio disks and virtio NICs in
/// turn, no addresses.
std::string DevicesDomain(const Machine& m, int devices) {
  std::string xml = "<domain type='qemu'>\n  <name>bench</name>\n  <memory>1048576</memory>\n";
  xml += std::string("  <os>\n    <type arch='") + m.arch + "' machine='" + m.type +
         "'>hvm</type>\n  </os>\n  <devices>\n";
  for (int i = 0; i < devices; ++i) {
    if (i % 2 == 0) {
      xml += "    <disk type='file' device='disk'>\n      <source file='/x" + std::to_string(i) +
             "'/>\n      <target dev='" + DiskName(i / 2) + "' bus='virtio'/>\n    </disk>\n";
    } else {
      xml += "    <interface type='user'>\n      <model type='virtio'/>\n    </interface>\n";
    }
  }
  return xml + "  </devices>\n</domain>\n";
}

std::string DisksDomain(const char* machine, int disks) {
  std::string xml = "<domain type='qemu'><name>b</name><os><type arch='x86_64' machine='";
  xml += machine;
  xml += "'>hvm</type></os><devices>\n";
  for (int i = 0; i < disks; ++i) {
    xml += "<disk type='file' device='disk'><source file='/x'/><target dev='" + DiskName(i) +
           "' bus='virtio'/></disk>\n";
  }
  return xml + "</devices></domain>\n";
}

/// One domain's stages, made once outside the timed loops.
struct Staged {
  std::string input;
  pciplan::Domain domain;
  pciplan::Plan plan;
  std::string output;
};

Staged Stage(std::string input) {
  Staged s;
  s.input = std::move(input);
  s.domain = pciplan::ReadDomain(s.input).value();
  s.plan = pciplan::MakePlan(s.domain, BuiltinCatalog(), PolicyName::kLibvirt).value();
  s.output = pciplan::WriteDomain(s.domain, s.plan, BuiltinCatalog()).value();
  return s;
}

const Staged& StagedFor(const benchmark::State& state) {
  static std::map<std::pair<int64_t, int64_t>, Staged> cache;
  auto key = std::make_pair(state.range(0), state.range(1));
  auto it = cache.find(key);
  if (it == cache.end()) {
    const Machine& m = kMachines[state.range(0)];
    it = cache.emplace(key, Stage(DevicesDomain(m, static_cast<int>(state.range(1))))).first;
  }
  return it->second;
}

void Finish(benchmark::State& state, int64_t devices) {
  state.SetLabel(kMachines[state.range(0)].type);
  state.SetComplexityN(devices);
  // Time per device: flat when the cost is linear in devices.
  state.counters["per_device"] = benchmark::Counter(
      static_cast<double>(devices),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_Parse(benchmark::State& state) {
  const Staged& s = StagedFor(state);
  for (auto _ : state) benchmark::DoNotOptimize(pciplan::ReadDomain(s.input));
  Finish(state, state.range(1));
}

void BM_Plan(benchmark::State& state) {
  const Staged& s = StagedFor(state);
  for (auto _ : state) {
    benchmark::DoNotOptimize(pciplan::MakePlan(s.domain, BuiltinCatalog(), PolicyName::kLibvirt));
  }
  Finish(state, state.range(1));
}

void BM_Write(benchmark::State& state) {
  const Staged& s = StagedFor(state);
  for (auto _ : state) {
    benchmark::DoNotOptimize(pciplan::WriteDomain(s.domain, s.plan, BuiltinCatalog()));
  }
  Finish(state, state.range(1));
}

void BM_Whole(benchmark::State& state) {
  const Staged& s = StagedFor(state);
  for (auto _ : state) {
    pciplan::Result<pciplan::Domain> dom = pciplan::ReadDomain(s.input);
    pciplan::Result<pciplan::Plan> plan =
        pciplan::MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
    benchmark::DoNotOptimize(pciplan::WriteDomain(*dom, *plan, BuiltinCatalog()));
  }
  Finish(state, state.range(1));
}

struct StringWriter : pugi::xml_writer {
  std::string out;
  void write(const void* data, size_t size) override {
    out.append(static_cast<const char*>(data), size);
  }
};

/// The floor: pugixml parses the planned document and serializes it again (what any tool
/// reading and writing the same XML pays at least).
void BM_PugixmlFloor(benchmark::State& state) {
  const Staged& s = StagedFor(state);
  for (auto _ : state) {
    pugi::xml_document doc;
    doc.load_buffer(s.output.data(), s.output.size(), pugi::parse_default | pugi::parse_comments);
    StringWriter w;
    w.out.reserve(s.output.size());
    doc.save(w, "  ", pugi::format_raw);
    benchmark::DoNotOptimize(w.out);
  }
  Finish(state, state.range(1));
}

// pc: to 2000 devices; q35 and virt: one root port (bus) per device, so up to ~200.
void PerMachineArgs(benchmark::internal::Benchmark* b) {
  for (int n : {10, 100, 500, 1000, 2000}) b->Args({0, n});
  for (int64_t m : {1, 2}) {
    for (int n : {10, 50, 100, 200}) b->Args({m, n});
  }
  b->ArgNames({"machine", "devices"});
}

#define PCIPLAN_PER_MACHINE(fn) \
  BENCHMARK(fn)->Apply(PerMachineArgs)->Unit(benchmark::kMicrosecond)

PCIPLAN_PER_MACHINE(BM_Parse);
PCIPLAN_PER_MACHINE(BM_Plan);
PCIPLAN_PER_MACHINE(BM_Write);
PCIPLAN_PER_MACHINE(BM_Whole);
PCIPLAN_PER_MACHINE(BM_PugixmlFloor);

// Complexity fits need one machine type per benchmark: pc to 2000 devices, q35 to its bus limit
// for these domains (237: pcie-root's 30 slots take 240 root ports, three the machine's own).
void PcArgs(benchmark::internal::Benchmark* b) {
  for (int n : {10, 100, 500, 1000, 2000}) b->Args({0, n});
}
void Q35Args(benchmark::internal::Benchmark* b) {
  for (int n : {10, 50, 100, 200, 237}) b->Args({1, n});
}
void VirtArgs(benchmark::internal::Benchmark* b) {
  for (int n : {10, 50, 100, 200, 237}) b->Args({2, n});
}
BENCHMARK(BM_Whole)->Name("BM_WholeFit/pc")->Apply(PcArgs)->Complexity(benchmark::oN);
BENCHMARK(BM_Whole)->Name("BM_WholeFit/q35")->Apply(Q35Args)->Complexity(benchmark::oN);
BENCHMARK(BM_Whole)->Name("BM_WholeFit/virt")->Apply(VirtArgs)->Complexity(benchmark::oN);
BENCHMARK(BM_Plan)->Name("BM_PlanFit/pc")->Apply(PcArgs)->Complexity(benchmark::oN);

/// The 150-disk q35 domain of the issue: whole (parse + plan + write) against the floor.
const Staged& Disks150() {
  static const Staged s = Stage(DisksDomain("q35", 150));
  return s;
}
void BM_Disks150Whole(benchmark::State& state) {
  const Staged& s = Disks150();
  for (auto _ : state) {
    pciplan::Result<pciplan::Domain> dom = pciplan::ReadDomain(s.input);
    pciplan::Result<pciplan::Plan> plan =
        pciplan::MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
    benchmark::DoNotOptimize(pciplan::WriteDomain(*dom, *plan, BuiltinCatalog()));
  }
}
BENCHMARK(BM_Disks150Whole)->Unit(benchmark::kMicrosecond);
void BM_Disks150Floor(benchmark::State& state) {
  const Staged& s = Disks150();
  for (auto _ : state) {
    pugi::xml_document doc;
    doc.load_buffer(s.output.data(), s.output.size(), pugi::parse_default | pugi::parse_comments);
    StringWriter w;
    doc.save(w, "  ", pugi::format_raw);
    benchmark::DoNotOptimize(w.out);
  }
}
BENCHMARK(BM_Disks150Floor)->Unit(benchmark::kMicrosecond);

void BM_PlanCorpus(benchmark::State& state) {
  static const std::vector<std::string> inputs = CorpusInputs();
  const pciplan::Catalog& cat = BuiltinCatalog();
  for (auto _ : state) {
    for (const std::string& text : inputs) {
      pciplan::Result<pciplan::Domain> dom = pciplan::ReadDomain(text);
      if (!dom) continue;
      pciplan::Result<pciplan::Plan> plan = pciplan::MakePlan(*dom, cat, PolicyName::kLibvirt);
      if (!plan) continue;
      benchmark::DoNotOptimize(pciplan::WriteDomain(*dom, *plan, cat));
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(inputs.size()));
}
// items_per_second is domains per second of all threads together.
BENCHMARK(BM_PlanCorpus)->Unit(benchmark::kMillisecond)->Threads(1)->Threads(2)->UseRealTime();

void BM_QemuArgsCorpus(benchmark::State& state) {
  static const std::vector<std::string> inputs = CorpusInputs();
  const pciplan::Catalog& cat = BuiltinCatalog();
  std::vector<std::pair<pciplan::Domain, pciplan::Plan>> planned;
  for (const std::string& text : inputs) {
    pciplan::Result<pciplan::Domain> dom = pciplan::ReadDomain(text);
    if (!dom) continue;
    pciplan::Result<pciplan::Plan> plan = pciplan::MakePlan(*dom, cat, PolicyName::kLibvirt);
    if (plan) planned.emplace_back(std::move(dom.value()), std::move(plan.value()));
  }
  for (auto _ : state) {
    for (const auto& [dom, plan] : planned) {
      pciplan::Result<pciplan::QemuCommand> cmd = pciplan::BuildQemuCommand(dom, plan, cat);
      if (cmd) benchmark::DoNotOptimize(pciplan::RenderQemuShell(cmd.value()));
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(planned.size()));
}
BENCHMARK(BM_QemuArgsCorpus)->Unit(benchmark::kMillisecond);

/// A planned q35 domain of N disks (what attach is given).
const pciplan::Domain& PlannedDisks(int disks) {
  static std::map<int, pciplan::Domain> cache;
  auto it = cache.find(disks);
  if (it == cache.end()) {
    it = cache.emplace(disks, pciplan::ReadDomain(Stage(DisksDomain("q35", disks)).output).value())
             .first;
  }
  return it->second;
}

/// Attaching one virtio NIC to a planned q35 domain with N disks...
void BM_AttachToPlannedDomain(benchmark::State& state) {
  const pciplan::Domain& dom = PlannedDisks(static_cast<int>(state.range(0)));
  const std::string nic = "<interface type='user'><model type='virtio'/></interface>";
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        pciplan::AttachDevice(dom, nic, BuiltinCatalog(), pciplan::AttachMode::kConfig));
  }
  state.SetComplexityN(state.range(0));
}
BENCHMARK(BM_AttachToPlannedDomain)->Arg(10)->Arg(50)->Arg(200)->Unit(benchmark::kMicrosecond)
    ->Complexity();

/// ... and one plan of the same planned domain (read, plan, write), the yardstick of attach.
void BM_PlanPlannedDomain(benchmark::State& state) {
  const pciplan::Domain& dom = PlannedDisks(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    pciplan::Result<pciplan::Domain> read = pciplan::ReadDomain(dom.text);
    pciplan::Result<pciplan::Plan> plan =
        pciplan::MakePlan(*read, BuiltinCatalog(), PolicyName::kLibvirt);
    benchmark::DoNotOptimize(pciplan::WriteDomain(*read, *plan, BuiltinCatalog()));
  }
}
BENCHMARK(BM_PlanPlannedDomain)->Arg(10)->Arg(50)->Arg(200)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
