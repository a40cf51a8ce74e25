// UnixSocketTransport against a socket the test listens on itself, in a private folder: lines
// split and joined across writes, timeouts, the peer's close, connection failures.
#include "pciplan/qmp/transport.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

namespace pciplan {
namespace {

namespace fs = std::filesystem;

/// A listening socket in a fresh folder, the transport connected to it, and the accepted end.
class UnixSocketTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = "/tmp/pciplan-transport-XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr) << std::strerror(errno);
    dir_ = templ;
    path_ = dir_ + "/t.sock";
    listener_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(listen(listener_, 1), 0);
    Result<std::unique_ptr<UnixSocketTransport>> t = UnixSocketTransport::Connect(path_);
    ASSERT_TRUE(t.ok()) << t.errors().front().message;
    transport_ = std::move(t.value());
    peer_ = accept(listener_, nullptr, nullptr);
    ASSERT_GE(peer_, 0);
  }

  void TearDown() override {
    transport_.reset();
    ClosePeer();
    if (listener_ >= 0) close(listener_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void PeerWrites(const std::string& bytes) {
    ASSERT_EQ(write(peer_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }

  std::string PeerReads() {
    char buf[256];
    ssize_t n = read(peer_, buf, sizeof(buf));
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }

  void ClosePeer() {
    if (peer_ >= 0) close(peer_);
    peer_ = -1;
  }

  std::string dir_;
  std::string path_;
  int listener_ = -1;
  int peer_ = -1;
  std::unique_ptr<UnixSocketTransport> transport_;
};

TEST(UnixSocketTransport, ConnectFailureNamesTheSocketAndTheErrnoText) {
  Result<std::unique_ptr<UnixSocketTransport>> t =
      UnixSocketTransport::Connect("/nonexistent-pciplan-dir/qmp.sock");

  ASSERT_FALSE(t.ok());
  const Diagnostic& d = t.errors().front();
  EXPECT_EQ(d.rule, Rule::kQmp);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "'/nonexistent-pciplan-dir/qmp.sock'", d.message);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, std::strerror(ENOENT), d.message);
}

TEST(UnixSocketTransport, ConnectRefusesAPathLongerThanSunPath) {
  Result<std::unique_ptr<UnixSocketTransport>> t =
      UnixSocketTransport::Connect("/tmp/" + std::string(200, 'x'));

  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.errors().front().rule, Rule::kQmp);
}

TEST_F(UnixSocketTransportTest, LineWrittenInPiecesIsReadAsOne) {
  PeerWrites(R"({"return": )");
  Result<ReceivedLine> partial = transport_->ReadLine(0);
  PeerWrites("{}}\r\n");

  Result<ReceivedLine> line = transport_->ReadLine(20000);

  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(partial->status, LineStatus::kTimedOut);
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(line->status, LineStatus::kLine);
  EXPECT_EQ(line->line, R"({"return": {}})");
}

TEST_F(UnixSocketTransportTest, LinesWrittenTogetherAreReadOneByOne) {
  PeerWrites("{\"a\": 1}\r\n{\"b\": 2}\n");

  Result<ReceivedLine> first = transport_->ReadLine(20000);
  Result<ReceivedLine> second = transport_->ReadLine(0);

  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->line, "{\"a\": 1}");
  EXPECT_EQ(second->line, "{\"b\": 2}");
}

TEST_F(UnixSocketTransportTest, ReadTimesOutWhenNoLineArrives) {
  Result<ReceivedLine> line = transport_->ReadLine(10);

  ASSERT_TRUE(line.ok());
  EXPECT_EQ(line->status, LineStatus::kTimedOut);
}

TEST_F(UnixSocketTransportTest, PeerCloseIsReportedAfterTheLastLine) {
  PeerWrites("{\"a\": 1}\n{\"incompl");
  ClosePeer();

  Result<ReceivedLine> last = transport_->ReadLine(20000);
  Result<ReceivedLine> closed = transport_->ReadLine(20000);
  Result<ReceivedLine> still_closed = transport_->ReadLine(0);

  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->line, "{\"a\": 1}");
  ASSERT_TRUE(closed.ok());
  EXPECT_EQ(closed->status, LineStatus::kClosed);
  ASSERT_TRUE(still_closed.ok());
  EXPECT_EQ(still_closed->status, LineStatus::kClosed);
}

TEST_F(UnixSocketTransportTest, SendAppendsANewline) {
  ASSERT_TRUE(transport_->Send(R"({"execute": "quit"})").ok());

  EXPECT_EQ(PeerReads(), "{\"execute\": \"quit\"}\n");
}

TEST_F(UnixSocketTransportTest, SendToAClosedPeerFailsInsteadOfRaisingSigpipe) {
  ClosePeer();

  Result<bool> sent = transport_->Send(R"({"execute": "quit"})");

  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.errors().front().rule, Rule::kQmp);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, path_, sent.errors().front().message);
}

}  // namespace
}  // namespace pciplan
