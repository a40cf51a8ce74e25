// Benchmarks: reading, planning and writing the conformance corpus (one and two threads), and planning a large
// generated domain (linear scaling in the number of devices).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/edit/attach.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"

namespace {

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

void BM_PlanCorpus(benchmark::State& state) {
  static const std::vector<std::string> inputs = CorpusInputs();
  const pciplan::Catalog& cat = pciplan::BuiltinCatalog();
  for (auto _ : state) {
    for (const std::string& text : inputs) {
      pciplan::Result<pciplan::Domain> dom = pciplan::ReadDomain(text);
      if (!dom) continue;
      pciplan::Result<pciplan::Plan> plan = pciplan::MakePlan(*dom, cat, pciplan::PolicyName::kLibvirt);
      if (!plan) continue;
      benchmark::DoNotOptimize(pciplan::WriteDomain(*dom, *plan, cat));
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(inputs.size()));
}
// Corpus throughput on one thread and on two side by side (as plan --batch -j 2 runs it, without
// the file I/O): items_per_second is domains per second of all threads together.
BENCHMARK(BM_PlanCorpus)->Unit(benchmark::kMillisecond)->Threads(1)->Threads(2)->UseRealTime();

std::string DisksDomain(int machine_q35, int disks) {
  std::string xml = "<domain type='qemu'><name>b</name><os><type arch='x86_64' machine='";
  xml += machine_q35 ? "q35" : "pc";
  xml += "'>hvm</type></os><devices>\n";
  for (int i = 0; i < disks; ++i) {
    std::string dev = "vd";
    int n = i;
    std::string suffix;
    do {
      suffix.insert(suffix.begin(), static_cast<char>('a' + n % 26));
      n = n / 26 - 1;
    } while (n >= 0);
    xml += "<disk type='file' device='disk'><source file='/x'/><target dev='" + dev + suffix +
           "' bus='virtio'/></disk>\n";
  }
  return xml + "</devices></domain>\n";
}

void BM_PlanVirtioDisks(benchmark::State& state) {
  std::string text = DisksDomain(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  const pciplan::Catalog& cat = pciplan::BuiltinCatalog();
  for (auto _ : state) {
    pciplan::Result<pciplan::Domain> dom = pciplan::ReadDomain(text);
    pciplan::Result<pciplan::Plan> plan = pciplan::MakePlan(*dom, cat, pciplan::PolicyName::kLibvirt);
    benchmark::DoNotOptimize(plan);
  }
  state.SetComplexityN(state.range(1));
}
BENCHMARK(BM_PlanVirtioDisks)
    ->ArgsProduct({{0, 1}, {10, 50, 200}})
    ->Unit(benchmark::kMicrosecond)
    ->Complexity();

void BM_QemuArgsCorpus(benchmark::State& state) {
  static const std::vector<std::string> inputs = CorpusInputs();
  const pciplan::Catalog& cat = pciplan::BuiltinCatalog();
  std::vector<std::pair<pciplan::Domain, pciplan::Plan>> planned;
  for (const std::string& text : inputs) {
    pciplan::Result<pciplan::Domain> dom = pciplan::ReadDomain(text);
    if (!dom) continue;
    pciplan::Result<pciplan::Plan> plan = pciplan::MakePlan(*dom, cat, pciplan::PolicyName::kLibvirt);
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

/// Attaching one virtio NIC to a planned q35 domain with N disks: cost of one attach.
void BM_AttachToPlannedDomain(benchmark::State& state) {
  const pciplan::Catalog& cat = pciplan::BuiltinCatalog();
  pciplan::Result<pciplan::Domain> raw = pciplan::ReadDomain(DisksDomain(1, static_cast<int>(state.range(0))));
  pciplan::Result<pciplan::Plan> plan = pciplan::MakePlan(*raw, cat, pciplan::PolicyName::kLibvirt);
  pciplan::Result<pciplan::Domain> dom =
      pciplan::ReadDomain(pciplan::WriteDomain(*raw, *plan, cat).value());
  const std::string nic = "<interface type='user'><model type='virtio'/></interface>";
  for (auto _ : state) {
    benchmark::DoNotOptimize(pciplan::AttachDevice(*dom, nic, cat, pciplan::AttachMode::kConfig));
  }
  state.SetComplexityN(state.range(0));
}
BENCHMARK(BM_AttachToPlannedDomain)->Arg(10)->Arg(50)->Arg(200)->Unit(benchmark::kMicrosecond)->Complexity();

}  // namespace

BENCHMARK_MAIN();
