// TcpStore and TcpStoreServer beyond the common contract: the token check, hostile and slow
// clients (garbage, huge length prefixes, half-sent frames, clients that never read), hundreds of
// clients, a client started before its server, a server that goes away, address parsing, and
// Add from several processes.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "comm/socket.h"
#include "comm/store_wire.h"
#include "comm/tcp_store.h"
#include "store_test_util.h"

namespace zt::comm {
namespace {

using std::chrono::milliseconds;
using testing::OneTo;
using testing::Stopwatch;

std::unique_ptr<TcpStoreServer> StartServer(const std::string& token) {
  auto s = TcpStoreServer::Start("127.0.0.1", 0, token);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

std::unique_ptr<Store> Connect(int port, const std::string& token, milliseconds timeout = milliseconds(5000)) {
  auto c = ConnectTcpStore("127.0.0.1", port, token, timeout);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

// A raw blocking socket to the server, with a 3 s receive timeout.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    timeval tv{3, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~RawClient() { ::close(fd_); }
  void Send(const std::string& bytes) {
    EXPECT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }
  // True when the server closed the connection (EOF or reset) within the receive timeout.
  bool ClosedByServer() {
    char buf[256];
    for (;;) {
      ssize_t r = ::recv(fd_, buf, sizeof(buf), 0);
      if (r == 0) return true;
      if (r < 0) return errno == ECONNRESET;  // EAGAIN: still open after 3 s
    }
  }
  // Presents the token the documented way and reads the 5-byte OK frame.
  void Hello(const std::string& token) {
    Send(wire::FrameWriter(wire::Op::kHello).U32(wire::kMagic).U32(wire::kVersion).Str(token).Finish());
    char reply[5];
    ASSERT_EQ(::recv(fd_, reply, 5, MSG_WAITALL), 5);
    EXPECT_EQ(std::string(reply, 5), std::string("\x01\x00\x00\x00\x80", 5));
  }

 private:
  int fd_ = -1;
};

std::string U32Le(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// "VmPeak" (the most virtual memory this process ever had) or "VmSize" (now), in KiB.
int64_t VmKiB(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  return -1;
}

TEST(TcpStore, GenerateTokenIs128RandomBitsInHex) {
  std::string a = GenerateToken().value(), b = GenerateToken().value();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

TEST(TcpStore, ServerNeedsAToken) {
  auto s = TcpStoreServer::Start("127.0.0.1", 0, "");
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
}

TEST(TcpStore, WrongTokenIsRefusedAndTheServerKeepsServing) {
  std::string token = GenerateToken().value();
  auto server = StartServer(token);
  auto good = Connect(server->port(), token);
  ASSERT_TRUE(good);
  ASSERT_TRUE(good->Set("k", "v").ok());
  for (const std::string& wrong : {std::string("not-the-token"), std::string(""), token + "0", token.substr(1)}) {
    Stopwatch sw;
    auto bad = ConnectTcpStore("127.0.0.1", server->port(), wrong, milliseconds(5000));
    EXPECT_EQ(bad.status().code(), StatusCode::kPermissionDenied) << bad.status().ToString();
    EXPECT_NE(bad.status().message().find("the store refused this client: wrong job token"), std::string::npos)
        << bad.status().message();
    EXPECT_LT(sw.ms(), 2000);  // refused at once, not retried until the timeout
  }
  EXPECT_EQ(good->Get("k").value(), "v");
  auto good2 = Connect(server->port(), token);
  ASSERT_TRUE(good2);
  EXPECT_EQ(good2->Get("k").value(), "v");
}

TEST(TcpStore, GarbageAndHugeLengthsDoNotHurtTheServer) {
  std::string token = GenerateToken().value();
  auto server = StartServer(token);
  auto good = Connect(server->port(), token);
  ASSERT_TRUE(good);
  ASSERT_TRUE(good->Set("warm", std::string(1 << 20, 'w')).ok());
  int64_t peak_before = VmKiB("VmPeak");
  {
    RawClient c(server->port());  // not a ztrain client at all
    c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(c.ClosedByServer());
  }
  {
    RawClient c(server->port());  // random bytes
    std::string junk;
    for (int i = 0; i < 3000; ++i) junk.push_back(static_cast<char>((i * 7919) >> 3));
    c.Send(junk);
    EXPECT_TRUE(c.ClosedByServer());
  }
  {
    RawClient c(server->port());  // a small frame with the wrong magic
    c.Send(wire::FrameWriter(wire::Op::kHello).U32(0x12345678).U32(1).Str(token).Finish());
    EXPECT_TRUE(c.ClosedByServer());
  }
  {
    RawClient c(server->port());  // a 60 MiB frame announced before the token
    c.Send(U32Le(60u << 20) + "\x01");
    EXPECT_TRUE(c.ClosedByServer());
  }
  {
    RawClient c(server->port());  // after the token: a 4 GiB frame
    c.Hello(token);
    c.Send(U32Le(0xffffffffu) + "\x02");
    EXPECT_TRUE(c.ClosedByServer());
  }
  {
    RawClient c(server->port());  // after the token: just over the cap
    c.Hello(token);
    c.Send(U32Le(static_cast<uint32_t>(wire::kMaxFrameBytes + 1)));
    EXPECT_TRUE(c.ClosedByServer());
  }
  {
    RawClient c(server->port());  // a well-framed request with a field longer than its frame
    c.Hello(token);
    std::string body = std::string("\x02") + U32Le(1000) + "abc";
    c.Send(U32Le(static_cast<uint32_t>(body.size())) + body);
    EXPECT_TRUE(c.ClosedByServer());
  }
  {
    RawClient c(server->port());  // an unknown op
    c.Hello(token);
    c.Send(U32Le(1) + "\x7f");
    EXPECT_TRUE(c.ClosedByServer());
  }
  // Had the server set aside the 4 GiB it was promised, the peak would show it.
  int64_t peak_after = VmKiB("VmPeak");
  EXPECT_LT(peak_after - peak_before, 1 << 20) << "VmPeak grew from " << peak_before << " to " << peak_after << " KiB";
  // A 60 MiB frame announced but not sent: the server must not set aside 60 MiB for it while it
  // waits (the connection stays open, so such a buffer would still be there), and keeps serving.
  int64_t size_before = VmKiB("VmSize");
  RawClient slow(server->port());
  slow.Hello(token);
  slow.Send(U32Le(60u << 20) + "\x02" + "abc");
  EXPECT_EQ(good->Get("warm").value().size(), size_t{1} << 20);
  auto other = Connect(server->port(), token);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->Add("n", 1).value(), 1);
  int64_t size_after = VmKiB("VmSize");
  EXPECT_LT(size_after - size_before, 40 * 1024) << "VmSize grew from " << size_before << " to " << size_after << " KiB";
}

TEST(TcpStore, ClientsThatDoNotReadDoNotStallOthers) {
  std::string token = GenerateToken().value();
  auto server = StartServer(token);
  auto good = Connect(server->port(), token);
  ASSERT_TRUE(good);
  ASSERT_TRUE(good->Set("big", std::string(16 << 20, 'b')).ok());
  RawClient greedy(server->port());
  greedy.Hello(token);
  std::string get = wire::FrameWriter(wire::Op::kGet).Str("big").Finish();
  greedy.Send(get + get + get);  // 48 MiB of replies it never reads
  RawClient silent(server->port());  // connects and never says anything
  Stopwatch sw;
  for (int i = 0; i < 20; ++i) ASSERT_EQ(good->Add("i", 1).value(), i + 1);
  EXPECT_EQ(good->Get("big").value().size(), size_t{16} << 20);
  EXPECT_LT(sw.ms(), 3000);
}

TEST(TcpStore, HundredsOfClientsWaitTogether) {
  std::string token = GenerateToken().value();
  auto server = StartServer(token);
  constexpr int kClients = 200;
  std::vector<std::unique_ptr<Store>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(Connect(server->port(), token));
    ASSERT_TRUE(clients.back());
  }
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      if (!clients[i]->Add("arrived", 1).ok()) return;
      if (clients[i]->Wait({"go", "go2"}, milliseconds(10000)).ok() && clients[i]->Get("go2").value() == "2") ok++;
    });
  }
  auto main = Connect(server->port(), token);
  Stopwatch sw;
  while (main->Add("arrived", 0).value() < kClients && sw.ms() < 10000) std::this_thread::sleep_for(milliseconds(5));
  ASSERT_TRUE(main->Set("go", "1").ok());
  ASSERT_TRUE(main->Set("go2", "2").ok());
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients);
}

TEST(TcpStore, ClientStartedBeforeTheServerConnectsOnceItStarts) {
  int port;
  {  // find a free port
    auto probe = ListenTcp("127.0.0.1", 0, 1);
    ASSERT_TRUE(probe.ok());
    port = LocalPort(probe->get()).value();
  }
  std::string token = GenerateToken().value();
  StatusOr<std::unique_ptr<Store>> client = Unavailable("not yet");
  Stopwatch sw;
  std::thread t([&] { client = ConnectTcpStore(FormatHostPort("127.0.0.1", port), token, milliseconds(5000)); });
  std::this_thread::sleep_for(milliseconds(300));
  auto server = TcpStoreServer::Start("127.0.0.1", port, token);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  t.join();
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_GE(sw.ms(), 250);
  ASSERT_TRUE((*client)->Set("x", "y").ok());
  EXPECT_EQ((*client)->Get("x").value(), "y");
}

TEST(TcpStore, NoServerIsDeadlineExceededNamingTheAddress) {
  int port;
  {
    auto probe = ListenTcp("127.0.0.1", 0, 1);
    ASSERT_TRUE(probe.ok());
    port = LocalPort(probe->get()).value();
  }
  Stopwatch sw;
  auto c = ConnectTcpStore("127.0.0.1", port, "t", milliseconds(300));
  EXPECT_EQ(c.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(c.status().message().find("127.0.0.1:" + std::to_string(port)), std::string::npos) << c.status().message();
  EXPECT_GE(sw.ms(), 290);
  EXPECT_LT(sw.ms(), 2000);
  // A socket that listens but never answers (a hung server) is bounded the same way.
  auto mute = ListenTcp("127.0.0.1", 0, 16);
  ASSERT_TRUE(mute.ok());
  int mute_port = LocalPort(mute->get()).value();
  sw = Stopwatch();
  c = ConnectTcpStore("127.0.0.1", mute_port, "t", milliseconds(300));
  EXPECT_EQ(c.status().code(), StatusCode::kDeadlineExceeded) << c.status().ToString();
  EXPECT_NE(c.status().message().find("127.0.0.1:" + std::to_string(mute_port)), std::string::npos);
  EXPECT_LT(sw.ms(), 2000);
}

TEST(TcpStore, StoppedServerMakesCallsUnavailable) {
  std::string token = GenerateToken().value();
  auto server = StartServer(token);
  std::string where = "127.0.0.1:" + std::to_string(server->port());
  auto c = Connect(server->port(), token, milliseconds(10000));
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Set("a", "1").ok());
  Status waited;
  int64_t waited_ms = 0;
  std::thread t([&] {
    Stopwatch sw;
    waited = c->Wait({"never"}, milliseconds(10000));
    waited_ms = sw.ms();
  });
  std::this_thread::sleep_for(milliseconds(200));
  server->Stop();
  t.join();
  EXPECT_EQ(waited.code(), StatusCode::kUnavailable) << waited.ToString();
  EXPECT_NE(waited.message().find(where), std::string::npos) << waited.message();
  EXPECT_LT(waited_ms, 2000);
  Stopwatch sw;
  Status s = c->Set("b", "2");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find(where), std::string::npos) << s.message();
  EXPECT_EQ(c->Get("a").status().code(), StatusCode::kUnavailable);
  EXPECT_LT(sw.ms(), 2000);
}

TEST(TcpStore, WaitsThatRaceTheirDeadlineKeepTheConnectionInStep) {
  std::string token = GenerateToken().value();
  auto server = StartServer(token);
  auto c = Connect(server->port(), token);
  auto other = Connect(server->port(), token);
  for (int i = 0; i < 20; ++i) {
    std::string key = "race" + std::to_string(i);
    std::thread t([&] {
      std::this_thread::sleep_for(milliseconds(10));
      EXPECT_TRUE(other->Set(key, "v").ok());
    });
    Status s = c->Wait({key}, milliseconds(10));
    EXPECT_TRUE(s.ok() || s.code() == StatusCode::kDeadlineExceeded) << s.ToString();
    t.join();
    ASSERT_EQ(c->Add("after", 1).value(), i + 1);  // the next reply is this call's own
    EXPECT_EQ(c->Get(key).value(), "v");
  }
}

TEST(TcpStore, OversizedKeysAndValuesAreRefusedByTheClient) {
  std::string token = GenerateToken().value();
  auto server = StartServer(token);
  auto c = Connect(server->port(), token);
  EXPECT_EQ(c->Set(std::string(kMaxStoreKeyBytes + 1, 'k'), "v").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->Set("k", std::string(kMaxStoreValueBytes + 1, 'v')).code(), StatusCode::kInvalidArgument);
  std::string max_key(kMaxStoreKeyBytes, 'k');
  ASSERT_TRUE(c->Set(max_key, "edge").ok());
  EXPECT_EQ(c->Get(max_key).value(), "edge");
}

TEST(TcpStore, HostPortParsing) {
  EXPECT_EQ(ParseHostPort("node0:29500")->host, "node0");
  EXPECT_EQ(ParseHostPort("node0:29500")->port, 29500);
  EXPECT_EQ(ParseHostPort("[::1]:5")->host, "::1");
  for (const char* bad : {"node0", ":29500", "node0:", "node0:http", "node0:70000", "node0:0", "::1:5", "[::1]5"}) {
    auto r = ParseHostPort(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos) << r.status().message();
  }
  auto c = ConnectTcpStore("localhost", "t", milliseconds(100));
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
}

TEST(TcpStore, AddFromSeveralProcessesIsAtomic) {
  std::string token = GenerateToken().value();
  std::unique_ptr<TcpStoreServer> server;
  constexpr int kProcs = 4, kAdds = 500;
  std::vector<int64_t> values = testing::RunAddersInChildren(
      kProcs, kAdds, "procs",
      [&] {  // the children are forked already; now start the server thread
        server = StartServer(token);
        return FormatHostPort("127.0.0.1", server->port());
      },
      [&](const std::string& address) -> std::unique_ptr<Store> {
        auto c = ConnectTcpStore(address, token, milliseconds(10000));
        return c.ok() ? std::move(c).value() : nullptr;
      });
  EXPECT_EQ(values, OneTo(kProcs * kAdds));
  EXPECT_EQ(Connect(server->port(), token)->Get("procs").value(), std::to_string(kProcs * kAdds));
}

}  // namespace
}  // namespace zt::comm
