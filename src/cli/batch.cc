#include "batch.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>
#include <variant>

#include "io.h"
#include "pciplan/emit/result_json.h"

namespace pciplan::cli {
namespace {

namespace fs = std::filesystem;

/// A usage error found before any file is touched: the message for "pciplan: MESSAGE".
struct UsageError {
  std::string message;
};

bool IsFolder(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string Join(const std::string& dir, const std::string& name) {
  return !dir.empty() && dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// The *.xml files of the folder `dir`, sorted by name; not recursive.
std::variant<std::vector<std::string>, UsageError> FolderFiles(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".xml") != 0) continue;
    std::error_code file_ec;
    if (!it->is_regular_file(file_ec)) continue;
    names.push_back(name);
  }
  if (ec) return UsageError{"cannot list the folder '" + dir + "': " + ec.message()};
  std::sort(names.begin(), names.end());
  for (std::string& name : names) name = Join(dir, name);
  return names;
}

/// The files `inputs` name, in order: a file as it is, a folder's *.xml files, and for "-" the
/// lines of standard input (empty lines skipped), each again a file or a folder.
std::variant<std::vector<std::string>, UsageError> ExpandInputs(
    const std::vector<std::string>& inputs) {
  std::vector<std::string> paths;
  bool read_stdin = false;
  for (const std::string& input : inputs) {
    if (input != "-") {
      paths.push_back(input);
      continue;
    }
    if (read_stdin) return UsageError{"'-' (paths on standard input) is given twice"};
    read_stdin = true;
    Result<std::string> list = ReadInput("-");
    if (!list) return UsageError{list.errors().front().message};
    size_t start = 0;
    while (start < list->size()) {
      size_t end = list->find('\n', start);
      if (end == std::string::npos) end = list->size();
      std::string line = list->substr(start, end - start);
      start = end + 1;
      if (line.empty()) continue;
      if (line == "-") return UsageError{"'-' in the list of paths on standard input"};
      paths.push_back(line);
    }
  }
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    if (!IsFolder(path)) {
      files.push_back(path);
      continue;
    }
    std::variant<std::vector<std::string>, UsageError> in = FolderFiles(path);
    if (UsageError* e = std::get_if<UsageError>(&in)) return *e;
    for (std::string& f : std::get<std::vector<std::string>>(in)) files.push_back(std::move(f));
  }
  return files;
}

/// The name of the file written for `input`: plan keeps the input's name, qemu-args replaces
/// its .xml with .args (the shell command) or .json (--json).
std::string OutputName(const std::string& input, const FileOptions& options) {
  std::string base = BaseName(input);
  if (options.command == Command::kPlan || base.empty()) return base;
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".xml") == 0)
    base.resize(base.size() - 4);
  return base + (options.format == Format::kJson ? ".json" : ".args");
}

/// The file each input is written to (none for check); refuses an input that names no file and
/// two inputs written to the same file.
std::variant<std::vector<std::string>, UsageError> OutputPaths(
    const std::vector<std::string>& files, const BatchRequest& r) {
  std::vector<std::string> outputs(files.size());
  if (r.output_dir.empty()) return outputs;
  std::map<std::string, size_t> taken;
  for (size_t i = 0; i < files.size(); ++i) {
    std::string name = OutputName(files[i], r.file);
    if (name.empty()) return UsageError{"'" + files[i] + "' names no file"};
    outputs[i] = Join(r.output_dir, name);
    auto [it, fresh] = taken.emplace(outputs[i], i);
    if (!fresh) {
      return UsageError{"'" + files[it->second] + "' and '" + files[i] +
                        "' would both be written to '" + outputs[i] + "'"};
    }
  }
  return outputs;
}

/// One file's outcome, and the file written for it (empty: none).
struct Done {
  FileOutcome outcome;
  std::string output;
};

/// Runs the command on one file and writes its output; a worker's failure of any kind is this
/// file's error, never the end of the batch.
Done RunOne(const std::string& file, const std::string& output, const FileOptions& options) {
  Done d;
  try {
    d.outcome = RunFileCommand(file, options);
    if (d.outcome.ok() && !output.empty()) {
      // Flushed to disk once for the whole batch (RunBatch), not file by file.
      Result<bool> written =
          WriteOutput(output, d.outcome.text, StaleTemporaries::kLeave, Flush::kByCaller);
      if (written) {
        d.output = output;
      } else {
        SetIoError(d.outcome, written.errors().front().message);
      }
    }
  } catch (const std::exception& e) {
    d.outcome = FileOutcome{};
    d.outcome.status = kExitUsage;
    d.outcome.io_error = std::string("internal error: ") + e.what();
  }
  d.outcome.text.clear();
  d.outcome.text.shrink_to_fit();
  return d;
}

/// "ok FILE -> OUTPUT", "ok FILE (FAMILY)" (check), or "error " and the file's diagnostics as a
/// single run prints them, joined by "; ".
std::string TextLine(const std::string& file, const Done& d) {
  const FileOutcome& o = d.outcome;
  std::string name = DisplayName(file);
  if (o.ok()) return "ok " + name + (d.output.empty() ? " (" + o.family + ")" : " -> " + d.output);
  if (!o.io_error.empty()) return "error " + name + ": " + o.io_error;
  std::string line = "error ";
  for (size_t i = 0; i < o.errors.size(); ++i) {
    if (i > 0) line += "; ";
    line += o.errors[i].Render(name);
  }
  return line;
}

/// The file's JSON document (the one a single run with --json prints), on one line, with
/// "output": the file written, or null.
std::string JsonLine(const std::string& file, const Done& d, const FileOptions& options) {
  nlohmann::ordered_json j = d.outcome.json;
  if (!j.is_object()) {
    // The run failed before it made its document (an internal error): the head and the error.
    j = ResultHead(KindOf(options.command), DisplayName(file), false);
    j["diagnostics"] = nlohmann::ordered_json::array();
    j["diagnostics"].push_back(IoErrorJson(d.outcome.io_error));
  }
  j["output"] = d.output.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(d.output);
  // A file name need not be UTF-8: such bytes become U+FFFD rather than an exception.
  return DumpJson(j, -1);
}

/// The files' outcomes as workers finish them, printed in input order by whichever worker
/// completes the next one to print: no thread waits for another, and no wake-up per file.
class Printer {
 public:
  Printer(const std::vector<std::string>& files, const BatchRequest& r)
      : files_(files), r_(r), done_(files.size()), ready_(files.size(), false) {}

  /// Records file `i`'s outcome and prints every outcome now ready in order.
  void Put(size_t i, Done d) {
    std::lock_guard<std::mutex> lock(mutex_);
    done_[i] = std::move(d);
    ready_[i] = true;
    for (; next_ < files_.size() && ready_[next_]; ++next_) {
      Done& n = done_[next_];
      if (!n.outcome.ok()) status_ = kExitInvalid;
      std::string line = r_.lines == Format::kJson ? JsonLine(files_[next_], n, r_.file)
                                                   : TextLine(files_[next_], n);
      line += '\n';
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fflush(stdout);  // a reader of a pipe sees each outcome as soon as it is known
      if (r_.explain == Explain::kYes) {
        for (const std::string& note : n.outcome.notes) {
          std::fprintf(stderr, "note: %s: %s\n", DisplayName(files_[next_]).c_str(), note.c_str());
        }
      }
      n = Done{};
    }
  }
  int status() const { return status_; }

 private:
  const std::vector<std::string>& files_;
  const BatchRequest& r_;
  std::mutex mutex_;
  std::vector<Done> done_;
  std::vector<bool> ready_;
  size_t next_ = 0;
  int status_ = kExitOk;
};

}  // namespace

int RunBatch(const BatchRequest& r) {
  std::variant<std::vector<std::string>, UsageError> expanded = ExpandInputs(r.inputs);
  if (UsageError* e = std::get_if<UsageError>(&expanded)) {
    std::fprintf(stderr, "pciplan: %s\n", e->message.c_str());
    return kExitUsage;
  }
  const std::vector<std::string>& files = std::get<std::vector<std::string>>(expanded);
  std::variant<std::vector<std::string>, UsageError> planned_outputs = OutputPaths(files, r);
  if (UsageError* e = std::get_if<UsageError>(&planned_outputs)) {
    std::fprintf(stderr, "pciplan: %s\n", e->message.c_str());
    return kExitUsage;
  }
  const std::vector<std::string>& outputs = std::get<std::vector<std::string>>(planned_outputs);
  if (!r.output_dir.empty()) {
    std::error_code ec;
    fs::create_directories(r.output_dir, ec);
    if (ec || !IsFolder(r.output_dir)) {
      std::fprintf(stderr, "pciplan: cannot create the folder '%s': %s\n", r.output_dir.c_str(),
                   (ec ? ec : std::make_error_code(std::errc::not_a_directory)).message().c_str());
      return kExitUsage;
    }
    RemoveStaleTemporariesIn(r.output_dir);
  }

  unsigned jobs = r.jobs > 0 ? r.jobs : std::max(1u, std::thread::hardware_concurrency());
  jobs = static_cast<unsigned>(std::min<size_t>(jobs, files.size()));
  Printer printer(files, r);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < files.size(); i = next++) {
      printer.Put(i, RunOne(files[i], outputs[i], r.file));
    }
  };
  // This thread is one of the workers.
  std::vector<std::thread> workers;
  for (unsigned w = 1; w < jobs; ++w) {
    try {
      workers.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // the system gives no more threads: those started do the work
    }
  }
  work();
  for (std::thread& t : workers) t.join();
  int status = printer.status();
  if (!r.output_dir.empty()) {
    // One flush of the folder's file system for every file written (each is whole already).
    Result<bool> synced = SyncFolder(r.output_dir);
    if (!synced) {
      std::fprintf(stderr, "pciplan: %s\n", synced.errors().front().message.c_str());
      return kExitUsage;
    }
  }
  return status;
}

}  // namespace pciplan::cli
