// Transport: a line-oriented byte channel to a QMP monitor, and UnixSocketTransport, the one
// over a UNIX stream socket. QmpClient speaks JSON over it; tests replace it with a script of
// recorded lines.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "pciplan/base/result.h"

namespace pciplan {

/// What one Transport::ReadLine produced when no system call failed.
enum class LineStatus {
  kLine,      // `line` holds the next line
  kTimedOut,  // no complete line arrived within the timeout
  kClosed,    // the peer closed the connection; every later read reports this too
};

struct ReceivedLine {
  LineStatus status = LineStatus::kLine;
  std::string line;  // without its "\n" or "\r\n"; empty unless status is kLine
};

/// A connection that carries one text line per message.
class Transport {
 public:
  virtual ~Transport() = default;

  /// Writes `line` and a "\n". `line` must not contain a newline. Fails with a Rule::kQmp
  /// diagnostic when the write fails (the peer is gone: EPIPE, ECONNRESET).
  virtual Result<bool> Send(std::string_view line) = 0;

  /// The next complete line. Waits at most `timeout_ms` (0: only what has already arrived;
  /// negative counts as 0). A timeout or the peer's close is a status, not an error; fails with
  /// a Rule::kQmp diagnostic only when a system call fails or a line grows past kMaxLineBytes.
  virtual Result<ReceivedLine> ReadLine(int timeout_ms) = 0;

  /// The longest line ReadLine accepts (query-qmp-schema, the longest reply, is well below).
  static constexpr size_t kMaxLineBytes = size_t{64} << 20;
};

/// A Transport over a connected UNIX stream socket; poll() bounds every read, and bytes past
/// the last complete line are kept for the next read.
class UnixSocketTransport : public Transport {
 public:
  /// Connects to the socket at `path`. Fails with a Rule::kQmp diagnostic naming the path and
  /// the errno text (no such file, connection refused, path longer than sun_path).
  static Result<std::unique_ptr<UnixSocketTransport>> Connect(const std::string& path);

  ~UnixSocketTransport() override;
  UnixSocketTransport(const UnixSocketTransport&) = delete;
  UnixSocketTransport& operator=(const UnixSocketTransport&) = delete;

  /// See Transport::Send. Never raises SIGPIPE.
  Result<bool> Send(std::string_view line) override;
  /// See Transport::ReadLine. ECONNRESET from the peer counts as kClosed.
  Result<ReceivedLine> ReadLine(int timeout_ms) override;

  const std::string& path() const { return path_; }

 private:
  UnixSocketTransport(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  /// Moves the first complete line out of buffer_, if there is one.
  std::optional<std::string> TakeLine();
  Diagnostic SocketError(std::string_view what, int err) const;

  std::string path_;
  int fd_ = -1;
  std::string buffer_;  // received bytes not yet returned as a line
  bool closed_ = false;
};

}  // namespace pciplan
