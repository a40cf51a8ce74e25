// The commands on text: plan, check, qemu-args and tree of a domain given as a string, attach
// and detach with the device as a string, under wish options given as text. The command line
// (src/cli, which reads and writes the files) and the C library (src/capi) both run them here,
// so the two give the same bytes. Pure: no files, no QEMU.
#pragma once

#include <string>
#include <vector>

#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/domain/wishes.h"
#include "pciplan/edit/attach.h"
#include "pciplan/plan/plan.h"

namespace pciplan {

/// The wish options of every command, as text (README "Wishes"): a policy file's JSON and the
/// flags --hotplug-slots, --default-address-type, --policy and --wish.
struct WishOptions {
  std::string policy_text;           // a policy file's JSON; empty when there is none
  std::string policy_name;           // what errors in `policy_text` name it ("policy.json")
  std::string hotplug_slots;         // "pcie=N,pci=M"
  std::string default_address_type;  // "pci" or "virtio-mmio"
  std::string policy;                // "libvirt" or "integrated"
  std::vector<std::string> wishes;   // "DEVICE:NAME=VALUE[,NAME=VALUE]", in the order given
};

/// The wishes of the policy text with those of the flags over it (the flags win). Errors name
/// the policy (its JSON pointer) or the flag's text; nothing is checked against a domain yet.
Result<Wishes> CombineWishes(const WishOptions& options);

/// A domain and its plan.
struct PlannedDomain {
  Domain domain;
  Plan plan;
};

/// How many problems a refused domain reports: the first, as libvirt does (plan), or every
/// independent one (check, plan --all-errors; plan/all_problems.h).
enum class Problems { kFirst, kAll };

/// Reads the domain `text` and plans it under its own wishes with `given` over them, with the
/// addresses of the `replan` devices dropped (--replan). Errors: the domain's (naming lines),
/// a --replan naming no device [bad-replan], and the plan's (the first, or all of them).
Result<PlannedDomain> PlanDomainText(std::string text, const Wishes& given,
                                     const std::vector<std::string>& replan,
                                     Problems problems = Problems::kFirst);

enum class WriteWishes { kNo, kYes };

/// The planned domain's XML (plan's output); with kYes, the wishes it was planned under recorded
/// into pciplan's metadata element (--write-wishes), so the next plan needs no flags.
Result<std::string> PlannedXml(const PlannedDomain& planned, WriteWishes write_wishes);

enum class ArgsFormat {
  kShell,  // the shell command, one option per line
  kJson,   // qemu-args --json
};

/// The QEMU command line of the plan (qemu-args). Fails, naming the device, when a device has
/// no QEMU device in the data.
Result<std::string> QemuArgsText(const PlannedDomain& planned, ArgsFormat format);

enum class EditKind { kAttach, kDetach };

/// An attach or a detach of one device.
struct EditRequest {
  EditKind kind = EditKind::kAttach;
  std::string device_xml;  // attach: the device element; detach: one to match, or empty
  std::string alias;       // detach: the device's alias instead of `device_xml`
  AttachMode mode = AttachMode::kConfig;
  Prune prune = Prune::kNothing;
  WriteWishes write_wishes = WriteWishes::kNo;
};

/// Reads the domain `text` with `given` over its own wishes: what attach and detach edit.
Result<Domain> ReadDomainWithWishes(std::string text, const Wishes& given);

/// Attaches or detaches (edit/attach.h) one device of `domain`; with WriteWishes::kYes the
/// result's XML records the wishes used. Errors in the device element are marked
/// InputFile::kDevice.
Result<Edited> EditDomain(const Domain& domain, const EditRequest& request);

}  // namespace pciplan
