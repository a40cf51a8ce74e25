// QmpClient against recorded conversations: every line QEMU says here was printed by QEMU 7.2
// (`qemu-system-x86_64 -M q35 -nodefaults -S -display none -qmp stdio`, commands typed in),
// replayed through a scripted Transport that also checks what the client sends.
#include "pciplan/qmp/qmp_client.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace pciplan {
namespace {

using Json = nlohmann::json;

// QEMU 7.2's own lines.
constexpr const char* kGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": )"
    R"("Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}})";
constexpr const char* kShutdown =
    R"({"timestamp": {"seconds": 1796153977, "microseconds": 19750}, "event": "SHUTDOWN", )"
    R"("data": {"guest": false, "reason": "host-qmp-quit"}})";
// device_del of a virtio-net-pci on a root port with native hot-plug: its child goes first.
constexpr const char* kBackendDeleted =
    R"({"timestamp": {"seconds": 1796153974, "microseconds": 53908}, "event": )"
    R"("DEVICE_DELETED", "data": {"path": "/machine/peripheral/probe/virtio-backend"}})";
constexpr const char* kProbeDeleted =
    R"({"timestamp": {"seconds": 1796153974, "microseconds": 54210}, "event": )"
    R"("DEVICE_DELETED", "data": {"device": "probe", "path": "/machine/peripheral/probe"}})";

enum class Side { kQemuSays, kClientSends, kSilence, kHangUp };

struct Step {
  Side side;
  std::string text;  // the line QEMU says, or the JSON the client must send
};

Step Qemu(std::string line) { return {Side::kQemuSays, std::move(line)}; }
Step Client(std::string json) { return {Side::kClientSends, std::move(json)}; }
Step Silence() { return {Side::kSilence, {}}; }  // the next read times out
Step HangUp() { return {Side::kHangUp, {}}; }    // QEMU closes; every later read sees that

/// Plays QEMU's side of a conversation in order; a send or read out of turn fails the test.
class ScriptedTransport : public Transport {
 public:
  explicit ScriptedTransport(std::vector<Step> script) : script_(std::move(script)) {}

  Result<bool> Send(std::string_view line) override {
    if (next_ >= script_.size() || script_[next_].side != Side::kClientSends) {
      ADD_FAILURE() << "client sent out of turn: " << line;
      return true;
    }
    EXPECT_EQ(Json::parse(line, nullptr, false), Json::parse(script_[next_].text));
    ++next_;
    return true;
  }

  Result<ReceivedLine> ReadLine(int) override {
    if (next_ >= script_.size() || script_[next_].side == Side::kClientSends) {
      ADD_FAILURE() << "client reads where the script "
                    << (next_ >= script_.size() ? "has ended" : "expects it to send");
      return ReceivedLine{LineStatus::kTimedOut, {}};
    }
    const Step& step = script_[next_];
    if (step.side == Side::kHangUp) return ReceivedLine{LineStatus::kClosed, {}};
    ++next_;
    if (step.side == Side::kSilence) return ReceivedLine{LineStatus::kTimedOut, {}};
    return ReceivedLine{LineStatus::kLine, step.text};
  }

  /// Every step was played (a final hang-up counts once reached).
  bool finished() const {
    return next_ == script_.size() ||
           (next_ + 1 == script_.size() && script_[next_].side == Side::kHangUp);
  }

 private:
  std::vector<Step> script_;
  size_t next_ = 0;
};

TEST(QmpClient, HandshakeReturnsTheGreetingAfterNegotiatingCapabilities) {
  ScriptedTransport qemu({Qemu(kGreeting),
                          Client(R"({"execute": "qmp_capabilities", "arguments": {}, "id": 1})"),
                          Qemu(R"({"return": {}, "id": 1})")});
  QmpClient qmp(qemu);

  Result<Json> greeting = qmp.Handshake();

  ASSERT_TRUE(greeting.ok()) << greeting.errors().front().message;
  EXPECT_EQ((*greeting)["version"]["qemu"]["major"], 7);
  EXPECT_EQ((*greeting)["capabilities"], Json::array({"oob"}));
  EXPECT_TRUE(qemu.finished());
}

TEST(QmpClient, HandshakeRefusesAFirstMessageThatIsNoGreeting) {
  ScriptedTransport qemu({Qemu(kShutdown)});
  QmpClient qmp(qemu);

  Result<Json> greeting = qmp.Handshake();

  ASSERT_FALSE(greeting.ok());
  EXPECT_EQ(greeting.errors().front().rule, Rule::kQmp);
  EXPECT_TRUE(qemu.finished());
}

TEST(QmpClient, ExecuteReturnsTheReturnMember) {
  ScriptedTransport qemu(
      {Client(R"({"execute": "query-status", "arguments": {}, "id": 1})"),
       Qemu(R"({"return": {"status": "prelaunch", "singlestep": false, "running": false}, )"
            R"("id": 1})")});
  QmpClient qmp(qemu);

  Result<Json> status = qmp.Execute("query-status");

  ASSERT_TRUE(status.ok()) << status.errors().front().message;
  EXPECT_EQ((*status)["status"], "prelaunch");
  EXPECT_TRUE(qemu.finished());
}

TEST(QmpClient, ExecuteSendsTheArgumentsAndANewIdEachTime) {
  ScriptedTransport qemu(
      {Client(R"({"execute": "device_add", "arguments": {"driver": "virtio-net-pci", )"
              R"("id": "probe", "bus": "rp1", "addr": "0x0"}, "id": 1})"),
       Qemu(R"({"return": {}, "id": 1})"),
       Client(R"({"execute": "device_del", "arguments": {"id": "probe"}, "id": 2})"),
       Qemu(R"({"return": {}, "id": 2})")});
  QmpClient qmp(qemu);

  Result<Json> added =
      qmp.Execute("device_add",
                  {{"driver", "virtio-net-pci"}, {"id", "probe"}, {"bus", "rp1"}, {"addr", "0x0"}});
  Result<Json> deleted = qmp.Execute("device_del", {{"id", "probe"}});

  EXPECT_TRUE(added.ok());
  EXPECT_TRUE(deleted.ok());
  EXPECT_TRUE(qemu.finished());
}

TEST(QmpClient, ErrorReplyCarriesQemusDescription) {
  ScriptedTransport qemu(
      {Client(R"({"execute": "device_add", "arguments": {"driver": "virtio-net-pci", )"
              R"("id": "probe", "bus": "pcie.0", "addr": "0x5"}, "id": 1})"),
       Qemu(R"({"id": 1, "error": {"class": "GenericError", "desc": "Bus 'pcie.0' does not )"
            R"(support hotplugging"}})")});
  QmpClient qmp(qemu);

  Result<Json> added = qmp.Execute(
      "device_add",
      {{"driver", "virtio-net-pci"}, {"id", "probe"}, {"bus", "pcie.0"}, {"addr", "0x5"}});

  ASSERT_FALSE(added.ok());
  const Diagnostic& d = added.errors().front();
  EXPECT_EQ(d.rule, Rule::kQemu);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "Bus 'pcie.0' does not support hotplugging",
                      d.message);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "GenericError", d.message);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "'device_add'", d.message);
}

TEST(QmpClient, ReplyWithoutIdAnswersTheCommand) {
  // QEMU leaves the id out when it cannot parse the request.
  ScriptedTransport qemu(
      {Client(R"({"execute": "query-status", "arguments": {}, "id": 1})"),
       Qemu(R"({"error": {"class": "GenericError", "desc": "JSON parse error, invalid )"
            R"(keyword 'garbage'"}})")});
  QmpClient qmp(qemu);

  Result<Json> status = qmp.Execute("query-status");

  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.errors().front().rule, Rule::kQemu);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "invalid keyword 'garbage'",
                      status.errors().front().message);
}

TEST(QmpClient, LateReplyToATimedOutCommandIsSkipped) {
  ScriptedTransport qemu(
      {Client(R"({"execute": "query-pci", "arguments": {}, "id": 1})"), Silence(),
       Client(R"({"execute": "query-status", "arguments": {}, "id": 2})"),
       Qemu(R"({"return": [], "id": 1})"),
       Qemu(R"({"return": {"status": "prelaunch", "singlestep": false, "running": false}, )"
            R"("id": 2})")});
  QmpClient qmp(qemu);
  Result<Json> timed_out = qmp.Execute("query-pci");

  Result<Json> status = qmp.Execute("query-status");

  EXPECT_FALSE(timed_out.ok());
  ASSERT_TRUE(status.ok()) << status.errors().front().message;
  EXPECT_EQ((*status)["status"], "prelaunch");
  EXPECT_TRUE(qemu.finished());
}

TEST(QmpClient, EventBeforeTheReplyIsQueuedThenReturnedByWaitEvent) {
  // QEMU 7.2 announces SHUTDOWN before it answers "quit".
  ScriptedTransport qemu({Client(R"({"execute": "quit", "arguments": {}, "id": 1})"),
                          Qemu(kShutdown), Qemu(R"({"return": {}, "id": 1})")});
  QmpClient qmp(qemu);
  Result<Json> quit = qmp.Execute("quit");
  ASSERT_TRUE(quit.ok()) << quit.errors().front().message;

  Result<Json> shutdown = qmp.WaitEvent("SHUTDOWN", {}, 0);

  ASSERT_TRUE(shutdown.ok()) << shutdown.errors().front().message;
  EXPECT_EQ((*shutdown)["data"]["reason"], "host-qmp-quit");
  EXPECT_EQ(qmp.queued_events(), 0u);
  EXPECT_TRUE(qemu.finished());
}

TEST(QmpClient, WaitEventReadsEventsArrivingAfterTheReply) {
  ScriptedTransport qemu({Client(R"({"execute": "device_del", "arguments": {"id": "probe"}, )"
                                 R"("id": 1})"),
                          Qemu(R"({"return": {}, "id": 1})"), Qemu(kBackendDeleted),
                          Qemu(kProbeDeleted)});
  QmpClient qmp(qemu);
  ASSERT_TRUE(qmp.Execute("device_del", {{"id", "probe"}}).ok());

  Result<Json> deleted = qmp.WaitEvent(
      "DEVICE_DELETED", [](const Json& data) { return data.value("device", "") == "probe"; });

  ASSERT_TRUE(deleted.ok()) << deleted.errors().front().message;
  EXPECT_EQ((*deleted)["data"]["path"], "/machine/peripheral/probe");
  EXPECT_TRUE(qemu.finished());
}

TEST(QmpClient, WaitEventLeavesEventsItDidNotMatchQueued) {
  ScriptedTransport qemu({Qemu(kBackendDeleted), Qemu(kProbeDeleted)});
  QmpClient qmp(qemu);
  ASSERT_TRUE(qmp.WaitEvent("DEVICE_DELETED",
                            [](const Json& data) { return data.value("device", "") == "probe"; })
                  .ok());

  Result<Json> backend = qmp.WaitEvent("DEVICE_DELETED", {}, 0);

  ASSERT_TRUE(backend.ok()) << backend.errors().front().message;
  EXPECT_EQ((*backend)["data"]["path"], "/machine/peripheral/probe/virtio-backend");
  EXPECT_TRUE(qemu.finished());
}

TEST(QmpClient, NoReplyWithinTheTimeoutNamesTheCommandAndTheTime) {
  ScriptedTransport qemu({Client(R"({"execute": "device_add", "arguments": {"driver": )"
                                 R"("virtio-net-pci"}, "id": 1})"),
                          Silence()});
  QmpClient qmp(qemu);

  Result<Json> added = qmp.Execute("device_add", {{"driver", "virtio-net-pci"}}, 5000);

  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.errors().front().rule, Rule::kQmp);
  EXPECT_EQ(added.errors().front().message, "no reply to 'device_add' within 5000 ms");
}

TEST(QmpClient, WaitEventTimesOutWhenTheEventDoesNotCome) {
  ScriptedTransport qemu({Qemu(kBackendDeleted), Silence()});
  QmpClient qmp(qemu);

  Result<Json> deleted = qmp.WaitEvent(
      "DEVICE_DELETED", [](const Json& data) { return data.contains("device"); }, 3000);

  ASSERT_FALSE(deleted.ok());
  EXPECT_EQ(deleted.errors().front().rule, Rule::kQmp);
  EXPECT_EQ(deleted.errors().front().message, "no event 'DEVICE_DELETED' within 3000 ms");
  EXPECT_EQ(qmp.queued_events(), 1u);
}

TEST(QmpClient, ClosedConnectionBeforeTheReplyIsAnError) {
  ScriptedTransport qemu(
      {Client(R"({"execute": "query-pci", "arguments": {}, "id": 1})"), HangUp()});
  QmpClient qmp(qemu);

  Result<Json> pci = qmp.Execute("query-pci");

  ASSERT_FALSE(pci.ok());
  EXPECT_EQ(pci.errors().front().rule, Rule::kQmp);
  EXPECT_EQ(pci.errors().front().message,
            "qemu closed the monitor connection before the reply to 'query-pci'");
}

TEST(QmpClient, ClosedConnectionBeforeTheGreetingIsAnError) {
  ScriptedTransport qemu({HangUp()});
  QmpClient qmp(qemu);

  Result<Json> greeting = qmp.Handshake();

  ASSERT_FALSE(greeting.ok());
  EXPECT_EQ(greeting.errors().front().rule, Rule::kQmp);
}

TEST(QmpClient, MalformedMessageIsADiagnosticNotAnException) {
  ScriptedTransport qemu(
      {Client(R"({"execute": "query-pci", "arguments": {}, "id": 1})"), Qemu(R"({"return": [)")});
  QmpClient qmp(qemu);

  Result<Json> pci = qmp.Execute("query-pci");

  ASSERT_FALSE(pci.ok());
  EXPECT_EQ(pci.errors().front().rule, Rule::kQmp);
}

TEST(QmpClient, MessageThatIsNoObjectIsADiagnostic) {
  ScriptedTransport qemu(
      {Client(R"({"execute": "query-pci", "arguments": {}, "id": 1})"), Qemu("[1, 2]")});
  QmpClient qmp(qemu);

  Result<Json> pci = qmp.Execute("query-pci");

  ASSERT_FALSE(pci.ok());
  EXPECT_EQ(pci.errors().front().rule, Rule::kQmp);
}

TEST(QmpClient, ArgumentsThatAreNoObjectAreRefusedBeforeSending) {
  ScriptedTransport qemu({});
  QmpClient qmp(qemu);

  Result<Json> added = qmp.Execute("device_add", Json::array({"virtio-net-pci"}));

  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.errors().front().rule, Rule::kQmp);
  EXPECT_TRUE(qemu.finished());
}

}  // namespace
}  // namespace pciplan
