#include "pciplan/qmp/transport.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace pciplan {
namespace {

using Clock = std::chrono::steady_clock;

int MillisecondsUntil(Clock::time_point deadline) {
  // Rounded up, so a wait never ends before the deadline.
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

Result<std::unique_ptr<UnixSocketTransport>> UnixSocketTransport::Connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return Error(Rule::kQmp, fmt::format("cannot connect to QMP socket '{}': path longer than "
                                         "{} bytes",
                                         path, sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    return Error(Rule::kQmp,
                 fmt::format("cannot create a socket for '{}': {}", path, std::strerror(err)));
  }
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int err = errno;
    close(fd);
    return Error(Rule::kQmp,
                 fmt::format("cannot connect to QMP socket '{}': {}", path, std::strerror(err)));
  }
  return std::unique_ptr<UnixSocketTransport>(new UnixSocketTransport(path, fd));
}

UnixSocketTransport::~UnixSocketTransport() {
  if (fd_ >= 0) close(fd_);
}

Diagnostic UnixSocketTransport::SocketError(std::string_view what, int err) const {
  return Error(Rule::kQmp, fmt::format("{} QMP socket '{}': {}", what, path_, std::strerror(err)));
}

Result<bool> UnixSocketTransport::Send(std::string_view line) {
  std::string data(line);
  data += '\n';
  size_t done = 0;
  while (done < data.size()) {
    // MSG_NOSIGNAL: a QEMU that has exited must give EPIPE here, not kill us with SIGPIPE.
    ssize_t n = send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return SocketError("cannot write to", errno);
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

std::optional<std::string> UnixSocketTransport::TakeLine() {
  size_t end = buffer_.find('\n');
  if (end == std::string::npos) return std::nullopt;
  std::string line = buffer_.substr(0, end);
  buffer_.erase(0, end + 1);
  // QEMU ends its lines with "\r\n".
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Result<ReceivedLine> UnixSocketTransport::ReadLine(int timeout_ms) {
  Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  while (true) {
    if (std::optional<std::string> line = TakeLine()) {
      return ReceivedLine{LineStatus::kLine, std::move(*line)};
    }
    if (closed_) return ReceivedLine{LineStatus::kClosed, {}};
    if (buffer_.size() > kMaxLineBytes) {
      return Error(Rule::kQmp, fmt::format("line from QMP socket '{}' longer than {} bytes", path_,
                                           kMaxLineBytes));
    }
    pollfd p{fd_, POLLIN, 0};
    int ready = poll(&p, 1, MillisecondsUntil(deadline));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return SocketError("cannot poll", errno);
    }
    if (ready == 0) return ReceivedLine{LineStatus::kTimedOut, {}};
    char chunk[65536];
    ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      // A peer that exits with our bytes unread resets the connection instead of closing it.
      if (errno != ECONNRESET) return SocketError("cannot read from", errno);
      n = 0;
    }
    if (n == 0) {
      // A partial line at the close is dropped: QMP ends every message with a newline.
      closed_ = true;
      buffer_.clear();
      continue;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace pciplan
