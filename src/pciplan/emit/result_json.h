// JSON results: one document per run of a command (plan, check, attach, detach, qemu-args,
// verify), versioned by "format" and described by schema/KIND.schema.json. The command line
// prints it for --json; the C API returns it. Pure: the caller decides where it goes.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "pciplan/base/diag.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"

namespace pciplan {

/// The version of the JSON documents' layout; raised when a field changes meaning or goes.
inline constexpr int kResultFormat = 1;

/// What one run of a command made of one domain.
struct ResultParts {
  std::string kind;            // "plan", "check", "attach", "detach", "qemu-args", "verify"
  std::string file;            // the domain file as messages name it ("<stdin>" for -)
  std::string device_file;     // attach, detach: the device file, or empty
  const Plan* plan = nullptr;  // the plan; null when the domain was refused (or not read)
  Diagnostics diagnostics;     // every problem found, in the order they are reported
  std::optional<std::string> output;  // the file the planned XML was written to
  std::optional<std::string> xml;     // the planned XML itself, when it went nowhere else
};

/// The document of `parts`: "format", "kind", "file", "ok" (a plan and no error), "machine",
/// "family", "devices" (every planned device: identity, line, address), "added" (the devices
/// pciplan added, and why), "explanations" (--explain's notes), "promises" (free hot-pluggable
/// slots per kind), "diagnostics", "output" and "xml". Without a plan, the plan's fields are
/// null or empty. Callers add their command's own fields (qemu-args, verify, attach).
nlohmann::ordered_json ResultJson(const ResultParts& parts, const Catalog& catalog);

/// The fields every document starts with: "format", "kind", "file", "ok". The documents of
/// qemu-args and verify are this head, their command's own fields, then "diagnostics".
nlohmann::ordered_json ResultHead(const std::string& kind, const std::string& file, bool ok);

/// The document of qemu-args --json: the head, the command (RenderQemuJson: binary, machine,
/// devices, argv), and no diagnostics. `file` names the domain ("" when it came as a string).
nlohmann::ordered_json QemuArgsJson(const QemuCommand& command, const std::string& file);

/// Every diagnostic of `diagnostics` (DiagnosticJson), in order.
nlohmann::ordered_json DiagnosticsJson(const Diagnostics& diagnostics, const std::string& file,
                                       const std::string& device_file = {});

/// ResultJson as text: indented by two, one final newline.
std::string PlanResultJson(const ResultParts& parts, const Catalog& catalog);

/// One diagnostic: "severity", "file", "line", "device", "address", "rule", "message",
/// "hint", "text" (the one-line rendering); absent values are null. `file` names the domain,
/// `device_file` the device file of attach and detach.
nlohmann::ordered_json DiagnosticJson(const Diagnostic& d, const std::string& file,
                                      const std::string& device_file = {});

/// JSON text of `j`, bytes that are not UTF-8 (file names) replaced by U+FFFD; `indent` -1 for
/// one line.
std::string DumpJson(const nlohmann::ordered_json& j, int indent);

/// "pciplan VERSION (libvirt 9.0 behaviour, QEMU 7.2 data)": what this build models; the
/// QEMU version comes from data/qemu.json.
std::string VersionText(const Catalog& catalog);

}  // namespace pciplan
