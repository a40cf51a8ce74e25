#include "io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "pciplan/domain/domain_reader.h"

namespace pciplan::cli {
namespace {

Diagnostic IoError(const std::string& what, const std::string& path) {
  return Error(Rule::kBadValue, what + " '" + path + "': " + std::strerror(errno));
}

/// Fault injection for the crash tests (tests/cli): when PCIPLAN_CRASH_POINT names this point,
/// the process dies here as if killed, so that the tests can show the target file is whole.
void CrashPoint(const char* point) {
  const char* want = std::getenv("PCIPLAN_CRASH_POINT");
  if (want && std::strcmp(want, point) == 0) std::raise(SIGKILL);
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
  return text;
}

Result<bool> WriteOutput(const std::string& path, const std::string& text) {
  if (path == "-") {
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout)) {
      return IoError("cannot write", "standard output");
    }
    return true;
  }
  std::string dir = ".";
  if (size_t slash = path.rfind('/'); slash != std::string::npos) {
    dir = slash == 0 ? "/" : path.substr(0, slash);
  }
  std::string tmp = path + ".pciplan-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return IoError("cannot create a temporary file beside", path);
  struct stat st {};
  mode_t mode = 0644;
  if (::stat(path.c_str(), &st) == 0) mode = st.st_mode & 07777;
  ::fchmod(fd, mode);
  size_t done = 0;
  while (done < text.size()) {
    if (done > 0) CrashPoint("mid-write");
    // Written in two halves at least, so that a crash can fall between them.
    size_t chunk = done == 0 ? std::max<size_t>(1, text.size() / 2) : text.size() - done;
    ssize_t n = ::write(fd, text.data() + done, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Diagnostic d = IoError("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return d;
    }
    done += static_cast<size_t>(n);
  }
  CrashPoint("before-fsync");
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    Diagnostic d = IoError("cannot flush", tmp);
    ::unlink(tmp.c_str());
    return d;
  }
  CrashPoint("before-rename");
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Diagnostic d = IoError("cannot rename over", path);
    ::unlink(tmp.c_str());
    return d;
  }
  CrashPoint("after-rename");
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

}  // namespace pciplan::cli
