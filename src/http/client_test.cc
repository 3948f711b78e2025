#include "http/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "http/server.h"

namespace vlake::http {
namespace {

using namespace std::chrono_literals;

ServerOptions TestOptions() {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.idle_timeout_ms = 5000;
  o.header_timeout_ms = 5000;
  o.io_timeout_ms = 5000;
  return o;
}

HttpResponse EchoHandler(HttpRequest& req, BodyReader& body) {
  HttpResponse r;
  Result<std::string> all = ReadAll(body, 64 << 20);
  if (!all.ok()) {
    r.status = 400;
    return r;
  }
  r.AddHeader("X-Method", req.method);
  r.AddHeader("X-Target", req.target);
  r.AddHeader("X-Host", std::string(req.HeaderOr("host", "")));
  if (req.path == "/close") r.close_connection = true;
  if (req.path == "/nocontent") r.status = 204;
  r.body = std::move(*all);
  return r;
}

TEST(ClientTest, RequestsAgainstServer) {
  HttpServer server(TestOptions(), EchoHandler);
  ASSERT_TRUE(server.Start().ok());
  HttpConnection conn("127.0.0.1", server.port(), 5000);

  Result<ClientResponse> r = conn.Send("GET", "/b/k?list", {{"X-A", "1"}}, "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(*r->FindHeader("x-target"), "/b/k?list");
  EXPECT_EQ(*r->FindHeader("x-host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(r->body, "");

  // A large body goes out from the caller's buffer and comes back through a sink.
  std::string big(8 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
  std::string sunk;
  r = conn.Send("PUT", "/big", {}, big, [&](const char* p, size_t n) { sunk.append(p, n); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body_bytes, big.size());
  EXPECT_TRUE(r->body.empty());
  EXPECT_TRUE(sunk == big);

  r = conn.Send("PUT", "/stored", {}, "abc");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "abc");
  EXPECT_EQ(r->body_bytes, 3u);

  r = conn.Send("HEAD", "/h", {}, "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->FindHeader("content-length"), "0");
  EXPECT_EQ(r->body_bytes, 0u);

  r = conn.Send("GET", "/nocontent", {}, "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 204);

  // The server closes after this one; the next Send connects again.
  r = conn.Send("GET", "/close", {}, "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r->FindHeader("connection"), "close");
  r = conn.Send("GET", "/after-close", {}, "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r->FindHeader("x-target"), "/after-close");
}

TEST(ClientTest, RetriesOnceWhenTheServerDroppedAnIdleConnection) {
  ServerOptions o = TestOptions();
  o.idle_timeout_ms = 100;
  HttpServer server(o, EchoHandler);
  ASSERT_TRUE(server.Start().ok());
  HttpConnection conn("127.0.0.1", server.port(), 5000);
  ASSERT_TRUE(conn.Send("GET", "/1", {}, "").ok());
  std::this_thread::sleep_for(300ms);  // the server closes the idle connection meanwhile
  Result<ClientResponse> r = conn.Send("PUT", "/2", {}, "x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "x");
}

TEST(ClientTest, ConnectFailureIsAnError) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // a port nobody listens on
  HttpConnection conn("127.0.0.1", ntohs(addr.sin_port), 1000);
  EXPECT_FALSE(conn.Send("GET", "/", {}, "").ok());
}

// A scripted server: reads each request head and answers with the next canned bytes.
TEST(ClientTest, ParsesChunkedInterimAndCloseDelimitedResponses) {
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);

  std::thread script([lfd] {
    int fd = ::accept(lfd, nullptr, nullptr);
    const char* replies[] = {
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nx-t: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    };
    for (const char* reply : replies) {
      std::string got;
      char buf[4096];
      while (got.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
      ssize_t ignored = ::send(fd, reply, std::strlen(reply), MSG_NOSIGNAL);
      (void)ignored;
    }
    ::close(fd);
  });

  HttpConnection conn("127.0.0.1", ntohs(addr.sin_port), 5000);
  Result<ClientResponse> r = conn.Send("GET", "/chunked", {}, "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello world");
  EXPECT_EQ(r->body_bytes, 11u);
  r = conn.Send("GET", "/eof", {}, "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "until the end");
  script.join();
  ::close(lfd);
}

}  // namespace
}  // namespace vlake::http
