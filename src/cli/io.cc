#include "io.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>

#include "pciplan/domain/domain_reader.h"

namespace pciplan::cli {
namespace {

Diagnostic IoError(const std::string& what, const std::string& path) {
  // strerror_r, not strerror: batch workers report errors side by side.
  char buf[256];
  const char* reason = ::strerror_r(errno, buf, sizeof buf);
  return Error(Rule::kBadValue, what + " '" + path + "': " + reason);
}

/// Fault injection for the crash tests (tests/cli): when PCIPLAN_CRASH_POINT names this point,
/// the process dies here as if killed, so that the tests can show the target file is whole.
void CrashPoint(const char* point) {
  const char* want = std::getenv("PCIPLAN_CRASH_POINT");
  if (want && std::strcmp(want, point) == 0) std::raise(SIGKILL);
}

/// Fault injection for the last-resort test: an exception no code path expects.
void ThrowPoint(const char* point) {
  const char* want = std::getenv("PCIPLAN_CRASH_POINT");
  if (want && std::strcmp(want, point) == 0) {
    throw std::logic_error(std::string("fault injected at ") + point);
  }
}

// Temporary files are named so that a leftover (a kill between linking and renaming it) is
// recognised and removed by the next write into the same folder: ".pciplan-tmp-PID-RANDOM".
constexpr std::string_view kTempPrefix = ".pciplan-tmp-";
// Symbolic links followed before giving up, as the kernel's own limit (ELOOP).
constexpr int kMaxLinkHops = 40;

bool AllDigits(std::string_view s) {
  return !s.empty() && s.size() <= 9 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string BaseOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// The descriptor a path names rather than a file (/dev/stdout, /dev/fd/N, /proc/self/fd/N):
/// writing there means writing into that descriptor, never replacing what it points to.
std::optional<int> DescriptorOf(const std::string& path) {
  if (path == "/dev/stdout") return STDOUT_FILENO;
  if (path == "/dev/stderr") return STDERR_FILENO;
  for (std::string_view prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    if (path.rfind(prefix, 0) != 0) continue;
    std::string n = path.substr(prefix.size());
    if (!AllDigits(n)) return std::nullopt;
    return std::stoi(n);
  }
  return std::nullopt;
}

Result<bool> WriteToDescriptor(int fd, const std::string& text, const std::string& name) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("cannot write", name);
    done += static_cast<size_t>(n);
  }
  return true;
}

/// `path` with every symbolic link on its last component followed: the file a write to `path`
/// must update (it may not exist yet, for a dangling link).
Result<std::string> ResolveLinks(const std::string& path) {
  std::string p = path;
  for (int hop = 0; hop < kMaxLinkHops; ++hop) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return p;
    std::string target(static_cast<size_t>(PATH_MAX), '\0');
    ssize_t n = ::readlink(p.c_str(), target.data(), target.size());
    if (n < 0) return IoError("cannot read the link", p);
    target.resize(static_cast<size_t>(n));
    p = target.front() == '/' ? target : DirOf(p) + "/" + target;
  }
  errno = ELOOP;
  return IoError("cannot follow the links of", path);
}

/// Removes temporaries of pciplan processes that no longer run (killed between link and
/// rename); a live process's temporary is left alone.
void RemoveStaleTemporaries(int dfd) {
  int copy = ::dup(dfd);
  DIR* dir = copy < 0 ? nullptr : ::fdopendir(copy);
  if (!dir) {
    if (copy >= 0) ::close(copy);
    return;
  }
  while (struct dirent* e = ::readdir(dir)) {
    std::string_view name = e->d_name;
    if (name.rfind(kTempPrefix, 0) != 0) continue;
    std::string_view rest = name.substr(kTempPrefix.size());
    std::string pid(rest.substr(0, rest.find('-')));
    if (!AllDigits(pid)) continue;
    if (::kill(std::stoi(pid), 0) != 0 && errno == ESRCH) ::unlinkat(dfd, e->d_name, 0);
  }
  ::closedir(dir);
}

std::string TemporaryName() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{}-{:016x}", kTempPrefix, ::getpid(), rng());
}

/// Replaces the regular file `path` (or creates it) atomically: an unnamed temporary file in the
/// same folder (O_TMPFILE; a named one where the file system lacks it), written, flushed, given
/// the old file's owner, group and mode (a new file gets the umask's), linked under a
/// recognisable name and renamed over the target.
Result<bool> ReplaceFile(const std::string& path, const std::string& text,
                         const std::optional<struct stat>& old, StaleTemporaries stale,
                         Flush flush) {
  std::string dir = DirOf(path), base = BaseOf(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return IoError("cannot open the folder of", path);
  if (stale == StaleTemporaries::kRemove) RemoveStaleTemporaries(dfd);
  std::string tmp;
  auto fail = [&](Diagnostic d, int fd) -> Result<bool> {
    if (fd >= 0) ::close(fd);
    if (!tmp.empty()) ::unlinkat(dfd, tmp.c_str(), 0);
    ::close(dfd);
    return d;
  };
  // 0666: the umask decides a new file's mode, as for any file a program creates.
  int fd = ::openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) {
    tmp = TemporaryName();
    fd = ::openat(dfd, tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
    if (fd < 0) {
      tmp.clear();
      return fail(IoError("cannot create a temporary file beside", path), -1);
    }
  }
  if (old) {
    // The owner first: changing it clears the set-user-ID bits the mode may then restore.
    if (::fchown(fd, old->st_uid, old->st_gid) != 0) {
      return fail(IoError("cannot keep the owner and group of", path), fd);
    }
    if (::fchmod(fd, old->st_mode & 07777) != 0) {
      return fail(IoError("cannot keep the mode of", path), fd);
    }
  }
  size_t done = 0;
  // Under fault injection, written in two halves at least, so that a crash can fall between
  // them; else in one write.
  bool halves = std::getenv("PCIPLAN_CRASH_POINT") != nullptr;
  while (done < text.size()) {
    if (done > 0) CrashPoint("mid-write");
    size_t chunk = done == 0 && halves ? std::max<size_t>(1, text.size() / 2) : text.size() - done;
    ssize_t n = ::write(fd, text.data() + done, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(IoError("cannot write a temporary file beside", path), fd);
    done += static_cast<size_t>(n);
  }
  CrashPoint("before-fsync");
  if (flush == Flush::kEachFile && ::fsync(fd) != 0) {
    return fail(IoError("cannot flush a temporary file beside", path), fd);
  }
  if (tmp.empty()) {
    std::string self = fmt::format("/proc/self/fd/{}", fd);
    if (!old) {
      // A new file: the whole unnamed file linked under its name at once, no temporary name
      // and no rename (one change of the folder instead of two). Someone else's file created
      // meanwhile is replaced like any existing file, below.
      CrashPoint("before-rename");
      if (::linkat(AT_FDCWD, self.c_str(), dfd, base.c_str(), AT_SYMLINK_FOLLOW) == 0) {
        ::close(fd);
        CrashPoint("after-rename");
        if (flush == Flush::kEachFile) ::fsync(dfd);
        ::close(dfd);
        return true;
      }
      if (errno != EEXIST) return fail(IoError("cannot link a file as", path), fd);
    }
    tmp = TemporaryName();
    if (::linkat(AT_FDCWD, self.c_str(), dfd, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      Diagnostic d = IoError("cannot link a temporary file beside", path);
      tmp.clear();
      return fail(d, fd);
    }
  }
  // Named now: renamed at once (a kill between the two leaves a temporary for the next write to
  // remove), and only then closed.
  CrashPoint("before-rename");
  if (::renameat(dfd, tmp.c_str(), dfd, base.c_str()) != 0) {
    return fail(IoError("cannot rename over", path), fd);
  }
  ::close(fd);
  CrashPoint("after-rename");
  if (flush == Flush::kEachFile) ::fsync(dfd);
  ::close(dfd);
  return true;
}

}  // namespace

Result<std::string> ReadInput(const std::string& path) {
  int fd = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open", path);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    if (fd != STDIN_FILENO) ::close(fd);
    return Error(Rule::kBadValue, "'" + path + "' is a directory");
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      Diagnostic d = IoError("cannot read", path);
      if (fd != STDIN_FILENO) ::close(fd);
      return d;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxInputBytes) {
      if (fd != STDIN_FILENO) ::close(fd);
      return Error(Rule::kLimitExceeded, "'" + path + "' is larger than " +
                                             std::to_string(kMaxInputBytes) + " bytes");
    }
  }
  if (fd != STDIN_FILENO) ::close(fd);
  ThrowPoint("throw-after-read");
  return text;
}

void RemoveStaleTemporariesIn(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  RemoveStaleTemporaries(dfd);
  ::close(dfd);
}

Result<bool> SyncFolder(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return IoError("cannot open the folder", dir);
  int synced = ::syncfs(dfd);
  ::close(dfd);
  if (synced != 0) return IoError("cannot flush to disk the folder", dir);
  return true;
}

Result<bool> WriteOutput(const std::string& path, const std::string& text, StaleTemporaries stale,
                         Flush flush) {
  if (path == "-") return WriteToDescriptor(STDOUT_FILENO, text, "standard output");
  if (std::optional<int> fd = DescriptorOf(path)) return WriteToDescriptor(*fd, text, path);
  Result<std::string> resolved = ResolveLinks(path);
  if (!resolved) return resolved.errors();
  struct stat st {};
  bool exists = ::stat(resolved->c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) return Error(Rule::kBadValue, "'" + path + "' is a directory");
  if (exists && !S_ISREG(st.st_mode)) {
    // A character device, a FIFO: not a file to replace, written into as it is.
    int fd = ::open(resolved->c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return IoError("cannot open", path);
    Result<bool> written = WriteToDescriptor(fd, text, path);
    ::close(fd);
    return written;
  }
  if (exists && st.st_nlink > 1) {
    return Error(Rule::kBadValue,
                 "'" + path + "' has " + std::to_string(st.st_nlink) +
                     " hard links; replacing it would break them, so it is left as it is");
  }
  return ReplaceFile(*resolved, text, exists ? std::optional<struct stat>(st) : std::nullopt,
                     stale, flush);
}

}  // namespace pciplan::cli
