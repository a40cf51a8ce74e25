// QemuProcess: one qemu-system-* child, started for verification, with its QMP monitor
// on a UNIX socket made in a private temporary folder; it is always stopped and reaped when the
// object goes, and dies with its parent. QemuBinaryFor names the binary for an architecture.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pciplan/base/result.h"
#include "pciplan/qmp/qmp_client.h"
#include "pciplan/qmp/transport.h"

namespace pciplan {

/// How to start QEMU.
struct QemuLaunch {
  std::string binary;             // a path, or a name looked up in PATH ("qemu-system-x86_64")
  std::vector<std::string> args;  // QEMU's arguments; Start adds the QMP monitor's own
  int timeout_ms = QmpClient::kDefaultTimeoutMs;  // for starting up and the QMP handshake
};

/// A running QEMU and the QMP connection to it.
class QemuProcess {
 public:
  /// Starts `launch.binary` with `launch.args` plus a QMP monitor (-chardev socket on a
  /// listening socket it passes by fd, -mon mode=control), stdin and stdout on /dev/null and
  /// stderr in a file. Socket and file are made in a private folder (mkdtemp in TMPDIR or
  /// /tmp), removed as soon as both are open. The child gets SIGKILL when the thread that
  /// started it dies (PR_SET_PDEATHSIG), so start it from a thread that outlives it. Returns
  /// once the QMP handshake succeeded. Fails with Rule::kQemu when the binary cannot be found
  /// or run, or QEMU exits first: then the message is the first lines of QEMU's standard error
  /// ("qemu-system-x86_64: -device nosuchdevice: 'nosuchdevice' is not a valid device model
  /// name"); with Rule::kQmp when QEMU does not answer within `launch.timeout_ms` (it is
  /// killed) or a system call fails. Nothing is left running or on disk after a failure.
  static Result<std::unique_ptr<QemuProcess>> Start(const QemuLaunch& launch);

  /// Sends "quit" and waits up to kExitGraceMs for QEMU to exit, then (or at once, when
  /// "quit" got no answer within kQuitTimeoutMs) SIGKILLs it; in every case reaps it and
  /// removes the private folder. Never fails.
  ~QemuProcess();
  QemuProcess(const QemuProcess&) = delete;
  QemuProcess& operator=(const QemuProcess&) = delete;

  /// The monitor connection; the handshake is done.
  QmpClient& qmp() { return *qmp_; }
  /// QEMU's process id; after destruction no such process exists.
  pid_t pid() const { return pid_; }
  /// Whether QEMU has exited (a guest that powered off, with -no-reboot one that rebooted):
  /// then it is reaped and the destructor only cleans up. False while it runs.
  bool Exited();
  /// What QEMU has written to its standard error so far (warnings, or why it stopped).
  std::string StderrText() const;

  /// How long the destructor waits for "quit" to be answered, and then for QEMU to exit.
  static constexpr int kQuitTimeoutMs = 2000;
  static constexpr int kExitGraceMs = 3000;

 private:
  explicit QemuProcess(std::string dir) : dir_(std::move(dir)) {}
  /// Gives the child `grace_ms` to exit by itself, then SIGKILLs it, and reaps it. Returns the
  /// waitpid() status, or -1 when there is none (not running, reaped by someone else).
  int Reap(int grace_ms);

  /// Removes the private folder, once QEMU holds the socket and its stderr file open.
  void RemoveDir();

  std::string dir_;     // the private folder; empty once removed
  int stderr_fd_ = -1;  // QEMU's standard error file, opened for reading
  pid_t pid_ = -1;
  bool running_ = false;  // started and not yet reaped
  std::unique_ptr<UnixSocketTransport> transport_;
  std::unique_ptr<QmpClient> qmp_;  // over *transport_, so declared after it
};

/// The qemu-system-* binary that runs guests of `arch` (libvirt's and uname's names):
/// "x86_64" and "i686" -> "qemu-system-x86_64", "aarch64" -> "qemu-system-aarch64",
/// "armv7l" -> "qemu-system-arm", anything else -> "qemu-system-" + arch. A caller with
/// another QEMU puts its binary in QemuLaunch::binary instead.
std::string QemuBinaryFor(const std::string& arch);

}  // namespace pciplan
