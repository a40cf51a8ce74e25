// pciplan_fuzz_qemu N [SEED] [--first K] [--jobs J] [--out DIR] [--no-probes]: the long run of
// the differential fuzzer (scripts/fuzz-qemu.sh). Prints the figures; saves every domain whose
// accepted plan QEMU refused or misplaced to DIR for reproduction. Exit 1 when there is one.
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "qemu_fuzz.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: pciplan_fuzz_qemu N [SEED] [--first K] [--jobs J] [--out DIR] "
               "[--no-probes]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using pciplan::fuzz::Outcome;
  pciplan::fuzz::FuzzOptions options;
  std::filesystem::path out = "fuzz-findings";
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--first" && has_value) {
      options.first = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--jobs" && has_value) {
      options.jobs = std::atoi(argv[++i]);
    } else if (a == "--out" && has_value) {
      out = argv[++i];
    } else if (a == "--no-probes") {
      options.probes = pciplan::Probes::kNone;
    } else if (!a.empty() && a[0] != '-' && positional == 0) {
      options.count = std::strtoull(a.c_str(), nullptr, 10);
      ++positional;
    } else if (!a.empty() && a[0] != '-' && positional == 1) {
      options.seed = std::strtoull(a.c_str(), nullptr, 10);
      ++positional;
    } else {
      return Usage();
    }
  }
  if (options.count == 0) return Usage();
  std::vector<pciplan::fuzz::FuzzResult> results = pciplan::fuzz::RunFuzz(options);
  std::map<std::string, int> refused_by_rule;
  std::map<Outcome, int> count;
  for (const pciplan::fuzz::FuzzResult& r : results) {
    ++count[r.outcome];
    if (r.outcome == Outcome::kRefused) ++refused_by_rule[r.rule];
    if (r.outcome != Outcome::kQemuRefused && r.outcome != Outcome::kMismatch) continue;
    std::filesystem::create_directories(out);
    std::string name = fmt::format("seed{}-{:06}", options.seed, r.n);
    std::ofstream(out / (name + ".xml")) << r.xml;
    std::ofstream(out / (name + ".txt")) << r.detail << "\n";
    std::printf("%s %s: %s\n", r.outcome == Outcome::kQemuRefused ? "QEMU-REFUSED" : "MISMATCH",
                (out / (name + ".xml")).c_str(), r.detail.substr(0, r.detail.find('\n')).c_str());
  }
  std::printf("seed %llu, domains %llu..%llu\n", static_cast<unsigned long long>(options.seed),
              static_cast<unsigned long long>(options.first),
              static_cast<unsigned long long>(options.first + options.count - 1));
  std::printf("domains generated: %zu\n", results.size());
  std::printf("refused by pciplan: %d\n", count[Outcome::kRefused]);
  for (const auto& [rule, n] : refused_by_rule) std::printf("  %-24s %d\n", rule.c_str(), n);
  std::printf("accepted and verified OK: %d\n", count[Outcome::kVerified]);
  std::printf("QEMU refused an accepted plan: %d\n", count[Outcome::kQemuRefused]);
  std::printf("QEMU placed a device or probe otherwise: %d\n", count[Outcome::kMismatch]);
  return count[Outcome::kQemuRefused] + count[Outcome::kMismatch] > 0 ? 1 : 0;
}
