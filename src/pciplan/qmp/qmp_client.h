// QmpClient: the QEMU Machine Protocol over a Transport. Reads the greeting and leaves
// capabilities negotiation, runs one command at a time matched to its reply by id, and queues
// the events that arrive in between until WaitEvent asks for them.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "pciplan/base/result.h"
#include "pciplan/qmp/transport.h"

namespace pciplan {

/// A synchronous QMP client. Not thread-safe; one command is outstanding at a time.
class QmpClient {
 public:
  /// Generous enough for a slow CI machine running TCG.
  static constexpr int kDefaultTimeoutMs = 20000;
  /// Events kept for WaitEvent; past this the oldest is dropped.
  static constexpr size_t kMaxQueuedEvents = 1024;

  /// Speaks over `transport`, which must outlive the client.
  explicit QmpClient(Transport& transport) : transport_(transport) {}

  /// Reads QEMU's greeting and sends qmp_capabilities (no capability enabled), all within
  /// `timeout_ms`. Returns the greeting's "QMP" member: {"version": {...}, "capabilities":
  /// [...]}. Fails with Rule::kQmp when the first message is not a greeting, or as Execute does.
  Result<nlohmann::json> Handshake(int timeout_ms = kDefaultTimeoutMs);

  /// Sends {"execute": command, "arguments": arguments, "id": N} and returns the "return"
  /// member of the reply with id N. Events arriving meanwhile are queued for WaitEvent; replies
  /// to earlier commands that timed out are dropped. Fails with
  /// - Rule::kQemu when QEMU answers with an error: "qemu refused 'CMD': DESC (CLASS)", with
  ///   QEMU's "desc" and "class" verbatim;
  /// - Rule::kQmp when `arguments` is not an object, no reply comes within `timeout_ms` ("no
  ///   reply to 'CMD' within N ms"), the connection closes ("qemu closed the monitor connection
  ///   before the reply to 'CMD'"), a message is not a JSON object, or the transport fails.
  Result<nlohmann::json> Execute(const std::string& command,
                                 const nlohmann::json& arguments = nlohmann::json::object(),
                                 int timeout_ms = kDefaultTimeoutMs);

  /// The oldest event called `name` whose "data" (an empty object when it has none) satisfies
  /// `match` (any, when `match` is empty): a queued one, else the first to arrive within
  /// `timeout_ms` (0: only what has arrived already). Returns the whole event ({"event",
  /// "data", "timestamp"}) and removes it from the queue; other events stay queued. Fails with
  /// Rule::kQmp on timeout ("no event 'NAME' within N ms"), close, or a malformed message.
  Result<nlohmann::json> WaitEvent(
      const std::string& name, const std::function<bool(const nlohmann::json& data)>& match = {},
      int timeout_ms = kDefaultTimeoutMs);

  /// How many events are queued.
  size_t queued_events() const { return events_.size(); }

 private:
  using Clock = std::chrono::steady_clock;

  Result<nlohmann::json> ExecuteUntil(const std::string& command, const nlohmann::json& arguments,
                                      Clock::time_point deadline, int timeout_ms);
  /// The next message as a JSON object; `awaited` names it for errors ("reply to 'quit'").
  Result<nlohmann::json> ReadMessage(Clock::time_point deadline, int timeout_ms,
                                     const std::string& awaited);
  void Queue(nlohmann::json event);

  Transport& transport_;
  int next_id_ = 1;
  std::deque<nlohmann::json> events_;
};

}  // namespace pciplan
