#include "pciplan/run/commands.h"

#include "pciplan/plan/all_problems.h"

#include "pciplan/domain/domain_reader.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/emit/result_json.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/all_problems.h"
#include "pciplan/plan/planner.h"

namespace pciplan {

Result<Wishes> CombineWishes(const WishOptions& o) {
  Wishes w;
  if (!o.policy_text.empty()) {
    Result<Wishes> file = ParsePolicyFile(o.policy_text);
    if (!file) {
      Diagnostics e = file.errors();
      if (!o.policy_name.empty()) {
        for (Diagnostic& d : e) d.message = o.policy_name + ": " + d.message;
      }
      return e;
    }
    w = file.value();
  }
  Wishes flags;
  if (!o.hotplug_slots.empty()) {
    Result<Wishes> slots = ParseHotplugSlotsFlag(o.hotplug_slots);
    if (!slots) return slots.errors();
    flags = slots.value();
  }
  if (!o.default_address_type.empty()) {
    Result<bool> r = SetDomainWish(flags, "defaultAddressType", o.default_address_type);
    if (!r) return r.errors();
  }
  if (!o.policy.empty()) {
    Result<bool> r = SetDomainWish(flags, "policy", o.policy);
    if (!r) return r.errors();
  }
  for (const std::string& text : o.wishes) {
    Result<DeviceWish> d = ParseWishFlag(text);
    if (!d) return d.errors();
    Wishes one;
    one.devices.push_back(d.value());
    flags = Overlay(flags, one);
  }
  return Overlay(w, flags);
}

Result<PlannedDomain> PlanDomainText(std::string text, const Wishes& given,
                                     const std::vector<std::string>& replan, Problems problems) {
  Result<Domain> domain = ReadDomainWithWishes(std::move(text), given);
  if (!domain) return domain.errors();
  if (!replan.empty()) {
    Result<Domain> dropped = DropAddresses(domain.value(), replan);
    if (!dropped) return dropped.errors();
    domain = std::move(dropped);
  }
  Result<Plan> plan =
      problems == Problems::kAll
          ? MakePlanAllProblems(domain.value(), BuiltinCatalog(), PolicyName::kLibvirt)
          : MakePlan(domain.value(), BuiltinCatalog(), PolicyName::kLibvirt);
  if (!plan) return plan.errors();
  return PlannedDomain{std::move(domain.value()), std::move(plan.value())};
}

Result<std::string> PlannedXml(const PlannedDomain& p, WriteWishes write_wishes) {
  Result<std::string> xml = WriteDomain(p.domain, p.plan, BuiltinCatalog());
  if (!xml || write_wishes == WriteWishes::kNo) return xml;
  // Recorded into the planned text, so the next plan needs no flags.
  Result<Domain> again = ReadDomain(std::move(xml.value()));
  if (!again) return again.errors();
  return WithWishesText(again.value(), p.domain.wishes);
}

Result<std::string> QemuArgsText(const PlannedDomain& p, ArgsFormat format) {
  Result<QemuCommand> cmd = BuildQemuCommand(p.domain, p.plan, BuiltinCatalog());
  if (!cmd) return cmd.errors();
  // The document qemu-args --json prints, with no file name.
  return format == ArgsFormat::kJson ? DumpJson(QemuArgsJson(cmd.value(), ""), 2) + "\n"
                                     : RenderQemuShell(cmd.value());
}

Result<Domain> ReadDomainWithWishes(std::string text, const Wishes& given) {
  Result<Domain> domain = ReadDomain(std::move(text));
  if (!domain) return domain.errors();
  domain->wishes = Overlay(domain->wishes, given);
  return domain;
}

Result<Edited> EditDomain(const Domain& domain, const EditRequest& request) {
  Result<Edited> edited = [&]() -> Result<Edited> {
    if (request.kind == EditKind::kAttach) {
      return AttachDevice(domain, request.device_xml, BuiltinCatalog(), request.mode);
    }
    DetachRequest detach{request.alias, request.device_xml, request.prune};
    return DetachDevice(domain, detach, BuiltinCatalog());
  }();
  if (!edited || request.write_wishes == WriteWishes::kNo) return edited;
  // Recorded into the edited text, so the next plan or attach needs no flags.
  Result<Domain> planned = ReadDomain(edited->xml);
  if (!planned) return planned.errors();
  edited->xml = WithWishesText(planned.value(), edited->domain.wishes);
  return edited;
}

}  // namespace pciplan
