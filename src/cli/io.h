// File input and output for the command line: read a file or standard input, write a file
// atomically (temporary file in the same folder, flushed, renamed over the target).
#pragma once

#include <string>

#include "pciplan/base/result.h"

namespace pciplan::cli {

/// Reads `path` ("-" for standard input), refusing inputs over the reader's size limit.
Result<std::string> ReadInput(const std::string& path);
/// Writes `text` to `path` ("-" for standard output); a file is replaced atomically and keeps
/// the permissions of the file it replaces.
Result<bool> WriteOutput(const std::string& path, const std::string& text);

}  // namespace pciplan::cli
