#include "file_command.h"

#include "io.h"
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
      PlanDomainText(std::move(text.value()), options.given, options.replan);
  if (!planned) return Invalid(planned.errors());
  if (options.qemu) {
    Diagnostics missing =
        CheckPlanForQemu(planned->domain, planned->plan, BuiltinCatalog(), *options.qemu);
    if (!missing.empty()) return Invalid(std::move(missing));
  }
  return std::move(planned.value());
}

FileOutcome RunFileCommand(const std::string& input, const FileOptions& options) {
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
      Result<std::string> args =
          QemuArgsText(p, options.format == Format::kJson ? ArgsFormat::kJson : ArgsFormat::kShell);
      if (!args) return Invalid(args.errors());
      o.text = std::move(args.value());
      break;
    }
  }
  return o;
}

}  // namespace pciplan::cli
