#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/encoding.h"

namespace vlake::http {
namespace {

using namespace std::chrono_literals;

// A blocking test client over a raw socket, so tests control every byte on the wire.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};  // a hung server fails the test instead of hanging it
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() { ::close(fd_); }

  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  struct Response {
    int status = 0;
    std::vector<Header> headers;
    std::string body;
    std::string Get(std::string_view name) const {
      for (const Header& h : headers) {
        if (h.name == name) return h.value;
      }
      return "";
    }
    bool Has(std::string_view name) const {
      for (const Header& h : headers) {
        if (h.name == name) return true;
      }
      return false;
    }
  };

  // Reads one response; status 0 when the connection ended first. With `head_only` no body
  // is read (HEAD requests).
  Response Read(bool head_only = false) {
    Response r;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return r;
    }
    std::string head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    size_t eol = head.find("\r\n");
    r.status = std::atoi(head.substr(9, 3).c_str());
    for (size_t p = eol + 2; p < head.size();) {
      size_t nl = head.find("\r\n", p);
      std::string line = head.substr(p, nl - p);
      p = nl + 2;
      size_t colon = line.find(':');
      r.headers.push_back(
          {AsciiLower(line.substr(0, colon)), std::string(TrimWhitespace(line.substr(colon + 1)))});
    }
    if (head_only) return r;
    size_t len = std::strtoull(r.Get("content-length").c_str(), nullptr, 10);
    while (buf_.size() < len) {
      if (!Fill()) {
        r.status = 0;
        return r;
      }
    }
    r.body = buf_.substr(0, len);
    buf_.erase(0, len);
    return r;
  }

  // Exactly `n` bytes (or fewer if the peer closed).
  std::string ReadBytes(size_t n) {
    while (buf_.size() < n && Fill()) {
    }
    std::string out = buf_.substr(0, n);
    buf_.erase(0, out.size());
    return out;
  }

  // True when the server closed the connection (EOF or reset) with nothing more to read.
  bool AtEof() {
    if (!buf_.empty()) return false;
    char c;
    ssize_t n = ::recv(fd_, &c, 1, 0);
    if (n > 0) buf_.push_back(c);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  // Whether bytes arrive within `ms`.
  bool Readable(int ms) {
    if (!buf_.empty()) return true;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, ms) > 0;
  }

 private:
  bool Fill() {
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

// Echoes the request: method and path in headers, body and trailers back.
HttpResponse Echo(HttpRequest& req, BodyReader& body) {
  HttpResponse resp;
  Result<std::string> all = ReadAll(body, 64 << 20);
  if (!all.ok()) {
    resp.status = 400;
    resp.body = std::string(CodeName(all.error().code()));
    return resp;
  }
  resp.AddHeader("X-Method", req.method);
  resp.AddHeader("X-Path", req.path);
  for (const Header& t : body.Trailers()) resp.AddHeader("X-Trailer-" + t.name, t.value);
  resp.body = std::move(*all);
  return resp;
}

ServerOptions TestOptions() {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.header_timeout_ms = 5000;
  o.idle_timeout_ms = 5000;
  o.io_timeout_ms = 5000;
  o.drain_timeout_ms = 2000;
  return o;
}

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(Handler handler, ServerOptions options = TestOptions()) {
    server_ = std::make_unique<HttpServer>(std::move(options), std::move(handler));
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_NE(server_->port(), 0);
  }
  uint16_t port() const { return server_->port(); }
  std::unique_ptr<HttpServer> server_;
};

TEST_F(ServerTest, KeepAliveServesSeveralRequests) {
  StartServer(Echo);
  RawClient c(port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    std::string body = "payload-" + std::to_string(i);
    ASSERT_TRUE(c.Send("PUT /k" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body));
    RawClient::Response r = c.Read();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.Get("x-path"), "/k" + std::to_string(i));
    EXPECT_EQ(r.body, body);
    EXPECT_FALSE(r.Has("connection"));
  }
  ASSERT_TRUE(c.Send("GET /last HTTP/1.1\r\nConnection: close\r\n\r\n"));
  RawClient::Response r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Get("connection"), "close");
  EXPECT_TRUE(c.AtEof());
}

TEST_F(ServerTest, PipelinedRequestsInOneWrite) {
  StartServer(Echo);
  RawClient c(port());
  ASSERT_TRUE(
      c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
             "PUT /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
             "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
             "\r\nGET /d HTTP/1.1\r\n\r\n"));
  RawClient::Response a = c.Read(), b = c.Read(), cc = c.Read(), d = c.Read();
  EXPECT_EQ(a.Get("x-path"), "/a");
  EXPECT_EQ(a.body, "");
  EXPECT_EQ(b.Get("x-path"), "/b");
  EXPECT_EQ(b.body, "hello");
  EXPECT_EQ(cc.Get("x-path"), "/c");
  EXPECT_EQ(cc.body, "abc");
  EXPECT_EQ(d.Get("x-path"), "/d");
}

TEST_F(ServerTest, ChunkedBodyWithTrailers) {
  StartServer(Echo);
  RawClient c(port());
  ASSERT_TRUE(c.Send("PUT /obj HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
  ASSERT_TRUE(c.Send("5;chunk-signature=abc\r\nhello\r\n"));
  std::string big(100000, 'z');  // large enough for the direct-read path
  char size_line[32];
  std::snprintf(size_line, sizeof(size_line), "%zx\r\n", big.size());
  ASSERT_TRUE(c.Send(size_line + big + "\r\n"));
  ASSERT_TRUE(c.Send("0\r\nx-amz-checksum-crc32: AAAAAA==\r\n\r\n"));
  RawClient::Response r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello" + big);
  EXPECT_EQ(r.Get("x-trailer-x-amz-checksum-crc32"), "AAAAAA==");
  // Still usable afterwards.
  ASSERT_TRUE(c.Send("GET /after HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.Read().Get("x-path"), "/after");
}

TEST_F(ServerTest, BrokenChunkedFramingFailsTheReadAndCloses) {
  StartServer(Echo);
  RawClient c(port());
  ASSERT_TRUE(c.Send("PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX"));
  RawClient::Response r = c.Read();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "BadRequest");
  EXPECT_EQ(r.Get("connection"), "close");
  EXPECT_TRUE(c.AtEof());
}

TEST_F(ServerTest, ExpectContinueIsSentOnFirstRead) {
  StartServer(Echo);
  RawClient c(port());
  ASSERT_TRUE(c.Send("PUT /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  // The client must wait for the interim response before it sends the body.
  EXPECT_EQ(c.ReadBytes(25), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(c.Send("data"));
  RawClient::Response r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "data");
  EXPECT_FALSE(r.Has("connection"));
  ASSERT_TRUE(c.Send("GET /again HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.Read().Get("x-path"), "/again");
}

// botocore sends Expect: 100-continue on empty PUTs too and misreads the connection's next
// response when the final response comes without a 100 first (boto/botocore#3755).
TEST_F(ServerTest, ExpectContinueIsSentForAnEmptyBody) {
  StartServer(Echo);
  RawClient c(port());
  ASSERT_TRUE(c.Send("PUT /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(c.ReadBytes(25), "HTTP/1.1 100 Continue\r\n\r\n");
  RawClient::Response r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_FALSE(r.Has("connection"));
  ASSERT_TRUE(c.Send("GET /again HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.Read().Get("x-path"), "/again");
}

TEST_F(ServerTest, ExpectContinueNotSentWhenHandlerDoesNotRead) {
  StartServer([](HttpRequest&, BodyReader&) {
    HttpResponse r;
    r.status = 403;
    r.body = "denied";
    return r;
  });
  RawClient c(port());
  ASSERT_TRUE(c.Send("PUT /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  RawClient::Response r = c.Read();
  EXPECT_EQ(r.status, 403);  // no 100 Continue before it
  EXPECT_EQ(r.body, "denied");
  EXPECT_EQ(r.Get("connection"), "close");
  EXPECT_TRUE(c.AtEof());
}

TEST_F(ServerTest, SmallUnreadBodyIsDrainedAndConnectionKept) {
  StartServer([](HttpRequest& req, BodyReader&) {
    HttpResponse r;
    r.body = req.path;
    return r;
  });
  RawClient c(port());
  ASSERT_TRUE(c.Send("PUT /one HTTP/1.1\r\nContent-Length: 3000\r\n\r\n" + std::string(3000, 'a') +
                     "GET /two HTTP/1.1\r\n\r\n"));
  RawClient::Response one = c.Read();
  EXPECT_EQ(one.body, "/one");
  EXPECT_FALSE(one.Has("connection"));
  EXPECT_EQ(c.Read().body, "/two");
}

TEST_F(ServerTest, LargeUnreadBodyClosesConnectionWithoutHanging) {
  StartServer([](HttpRequest&, BodyReader&) {
    HttpResponse r;
    r.body = "early answer";
    return r;
  });
  RawClient c(port());
  const size_t body_size = 16 << 20;
  ASSERT_TRUE(
      c.Send("PUT /big HTTP/1.1\r\nContent-Length: " + std::to_string(body_size) + "\r\n\r\n"));
  std::thread writer([&] {
    std::string chunk(1 << 20, 'b');
    for (size_t sent = 0; sent < body_size; sent += chunk.size()) {
      if (!c.Send(chunk)) break;  // the server may stop reading; that is fine
    }
  });
  auto start = std::chrono::steady_clock::now();
  RawClient::Response r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "early answer");
  EXPECT_EQ(r.Get("connection"), "close");
  EXPECT_TRUE(c.AtEof());
  writer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
}

TEST_F(ServerTest, BodyReadErrors) {
  ServerOptions o = TestOptions();
  o.io_timeout_ms = 200;
  StartServer(Echo, o);
  {
    RawClient c(port());
    ASSERT_TRUE(c.Send("PUT /slow HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"));
    RawClient::Response r = c.Read();
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, "RequestTimeout");
    EXPECT_EQ(r.Get("connection"), "close");
  }
  {
    RawClient c(port());
    ASSERT_TRUE(c.Send("PUT /short HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"));
    ::shutdown(c.fd(), SHUT_WR);
    RawClient::Response r = c.Read();
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.body, "IncompleteBody");
  }
}

TEST_F(ServerTest, FileSlicesAreSentWithOffsets) {
  char path[] = "/tmp/vlake_http_test_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  std::string content(1 << 20, '\0');
  std::mt19937 rng(42);
  for (char& ch : content) ch = static_cast<char>(rng());
  ASSERT_EQ(::pwrite(fd, content.data(), content.size(), 0), static_cast<ssize_t>(content.size()));
  auto file = std::make_shared<const UniqueFd>(fd);

  StartServer([file](HttpRequest& req, BodyReader&) {
    HttpResponse r;
    r.status = 206;
    r.body = "prefix:";
    r.file_slices.push_back({file, 10, 100});
    r.file_slices.push_back({file, 500000, 300000});
    r.file_slices.push_back({file, 0, 0});
    if (req.path == "/head") r.AddHeader("X-Head", "1");
    return r;
  });
  RawClient c(port());
  ASSERT_TRUE(c.Send("GET /f HTTP/1.1\r\n\r\n"));
  RawClient::Response r = c.Read();
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.Get("content-length"), std::to_string(7 + 100 + 300000));
  ASSERT_EQ(r.body.size(), 7u + 100 + 300000);
  EXPECT_EQ(r.body.substr(0, 7), "prefix:");
  EXPECT_TRUE(r.body.substr(7, 100) == content.substr(10, 100));
  EXPECT_TRUE(r.body.substr(107) == content.substr(500000, 300000));

  // HEAD: the length of what GET would send, and no body.
  ASSERT_TRUE(c.Send("HEAD /head HTTP/1.1\r\n\r\n"));
  RawClient::Response h = c.Read(/*head_only=*/true);
  EXPECT_EQ(h.status, 206);
  EXPECT_EQ(h.Get("content-length"), std::to_string(7 + 100 + 300000));
  EXPECT_EQ(h.Get("x-head"), "1");
  EXPECT_FALSE(c.Readable(100));
}

TEST_F(ServerTest, MalformedHeadsGetErrorStatusAndClose) {
  ServerOptions o = TestOptions();
  o.max_header_bytes = 1024;
  std::atomic<bool> called{false};
  StartServer(
      [&called](HttpRequest&, BodyReader&) {
        called = true;
        return HttpResponse{};
      },
      o);
  struct Case {
    std::string wire;
    int status;
  } cases[] = {
      {"GET / HTTP/9.9\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
      {"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"GET / HTTP/1.1\r\nA: " + std::string(2000, 'x') + "\r\n\r\n", 431},
      {"GET / HTTP/1.1\r\nA: " + std::string(2000, 'x'), 431},  // never ends
  };
  for (const Case& tc : cases) {
    RawClient c(port());
    ASSERT_TRUE(c.Send(tc.wire));
    RawClient::Response r = c.Read();
    EXPECT_EQ(r.status, tc.status) << tc.wire.substr(0, 60);
    EXPECT_EQ(r.Get("connection"), "close");
    EXPECT_TRUE(c.AtEof());
  }
  EXPECT_FALSE(called);
}

TEST_F(ServerTest, HandlerExceptionGives500AndClose) {
  StartServer([](HttpRequest&, BodyReader&) -> HttpResponse { throw std::runtime_error("boom"); });
  RawClient c(port());
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\n\r\n"));
  RawClient::Response r = c.Read();
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.Get("connection"), "close");
  EXPECT_TRUE(c.AtEof());
}

TEST_F(ServerTest, ConnectionsBeyondTheLimitGet503) {
  ServerOptions o = TestOptions();
  o.max_connections = 1;
  StartServer(Echo, o);
  RawClient first(port());
  ASSERT_TRUE(first.Send("GET /1 HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(first.Read().status, 200);
  RawClient second(port());
  RawClient::Response r = second.Read();
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(second.AtEof());
  ASSERT_TRUE(first.Send("GET /2 HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(first.Read().status, 200);
}

TEST_F(ServerTest, StopDrainsInFlightRequestAndClosesIdleOnes) {
  std::promise<void> entered;
  std::atomic<bool> finished{false};
  StartServer([&](HttpRequest& req, BodyReader&) {
    HttpResponse r;
    if (req.path == "/slow") {
      entered.set_value();
      std::this_thread::sleep_for(300ms);
      finished = true;
      r.body = "slow done";
    }
    return r;
  });
  RawClient idle(port());
  ASSERT_TRUE(idle.Send("GET /fast HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(idle.Read().status, 200);

  RawClient busy(port());
  ASSERT_TRUE(busy.Send("GET /slow HTTP/1.1\r\n\r\n"));
  entered.get_future().wait();
  // The fast request counts until its thread finished writing, which may trail the client.
  for (int i = 0; i < 200 && server_->in_flight() != 1; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(server_->in_flight(), 1);
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_TRUE(finished);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(server_->in_flight(), 0);

  RawClient::Response r = busy.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "slow done");
  EXPECT_EQ(r.Get("connection"), "close");
  EXPECT_TRUE(busy.AtEof());
  EXPECT_TRUE(idle.AtEof());
  RawClient late(port());
  EXPECT_FALSE(late.connected());
}

TEST_F(ServerTest, StopInterruptsAStuckHandlerAfterTheDrainTimeout) {
  ServerOptions o = TestOptions();
  o.drain_timeout_ms = 200;
  o.io_timeout_ms = 60'000;
  std::promise<void> entered;
  StartServer(
      [&](HttpRequest&, BodyReader& body) {
        entered.set_value();
        HttpResponse r;
        // Blocks: the client never sends the body. Stop() must shut the socket down.
        r.body = std::string(CodeName(ReadAll(body, 1 << 20).status().code()));
        return r;
      },
      o);
  RawClient c(port());
  ASSERT_TRUE(c.Send("PUT /stuck HTTP/1.1\r\nContent-Length: 100\r\n\r\n"));
  entered.get_future().wait();
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(server_->in_flight(), 0);
}

TEST_F(ServerTest, Http10ClosesUnlessKeepAlive) {
  StartServer(Echo);
  RawClient c(port());
  ASSERT_TRUE(c.Send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  RawClient::Response r = c.Read();
  EXPECT_EQ(r.Get("connection"), "keep-alive");
  ASSERT_TRUE(c.Send("GET /b HTTP/1.0\r\n\r\n"));
  r = c.Read();
  EXPECT_EQ(r.Get("x-path"), "/b");
  EXPECT_EQ(r.Get("connection"), "close");
  EXPECT_TRUE(c.AtEof());
}

TEST_F(ServerTest, ResponseFramingHeadersBelongToTheServer) {
  StartServer([](HttpRequest&, BodyReader&) {
    HttpResponse r;
    r.status = 204;
    r.AddHeader("Content-Length", "99");
    r.AddHeader("Connection", "upgrade");
    r.AddHeader("X-Evil", "a\r\nInjected: yes");
    r.body = "ignored";
    return r;
  });
  RawClient c(port());
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\n\r\n"));
  RawClient::Response r = c.Read(/*head_only=*/true);
  EXPECT_EQ(r.status, 204);
  EXPECT_FALSE(r.Has("content-length"));
  EXPECT_FALSE(r.Has("connection"));
  EXPECT_FALSE(r.Has("injected"));
  EXPECT_EQ(r.Get("x-evil"), "a  Injected: yes");
  EXPECT_FALSE(c.Readable(100));
}

// ---- connection hardening ----

// Marks requests to /auth as authenticated (what the S3 service does after a good signature).
HttpResponse AuthEcho(HttpRequest& req, BodyReader& body) {
  if (req.path == "/auth") req.authenticated = true;
  return Echo(req, body);
}

// Whether the server closes `c` within `ms` (reading and dropping nothing else).
bool ClosedWithin(RawClient& c, int ms) { return c.Readable(ms) && c.AtEof(); }

TEST_F(ServerTest, NewUnauthenticatedConnectionOverThePeerLimitClosesTheOldestIdleOne) {
  ServerOptions o = TestOptions();
  o.max_unauthenticated_per_peer = 2;
  StartServer(Echo, o);
  RawClient a(port());
  RawClient b(port());
  ASSERT_TRUE(b.Send("GET /b HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(b.Read().status, 200);
  RawClient c(port());
  EXPECT_TRUE(ClosedWithin(a, 2000));  // the oldest, never sent a byte
  ASSERT_TRUE(c.Send("GET /c HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.Read().status, 200);
  ASSERT_TRUE(b.Send("GET /b2 HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(b.Read().status, 200);
  EXPECT_EQ(server_->unauthenticated_connections(), 2);
}

TEST_F(ServerTest, AuthenticatedConnectionsLeaveTheUnauthenticatedLimits) {
  ServerOptions o = TestOptions();
  o.max_unauthenticated_per_peer = 1;
  o.max_unauthenticated_connections = 1;
  StartServer(AuthEcho, o);
  RawClient signed_client(port());
  ASSERT_TRUE(signed_client.Send("GET /auth HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(signed_client.Read().status, 200);
  for (int i = 0; i < 200 && server_->unauthenticated_connections() != 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(server_->unauthenticated_connections(), 0);
  RawClient x(port());
  RawClient y(port());  // evicts x, never signed_client
  EXPECT_TRUE(ClosedWithin(x, 2000));
  ASSERT_TRUE(signed_client.Send("GET /auth2 HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(signed_client.Read().status, 200);
  ASSERT_TRUE(y.Send("GET /y HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(y.Read().status, 200);
}

TEST_F(ServerTest, OverTheUnauthenticatedLimitWithEveryOneBusyGetsTheRejectReply) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  ServerOptions o = TestOptions();
  o.max_unauthenticated_connections = 1;
  o.reject = [](const Status& s) {
    HttpResponse r;
    r.status = 503;
    r.AddHeader("Content-Type", "text/plain");
    r.body = std::string(CodeName(s.code()));
    return r;
  };
  StartServer(
      [&](HttpRequest&, BodyReader&) {
        entered.set_value();
        released.wait();
        return HttpResponse{};
      },
      o);
  RawClient busy(port());
  ASSERT_TRUE(busy.Send("GET /slow HTTP/1.1\r\n\r\n"));
  entered.get_future().wait();
  RawClient refused(port());
  RawClient::Response r = refused.Read();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, CodeName(Code::kUnavailable));
  EXPECT_EQ(r.Get("connection"), "close");
  EXPECT_TRUE(refused.AtEof());
  release.set_value();
  EXPECT_EQ(busy.Read().status, 200);
}

TEST_F(ServerTest, DribbledHeadIsClosedWithinTheHeaderTimeout) {
  ServerOptions o = TestOptions();
  o.header_timeout_ms = 500;
  StartServer(Echo, o);
  RawClient c(port());
  auto start = std::chrono::steady_clock::now();
  std::string head = "GET /slowloris HTTP/1.1\r\nX-A: " + std::string(100, 'a');
  bool closed = false;
  for (size_t i = 0; i < head.size() && !closed; ++i) {
    closed = !c.Send(head.substr(i, 1)) || (c.Readable(50) && c.AtEof());
  }
  EXPECT_TRUE(closed || ClosedWithin(c, 1000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST_F(ServerTest, BodyBelowTheMinimumRateFailsWithRequestTimeoutAndCloses) {
  ServerOptions o = TestOptions();
  o.min_body_rate_bytes_per_s = 1000;
  o.body_rate_grace_ms = 200;
  o.body_rate_window_ms = 300;
  StartServer(Echo, o);
  RawClient c(port());
  ASSERT_TRUE(c.Send("PUT /slow HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"));
  auto start = std::chrono::steady_clock::now();
  // One byte per 50 ms (20 B/s) until the server answers; bounded by the byte count.
  for (int i = 0; i < 60 && !c.Readable(50); ++i) c.Send("x");
  RawClient::Response r = c.Read();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, CodeName(Code::kRequestTimeout));
  EXPECT_EQ(r.Get("connection"), "close");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST_F(ServerTest, BodyRateCountsOnlyTimeSpentWaitingForThePeer) {
  ServerOptions o = TestOptions();
  o.min_body_rate_bytes_per_s = 1 << 20;
  o.body_rate_grace_ms = 0;
  o.body_rate_window_ms = 100;
  // A handler that reads one byte, works for 500 ms, then reads the rest.
  StartServer(
      [](HttpRequest&, BodyReader& body) {
        HttpResponse resp;
        char buf[16];
        Result<size_t> n = body.Read(buf, 1);
        std::this_thread::sleep_for(500ms);
        while (n.ok() && *n > 0) {
          resp.body.append(buf, *n);
          n = body.Read(buf, sizeof(buf));
        }
        resp.status = n.ok() ? 200 : 400;
        if (!n.ok()) resp.body = std::string(CodeName(n.error().code()));
        return resp;
      },
      o);
  RawClient c(port());
  ASSERT_TRUE(c.Send("PUT /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"));
  RawClient::Response r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
}

TEST_F(ServerTest, ManyIdleAndSlowConnectionsDoNotStarveASigningClient) {
  ServerOptions o = TestOptions();
  o.header_timeout_ms = 1500;
  o.idle_timeout_ms = 1500;
  o.max_unauthenticated_connections = 128;
  o.max_unauthenticated_per_peer = 96;
  StartServer(AuthEcho, o);
  constexpr int kIdle = 200;
  constexpr int kSlow = 50;
  std::vector<std::unique_ptr<RawClient>> idle, slow;
  for (int i = 0; i < kIdle; ++i) idle.push_back(std::make_unique<RawClient>(port()));
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<RawClient>(port()));
    slow.back()->Send("PUT /auth HTTP/1.1\r\n");
  }
  // A client that signs keeps working while the slow ones dribble, each answer within 1 s.
  RawClient kept(port());
  auto start = std::chrono::steady_clock::now();
  int answered = 0;
  for (int round = 0; round < 20; ++round) {
    for (auto& s : slow) s->Send("X");
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(kept.Send("PUT /auth HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"));
    RawClient::Response r = kept.Read();
    RawClient fresh(port());
    ASSERT_TRUE(fresh.Send("GET /auth HTTP/1.1\r\n\r\n"));
    RawClient::Response f = fresh.Read();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    if (r.status == 200 && r.body == "ok" && f.status == 200) ++answered;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(answered, 20);
  // By now (> 2 s) every idle and slow connection was closed: evicted or timed out.
  int open = 0;
  for (auto* group : {&idle, &slow}) {
    for (auto& c : *group) open += ClosedWithin(*c, 1500) ? 0 : 1;
  }
  EXPECT_EQ(open, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  // The fresh connections' threads notice their peers left a moment after the test did.
  for (int i = 0; i < 200 && server_->unauthenticated_connections() != 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(server_->unauthenticated_connections(), 0);
}

TEST_F(ServerTest, ManyIdleKeepAliveConnectionsTimeOutAndStopClosesTheRest) {
  ServerOptions o = TestOptions();
  o.idle_timeout_ms = 300;
  StartServer(AuthEcho, o);
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 100; ++i) {
    clients.push_back(std::make_unique<RawClient>(port()));
    ASSERT_TRUE(clients.back()->Send("GET /auth HTTP/1.1\r\n\r\n"));
    ASSERT_EQ(clients.back()->Read().status, 200);
  }
  int open = 0;
  for (auto& c : clients) open += ClosedWithin(*c, 2000) ? 0 : 1;
  EXPECT_EQ(open, 0);

  // Idle connections well inside their timeout are closed by Stop at once.
  server_.reset();
  ServerOptions o2 = TestOptions();
  o2.idle_timeout_ms = 60'000;
  StartServer(AuthEcho, o2);
  clients.clear();
  for (int i = 0; i < 100; ++i) {
    clients.push_back(std::make_unique<RawClient>(port()));
    ASSERT_TRUE(clients.back()->Send("GET /auth HTTP/1.1\r\n\r\n"));
    ASSERT_EQ(clients.back()->Read().status, 200);
  }
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  open = 0;
  for (auto& c : clients) open += ClosedWithin(*c, 1000) ? 0 : 1;
  EXPECT_EQ(open, 0);
}

}  // namespace
}  // namespace vlake::http
