// pciplan's command line: one table of subcommands (plan, check, qemu-args, verify), each a function below. Exit
// status: 0 success, 1 the domain is invalid or cannot be planned, 2 usage or I/O errors.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "io.h"
#include "pciplan/domain/domain_reader.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"
#include "pciplan/qmp/verify.h"

namespace pciplan::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;

int Report(const Diagnostics& errs, const std::string& file) {
  for (const Diagnostic& d : errs) std::fprintf(stderr, "%s\n", d.Render(file).c_str());
  return kExitInvalid;
}

std::string DisplayName(const std::string& path) { return path == "-" ? "<stdin>" : path; }

struct Planned {
  Domain domain;
  Plan plan;
};

/// Reads and plans `input`; on failure prints the diagnostics and sets `status`.
std::optional<Planned> ReadAndPlan(const std::string& input, int& status) {
  Result<std::string> text = ReadInput(input);
  if (!text) {
    for (const Diagnostic& d : text.errors()) std::fprintf(stderr, "pciplan: %s\n", d.message.c_str());
    status = kExitUsage;
    return std::nullopt;
  }
  Result<Domain> domain = ReadDomain(std::move(text.value()));
  if (!domain) {
    status = Report(domain.errors(), DisplayName(input));
    return std::nullopt;
  }
  Result<Plan> plan = MakePlan(domain.value(), BuiltinCatalog(), PolicyName::kLibvirt);
  if (!plan) {
    status = Report(plan.errors(), DisplayName(input));
    return std::nullopt;
  }
  return Planned{std::move(domain.value()), std::move(plan.value())};
}

int RunPlan(const std::string& input, const std::string& output, bool explain) {
  int status = kExitOk;
  std::optional<Planned> p = ReadAndPlan(input, status);
  if (!p) return status;
  Result<std::string> xml = WriteDomain(p->domain, p->plan, BuiltinCatalog());
  if (!xml) return Report(xml.errors(), DisplayName(input));
  if (explain) {
    for (const std::string& note : p->plan.notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  }
  Result<bool> written = WriteOutput(output, xml.value());
  if (!written) {
    std::fprintf(stderr, "pciplan: %s\n", written.errors().front().message.c_str());
    return kExitUsage;
  }
  return kExitOk;
}

int RunQemuArgs(const std::string& input, bool json) {
  int status = kExitOk;
  std::optional<Planned> p = ReadAndPlan(input, status);
  if (!p) return status;
  Result<QemuCommand> cmd = BuildQemuCommand(p->domain, p->plan, BuiltinCatalog());
  if (!cmd) return Report(cmd.errors(), DisplayName(input));
  std::string out = json ? RenderQemuJson(cmd.value()).dump(2) + "\n" : RenderQemuShell(cmd.value());
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

int RunVerify(const std::string& input, const VerifyOptions& options, bool json) {
  int status = kExitOk;
  std::optional<Planned> p = ReadAndPlan(input, status);
  if (!p) return status;
  Result<VerifyReport> report = Verify(p->domain, p->plan, BuiltinCatalog(), options);
  if (!report) return Report(report.errors(), DisplayName(input));
  std::string out = json ? RenderVerifyJson(report.value()) : RenderVerifyText(report.value());
  std::fwrite(out.data(), 1, out.size(), stdout);
  return report->ok() ? kExitOk : kExitInvalid;
}

int RunCheck(const std::string& input) {
  int status = kExitOk;
  std::optional<Planned> p = ReadAndPlan(input, status);
  if (!p) return status;
  std::fprintf(stdout, "%s: ok (%s)\n", DisplayName(input).c_str(), p->plan.family->name.c_str());
  return kExitOk;
}

}  // namespace
}  // namespace pciplan::cli

int main(int argc, char** argv) {
  using namespace pciplan::cli;  // NOLINT: the command table reads better unqualified
  CLI::App app{"pciplan: plans PCI/PCIe device addresses for QEMU virtual machines", "pciplan"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "pciplan 0.1.0");

  std::string input, output = "-";
  bool explain = false;
  CLI::App* plan = app.add_subcommand(
      "plan", "Fill in every missing address (libvirt 9.0 policy) and print the domain XML");
  plan->add_option("input", input, "Domain XML file, or - for standard input")->required();
  plan->add_option("-o,--output", output, "Write the planned XML here (atomically) instead of "
                                          "standard output");
  plan->add_flag("--explain", explain, "Print why controllers were added, on standard error");

  CLI::App* check = app.add_subcommand(
      "check", "Validate the domain's fixed addresses and plan it, changing nothing");
  check->add_option("input", input, "Domain XML file, or - for standard input")->required();

  bool json = false;
  CLI::App* qemu_args = app.add_subcommand(
      "qemu-args", "Plan the domain and print the QEMU command line that builds its PCI topology");
  qemu_args->add_option("input", input, "Domain XML file, or - for standard input")->required();
  qemu_args->add_flag("--json", json, "Print JSON: machine, -device objects and argv");

  pciplan::VerifyOptions verify_options;
  bool no_probes = false;
  CLI::App* verify = app.add_subcommand(
      "verify", "Plan the domain, start the real QEMU paused with the plan and check that every "
                "device is where the plan put it and every promised hot-plug slot accepts one");
  verify->add_option("input", input, "Domain XML file, or - for standard input")->required();
  verify->add_option("--qemu", verify_options.qemu,
                     "QEMU binary (default: qemu-system-x86_64 or qemu-system-aarch64)");
  verify->add_flag("--json", json, "Print the report as JSON");
  verify->add_flag("--no-probes", no_probes, "Check addresses only, no hot-plug probes");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (*plan) return RunPlan(input, output, explain);
  if (*check) return RunCheck(input);
  if (*qemu_args) return RunQemuArgs(input, json);
  if (*verify) {
    verify_options.probe_hotplug = !no_probes;
    return RunVerify(input, verify_options, json);
  }
  return kExitUsage;
}
