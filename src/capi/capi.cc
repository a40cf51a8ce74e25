// The C interface (include/pciplan.h) over the commands on text (pciplan/run/commands.h): each
// function converts its arguments, runs the command the pciplan program runs and keeps what
// it made in a handle. No exception leaves a function: a failure no code path expected is
// PCIPLAN_INTERNAL.
#define PCIPLAN_BUILDING_LIBRARY
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "pciplan.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/emit/result_json.h"
#include "pciplan/emit/tree.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/run/commands.h"

#ifndef PCIPLAN_VERSION_STRING
#error "PCIPLAN_VERSION_STRING (the project's version) must be defined by the build"
#endif

namespace {

using pciplan::Diagnostic;
using pciplan::Diagnostics;

/// One diagnostic, and whether it names a rule of the domain (usage and internal errors do not).
struct Entry {
  Diagnostic diagnostic;
  bool has_rule = true;
};

}  // namespace

struct pciplan_error {
  pciplan_status status = PCIPLAN_OK;
  std::vector<Entry> entries;
  std::string rendered;  // the text of the last pciplan_error_render
};

struct pciplan_options {
  pciplan::WishOptions wishes;
  std::vector<std::string> replan;
  pciplan::WriteWishes write_wishes = pciplan::WriteWishes::kNo;
  pciplan_format format = PCIPLAN_FORMAT_TEXT;
  pciplan::AttachMode mode = pciplan::AttachMode::kConfig;
  pciplan::Prune prune = pciplan::Prune::kNothing;
};

struct pciplan_result {
  std::string kind;        // "plan", "check", "qemu-args", "tree", "attach", "detach"
  std::string json;        // pciplan_result_json, made on first use
  pciplan::Domain domain;  // the domain planned (for attach and detach: the edited one)
  pciplan::Plan plan;
  std::string text;
  std::optional<std::string> xml;
  std::optional<pciplan::HotplugCapacity> free;  // attach and detach
  struct Device {
    std::string name;
    std::string element;
    std::optional<std::string> key;
    std::optional<std::string> address;
    bool added = false;
  };
  std::vector<Device> devices;
};

namespace {

pciplan_status Fail(pciplan_error* error, pciplan_status status, Diagnostics diagnostics) {
  if (error) {
    error->status = status;
    error->entries.clear();
    for (Diagnostic& d : diagnostics) error->entries.push_back({std::move(d), true});
  }
  return status;
}

/// A failure that breaks no rule of the domain: a usage or an internal error.
pciplan_status FailPlain(pciplan_error* error, pciplan_status status, std::string message) {
  if (error) {
    error->status = status;
    error->entries.clear();
    Diagnostic d;
    d.message = std::move(message);
    error->entries.push_back({std::move(d), false});
  }
  return status;
}

pciplan_status Succeed(pciplan_error* error) {
  if (error) {
    error->status = PCIPLAN_OK;
    error->entries.clear();
  }
  return PCIPLAN_OK;
}

/// Runs `body` (which returns a status), turning any exception into PCIPLAN_INTERNAL.
template <typename Body>
pciplan_status Guarded(pciplan_error* error, Body body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return FailPlain(error, PCIPLAN_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    return FailPlain(error, PCIPLAN_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return FailPlain(error, PCIPLAN_INTERNAL, "internal error: unknown exception");
  }
}

const Entry* EntryAt(const pciplan_error* error, size_t i) {
  return error && i < error->entries.size() ? &error->entries[i] : nullptr;
}

const char* OrNull(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

/// Sets one wish option through `set`, keeping the options as they were when the wishes they
/// then make are refused.
template <typename Set>
pciplan_status SetWishOption(pciplan_options* options, const char* text, pciplan_error* error,
                             Set set) {
  return Guarded(error, [&] {
    if (!options || !text)
      return FailPlain(error, PCIPLAN_USAGE, "options and text must not be NULL");
    pciplan::WishOptions before = options->wishes;
    set(options->wishes, std::string(text));
    pciplan::Result<pciplan::Wishes> wishes = pciplan::CombineWishes(options->wishes);
    if (!wishes) {
      options->wishes = std::move(before);
      return Fail(error, PCIPLAN_USAGE, wishes.errors());
    }
    return Succeed(error);
  });
}

const pciplan_options& OptionsOr(const pciplan_options* options) {
  static const pciplan_options kNone;
  return options ? *options : kNone;
}

/// The new result of `domain` and `plan`, its device list filled in.
pciplan_result* NewResult(std::string kind, pciplan::Domain domain, pciplan::Plan plan) {
  auto* r = new pciplan_result;
  r->kind = std::move(kind);
  r->domain = std::move(domain);
  r->plan = std::move(plan);
  for (size_t i = 0; i < r->plan.devices.size(); ++i) {
    const pciplan::Device& d = r->plan.devices[i];
    pciplan_result::Device out;
    out.name = pciplan::DeviceRef::DescribeAt(r->plan.devices, i);
    out.element = d.tag;
    std::vector<std::string> keys = pciplan::WishKeysOf(d);
    if (!keys.empty()) out.key = keys.front();
    if (d.address.type != pciplan::AddressType::kNone) {
      out.address = pciplan::AddressXml(d.address, '\'');
    }
    out.added = d.origin == pciplan::Origin::kPlanner;
    r->devices.push_back(std::move(out));
  }
  return r;
}

enum class Command { kPlan, kCheck, kQemuArgs, kTree };

/// plan, check, qemu-args and tree: plans `domain` under `options` and makes the command's text.
pciplan_status RunOnDomain(Command command, const char* domain, const pciplan_options* options,
                           pciplan_result** result, pciplan_error* error) {
  if (result) *result = nullptr;
  return Guarded(error, [&] {
    if (!domain || !result) {
      return FailPlain(error, PCIPLAN_USAGE, "the domain and the result must not be NULL");
    }
    const pciplan_options& o = OptionsOr(options);
    if (command == Command::kQemuArgs && o.format == PCIPLAN_FORMAT_DOT) {
      return FailPlain(error, PCIPLAN_USAGE, "qemu-args has no DOT format");
    }
    if (command == Command::kTree && o.format == PCIPLAN_FORMAT_JSON) {
      return FailPlain(error, PCIPLAN_USAGE, "tree has no JSON format");
    }
    pciplan::Result<pciplan::Wishes> given = pciplan::CombineWishes(o.wishes);
    if (!given) return Fail(error, PCIPLAN_USAGE, given.errors());
    pciplan::Result<pciplan::PlannedDomain> planned =
        pciplan::PlanDomainText(domain, given.value(), o.replan);
    if (!planned) return Fail(error, PCIPLAN_INVALID, planned.errors());
    pciplan::Result<std::string> xml = pciplan::PlannedXml(
        planned.value(), command == Command::kPlan ? o.write_wishes : pciplan::WriteWishes::kNo);
    // Only plan prints the XML; another command does not fail when it cannot be written.
    if (!xml && command == Command::kPlan) return Fail(error, PCIPLAN_INVALID, xml.errors());
    std::string text;
    switch (command) {
      case Command::kPlan:
        text = xml.value();
        break;
      case Command::kCheck:
        text = "ok (" + planned->plan.family->name + ")\n";
        break;
      case Command::kQemuArgs: {
        pciplan::Result<std::string> args = pciplan::QemuArgsText(
            planned.value(), o.format == PCIPLAN_FORMAT_JSON ? pciplan::ArgsFormat::kJson
                                                             : pciplan::ArgsFormat::kShell);
        if (!args) return Fail(error, PCIPLAN_INVALID, args.errors());
        text = std::move(args.value());
        break;
      }
      case Command::kTree:
        text = o.format == PCIPLAN_FORMAT_DOT
                   ? pciplan::RenderTreeDot(planned->plan, pciplan::BuiltinCatalog())
                   : pciplan::RenderTreeText(planned->plan, pciplan::BuiltinCatalog());
        break;
    }
    // qemu-args and tree have their text; their JSON is the plan's document.
    static constexpr const char* kKinds[] = {"plan", "check", "plan", "plan"};
    pciplan_result* r = NewResult(kKinds[static_cast<int>(command)], std::move(planned->domain),
                                  std::move(planned->plan));
    r->text = std::move(text);
    if (xml) r->xml = std::move(xml.value());
    *result = r;
    return Succeed(error);
  });
}

/// attach and detach.
pciplan_status RunEdit(const char* domain, pciplan::EditRequest request,
                       const pciplan_options* options, pciplan_result** result,
                       pciplan_error* error) {
  const pciplan_options& o = OptionsOr(options);
  request.mode = o.mode;
  request.prune = o.prune;
  request.write_wishes = o.write_wishes;
  pciplan::Result<pciplan::Wishes> given = pciplan::CombineWishes(o.wishes);
  if (!given) return Fail(error, PCIPLAN_USAGE, given.errors());
  pciplan::Result<pciplan::Domain> read = pciplan::ReadDomainWithWishes(domain, given.value());
  if (!read) return Fail(error, PCIPLAN_INVALID, read.errors());
  pciplan::Result<pciplan::Edited> edited = pciplan::EditDomain(read.value(), request);
  if (!edited) return Fail(error, PCIPLAN_INVALID, edited.errors());
  pciplan_result* r =
      NewResult(request.kind == pciplan::EditKind::kAttach ? "attach" : "detach",
                std::move(edited->domain), std::move(edited->plan));
  r->text = edited->xml;
  r->xml = std::move(edited->xml);
  r->free = edited->free;
  *result = r;
  return Succeed(error);
}

/// attach and detach of a device given as XML: the NULL checks, then RunEdit.
pciplan_status RunEditOfDevice(pciplan::EditKind kind, const char* domain, const char* device,
                               const pciplan_options* options, pciplan_result** result,
                               pciplan_error* error) {
  if (result) *result = nullptr;
  return Guarded(error, [&] {
    if (!domain || !device || !result) {
      return FailPlain(error, PCIPLAN_USAGE, "the domain, device and result must not be NULL");
    }
    pciplan::EditRequest request;
    request.kind = kind;
    request.device_xml = device;
    return RunEdit(domain, std::move(request), options, result, error);
  });
}

}  // namespace

extern "C" {

pciplan_error* pciplan_error_new(void) { return new (std::nothrow) pciplan_error; }

void pciplan_error_free(pciplan_error* error) { delete error; }

pciplan_status pciplan_error_status(const pciplan_error* error) {
  return error ? error->status : PCIPLAN_USAGE;
}

size_t pciplan_error_count(const pciplan_error* error) { return error ? error->entries.size() : 0; }

const char* pciplan_error_rule(const pciplan_error* error, size_t i) {
  const Entry* e = EntryAt(error, i);
  if (!e || !e->has_rule) return nullptr;
  // RuleId views a string literal: NUL-terminated.
  return pciplan::RuleId(e->diagnostic.rule).data();
}

const char* pciplan_error_device(const pciplan_error* error, size_t i) {
  const Entry* e = EntryAt(error, i);
  return e ? OrNull(e->diagnostic.device) : nullptr;
}

const char* pciplan_error_address(const pciplan_error* error, size_t i) {
  const Entry* e = EntryAt(error, i);
  return e ? OrNull(e->diagnostic.address) : nullptr;
}

const char* pciplan_error_message(const pciplan_error* error, size_t i) {
  const Entry* e = EntryAt(error, i);
  return e ? e->diagnostic.message.c_str() : nullptr;
}

const char* pciplan_error_hint(const pciplan_error* error, size_t i) {
  const Entry* e = EntryAt(error, i);
  return e ? OrNull(e->diagnostic.hint) : nullptr;
}

int pciplan_error_line(const pciplan_error* error, size_t i) {
  const Entry* e = EntryAt(error, i);
  return e ? e->diagnostic.line : 0;
}

pciplan_input pciplan_error_in(const pciplan_error* error, size_t i) {
  const Entry* e = EntryAt(error, i);
  return e && e->diagnostic.input == pciplan::InputFile::kDevice ? PCIPLAN_INPUT_DEVICE
                                                                 : PCIPLAN_INPUT_DOMAIN;
}

const char* pciplan_error_render(pciplan_error* error, size_t i, const char* file) {
  const Entry* e = EntryAt(error, i);
  if (!e) return nullptr;
  try {
    error->rendered = e->has_rule ? e->diagnostic.Render(file ? file : "<input>")
                                  : "pciplan: " + e->diagnostic.message;
  } catch (...) {
    return nullptr;
  }
  return error->rendered.c_str();
}

pciplan_options* pciplan_options_new(void) { return new (std::nothrow) pciplan_options; }

void pciplan_options_free(pciplan_options* options) { delete options; }

pciplan_status pciplan_options_set_policy_json(pciplan_options* options, const char* json,
                                               pciplan_error* error) {
  return SetWishOption(options, json, error, [](pciplan::WishOptions& w, std::string text) {
    w.policy_text = std::move(text);
  });
}

pciplan_status pciplan_options_set_hotplug_slots(pciplan_options* options, const char* slots,
                                                 pciplan_error* error) {
  return SetWishOption(options, slots, error, [](pciplan::WishOptions& w, std::string text) {
    w.hotplug_slots = std::move(text);
  });
}

pciplan_status pciplan_options_set_policy(pciplan_options* options, const char* policy,
                                          pciplan_error* error) {
  return SetWishOption(options, policy, error, [](pciplan::WishOptions& w, std::string text) {
    w.policy = std::move(text);
  });
}

pciplan_status pciplan_options_set_default_address_type(pciplan_options* options, const char* type,
                                                        pciplan_error* error) {
  return SetWishOption(options, type, error, [](pciplan::WishOptions& w, std::string text) {
    w.default_address_type = std::move(text);
  });
}

pciplan_status pciplan_options_add_wish(pciplan_options* options, const char* wish,
                                        pciplan_error* error) {
  return SetWishOption(options, wish, error, [](pciplan::WishOptions& w, std::string text) {
    w.wishes.push_back(std::move(text));
  });
}

pciplan_status pciplan_options_add_replan(pciplan_options* options, const char* device,
                                          pciplan_error* error) {
  return Guarded(error, [&] {
    if (!options || !device || !*device) {
      return FailPlain(error, PCIPLAN_USAGE, "options and device must not be NULL or empty");
    }
    options->replan.push_back(device);
    return Succeed(error);
  });
}

void pciplan_options_set_write_wishes(pciplan_options* options, int yes) {
  if (options) options->write_wishes = yes ? pciplan::WriteWishes::kYes : pciplan::WriteWishes::kNo;
}

pciplan_status pciplan_options_set_format(pciplan_options* options, int format,
                                          pciplan_error* error) {
  return Guarded(error, [&] {
    if (!options) return FailPlain(error, PCIPLAN_USAGE, "options must not be NULL");
    if (format != PCIPLAN_FORMAT_TEXT && format != PCIPLAN_FORMAT_JSON &&
        format != PCIPLAN_FORMAT_DOT) {
      return FailPlain(error, PCIPLAN_USAGE, "unknown format " + std::to_string(format));
    }
    options->format = static_cast<pciplan_format>(format);
    return Succeed(error);
  });
}

void pciplan_options_set_live(pciplan_options* options, int yes) {
  if (options) options->mode = yes ? pciplan::AttachMode::kLive : pciplan::AttachMode::kConfig;
}

void pciplan_options_set_prune(pciplan_options* options, int yes) {
  if (options) options->prune = yes ? pciplan::Prune::kEmptyControllers : pciplan::Prune::kNothing;
}

pciplan_status pciplan_plan(const char* domain, const pciplan_options* options,
                            pciplan_result** result, pciplan_error* error) {
  return RunOnDomain(Command::kPlan, domain, options, result, error);
}

pciplan_status pciplan_check(const char* domain, const pciplan_options* options,
                             pciplan_result** result, pciplan_error* error) {
  return RunOnDomain(Command::kCheck, domain, options, result, error);
}

pciplan_status pciplan_qemu_args(const char* domain, const pciplan_options* options,
                                 pciplan_result** result, pciplan_error* error) {
  return RunOnDomain(Command::kQemuArgs, domain, options, result, error);
}

pciplan_status pciplan_tree(const char* domain, const pciplan_options* options,
                            pciplan_result** result, pciplan_error* error) {
  return RunOnDomain(Command::kTree, domain, options, result, error);
}

pciplan_status pciplan_attach(const char* domain, const char* device,
                              const pciplan_options* options, pciplan_result** result,
                              pciplan_error* error) {
  return RunEditOfDevice(pciplan::EditKind::kAttach, domain, device, options, result, error);
}

pciplan_status pciplan_detach(const char* domain, const char* device,
                              const pciplan_options* options, pciplan_result** result,
                              pciplan_error* error) {
  return RunEditOfDevice(pciplan::EditKind::kDetach, domain, device, options, result, error);
}

pciplan_status pciplan_detach_alias(const char* domain, const char* alias,
                                    const pciplan_options* options, pciplan_result** result,
                                    pciplan_error* error) {
  if (result) *result = nullptr;
  return Guarded(error, [&] {
    if (!domain || !alias || !*alias || !result) {
      return FailPlain(error, PCIPLAN_USAGE, "the domain, alias and result must not be NULL");
    }
    pciplan::EditRequest request;
    request.kind = pciplan::EditKind::kDetach;
    request.alias = alias;
    return RunEdit(domain, std::move(request), options, result, error);
  });
}

void pciplan_result_free(pciplan_result* result) { delete result; }

const char* pciplan_result_text(const pciplan_result* result) {
  return result ? result->text.c_str() : nullptr;
}

const char* pciplan_result_xml(const pciplan_result* result) {
  return result && result->xml ? result->xml->c_str() : nullptr;
}

const char* pciplan_result_json(pciplan_result* result) {
  if (!result) return nullptr;
  if (result->json.empty()) {
    try {
      pciplan::ResultParts parts;
      parts.kind = result->kind;
      parts.plan = &result->plan;
      parts.xml = result->xml;
      result->json = pciplan::PlanResultJson(parts, pciplan::BuiltinCatalog());
    } catch (...) {
      return nullptr;
    }
  }
  return result->json.c_str();
}

const char* pciplan_result_family(const pciplan_result* result) {
  return result && result->plan.family ? result->plan.family->name.c_str() : nullptr;
}

size_t pciplan_result_note_count(const pciplan_result* result) {
  return result ? result->plan.notes.size() : 0;
}

const char* pciplan_result_note(const pciplan_result* result, size_t i) {
  return result && i < result->plan.notes.size() ? result->plan.notes[i].c_str() : nullptr;
}

size_t pciplan_result_device_count(const pciplan_result* result) {
  return result ? result->devices.size() : 0;
}

const char* pciplan_result_device_name(const pciplan_result* result, size_t i) {
  return result && i < result->devices.size() ? result->devices[i].name.c_str() : nullptr;
}

const char* pciplan_result_device_element(const pciplan_result* result, size_t i) {
  return result && i < result->devices.size() ? result->devices[i].element.c_str() : nullptr;
}

const char* pciplan_result_device_key(const pciplan_result* result, size_t i) {
  if (!result || i >= result->devices.size() || !result->devices[i].key) return nullptr;
  return result->devices[i].key->c_str();
}

const char* pciplan_result_device_address(const pciplan_result* result, size_t i) {
  if (!result || i >= result->devices.size() || !result->devices[i].address) return nullptr;
  return result->devices[i].address->c_str();
}

int pciplan_result_device_added(const pciplan_result* result, size_t i) {
  return result && i < result->devices.size() && result->devices[i].added ? 1 : 0;
}

int pciplan_result_free_slots(const pciplan_result* result, unsigned* pcie, unsigned* pci) {
  if (!result || !result->free) return -1;
  if (pcie) *pcie = result->free->pcie;
  if (pci) *pci = result->free->pci;
  return 0;
}

const char* pciplan_version(void) { return PCIPLAN_VERSION_STRING; }

}  // extern "C"
