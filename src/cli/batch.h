// Batch mode of plan, check and qemu-args (README "Batch mode"): many files, a pool of worker
// threads, each file's outcome on one line of standard output in input order, each output file
// written atomically into one folder.
#pragma once

#include <string>
#include <vector>

#include "file_command.h"

namespace pciplan::cli {

enum class Explain { kNo, kYes };

struct BatchRequest {
  FileOptions file;                 // the command and the options every file gets
  std::vector<std::string> inputs;  // files, folders (their *.xml) and "-" (paths on stdin)
  std::string output_dir;           // -O: plan and qemu-args write here; empty for check
  unsigned jobs = 0;                // -j: worker threads; 0 for the number of cores
  Format lines = Format::kText;     // outcome lines, or JSON lines (--json)
  Explain explain = Explain::kNo;   // plan --explain: the notes on standard error
};

/// Runs the batch; returns the exit status: 0 every file succeeded, 1 some file failed, 2 a
/// usage error found before any file was written (no input, two outputs of the same name).
int RunBatch(const BatchRequest& request);

}  // namespace pciplan::cli
