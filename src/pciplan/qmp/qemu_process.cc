#include "pciplan/qmp/qemu_process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <sstream>
#include <utility>

extern char** environ;

namespace pciplan {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSocketName = "qmp.sock";
constexpr const char* kStderrName = "qemu.stderr";
constexpr int kStderrLines = 10;  // of QEMU's standard error in a start failure

/// A file descriptor closed when it goes out of scope.
class ScopedFd {
 public:
  explicit ScopedFd(int fd = -1) : fd_(fd) {}
  ~ScopedFd() { Reset(); }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

Diagnostic SystemError(std::string what, int err) {
  return Error(Rule::kQmp, fmt::format("{}: {}", what, std::strerror(err)));
}

/// Moves a new descriptor above 0..2 so the child's dup2() onto stdin, stdout and stderr never
/// overwrites one it still needs (possible when the parent runs with a standard stream closed).
int AboveStdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return moved;
}

void SleepMs(int ms) {
  timespec t{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) < 0 && errno == EINTR) {
  }
}

/// A private folder whose socket path fits in sockaddr_un::sun_path; TMPDIR first, else /tmp.
Result<std::string> MakePrivateDir() {
  std::error_code ec;
  fs::path base = fs::temp_directory_path(ec);
  const std::string leaf = "pciplan-qemu-XXXXXX";
  if (ec || (base / leaf / kSocketName).string().size() >= sizeof(sockaddr_un::sun_path)) {
    base = "/tmp";
  }
  std::string templ = (base / leaf).string();
  if (mkdtemp(templ.data()) == nullptr) {
    return SystemError(fmt::format("cannot create a temporary folder in '{}'", base.string()),
                       errno);
  }
  return templ;
}

/// `binary` itself when it names a path, else the first executable of that name in PATH.
/// Resolved before fork(): the child may only make async-signal-safe calls, which execvp's
/// PATH search is not.
Result<std::string> FindBinary(const std::string& binary) {
  if (binary.empty()) return Error(Rule::kQemu, "no QEMU binary given");
  if (binary.find('/') != std::string::npos) return binary;
  const char* env = std::getenv("PATH");
  std::string path = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  std::istringstream dirs(path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    fs::path candidate = fs::path(dir.empty() ? "." : dir) / binary;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate.string();
    }
  }
  return Error(Rule::kQemu, fmt::format("cannot find '{}' in PATH", binary));
}

/// A UNIX socket listening at `path`, for QEMU to take over by fd. Binding it here rather than
/// letting QEMU create it means our connect() succeeds at once (it waits in the backlog) and
/// needs no retry loop; when QEMU exits before accepting, the connection is reset.
Result<int> Listen(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = AboveStdio(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd < 0) return SystemError("cannot create the QMP socket", errno);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) < 0 || listen(fd, 1) < 0) {
    int err = errno;
    close(fd);
    return SystemError(fmt::format("cannot listen on QMP socket '{}'", path), err);
  }
  return fd;
}

/// The waitpid() status as words: "exited with status 1", "was killed by signal 9".
std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
  return "stopped";
}

/// The first lines of QEMU's standard error, joined into one line.
std::string FirstLines(const std::string& text) {
  std::istringstream in(text);
  std::string out;
  int lines = 0, more = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (lines == kStderrLines) {
      ++more;
      continue;
    }
    if (lines++ > 0) out += "; ";
    out += line;
  }
  if (more > 0) out += fmt::format(" (and {} more lines)", more);
  return out;
}

/// Reports `err` on the parent's error pipe and ends the child.
[[noreturn]] void ChildFailed(int error_pipe, int err) {
  [[maybe_unused]] ssize_t n = write(error_pipe, &err, sizeof(err));
  _exit(127);
}

/// What the child of fork() needs, all prepared before the fork.
struct ChildSetup {
  pid_t parent = 0;
  int null_fd = -1;     // becomes stdin and stdout
  int stderr_fd = -1;   // becomes stderr
  int listen_fd = -1;   // the QMP socket, kept open across execve()
  int error_pipe = -1;  // close-on-exec: EOF tells the parent execve() succeeded
  const char* path = nullptr;
  char* const* argv = nullptr;
};

/// The child's side of fork(): only async-signal-safe calls until execve(). Reports a failure
/// before or of execve() as its errno on the error pipe.
[[noreturn]] void RunChild(const ChildSetup& c) {
  const int error_pipe = c.error_pipe;
  // Die with the parent. A parent that died before the prctl() has orphaned us already, and
  // getppid() then no longer names it.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) ChildFailed(error_pipe, errno);
  if (getppid() != c.parent) _exit(127);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (dup2(c.null_fd, STDIN_FILENO) < 0 || dup2(c.null_fd, STDOUT_FILENO) < 0 ||
      dup2(c.stderr_fd, STDERR_FILENO) < 0 || fcntl(c.listen_fd, F_SETFD, 0) < 0) {
    ChildFailed(error_pipe, errno);
  }
  execve(c.path, c.argv, environ);
  ChildFailed(error_pipe, errno);
}

}  // namespace

Result<std::unique_ptr<QemuProcess>> QemuProcess::Start(const QemuLaunch& launch) {
  Result<std::string> path = FindBinary(launch.binary);
  if (!path) return path.errors();
  Result<std::string> dir = MakePrivateDir();
  if (!dir) return dir.errors();
  // From here the object owns the folder: every early return removes it.
  std::unique_ptr<QemuProcess> qemu(new QemuProcess(std::move(dir.value())));
  const std::string socket_path = qemu->dir_ + "/" + kSocketName;
  const std::string stderr_path = qemu->dir_ + "/" + kStderrName;

  Result<int> listening = Listen(socket_path);
  if (!listening) return listening.errors();
  ScopedFd listen_fd(*listening);
  Result<std::unique_ptr<UnixSocketTransport>> transport =
      UnixSocketTransport::Connect(socket_path);
  if (!transport) return transport.errors();
  qemu->transport_ = std::move(transport.value());
  qemu->qmp_ = std::make_unique<QmpClient>(*qemu->transport_);

  ScopedFd null_fd(AboveStdio(open("/dev/null", O_RDWR | O_CLOEXEC)));
  if (null_fd.get() < 0) return SystemError("cannot open '/dev/null'", errno);
  ScopedFd stderr_fd(
      AboveStdio(open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)));
  if (stderr_fd.get() < 0) {
    return SystemError(fmt::format("cannot create '{}'", stderr_path), errno);
  }
  qemu->stderr_fd_ = open(stderr_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (qemu->stderr_fd_ < 0) return SystemError(fmt::format("cannot open '{}'", stderr_path), errno);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) < 0) return SystemError("cannot create a pipe", errno);
  ScopedFd error_read(pipe_fds[0]);
  ScopedFd error_write(AboveStdio(pipe_fds[1]));

  // The monitor takes over the listening socket (QEMU's -chardev socket,fd=; as libvirt passes
  // its monitor socket). The chardev id is prefixed so it cannot clash with the caller's.
  std::vector<std::string> args = {*path};
  args.insert(args.end(), launch.args.begin(), launch.args.end());
  args.push_back("-chardev");
  args.push_back(fmt::format("socket,id=pciplan-qmp,fd={},server=on,wait=off", listen_fd.get()));
  args.push_back("-mon");
  args.push_back("chardev=pciplan-qmp,mode=control");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  ChildSetup child;
  child.parent = getpid();
  child.null_fd = null_fd.get();
  child.stderr_fd = stderr_fd.get();
  child.listen_fd = listen_fd.get();
  child.error_pipe = error_write.get();
  child.path = path->c_str();
  child.argv = argv.data();
  pid_t pid = fork();
  if (pid < 0) return SystemError("cannot fork", errno);
  if (pid == 0) RunChild(child);
  qemu->pid_ = pid;
  qemu->running_ = true;
  // QEMU alone holds the listening socket now, so its exit resets our connection.
  listen_fd.Reset();
  null_fd.Reset();
  stderr_fd.Reset();
  error_write.Reset();
  // Both files are open where they are needed, so the folder can go at once: then not even a
  // SIGKILL of this process leaves anything behind on disk.
  qemu->RemoveDir();

  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(error_read.get(), &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(exec_errno))) {
    qemu->Reap(0);
    return Error(Rule::kQemu, fmt::format("cannot run '{}': {}", *path, std::strerror(exec_errno)));
  }

  Result<nlohmann::json> greeting = qemu->qmp_->Handshake(launch.timeout_ms);
  if (greeting) return qemu;
  // QEMU sends its greeting before it creates the machine and the devices, and exits after
  // printing why it cannot: the handshake then ends in a closed connection. Its exit status
  // and standard error say more than that.
  int status = qemu->Reap(kExitGraceMs);
  std::string why = FirstLines(qemu->StderrText());
  if (!why.empty()) return Error(Rule::kQemu, why);
  if (status != -1 && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
    return Error(Rule::kQemu,
                 fmt::format("'{}' {} before answering QMP", *path, DescribeStatus(status)));
  }
  Diagnostic d = greeting.errors().front();
  d.message = fmt::format("'{}' (pid {}): {}", *path, pid, d.message);
  return d;
}

int QemuProcess::Reap(int grace_ms) {
  if (!running_) return -1;
  running_ = false;
  int status = 0;
  for (int waited = 0;; waited += 5) {
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) return status;
    // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN); it is gone either way.
    if (done < 0 && errno != EINTR) return -1;
    if (waited >= grace_ms) break;
    SleepMs(5);
  }
  kill(pid_, SIGKILL);
  pid_t done;
  do {
    done = waitpid(pid_, &status, 0);
  } while (done < 0 && errno == EINTR);
  return done == pid_ ? status : -1;
}

bool QemuProcess::Exited() {
  if (!running_) return true;
  int status = 0;
  pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == pid_ || (done < 0 && errno == ECHILD)) running_ = false;
  return !running_;
}

QemuProcess::~QemuProcess() {
  if (running_) {
    // A QEMU that does not answer "quit" is hung or gone, and is killed without more waiting.
    bool answered = qmp_ && qmp_->Execute("quit", nlohmann::json::object(), kQuitTimeoutMs).ok();
    Reap(answered ? kExitGraceMs : 0);
  }
  qmp_.reset();
  transport_.reset();
  if (stderr_fd_ >= 0) close(stderr_fd_);
  RemoveDir();
}

void QemuProcess::RemoveDir() {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
  dir_.clear();
}

std::string QemuProcess::StderrText() const {
  std::string text;
  if (stderr_fd_ < 0) return text;
  char chunk[4096];
  for (off_t offset = 0;;) {
    ssize_t n = pread(stderr_fd_, chunk, sizeof(chunk), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(chunk, static_cast<size_t>(n));
    offset += n;
  }
  return text;
}

std::string QemuBinaryFor(const std::string& arch) {
  // A 32-bit x86 guest runs in the 64-bit binary, as libvirt's capabilities choose it.
  static const std::map<std::string, std::string> kBinaries = {
      {"x86_64", "qemu-system-x86_64"}, {"i686", "qemu-system-x86_64"},
      {"i386", "qemu-system-x86_64"},   {"aarch64", "qemu-system-aarch64"},
      {"armv7l", "qemu-system-arm"},    {"armv6l", "qemu-system-arm"},
  };
  auto it = kBinaries.find(arch);
  return it != kBinaries.end() ? it->second : "qemu-system-" + arch;
}

}  // namespace pciplan
