// File input and output for the command line: read a file or standard input, write a file
// atomically (an unnamed temporary file in the same folder, flushed, renamed over the target).
#pragma once

#include <string>

#include "pciplan/base/result.h"

namespace pciplan::cli {

/// Reads `path` ("-" for standard input), refusing inputs over the reader's size limit.
Result<std::string> ReadInput(const std::string& path);
/// Whether a write first removes the temporaries killed pciplan processes left in the target's
/// folder (a batch does it once per folder instead of once per file).
enum class StaleTemporaries { kRemove, kLeave };
/// Whether a replaced file is flushed to disk (fsync of the file and its folder) before the
/// write returns, or left to the caller, who flushes a whole folder once (SyncFolder): a batch.
/// Either way a kill of pciplan leaves the old file or the new one, never a part.
enum class Flush { kEachFile, kByCaller };

/// Writes `text` to `path` ("-" for standard output). A regular file (a symbolic link: the file
/// it points to) is replaced atomically and keeps its owner, group and mode; a new file gets
/// the umask's mode; no temporary file is left behind, even by a kill. A descriptor path
/// (/dev/stdout, /dev/fd/N), a character device or a FIFO is written into as it is. A file
/// with several hard links is refused: replacing it would break them. Thread-safe.
Result<bool> WriteOutput(const std::string& path, const std::string& text,
                         StaleTemporaries stale = StaleTemporaries::kRemove,
                         Flush flush = Flush::kEachFile);
/// Flushes the file system of the folder `dir` to disk (syncfs).
Result<bool> SyncFolder(const std::string& dir);
/// Removes the temporaries of pciplan processes that no longer run from the folder `dir`.
void RemoveStaleTemporariesIn(const std::string& dir);

}  // namespace pciplan::cli
