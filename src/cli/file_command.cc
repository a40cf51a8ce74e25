#include "file_command.h"

#include "io.h"
#include "pciplan/domain/domain_reader.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/emit/result_json.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/all_problems.h"
#include "pciplan/plan/planner.h"

namespace pciplan::cli {
namespace {

FileOutcome Invalid(Diagnostics errors) {
  FileOutcome o;
  o.status = kExitInvalid;
  o.errors = std::move(errors);
  return o;
}

}  // namespace

std::string DisplayName(const std::string& path) { return path == "-" ? "<stdin>" : path; }

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
  if (!a.policy.empty()) {
    Result<bool> r = SetDomainWish(flags, "policy", a.policy);
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

std::variant<Planned, FileOutcome> ReadAndPlan(const std::string& input,
                                               const FileOptions& options) {
  Result<std::string> text = ReadInput(input);
  if (!text) {
    FileOutcome o;
    o.status = kExitUsage;
    o.io_error = text.errors().front().message;
    return o;
  }
  Result<Domain> domain = ReadDomain(std::move(text.value()));
  if (!domain) return Invalid(domain.errors());
  domain->wishes = Overlay(domain->wishes, options.given);
  if (!options.replan.empty()) {
    Result<Domain> dropped = DropAddresses(domain.value(), options.replan);
    if (!dropped) return Invalid(dropped.errors());
    domain = std::move(dropped);
  }
  Result<Plan> plan =
      options.problems == Problems::kAll
          ? MakePlanAllProblems(domain.value(), BuiltinCatalog(), PolicyName::kLibvirt)
          : MakePlan(domain.value(), BuiltinCatalog(), PolicyName::kLibvirt);
  if (!plan) return Invalid(plan.errors());
  return Planned{std::move(domain.value()), std::move(plan.value())};
}

std::string KindOf(Command command) {
  switch (command) {
    case Command::kPlan:
      return "plan";
    case Command::kCheck:
      return "check";
    case Command::kQemuArgs:
      return "qemu-args";
  }
  return "";
}

nlohmann::ordered_json IoErrorJson(const std::string& message) {
  nlohmann::ordered_json e;
  e["severity"] = "error";
  e["file"] = nullptr;
  e["line"] = nullptr;
  e["device"] = nullptr;
  e["address"] = nullptr;
  e["rule"] = nullptr;
  e["message"] = message;
  e["hint"] = nullptr;
  e["text"] = "pciplan: " + message;
  return e;
}

void SetIoError(FileOutcome& o, const std::string& message) {
  o.status = kExitUsage;
  o.io_error = message;
  if (o.json.is_object()) {
    o.json["ok"] = false;
    o.json["diagnostics"].push_back(IoErrorJson(message));
  }
}

namespace {

/// The document of a run that made no plan: `o`'s diagnostics, or its I/O error.
nlohmann::ordered_json FailedDocument(const std::string& input, const FileOptions& options,
                                      const FileOutcome& o) {
  std::string file = DisplayName(input);
  nlohmann::ordered_json j;
  if (options.command == Command::kQemuArgs) {
    j = ResultHead(KindOf(options.command), file, false);
    j["diagnostics"] = DiagnosticsJson(o.errors, file);
  } else {
    ResultParts parts;
    parts.kind = KindOf(options.command);
    parts.file = file;
    parts.diagnostics = o.errors;
    j = ResultJson(parts, BuiltinCatalog());
  }
  if (!o.io_error.empty()) j["diagnostics"].push_back(IoErrorJson(o.io_error));
  return j;
}

/// Runs the command; the outcome without its document.
FileOutcome RunPlain(const std::string& input, const FileOptions& options) {
  std::variant<Planned, FileOutcome> planned = ReadAndPlan(input, options);
  if (FileOutcome* failed = std::get_if<FileOutcome>(&planned)) return std::move(*failed);
  Planned& p = std::get<Planned>(planned);
  FileOutcome o;
  o.family = p.plan.family->name;
  switch (options.command) {
    case Command::kPlan: {
      Result<std::string> xml = WriteDomain(p.domain, p.plan, BuiltinCatalog());
      if (!xml) return Invalid(xml.errors());
      if (options.write_wishes == WriteWishes::kYes) {
        // Recorded into the planned text, so the next plan needs no flags.
        Result<Domain> again = ReadDomain(xml.value());
        if (!again) return Invalid(again.errors());
        xml = WithWishesText(again.value(), p.domain.wishes);
      }
      o.text = std::move(xml.value());
      o.notes = p.plan.notes;
      break;
    }
    case Command::kCheck:
      o.text = DisplayName(input) + ": ok (" + o.family + ")\n";
      break;
    case Command::kQemuArgs: {
      Result<QemuCommand> cmd = BuildQemuCommand(p.domain, p.plan, BuiltinCatalog());
      if (!cmd) return Invalid(cmd.errors());
      if (options.format == Format::kJson || options.document == Document::kYes) {
        o.json = ResultHead("qemu-args", DisplayName(input), true);
        nlohmann::ordered_json qemu = RenderQemuJson(cmd.value());
        for (auto& [key, value] : qemu.items()) o.json[key] = value;
        o.json["diagnostics"] = nlohmann::ordered_json::array();
      }
      o.text = options.format == Format::kJson ? DumpJson(o.json, 2) + "\n"
                                               : RenderQemuShell(cmd.value());
      return o;
    }
  }
  if (options.document == Document::kYes) {
    ResultParts parts;
    parts.kind = KindOf(options.command);
    parts.file = DisplayName(input);
    parts.plan = &p.plan;
    o.json = ResultJson(parts, BuiltinCatalog());
  }
  return o;
}

}  // namespace

FileOutcome RunFileCommand(const std::string& input, const FileOptions& options) {
  FileOutcome o = RunPlain(input, options);
  if (!o.ok() && (options.document == Document::kYes || options.format == Format::kJson)) {
    o.json = FailedDocument(input, options, o);
  }
  return o;
}

}  // namespace pciplan::cli
