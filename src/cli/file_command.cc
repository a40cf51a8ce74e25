#include "file_command.h"

#include "io.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/emit/result_json.h"
#include "pciplan/model/model_loader.h"

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
  WishOptions options;
  if (!a.policy_file.empty()) {
    Result<std::string> text = ReadInput(a.policy_file);
    if (!text) return text.errors();
    options.policy_text = std::move(text.value());
    options.policy_name = a.policy_file;
  }
  options.hotplug_slots = a.hotplug_slots;
  options.default_address_type = a.default_address_type;
  options.policy = a.policy;
  options.wishes = a.wishes;
  return CombineWishes(options);
}

std::variant<PlannedDomain, FileOutcome> ReadAndPlan(const std::string& input,
                                                     const FileOptions& options) {
  Result<std::string> text = ReadInput(input);
  if (!text) {
    FileOutcome o;
    o.status = kExitUsage;
    o.io_error = text.errors().front().message;
    return o;
  }
  Result<PlannedDomain> planned =
      PlanDomainText(std::move(text.value()), options.given, options.replan, options.problems);
  if (!planned) return Invalid(planned.errors());
  if (options.qemu) {
    Diagnostics missing =
        CheckPlanForQemu(planned->domain, planned->plan, BuiltinCatalog(), *options.qemu);
    if (!missing.empty()) return Invalid(std::move(missing));
  }
  return std::move(planned.value());
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
  std::variant<PlannedDomain, FileOutcome> planned = ReadAndPlan(input, options);
  if (FileOutcome* failed = std::get_if<FileOutcome>(&planned)) return std::move(*failed);
  PlannedDomain& p = std::get<PlannedDomain>(planned);
  FileOutcome o;
  o.family = p.plan.family->name;
  switch (options.command) {
    case Command::kPlan: {
      Result<std::string> xml = PlannedXml(p, options.write_wishes);
      if (!xml) return Invalid(xml.errors());
      o.text = std::move(xml.value());
      o.notes = p.plan.notes;
      break;
    }
    case Command::kCheck:
      o.text = DisplayName(input) + ": ok (" + o.family + ")\n";
      break;
    case Command::kQemuArgs: {
      QemuArgsOptions args;
      if (options.qemu) args.binary_properties = &options.qemu->properties;
      Result<QemuCommand> cmd = BuildQemuCommand(p.domain, p.plan, BuiltinCatalog(), args);
      if (!cmd) return Invalid(cmd.errors());
      if (options.format == Format::kJson || options.document == Document::kYes) {
        o.json = QemuArgsJson(cmd.value(), DisplayName(input));
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
