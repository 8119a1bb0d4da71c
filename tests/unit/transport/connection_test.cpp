// Outgoing TCP/TLS connections that fail: each message queued on one is reported to its sender
// with what went wrong, at once (RFC 3261 §17.1.4), on loopback sockets.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "transport/transport.hpp"

namespace esg::transport {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

std::string options(const std::string& call_id) {
  return "OPTIONS sip:b@127.0.0.1 SIP/2.0\r\n"
         "Via: SIP/2.0/TCP 127.0.0.1:5080;branch=z9hG4bKc" +
         call_id +
         "\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: " + call_id +
         "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
}

// What the senders were told, and on which thread.
struct Reports {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> why;
  std::vector<int> worker;
  Transport::SendFailed failed() {
    return [this](std::string_view w) {
      std::lock_guard lock(mu);
      why.emplace_back(w);
      worker.push_back(Workers::current());
      cv.notify_all();
    };
  }
  bool wait(size_t n, std::chrono::milliseconds within = 5s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, within, [&] { return why.size() >= n; });
  }
  size_t size() {
    std::lock_guard lock(mu);
    return why.size();
  }
};

Peer loopback(Proto proto, uint16_t port) {
  Peer p;
  p.proto = proto;
  p.addr = asio::ip::make_address("127.0.0.1");
  p.port = port;
  return p;
}

// A port where nothing listens: bound, then released.
uint16_t closed_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  const uint16_t port = a.local_endpoint().port();
  a.close();
  return port;
}

// A self-signed certificate for 127.0.0.1 that no CA of esg's signed, written as PEM files.
struct SelfSigned {
  std::filesystem::path dir;
  std::string cert, key;
  SelfSigned() {
    dir = std::filesystem::temp_directory_path() / ("esg-conn-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    cert = (dir / "cert.pem").string();
    key = (dir / "key.pem").string();
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, pkey, EVP_sha256());
    FILE* f = std::fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
  }
  ~SelfSigned() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

struct Received {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> got;
  bool wait(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 5s, [&] { return got.size() >= n; });
  }
  // A transport handler that keeps the Call-ID of each message received.
  Transport::Handler handler() {
    return [this](size_t, sip::Message&& m, const Peer&) {
      std::lock_guard lock(mu);
      got.emplace_back(m.call_id());
      cv.notify_all();
    };
  }
};

struct ConnectionFailures : ::testing::Test {
  Workers workers{2};
  Reports reports;
  std::unique_ptr<Transport> t;
  void start(TransportOptions o = {}) {
    t = std::make_unique<Transport>(workers, o, nullptr,
                                    [](size_t, sip::Message&&, const Peer&) {});
    workers.start();
  }
  void TearDown() override {
    if (t) t->close();
    workers.stop();
  }
  // Sends from inside worker `w`, as a transaction does.
  void send_from(size_t w, const Peer& to, const std::string& bytes) {
    workers.post(w, [this, to, bytes] { EXPECT_TRUE(t->send(to, bytes, reports.failed())); });
  }
};

TEST_F(ConnectionFailures, EveryMessageQueuedOnARefusedConnectionIsReportedOnItsSendersWorker) {
  start();
  const uint16_t port = closed_port();
  const Peer to = loopback(Proto::Tcp, port);
  // Three messages from worker 1 share the one connection being opened.
  for (int i = 0; i < 3; ++i)
    send_from(1, to, options("refused-" + std::to_string(i)));
  ASSERT_TRUE(reports.wait(3));
  std::lock_guard lock(reports.mu);
  const std::string expected = "TCP connect to 127.0.0.1:" + std::to_string(port) + " refused";
  EXPECT_EQ(reports.why, (std::vector<std::string>{expected, expected, expected}));
  EXPECT_EQ(reports.worker, (std::vector<int>{1, 1, 1}));
  EXPECT_EQ(t->connections(), 0u);
}

TEST_F(ConnectionFailures, AfterARefusalTheNextSendTriesAFreshConnection) {
  start();
  const Peer to = loopback(Proto::Tcp, closed_port());
  send_from(0, to, options("again-1"));
  ASSERT_TRUE(reports.wait(1));
  send_from(0, to, options("again-2"));
  ASSERT_TRUE(reports.wait(2));  // refused again, not stuck on a dead connection
}

TEST_F(ConnectionFailures, ACertificateThatDoesNotVerifyIsNamed) {
  SelfSigned certs;
  Workers peer_workers{1};
  Received received;
  Transport server(peer_workers, {}, nullptr, received.handler());
  server.listen(Proto::Tls, "127.0.0.1", 0, {certs.cert, certs.key, ""});
  peer_workers.start();
  start();  // tls_ca empty: the system's CAs, which never signed the test's certificate
  Peer to = loopback(Proto::Tls, server.local_port(0));
  send_from(0, to, options("tls-verified"));
  ASSERT_TRUE(reports.wait(1));
  {
    std::lock_guard lock(reports.mu);
    EXPECT_EQ(reports.why[0],
              "TLS certificate verification failed: self-signed certificate "
              "(127.0.0.1:" +
                  std::to_string(to.port) + ")");
  }
  // The same server with verification off (an account's tls_verify=false) gets the message.
  to.tls_verify = false;
  send_from(0, to, options("tls-unverified"));
  EXPECT_TRUE(received.wait(1));
  EXPECT_EQ(reports.size(), 1u);
  server.close();
  peer_workers.stop();
}

TEST_F(ConnectionFailures, AHandshakeThatNeverCompletesTimesOut) {
  // A TCP listener that never speaks TLS: the kernel completes the connect, nobody answers the
  // ClientHello.
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  TransportOptions o;
  o.connect_timeout = 300ms;
  start(o);
  const Peer to = loopback(Proto::Tls, silent.local_endpoint().port());
  const auto t0 = std::chrono::steady_clock::now();
  send_from(0, to, options("tls-silent"));
  ASSERT_TRUE(reports.wait(1));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
  std::lock_guard lock(reports.mu);
  EXPECT_EQ(reports.why[0],
            "TLS handshake with 127.0.0.1:" + std::to_string(to.port) + " timed out");
}

TEST_F(ConnectionFailures, SentFromOutsideTheWorkersTheReportComesOnTheConnectionsWorker) {
  start();
  EXPECT_TRUE(t->send(loopback(Proto::Tcp, closed_port()), options("outside"), reports.failed()));
  ASSERT_TRUE(reports.wait(1));
  std::lock_guard lock(reports.mu);
  EXPECT_EQ(reports.worker, std::vector<int>{0});
}

TEST_F(ConnectionFailures, NothingIsReportedForMessagesThatWereWritten) {
  Workers peer_workers{1};
  Received received;
  Transport server(peer_workers, {}, nullptr, received.handler());
  server.listen(Proto::Tcp, "127.0.0.1", 0);
  peer_workers.start();
  start();
  const Peer to = loopback(Proto::Tcp, server.local_port(0));
  send_from(0, to, options("written-1"));
  send_from(0, to, options("written-2"));
  EXPECT_TRUE(received.wait(2));
  server.close();  // the peer goes away afterwards: what was written is not a failure
  peer_workers.stop();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(reports.size(), 0u);
}

}  // namespace
}  // namespace esg::transport
