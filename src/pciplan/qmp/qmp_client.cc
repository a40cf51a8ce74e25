#include "pciplan/qmp/qmp_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace pciplan {
namespace {

using Json = nlohmann::json;

/// A line as it appears in an error: cut short, since a reply can be megabytes.
std::string Excerpt(const std::string& line) {
  constexpr size_t kMax = 200;
  return line.size() <= kMax ? line : line.substr(0, kMax) + "...";
}

/// `obj[key]` when `obj` is an object holding a string there, else empty. Never throws.
std::string StringMember(const Json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// `value` as text; a string that is not UTF-8 is replaced, never thrown about.
std::string Dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool IsEvent(const Json& message) { return message.contains("event"); }

bool IsReply(const Json& message) {
  return message.contains("return") || message.contains("error");
}

/// The event's "data", or an empty object: QMP omits "data" for events that carry none.
const Json& EventData(const Json& event) {
  static const Json kEmpty = Json::object();
  auto it = event.find("data");
  return it != event.end() ? *it : kEmpty;
}

/// Error replies are {"error": {"class": "GenericError", "desc": "..."}} (QEMU
/// docs/interop/qmp-spec.txt, 2.4.2); both are quoted verbatim.
Diagnostic QemuRefused(const std::string& command, const Json& error) {
  std::string desc = StringMember(error, "desc");
  std::string cls = StringMember(error, "class");
  std::string message = fmt::format("qemu refused '{}'", command);
  if (!desc.empty()) message += ": " + desc;
  if (!cls.empty()) message += " (" + cls + ")";
  return Error(Rule::kQemu, std::move(message));
}

int MillisecondsUntil(std::chrono::steady_clock::time_point deadline) {
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

Result<Json> QmpClient::ReadMessage(Clock::time_point deadline, int timeout_ms,
                                    const std::string& awaited) {
  Result<ReceivedLine> received = transport_.ReadLine(MillisecondsUntil(deadline));
  if (!received) return received.errors();
  switch (received->status) {
    case LineStatus::kTimedOut:
      return Error(Rule::kQmp, fmt::format("no {} within {} ms", awaited, timeout_ms));
    case LineStatus::kClosed:
      return Error(Rule::kQmp,
                   fmt::format("qemu closed the monitor connection before the {}", awaited));
    case LineStatus::kLine:
      break;
  }
  Json message;
  try {
    message = Json::parse(received->line);
  } catch (const Json::exception& e) {
    return Error(Rule::kQmp, fmt::format("malformed QMP message from qemu ({}): '{}'", e.what(),
                                         Excerpt(received->line)));
  }
  if (!message.is_object()) {
    return Error(Rule::kQmp,
                 fmt::format("unexpected QMP message from qemu: '{}'", Excerpt(received->line)));
  }
  return message;
}

void QmpClient::Queue(Json event) {
  if (events_.size() >= kMaxQueuedEvents) events_.pop_front();
  events_.push_back(std::move(event));
}

Result<Json> QmpClient::Handshake(int timeout_ms) {
  Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  Result<Json> greeting = ReadMessage(deadline, timeout_ms, "QMP greeting");
  if (!greeting) return greeting.errors();
  auto qmp = greeting->find("QMP");
  if (qmp == greeting->end() || !qmp->is_object()) {
    return Error(Rule::kQmp, fmt::format("expected the QMP greeting from qemu, got '{}'",
                                         Excerpt(Dump(*greeting))));
  }
  Json info = *qmp;
  Result<Json> negotiated = ExecuteUntil("qmp_capabilities", Json::object(), deadline, timeout_ms);
  if (!negotiated) return negotiated.errors();
  return info;
}

Result<Json> QmpClient::Execute(const std::string& command, const Json& arguments, int timeout_ms) {
  return ExecuteUntil(command, arguments,
                      Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0)),
                      timeout_ms);
}

Result<Json> QmpClient::ExecuteUntil(const std::string& command, const Json& arguments,
                                     Clock::time_point deadline, int timeout_ms) {
  if (!arguments.is_object()) {
    return Error(Rule::kQmp, fmt::format("arguments of '{}' must be a JSON object, not {}", command,
                                         arguments.type_name()));
  }
  const int id = next_id_++;
  Json request = {{"execute", command}, {"arguments", arguments}, {"id", id}};
  Result<bool> sent = transport_.Send(Dump(request));
  if (!sent) return sent.errors();
  const std::string awaited = fmt::format("reply to '{}'", command);
  while (true) {
    Result<Json> message = ReadMessage(deadline, timeout_ms, awaited);
    if (!message) return message.errors();
    if (IsEvent(*message)) {
      Queue(std::move(*message));
      continue;
    }
    if (!IsReply(*message)) {
      return Error(Rule::kQmp, fmt::format("unexpected QMP message from qemu while waiting for "
                                           "the {}: '{}'",
                                           awaited, Excerpt(Dump(*message))));
    }
    // A reply with another id answers a command that timed out earlier. One without an id
    // answers ours: QEMU leaves the id out only when it could not parse the request at all.
    auto reply_id = message->find("id");
    if (reply_id != message->end() && *reply_id != Json(id)) continue;
    auto error = message->find("error");
    if (error != message->end()) return QemuRefused(command, *error);
    return std::move((*message)["return"]);
  }
}

Result<Json> QmpClient::WaitEvent(const std::string& name,
                                  const std::function<bool(const Json& data)>& match,
                                  int timeout_ms) {
  auto wanted = [&](const Json& event) {
    return StringMember(event, "event") == name && (!match || match(EventData(event)));
  };
  auto queued = std::find_if(events_.begin(), events_.end(), wanted);
  if (queued != events_.end()) {
    Json event = std::move(*queued);
    events_.erase(queued);
    return event;
  }
  Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  const std::string awaited = fmt::format("event '{}'", name);
  while (true) {
    Result<Json> message = ReadMessage(deadline, timeout_ms, awaited);
    if (!message) return message.errors();
    if (IsReply(*message)) continue;  // answers a command that timed out earlier
    if (!IsEvent(*message)) {
      return Error(Rule::kQmp, fmt::format("unexpected QMP message from qemu while waiting for "
                                           "the {}: '{}'",
                                           awaited, Excerpt(Dump(*message))));
    }
    if (wanted(*message)) return std::move(*message);
    Queue(std::move(*message));
  }
}

}  // namespace pciplan
