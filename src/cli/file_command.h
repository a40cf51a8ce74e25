// One input file through plan, check or qemu-args: the text the command produces, or why it
// cannot. Single runs (main.cc) print an outcome, batch mode (batch.cc) writes it into a folder:
// both take it from here, so that a batch writes exactly what a single run prints.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "pciplan/base/diag.h"
#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/domain/wishes.h"
#include "pciplan/plan/plan.h"
#include "pciplan/qmp/caps.h"
#include "pciplan/run/commands.h"

namespace pciplan::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 1;
inline constexpr int kExitUsage = 2;

/// The name a path has in messages: "<stdin>" for "-".
std::string DisplayName(const std::string& path);

/// The wish options of plan, check, qemu-args, verify, attach and detach (README "Wishes"), as
/// given; CommandLineWishes reads them.
struct WishArgs {
  std::string policy_file;
  std::string hotplug_slots;         // --hotplug-slots pcie=N,pci=M
  std::string default_address_type;  // --default-address-type pci|virtio-mmio
  std::string policy;                // --policy libvirt|integrated
  std::vector<std::string> wishes;   // --wish DEVICE:NAME=VALUE[,...]
  std::vector<std::string> replan;   // --replan DEVICE (plan, check, qemu-args, verify)
};

/// The wishes of the policy file and the flags, flags last (they win; CombineWishes); errors
/// name the source.
Result<Wishes> CommandLineWishes(const WishArgs& args);

enum class Command { kPlan, kCheck, kQemuArgs };
enum class Format { kText, kJson };
enum class Document { kNo, kYes };

/// The "kind" of a command's JSON document: "plan", "check", "qemu-args".
std::string KindOf(Command command);

/// What is done to each file: the command and the options that apply to every file.
struct FileOptions {
  Command command = Command::kPlan;
  Wishes given;                                 // CommandLineWishes: over each domain's own wishes
  std::vector<std::string> replan;              // --replan: devices whose addresses are dropped
  WriteWishes write_wishes = WriteWishes::kNo;  // plan --write-wishes
  Format format = Format::kText;                // qemu-args: the shell command or --json
  Document document = Document::kNo;            // --json: FileOutcome::json is built
  Problems problems = Problems::kFirst;
  const QemuCaps* qemu = nullptr;  // --qemu BIN: plan for what that binary has (caps.h)
};

/// What a command made of one file.
struct FileOutcome {
  /// kExitOk; kExitInvalid: `errors` against the file's lines; kExitUsage: the file could not
  /// be read (or written), `io_error` says why.
  int status = kExitOk;
  std::string text;    // plan: the domain XML; check: "FILE: ok (FAMILY)\n"; qemu-args: the command
  std::string family;  // the machine family planned for
  std::vector<std::string> notes;  // the plan's notes (--explain)
  Diagnostics errors;
  std::string io_error;
  /// With Document::kYes, the run's JSON document (ResultJson; qemu-args: its own), without
  /// "output" and "xml": the caller knows where the text goes.
  nlohmann::ordered_json json;

  bool ok() const { return status == kExitOk; }
};

/// Reads and plans `input` under its wishes overlaid by `options.given`, with the addresses of
/// the --replan devices dropped; or the failed outcome.
std::variant<PlannedDomain, FileOutcome> ReadAndPlan(const std::string& input,
                                                     const FileOptions& options);

/// The diagnostic of an I/O or usage error in a JSON document: rule, line and device null.
nlohmann::ordered_json IoErrorJson(const std::string& message);

/// Marks `o` failed for the I/O error `message` (its document too, when it has one).
void SetIoError(FileOutcome& o, const std::string& message);

/// Runs `options.command` on `input`. Thread-safe: batch workers call it side by side.
FileOutcome RunFileCommand(const std::string& input, const FileOptions& options);

}  // namespace pciplan::cli
