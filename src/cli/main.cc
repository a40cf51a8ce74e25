// pciplan's command line: one table of subcommands (plan, check, qemu-args, verify, tree,
// attach, detach), each a function below; plan, check and qemu-args on one file run file_command.cc,
// on many (--batch) batch.cc. Exit status: 0 success, 1 the domain is invalid or cannot be
// planned (or verify found a mismatch), 2 usage or I/O errors.
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "batch.h"
#include "cli11.h"
#include "file_command.h"
#include "io.h"
#include "pciplan/domain/domain_reader.h"
#include "pciplan/edit/attach.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/emit/result_json.h"
#include "pciplan/emit/tree.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"
#include "pciplan/qmp/caps.h"
#include "pciplan/qmp/caps_data.h"
#include "pciplan/qmp/live.h"
#include "pciplan/qmp/qmp_client.h"
#include "pciplan/qmp/transport.h"
#include "pciplan/qmp/verify.h"
#include "pciplan/qmp/verify_guest.h"

namespace pciplan::cli {
namespace {

/// Prints `errs`, each naming the file its line is in: `file`, or `device_file` (attach and
/// detach) for errors in the device file.
int Report(const Diagnostics& errs, const std::string& file, const std::string& device_file = {}) {
  for (const Diagnostic& d : errs) {
    bool in_device = d.input == InputFile::kDevice && !device_file.empty();
    std::fprintf(stderr, "%s\n", d.Render(in_device ? device_file : file).c_str());
  }
  return kExitInvalid;
}

/// Prints a failed outcome as a single run does; returns its exit status.
int ReportFailure(const FileOutcome& o, const std::string& input) {
  if (o.status == kExitUsage) {
    std::fprintf(stderr, "pciplan: %s\n", o.io_error.c_str());
    return kExitUsage;
  }
  return Report(o.errors, DisplayName(input));
}

void AddWishOptions(CLI::App& app, WishArgs& a) {
  app.add_option("--policy-file", a.policy_file,
                 "JSON file of wishes (over the domain's metadata, under the flags)");
  app.add_option("--hotplug-slots", a.hotplug_slots,
                 "Free hot-pluggable slots to keep: pcie=N,pci=M");
  app.add_option("--default-address-type", a.default_address_type,
                 "Transport of open virtio addresses on virt: pci or virtio-mmio");
  app.add_option("--policy", a.policy,
                 "Placement policy of devices no wish speaks for: libvirt (default) or "
                 "integrated (every endpoint on the root bus)");
  app.add_option("--wish", a.wishes, "A device wish: DEVICE:NAME=VALUE[,NAME=VALUE] (repeatable)");
}

void AddReplanOption(CLI::App& app, WishArgs& a) {
  app.add_option("--replan", a.replan,
                 "Drop this device's address and place it again under the wishes; nothing "
                 "else moves (DEVICE as in --wish; repeatable)");
}

/// Prints the errors of the wish options (usage errors, no file line).
int ReportWishArgs(const Diagnostics& errs) {
  for (const Diagnostic& d : errs) std::fprintf(stderr, "%s\n", d.Render("pciplan").c_str());
  return kExitUsage;
}

/// Prints a JSON document on standard output.
void PrintJson(const nlohmann::ordered_json& doc) {
  std::string out = DumpJson(doc, 2) + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
}

/// The run's JSON document (--json) on standard output: the planned XML written to `output`
/// (named in "output") or, for standard output, carried in "xml". Failures print their
/// diagnostics on standard error too.
int RunSingleJson(const std::string& input, const FileOptions& options, const std::string& output,
                  FileOutcome o) {
  if (!o.ok()) {
    PrintJson(o.json);
    return ReportFailure(o, input);
  }
  if (options.command == Command::kPlan) {
    if (output == "-") {
      o.json["xml"] = o.text;
    } else if (Result<bool> written = WriteOutput(output, o.text); !written) {
      SetIoError(o, written.errors().front().message);
      PrintJson(o.json);
      return ReportFailure(o, input);
    } else {
      o.json["output"] = output;
    }
  }
  PrintJson(o.json);
  return kExitOk;
}

/// Plan, check or qemu-args on one file: the outcome printed (check, qemu-args) or written to
/// `output` ("-": standard output), or its diagnostics on standard error.
int RunSingle(const std::string& input, const FileOptions& options, const std::string& output,
              Explain explain) {
  FileOutcome o = RunFileCommand(input, options);
  if (explain == Explain::kYes && o.ok()) {
    for (const std::string& note : o.notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  }
  if (options.document == Document::kYes) {
    return RunSingleJson(input, options, output, std::move(o));
  }
  if (!o.ok()) return ReportFailure(o, input);
  Result<bool> written = WriteOutput(output, o.text);
  if (!written) {
    std::fprintf(stderr, "pciplan: %s\n", written.errors().front().message.c_str());
    return kExitUsage;
  }
  return kExitOk;
}

/// The JSON document of a verify run (`kind` "verify" or "verify-guest"): its head, the
/// report's own fields (`report`: RenderVerifyJson or RenderGuestJson, none when there is no
/// report), and the diagnostics.
nlohmann::ordered_json VerifyDocument(const std::string& kind, const std::string& input, bool ok,
                                      const std::string& report, const FileOutcome* failed,
                                      const Diagnostics& errors) {
  nlohmann::ordered_json doc = ResultHead(kind, DisplayName(input), ok);
  if (!report.empty()) {
    nlohmann::ordered_json fields = nlohmann::ordered_json::parse(report);
    for (auto& [key, value] : fields.items()) {
      if (key != "ok") doc[key] = value;
    }
  }
  doc["diagnostics"] = DiagnosticsJson(failed ? failed->errors : errors, DisplayName(input));
  if (failed && !failed->io_error.empty()) {
    doc["diagnostics"].push_back(IoErrorJson(failed->io_error));
  }
  return doc;
}

int RunVerify(const std::string& input, const FileOptions& file_options,
              const VerifyOptions& options, bool json) {
  std::variant<PlannedDomain, FileOutcome> planned = ReadAndPlan(input, file_options);
  if (const FileOutcome* failed = std::get_if<FileOutcome>(&planned)) {
    if (json) PrintJson(VerifyDocument("verify", input, false, "", failed, {}));
    return ReportFailure(*failed, input);
  }
  const PlannedDomain& p = std::get<PlannedDomain>(planned);
  Result<VerifyReport> report = Verify(p.domain, p.plan, BuiltinCatalog(), options);
  if (!report) {
    // QEMU did not start (or its monitor failed): still one document for a program to read.
    if (json) PrintJson(VerifyDocument("verify", input, false, "", nullptr, report.errors()));
    return Report(report.errors(), DisplayName(input));
  }
  if (json) {
    PrintJson(VerifyDocument("verify", input, report->ok(), RenderVerifyJson(report.value()),
                             nullptr, {}));
  } else {
    std::string out = RenderVerifyText(report.value());
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return report->ok() ? kExitOk : kExitInvalid;
}

/// Renders `dot` as SVG with Graphviz's dot (run without a shell), or says why it could not.
Result<std::string> RenderSvg(const std::string& dot) {
  char dir[] = "/tmp/pciplan-tree-XXXXXX";
  if (!mkdtemp(dir)) return Error(Rule::kUnsupported, "cannot make a temporary folder");
  std::string in = std::string(dir) + "/tree.dot", out = std::string(dir) + "/tree.svg";
  auto cleanup = [&] {
    std::remove(in.c_str());
    std::remove(out.c_str());
    rmdir(dir);
  };
  if (FILE* f = std::fopen(in.c_str(), "wb")) {
    std::fwrite(dot.data(), 1, dot.size(), f);
    std::fclose(f);
  }
  const char* argv[] = {"dot", "-Tsvg", "-o", out.c_str(), in.c_str(), nullptr};
  pid_t pid = 0;
  int status = 0;
  if (posix_spawnp(&pid, "dot", nullptr, nullptr, const_cast<char* const*>(argv), environ) != 0 ||
      waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    cleanup();
    return Error(Rule::kUnsupported,
                 "--svg needs Graphviz's dot, which failed or is missing (Debian: graphviz)");
  }
  Result<std::string> svg = ReadInput(out);
  cleanup();
  return svg;
}

int RunTree(const std::string& input, const FileOptions& file_options, bool dot,
            const std::string& svg_file) {
  std::variant<PlannedDomain, FileOutcome> planned = ReadAndPlan(input, file_options);
  if (const FileOutcome* failed = std::get_if<FileOutcome>(&planned)) {
    return ReportFailure(*failed, input);
  }
  const PlannedDomain& p = std::get<PlannedDomain>(planned);
  if (!svg_file.empty()) {
    Result<std::string> svg = RenderSvg(RenderTreeDot(p.plan, BuiltinCatalog()));
    if (!svg) {
      std::fprintf(stderr, "pciplan: %s\n", svg.errors().front().message.c_str());
      return kExitUsage;
    }
    Result<bool> written = WriteOutput(svg_file, svg.value());
    if (!written) {
      std::fprintf(stderr, "pciplan: %s\n", written.errors().front().message.c_str());
      return kExitUsage;
    }
    return kExitOk;
  }
  std::string out = dot ? RenderTreeDot(p.plan, BuiltinCatalog())
                        : RenderTreeText(p.plan, BuiltinCatalog());
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

int RunVerifyGuest(const std::string& input, const FileOptions& file_options,
                   const GuestOptions& options, bool json) {
  std::variant<PlannedDomain, FileOutcome> planned = ReadAndPlan(input, file_options);
  if (const FileOutcome* failed = std::get_if<FileOutcome>(&planned)) {
    if (json) PrintJson(VerifyDocument("verify-guest", input, false, "", failed, {}));
    return ReportFailure(*failed, input);
  }
  const PlannedDomain& p = std::get<PlannedDomain>(planned);
  Result<GuestReport> report = VerifyGuest(p.domain, p.plan, BuiltinCatalog(), options);
  if (!report) {
    if (json) PrintJson(VerifyDocument("verify-guest", input, false, "", nullptr, report.errors()));
    return Report(report.errors(), DisplayName(input));
  }
  if (json) {
    PrintJson(VerifyDocument("verify-guest", input, report->ok(),
                             RenderGuestJson(report.value()), nullptr, {}));
  } else {
    std::string out = RenderGuestText(report.value());
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
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
  WishArgs wishes;
  bool write_wishes = false;  // attach --write-wishes
  bool json = false;          // --json: the result as a JSON document on standard output
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

int RunEdit(const EditArgs& a, EditKind kind) {
  bool attach = kind == EditKind::kAttach;
  ResultParts parts;
  parts.kind = attach ? "attach" : "detach";
  parts.file = DisplayName(a.domain);
  parts.device_file = a.device.empty() ? "" : DisplayName(a.device);
  // Failures: the document (--json) on standard output, the diagnostics on standard error.
  auto fail = [&](const Diagnostics& errs) {
    if (a.json) {
      parts.diagnostics = errs;
      PrintJson(ResultJson(parts, BuiltinCatalog()));
    }
    return Report(errs, parts.file, parts.device_file);
  };
  auto usage = [&](const std::string& message) {
    if (a.json) {
      nlohmann::ordered_json doc = ResultJson(parts, BuiltinCatalog());
      doc["diagnostics"].push_back(IoErrorJson(message));
      PrintJson(doc);
    }
    std::fprintf(stderr, "pciplan: %s\n", message.c_str());
    return kExitUsage;
  };
  if (a.in_place && a.output != "-") return usage("--in-place and -o exclude each other");
  if (!a.qmp.empty() && !a.live) return usage("--qmp needs --live");
  if (a.in_place && a.domain == "-") {
    return usage("--in-place needs a domain file, not standard input");
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
  if (!text) return usage(text.errors().front().message);
  Result<Domain> domain = ReadDomain(std::move(text.value()));
  if (!domain) return fail(domain.errors());
  Result<Wishes> given = CommandLineWishes(a.wishes);
  if (!given) return ReportWishArgs(given.errors());
  domain->wishes = Overlay(domain->wishes, given.value());
  std::optional<Monitor> monitor;
  if (!a.qmp.empty()) {
    Result<Monitor> m = ConnectMonitor(a.qmp, a.timeout_ms);
    if (!m) return usage(m.errors().front().message);
    monitor = std::move(m.value());
  }
  std::string detached;  // detach: the name of the device removed
  if (!attach) {
    DetachRequest req{a.alias, device.value_or(""), Prune::kNothing};
    if (Result<int> index = FindDevice(domain.value(), req)) {
      detached = DeviceRef::DescribeAt(domain->devices, static_cast<size_t>(index.value()));
    }
  }
  EditRequest request;
  request.kind = kind;
  request.device_xml = device.value_or("");
  request.alias = a.alias;
  request.mode = a.live ? AttachMode::kLive : AttachMode::kConfig;
  request.prune = a.prune ? Prune::kEmptyControllers : Prune::kNothing;
  request.write_wishes = a.write_wishes ? WriteWishes::kYes : WriteWishes::kNo;
  Result<Edited> edited = EditDomain(domain.value(), request);
  if (!edited) return fail(edited.errors());
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
    if (!done) return fail(done.errors());
  }
  std::string output = a.in_place ? a.domain : a.output;
  if (a.json && output == "-") {
    parts.xml = edited->xml;
  } else {
    Result<bool> written = WriteOutput(output, edited->xml);
    if (!written) return usage(written.errors().front().message);
    parts.output = output;
  }
  if (a.json) {
    parts.plan = &edited->plan;
    nlohmann::ordered_json doc = ResultJson(parts, BuiltinCatalog());
    // The device attached (its index in "devices"), or the name of the device detached.
    if (attach) {
      doc["attached"] = edited->device;
    } else {
      doc["detached"] = detached;
    }
    PrintJson(doc);
  }
  return kExitOk;
}

/// What plan, check, qemu-args and verify were given on the command line.
struct FileCommandArgs {
  std::vector<std::string> inputs;
  std::string output = "-";   // plan -o
  bool explain = false;       // plan --explain
  bool write_wishes = false;  // plan --write-wishes
  bool all_errors = false;    // plan --all-errors (check always reports every problem)
  bool json = false;          // the result as a JSON document; with --batch: JSON lines
  bool batch = false;
  std::string output_dir;  // --batch -O
  unsigned jobs = 0;       // --batch -j; 0 when not given
  std::string qemu;        // plan, check, qemu-args --qemu BIN
  WishArgs wishes;
};

/// The options of one run that make no sense together, or "".
std::string Misuse(Command command, const FileCommandArgs& a) {
  if (!a.batch) {
    if (a.inputs.size() > 1) return "one input file, or --batch for several";
    if (!a.output_dir.empty()) return "-O needs --batch";
    if (a.jobs > 0) return "-j needs --batch";
    return "";
  }
  if (a.output != "-") return "--batch writes into the folder of -O, not -o";
  if (command != Command::kCheck && a.output_dir.empty()) return "--batch needs -O OUTDIR";
  return "";
}

/// Plan, check or qemu-args: on one file, or on many with --batch.
int RunFileCommandLine(Command command, const FileCommandArgs& a) {
  if (std::string misuse = Misuse(command, a); !misuse.empty()) {
    std::fprintf(stderr, "pciplan: %s\n", misuse.c_str());
    return kExitUsage;
  }
  Result<Wishes> given = CommandLineWishes(a.wishes);
  if (!given) return ReportWishArgs(given.errors());
  FileOptions options;
  options.command = command;
  options.given = std::move(given.value());
  options.replan = a.wishes.replan;
  options.write_wishes = a.write_wishes ? WriteWishes::kYes : WriteWishes::kNo;
  options.format = a.json && command == Command::kQemuArgs ? Format::kJson : Format::kText;
  options.document = a.json ? Document::kYes : Document::kNo;
  options.problems =
      command == Command::kCheck || a.all_errors ? Problems::kAll : Problems::kFirst;
  Result<QemuCaps> caps = QemuCaps{};
  if (!a.qemu.empty()) {
    CapsOptions caps_options;
    caps_options.qemu = a.qemu;
    caps = LoadQemuCaps(caps_options, BuiltinCatalog());
    if (!caps) {
      std::fprintf(stderr, "pciplan: %s\n", caps.errors().front().message.c_str());
      return kExitUsage;
    }
    options.qemu = &caps.value();
  }
  Explain explain = a.explain ? Explain::kYes : Explain::kNo;
  if (!a.batch) return RunSingle(a.inputs.front(), options, a.output, explain);
  BatchRequest request;
  request.file = std::move(options);
  request.inputs = a.inputs;
  request.output_dir = a.output_dir;
  request.jobs = a.jobs;
  request.lines = a.json ? Format::kJson : Format::kText;
  request.explain = explain;
  return RunBatch(request);
}

/// The data files of a folder written by caps --write-data (every *.json below it, named as in
/// data/: "controllers.json", "machines/q35.json"), or none when it has no controllers.json.
Result<std::vector<DataFile>> ReadDataDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<DataFile> files;
  std::error_code ec;
  if (!fs::exists(fs::path(dir) / "controllers.json", ec)) return files;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file() || it->path().extension() != ".json") continue;
    Result<std::string> text = ReadInput(it->path().string());
    if (!text) return text.errors();
    files.push_back({fs::relative(it->path(), dir).generic_string(), std::move(text.value())});
  }
  if (ec) return Error(Rule::kBadValue, fmt::format("cannot read '{}': {}", dir, ec.message()));
  std::sort(files.begin(), files.end(),
            [](const DataFile& a, const DataFile& b) { return a.name < b.name; });
  return files;
}

int ReportCapsError(const Diagnostics& errors) {
  std::fprintf(stderr, "pciplan: %s\n", errors.front().message.c_str());
  return kExitUsage;
}

/// caps --write-data DIR: the data files (DIR's own when it has them, else the bundled ones)
/// with the binary's facts written in.
int WriteCapsData(const CapsOptions& options, const std::string& dir) {
  namespace fs = std::filesystem;
  Result<std::vector<DataFile>> base = ReadDataDir(dir);
  if (!base) return ReportCapsError(base.errors());
  const bool own = !base->empty();
  if (!own) base = BuiltinDataFiles();
  Result<Catalog> catalog = LoadCatalog(*base);
  if (!catalog) {
    for (const Diagnostic& d : catalog.errors()) {
      std::fprintf(stderr, "%s: %s\n", dir.c_str(), d.message.c_str());
    }
    return kExitInvalid;
  }
  Result<QemuCaps> caps = LoadQemuCaps(options, *catalog);
  if (!caps) return ReportCapsError(caps.errors());
  Result<std::vector<DataFile>> files = CapsDataFiles(*caps, *catalog, *base);
  if (!files) return ReportCapsError(files.errors());
  size_t changed = 0;
  for (size_t i = 0; i < files->size(); ++i) {
    const DataFile& f = (*files)[i];
    changed += f.text != (*base)[i].text ? 1 : 0;
    std::error_code ec;
    fs::create_directories((fs::path(dir) / f.name).parent_path(), ec);
    Result<bool> written = WriteOutput((fs::path(dir) / f.name).string(), f.text);
    if (!written) return ReportCapsError(written.errors());
  }
  std::printf("%s: %zu data files (from %s), %zu with facts of %s\n", dir.c_str(), files->size(),
              own ? "the folder" : "the bundled data", changed, caps->Describe().c_str());
  return kExitOk;
}

/// caps: the binary's capabilities (cached), as text or JSON, and where the bundled data
/// disagrees with them.
int RunCaps(const CapsOptions& options, bool json, const std::string& write_data) {
  if (!write_data.empty()) return WriteCapsData(options, write_data);
  Result<QemuCaps> caps = LoadQemuCaps(options, BuiltinCatalog());
  if (!caps) {
    std::fprintf(stderr, "pciplan: %s\n", caps.errors().front().message.c_str());
    return kExitUsage;
  }
  if (json) {
    std::fputs(CapsJson(*caps).c_str(), stdout);
    return kExitOk;
  }
  std::string text = RenderCapsText(*caps);
  int agree = 0, facts = 0;
  for (const CapsFact& f : CompareCapsWithData(*caps, BuiltinCatalog())) {
    ++facts;
    agree += f.agrees ? 1 : 0;
    if (!f.agrees) text += fmt::format("data disagrees: {}; QEMU: {}\n", f.what, f.binary);
  }
  text += fmt::format("bundled data: {} of {} facts QEMU can tell agree\n", agree, facts);
  std::fputs(text.c_str(), stdout);
  return kExitOk;
}

int RunTreeCommandLine(const std::string& input, const WishArgs& wishes, bool dot,
                       const std::string& svg_file) {
  Result<Wishes> given = CommandLineWishes(wishes);
  if (!given) return ReportWishArgs(given.errors());
  FileOptions options;
  options.given = std::move(given.value());
  options.replan = wishes.replan;
  return RunTree(input, options, dot, svg_file);
}

/// verify: in QEMU paused, or, with `guest`, from inside a booted guest (--guest).
int RunVerifyCommandLine(const FileCommandArgs& a, const VerifyOptions& options,
                         const GuestOptions* guest) {
  if (a.inputs.size() > 1) {
    std::fprintf(stderr, "pciplan: verify takes one input file\n");
    return kExitUsage;
  }
  Result<Wishes> given = CommandLineWishes(a.wishes);
  if (!given) return ReportWishArgs(given.errors());
  FileOptions file_options;
  file_options.given = std::move(given.value());
  file_options.replan = a.wishes.replan;
  if (guest) return RunVerifyGuest(a.inputs.front(), file_options, *guest, a.json);
  return RunVerify(a.inputs.front(), file_options, options, a.json);
}

/// The everyday `plan FILE` and `plan FILE -o OUT` (either order, --output too, "-" for
/// standard input or output), read without building the command table. Any other command line
/// (no input or two, -o twice or without a value, any other option, --help) is CLI11's to
/// parse, answer and refuse.
std::optional<FileCommandArgs> EverydayPlan(int argc, char** argv) {
  if (argc < 3 || std::string_view(argv[1]) != "plan") return std::nullopt;
  auto is_option = [](std::string_view word) { return word.size() > 1 && word[0] == '-'; };
  FileCommandArgs a;
  bool output = false;
  for (int i = 2; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word == "-o" || word == "--output") {
      if (output || ++i == argc || is_option(argv[i])) return std::nullopt;
      a.output = argv[i];
      output = true;
    } else if (is_option(word) || !a.inputs.empty()) {
      return std::nullopt;
    } else {
      a.inputs.emplace_back(word);
    }
  }
  if (a.inputs.empty()) return std::nullopt;
  return a;
}

/// CLI11's answer to `e` (help, version, a usage error), printed to the standard streams.
int CliExit(const CLI::App& app, const CLI::Error& e) {
  StandardStreams();
  return app.exit(e);
}

}  // namespace
}  // namespace pciplan::cli

namespace {

int Main(int argc, char** argv) {
  using namespace pciplan::cli;  // NOLINT: the command table reads better unqualified
  if (std::optional<FileCommandArgs> everyday = EverydayPlan(argc, argv)) {
    return RunFileCommandLine(Command::kPlan, *everyday);
  }
  CLI::App app{"pciplan: plans PCI/PCIe device addresses for QEMU virtual machines", "pciplan"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return pciplan::VersionText(pciplan::BuiltinCatalog()); },
                       "Print pciplan's version and what it models (libvirt, QEMU) and exit");
  // Only the named subcommand is built (each option costs start-up time); every one is for
  // help or an unknown name, so that both list them all.
  const std::string named = argc > 1 ? argv[1] : "";
  const bool all = named != "plan" && named != "check" && named != "qemu-args" &&
                   named != "caps" && named != "verify" && named != "tree" && named != "attach" &&
                   named != "detach";
  // The subcommand `name`, or nullptr when this run does not build it.
  auto subcommand = [&](const char* name, const char* description) -> CLI::App* {
    return all || named == name ? app.add_subcommand(name, description) : nullptr;
  };

  FileCommandArgs file_args;
  constexpr const char* kInputHelp = "Domain XML file, or - for standard input";
  constexpr const char* kBatchInputHelp =
      "Domain XML file, or - for standard input; with --batch: files, folders (their *.xml) "
      "and - for a list of paths on standard input";
  CLI::App* plan = subcommand(
      "plan", "Fill in every missing address (libvirt 9.0 policy) and print the domain XML");
  if (plan) {
    plan->add_option("input", file_args.inputs, kBatchInputHelp)->required();
    plan->add_option("-o,--output", file_args.output,
                     "Write the planned XML here (atomically) instead of standard output");
    plan->add_flag("--explain", file_args.explain,
                   "Print why controllers were added, on standard error");
    plan->add_flag("--write-wishes", file_args.write_wishes,
                   "Record the wishes used into the domain's metadata, for the next plan");
    plan->add_flag("--all-errors", file_args.all_errors,
                   "Report every independent problem of a refused domain, not only the first");
    plan->add_flag("--json", file_args.json,
                   "Print the result as JSON: addresses, added controllers, promises, "
                   "diagnostics; the XML goes to -o, else into the document (\"xml\")");
  }

  CLI::App* check = subcommand(
      "check", "Validate the domain's fixed addresses and plan it, changing nothing");
  if (check) {
    check->add_option("input", file_args.inputs, kBatchInputHelp)->required();
    check->add_flag("--json", file_args.json,
                    "Print the result as JSON: addresses, promises, every problem found");
  }

  CLI::App* qemu_args = subcommand(
      "qemu-args", "Plan the domain and print the QEMU command line that builds its PCI topology");
  if (qemu_args) {
    qemu_args->add_option("input", file_args.inputs, kBatchInputHelp)->required();
    qemu_args->add_flag("--json", file_args.json,
                        "Print JSON: machine, -device objects and argv (with --batch: NAME.json "
                        "files and JSON lines)");
  }

  for (CLI::App* c : {plan, check, qemu_args}) {
    if (c == nullptr) continue;
    c->add_flag("--batch", file_args.batch,
                "Many inputs, one outcome line each on standard output in input order");
    if (c != check) {
      c->add_option("-O,--output-dir", file_args.output_dir,
                    "With --batch: write each file's output into this folder (atomically)");
    }
    c->add_option("-j,--jobs", file_args.jobs,
                  "With --batch: worker threads (default: the number of cores)")
        ->type_name("N")
        ->check(CLI::Range(1u, 4096u).description(""));
    c->add_option("--qemu", file_args.qemu,
                  "Plan for this QEMU binary: refuse a machine type or device it lacks (its "
                  "capabilities are read once and cached, see caps)")
        ->type_name("BIN");
  }

  pciplan::CapsOptions caps_options;
  bool caps_json = false;
  std::string caps_write_data;
  CLI::App* caps = subcommand(
      "caps", "Ask a QEMU binary what it has: machine types, devices, built-ins, hot-plug");
  if (caps) {
    caps->add_option("--qemu", caps_options.qemu, "QEMU binary (default qemu-system-x86_64)")
        ->type_name("BIN");
    caps->add_option("--machine", caps_options.machines,
                     "Machine type to probe (repeatable; default: those pciplan has a family for)")
        ->type_name("M");
    caps->add_flag("--json", caps_json, "Print the capabilities as JSON");
    caps->add_flag("--refresh", caps_options.refresh, "Ask QEMU again, ignoring the cache");
    caps->add_option("--write-data", caps_write_data,
                     "Write the data files with the binary's facts in them into DIR (starting from "
                     "DIR's own files when it has them, else the bundled data)")
        ->type_name("DIR");
  }

  pciplan::VerifyOptions verify_options;
  bool no_probes = false;
  bool guest = false;
  pciplan::GuestOptions guest_options;
  int boot_timeout_s = guest_options.timeout_ms / 1000;
  CLI::App* verify = subcommand(
      "verify",
      "Plan the domain, start the real QEMU paused with the plan and check that every "
      "device is where the plan put it and every promised hot-plug slot accepts one");
  if (verify) {
    verify->add_option("input", file_args.inputs, kInputHelp)->required();
    verify->add_option("--qemu", verify_options.qemu,
                       "QEMU binary (default: qemu-system-x86_64 or qemu-system-aarch64)");
    verify->add_flag("--json", file_args.json, "Print the report as JSON");
    verify->add_flag("--no-probes", no_probes, "Check addresses only, no hot-plug probes");
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
  }

  for (CLI::App* c : {plan, check, qemu_args, verify}) {
    if (c == nullptr) continue;
    AddWishOptions(*c, file_args.wishes);
    AddReplanOption(*c, file_args.wishes);
  }

  EditArgs edit;
  CLI::App* tree = subcommand(
      "tree", "Plan the domain and print its PCI topology as a tree, with every free slot");
  std::string tree_input, svg_file;
  bool tree_dot = false;
  WishArgs tree_wishes;
  if (tree) {
    tree->add_option("input", tree_input, kInputHelp)->required();
    tree->add_flag("--dot", tree_dot, "Print a Graphviz graph instead");
    tree->add_option("--svg", svg_file, "Render the graph with Graphviz's dot into this SVG file");
    AddWishOptions(*tree, tree_wishes);
    AddReplanOption(*tree, tree_wishes);
  }

  CLI::App* attach = subcommand(
      "attach", "Add a device, like virsh attach-device: plan it, moving nothing else");
  if (attach) {
    attach->add_option("domain", edit.domain, "Domain XML file, or - for standard input")->required();
    attach->add_option("device", edit.device, "File with the one device element to add")->required();
    attach->add_flag("!--config", edit.live,
                     "Plan it for the next boot; controllers may be added "
                     "(libvirt's attach-device --config; the default)");
    attach->add_flag("--live", edit.live,
                     "Plan it for the running guest: a free hot-pluggable "
                     "slot only, no controller added");
    attach->add_flag("--write-wishes", edit.write_wishes,
                     "Record the wishes used into the domain's metadata, for the next plan");
  }

  CLI::App* detach = subcommand(
      "detach", "Remove a device, like virsh detach-device, moving nothing else");
  if (detach) {
    detach->add_option("domain", edit.domain, "Domain XML file, or - for standard input")->required();
    CLI::Option* which =
        detach->add_option("device", edit.device, "File with a device element naming the device");
    detach->add_option("--alias", edit.alias, "The device's alias name instead")->excludes(which);
    detach->add_flag("--prune", edit.prune, "Also remove the PCI controllers left empty on its path");
    detach->add_flag("--live", edit.live, "Remove it from the running guest too (with --qmp)");
  }

  for (CLI::App* c : {attach, detach}) {
    if (c == nullptr) continue;
    c->add_option("-o,--output", edit.output, "Write the new domain here (atomically)");
    c->add_flag("--in-place", edit.in_place, "Replace the domain file (atomically)");
    c->add_option("--qmp", edit.qmp,
                  "QMP socket of the running QEMU: with --live, change it "
                  "first and write the domain only when QEMU agreed");
    c->add_option("--timeout", edit.timeout_ms, "Milliseconds to wait for QEMU (default 10000)");
    c->add_flag("--json", edit.json,
                "Print the result as JSON on standard output: addresses, added controllers, "
                "promises, diagnostics; the XML goes to -o or --in-place, else into the "
                "document (\"xml\")");
    AddWishOptions(*c, edit.wishes);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return CliExit(app, e);
  } catch (const CLI::CallForVersion& e) {
    return CliExit(app, e);
  } catch (const CLI::ParseError& e) {
    CliExit(app, e);
    return kExitUsage;
  }
  auto chosen = [](const CLI::App* c) { return c != nullptr && c->parsed(); };
  if (chosen(plan)) return RunFileCommandLine(Command::kPlan, file_args);
  if (chosen(check)) return RunFileCommandLine(Command::kCheck, file_args);
  if (chosen(qemu_args)) return RunFileCommandLine(Command::kQemuArgs, file_args);
  if (chosen(caps)) return RunCaps(caps_options, caps_json, caps_write_data);
  if (chosen(tree)) return RunTreeCommandLine(tree_input, tree_wishes, tree_dot, svg_file);
  if (chosen(attach)) return RunEdit(edit, pciplan::EditKind::kAttach);
  if (chosen(detach)) {
    if (edit.device.empty() && edit.alias.empty()) {
      std::fprintf(stderr, "pciplan: detach needs a device file or --alias\n");
      return kExitUsage;
    }
    return RunEdit(edit, pciplan::EditKind::kDetach);
  }
  if (chosen(verify)) {
    verify_options.probes = no_probes ? pciplan::Probes::kNone : pciplan::Probes::kHotplug;
    guest_options.qemu = verify_options.qemu;
    guest_options.timeout_ms = boot_timeout_s * 1000;
    return RunVerifyCommandLine(file_args, verify_options, guest ? &guest_options : nullptr);
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
