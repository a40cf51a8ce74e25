// pciplan's command line: one table of subcommands (plan, check, qemu-args, verify, attach,
// detach), each a function below. Exit status: 0 success, 1 the domain is invalid or cannot be
// planned (or verify found a mismatch), 2 usage or I/O errors.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "io.h"
#include "pciplan/domain/domain_reader.h"
#include "pciplan/edit/attach.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"
#include "pciplan/qmp/live.h"
#include "pciplan/qmp/qmp_client.h"
#include "pciplan/qmp/transport.h"
#include "pciplan/qmp/verify.h"
#include "pciplan/qmp/verify_guest.h"

namespace pciplan::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;

/// Prints `errs`, each naming the file its line is in: `file`, or `device_file` (attach and
/// detach) for errors in the device file.
int Report(const Diagnostics& errs, const std::string& file, const std::string& device_file = {}) {
  for (const Diagnostic& d : errs) {
    bool in_device = d.input == InputFile::kDevice && !device_file.empty();
    std::fprintf(stderr, "%s\n", d.Render(in_device ? device_file : file).c_str());
  }
  return kExitInvalid;
}

std::string DisplayName(const std::string& path) { return path == "-" ? "<stdin>" : path; }

struct Planned {
  Domain domain;
  Plan plan;
};

/// The wish options of plan, check, qemu-args and verify (README "Wishes").
struct WishArgs {
  std::string policy_file;
  std::string hotplug_slots;          // --hotplug-slots pcie=N,pci=M
  std::string default_address_type;   // --default-address-type pci|virtio-mmio
  std::vector<std::string> wishes;    // --wish DEVICE:NAME=VALUE[,...]

  void AddTo(CLI::App& app) {
    app.add_option("--policy-file", policy_file,
                   "JSON file of wishes (over the domain's metadata, under the flags)");
    app.add_option("--hotplug-slots", hotplug_slots,
                   "Free hot-pluggable slots to keep: pcie=N,pci=M");
    app.add_option("--default-address-type", default_address_type,
                   "Transport of open virtio addresses on virt: pci or virtio-mmio");
    app.add_option("--wish", wishes, "A device wish: DEVICE:NAME=VALUE[,NAME=VALUE] (repeatable)");
  }
};

/// The wishes of the policy file and the flags, flags last (they win); errors name the source.
Result<Wishes> CommandLineWishes(const WishArgs& a) {
  Wishes w;
  if (!a.policy_file.empty()) {
    Result<std::string> text = ReadInput(a.policy_file);
    if (!text) return text.errors();
    Result<Wishes> file = ParsePolicyFile(text.value());
    if (!file) {
      Diagnostics e = file.errors();
      for (Diagnostic& d : e) d.message = a.policy_file + ": " + d.message;
      return e;
    }
    w = file.value();
  }
  Wishes flags;
  if (!a.hotplug_slots.empty()) {
    Result<Wishes> slots = ParseHotplugSlotsFlag(a.hotplug_slots);
    if (!slots) return slots.errors();
    flags = slots.value();
  }
  if (!a.default_address_type.empty()) {
    Result<bool> r = SetDomainWish(flags, "defaultAddressType", a.default_address_type);
    if (!r) return r.errors();
  }
  for (const std::string& text : a.wishes) {
    Result<DeviceWish> d = ParseWishFlag(text);
    if (!d) return d.errors();
    Wishes one;
    one.devices.push_back(d.value());
    flags = Overlay(flags, one);
  }
  return Overlay(w, flags);
}

/// Reads and plans `input`; on failure prints the diagnostics and sets `status`.
std::optional<Planned> ReadAndPlan(const std::string& input, const WishArgs& wish_args,
                                   int& status) {
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
  Result<Wishes> given = CommandLineWishes(wish_args);
  if (!given) {
    for (const Diagnostic& d : given.errors()) {
      std::fprintf(stderr, "%s\n", d.Render("pciplan").c_str());
    }
    status = kExitUsage;
    return std::nullopt;
  }
  domain->wishes = Overlay(domain->wishes, given.value());
  Result<Plan> plan = MakePlan(domain.value(), BuiltinCatalog(), PolicyName::kLibvirt);
  if (!plan) {
    status = Report(plan.errors(), DisplayName(input));
    return std::nullopt;
  }
  return Planned{std::move(domain.value()), std::move(plan.value())};
}

enum class WriteWishes { kNo, kYes };

int RunPlan(const std::string& input, const std::string& output, bool explain,
            const WishArgs& wish_args, WriteWishes write_wishes) {
  int status = kExitOk;
  std::optional<Planned> p = ReadAndPlan(input, wish_args, status);
  if (!p) return status;
  Result<std::string> xml = WriteDomain(p->domain, p->plan, BuiltinCatalog());
  if (!xml) return Report(xml.errors(), DisplayName(input));
  if (write_wishes == WriteWishes::kYes) {
    // Recorded into the planned text, so the next plan needs no flags.
    Result<Domain> planned = ReadDomain(xml.value());
    if (!planned) return Report(planned.errors(), DisplayName(input));
    xml = WithWishesText(planned.value(), p->domain.wishes);
  }
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

int RunQemuArgs(const std::string& input, const WishArgs& wish_args, bool json) {
  int status = kExitOk;
  std::optional<Planned> p = ReadAndPlan(input, wish_args, status);
  if (!p) return status;
  Result<QemuCommand> cmd = BuildQemuCommand(p->domain, p->plan, BuiltinCatalog());
  if (!cmd) return Report(cmd.errors(), DisplayName(input));
  std::string out =
      json ? RenderQemuJson(cmd.value()).dump(2) + "\n" : RenderQemuShell(cmd.value());
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

int RunVerify(const std::string& input, const WishArgs& wish_args, const VerifyOptions& options,
              bool json) {
  int status = kExitOk;
  std::optional<Planned> p = ReadAndPlan(input, wish_args, status);
  if (!p) return status;
  Result<VerifyReport> report = Verify(p->domain, p->plan, BuiltinCatalog(), options);
  if (!report) return Report(report.errors(), DisplayName(input));
  std::string out = json ? RenderVerifyJson(report.value()) : RenderVerifyText(report.value());
  std::fwrite(out.data(), 1, out.size(), stdout);
  return report->ok() ? kExitOk : kExitInvalid;
}

int RunVerifyGuest(const std::string& input, const WishArgs& wish_args,
                   const GuestOptions& options, bool json) {
  int status = kExitOk;
  std::optional<Planned> p = ReadAndPlan(input, wish_args, status);
  if (!p) return status;
  Result<GuestReport> report = VerifyGuest(p->domain, p->plan, BuiltinCatalog(), options);
  if (!report) return Report(report.errors(), DisplayName(input));
  std::string out = json ? RenderGuestJson(report.value()) : RenderGuestText(report.value());
  std::fwrite(out.data(), 1, out.size(), stdout);
  return report->ok() ? kExitOk : kExitInvalid;
}

struct EditArgs {
  std::string domain;
  std::string device;  // attach: the device file; detach: a device file to match
  std::string alias;   // detach --alias
  std::string output = "-";
  bool in_place = false;
  bool live = false;
  bool prune = false;
  std::string qmp;  // socket of the running QEMU (live)
  int timeout_ms = 10000;
};

/// A connection to a running QEMU's QMP socket.
struct Monitor {
  std::unique_ptr<UnixSocketTransport> transport;
  std::unique_ptr<QmpClient> client;
};

Result<Monitor> ConnectMonitor(const std::string& path, int timeout_ms) {
  Result<std::unique_ptr<UnixSocketTransport>> t = UnixSocketTransport::Connect(path);
  if (!t) return t.errors();
  Monitor m{std::move(t.value()), nullptr};
  m.client = std::make_unique<QmpClient>(*m.transport);
  if (Result<nlohmann::json> h = m.client->Handshake(timeout_ms); !h) return h.errors();
  return m;
}

enum class EditKind { kAttach, kDetach };

int RunEdit(const EditArgs& a, EditKind kind) {
  bool attach = kind == EditKind::kAttach;
  if (a.in_place && a.output != "-") {
    std::fprintf(stderr, "pciplan: --in-place and -o exclude each other\n");
    return kExitUsage;
  }
  if (!a.qmp.empty() && !a.live) {
    std::fprintf(stderr, "pciplan: --qmp needs --live\n");
    return kExitUsage;
  }
  if (a.in_place && a.domain == "-") {
    std::fprintf(stderr, "pciplan: --in-place needs a domain file, not standard input\n");
    return kExitUsage;
  }
  Result<std::string> text = ReadInput(a.domain);
  std::optional<std::string> device;
  if (text && !a.device.empty()) {
    Result<std::string> d = ReadInput(a.device);
    if (!d) {
      text = d.errors();
    } else {
      device = std::move(d.value());
    }
  }
  if (!text) {
    for (const Diagnostic& d : text.errors()) {
      std::fprintf(stderr, "pciplan: %s\n", d.message.c_str());
    }
    return kExitUsage;
  }
  Result<Domain> domain = ReadDomain(std::move(text.value()));
  if (!domain) return Report(domain.errors(), DisplayName(a.domain));
  std::optional<Monitor> monitor;
  if (!a.qmp.empty()) {
    Result<Monitor> m = ConnectMonitor(a.qmp, a.timeout_ms);
    if (!m) {
      std::fprintf(stderr, "pciplan: %s\n", m.errors().front().message.c_str());
      return kExitUsage;
    }
    monitor = std::move(m.value());
  }
  Result<Edited> edited = [&]() -> Result<Edited> {
    if (attach) {
      return AttachDevice(domain.value(), device.value_or(""), BuiltinCatalog(),
                          a.live ? AttachMode::kLive : AttachMode::kConfig);
    }
    DetachRequest req{a.alias, device.value_or(""),
                      a.prune ? Prune::kEmptyControllers : Prune::kNothing};
    return DetachDevice(domain.value(), req, BuiltinCatalog());
  }();
  if (!edited) return Report(edited.errors(), DisplayName(a.domain), DisplayName(a.device));
  if (attach && a.live) {
    std::fprintf(stderr, "note: %u free hot-pluggable PCIe slots and %u PCI slots remain\n",
                 edited->free.pcie, edited->free.pci);
  }
  if (monitor) {
    Result<bool> done = [&]() -> Result<bool> {
      if (attach) return HotplugAttached(*monitor->client, *edited, BuiltinCatalog(), a.timeout_ms);
      DetachRequest req{a.alias, device.value_or(""), Prune::kNothing};
      Result<int> index = FindDevice(domain.value(), req);
      if (!index) return index.errors();
      Result<Plan> plan = MakePlan(domain.value(), BuiltinCatalog(), PolicyName::kLibvirt);
      if (!plan) return plan.errors();
      return HotUnplug(*monitor->client, domain.value(), *plan, *index, BuiltinCatalog(),
                       a.timeout_ms);
    }();
    if (!done) return Report(done.errors(), DisplayName(a.domain), DisplayName(a.device));
  }
  Result<bool> written = WriteOutput(a.in_place ? a.domain : a.output, edited->xml);
  if (!written) {
    std::fprintf(stderr, "pciplan: %s\n", written.errors().front().message.c_str());
    return kExitUsage;
  }
  return kExitOk;
}

int RunCheck(const std::string& input, const WishArgs& wish_args) {
  int status = kExitOk;
  std::optional<Planned> p = ReadAndPlan(input, wish_args, status);
  if (!p) return status;
  std::fprintf(stdout, "%s: ok (%s)\n", DisplayName(input).c_str(), p->plan.family->name.c_str());
  return kExitOk;
}

}  // namespace
}  // namespace pciplan::cli

namespace {

int Main(int argc, char** argv) {
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
  bool write_wishes = false;
  plan->add_flag("--write-wishes", write_wishes,
                 "Record the wishes used into the domain's metadata, for the next plan");
  WishArgs wish_args;

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
      "verify",
      "Plan the domain, start the real QEMU paused with the plan and check that every "
      "device is where the plan put it and every promised hot-plug slot accepts one");
  verify->add_option("input", input, "Domain XML file, or - for standard input")->required();
  verify->add_option("--qemu", verify_options.qemu,
                     "QEMU binary (default: qemu-system-x86_64 or qemu-system-aarch64)");
  verify->add_flag("--json", json, "Print the report as JSON");
  verify->add_flag("--no-probes", no_probes, "Check addresses only, no hot-plug probes");
  bool guest = false;
  pciplan::GuestOptions guest_options;
  int boot_timeout_s = guest_options.timeout_ms / 1000;
  verify->add_flag("--guest", guest,
                   "Boot a Linux guest under TCG with the plan's devices and check that it sees "
                   "every PCI device where the plan put it");
  verify->add_option("--kernel", guest_options.kernel,
                     "With --guest: the kernel to boot (default: data/qemu.json guest/systems)");
  verify->add_option("--busybox", guest_options.busybox,
                     "With --guest: a statically linked busybox for the guest's initramfs");
  verify->add_option("--boot-timeout", boot_timeout_s,
                     "With --guest: seconds for the guest to report (default 120)")
      ->check(CLI::Range(1, 3600));

  for (CLI::App* c : {plan, check, qemu_args, verify}) wish_args.AddTo(*c);

  EditArgs edit;
  CLI::App* attach = app.add_subcommand(
      "attach", "Add a device, like virsh attach-device: plan it, moving nothing else");
  attach->add_option("domain", edit.domain, "Domain XML file, or - for standard input")->required();
  attach->add_option("device", edit.device, "File with the one device element to add")->required();
  attach->add_flag("!--config", edit.live,
                   "Plan it for the next boot; controllers may be added "
                   "(libvirt's attach-device --config; the default)");
  attach->add_flag("--live", edit.live,
                   "Plan it for the running guest: a free hot-pluggable "
                   "slot only, no controller added");
  CLI::App* detach = app.add_subcommand(
      "detach", "Remove a device, like virsh detach-device, moving nothing else");
  detach->add_option("domain", edit.domain, "Domain XML file, or - for standard input")->required();
  CLI::Option* which =
      detach->add_option("device", edit.device, "File with a device element naming the device");
  detach->add_option("--alias", edit.alias, "The device's alias name instead")->excludes(which);
  detach->add_flag("--prune", edit.prune, "Also remove the PCI controllers left empty on its path");
  detach->add_flag("--live", edit.live, "Remove it from the running guest too (with --qmp)");
  for (CLI::App* c : {attach, detach}) {
    c->add_option("-o,--output", edit.output, "Write the new domain here (atomically)");
    c->add_flag("--in-place", edit.in_place, "Replace the domain file (atomically)");
    c->add_option("--qmp", edit.qmp,
                  "QMP socket of the running QEMU: with --live, change it "
                  "first and write the domain only when QEMU agreed");
    c->add_option("--timeout", edit.timeout_ms, "Milliseconds to wait for QEMU (default 10000)");
  }

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
  if (*plan) {
    return RunPlan(input, output, explain, wish_args,
                   write_wishes ? WriteWishes::kYes : WriteWishes::kNo);
  }
  if (*check) return RunCheck(input, wish_args);
  if (*qemu_args) return RunQemuArgs(input, wish_args, json);
  if (*attach) return RunEdit(edit, EditKind::kAttach);
  if (*detach) {
    if (edit.device.empty() && edit.alias.empty()) {
      std::fprintf(stderr, "pciplan: detach needs a device file or --alias\n");
      return kExitUsage;
    }
    return RunEdit(edit, EditKind::kDetach);
  }
  if (*verify && guest) {
    guest_options.qemu = verify_options.qemu;
    guest_options.timeout_ms = boot_timeout_s * 1000;
    return RunVerifyGuest(input, wish_args, guest_options, json);
  }
  if (*verify) {
    verify_options.probes = no_probes ? pciplan::Probes::kNone : pciplan::Probes::kHotplug;
    return RunVerify(input, wish_args, verify_options, json);
  }
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  // The last resort: no input may end the program in an uncaught exception (an abort, exit 134).
  // Every failure pciplan knows is a diagnostic; anything that reaches here is a bug, reported
  // in one line with the usage/I-O exit status.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pciplan: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "pciplan: internal error: unknown exception\n");
  }
  return 2;
}
