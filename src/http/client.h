// Minimal blocking HTTP/1.1 client over one keep-alive connection; used by the client SDK, the
// load generator (vlake bench) and tests. HTTPS when given a TlsContext (TlsContext::ForClient:
// the peer's certificate and host name are verified unless the context says otherwise). Not a
// general-purpose client: no redirects, no proxies.
//
// Thread-safety: one HttpConnection per thread.
#pragma once

#include <sys/types.h>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "http/request.h"

namespace vlake::http {

class TlsContext;
class TlsSession;

struct ClientResponse {
  int status = 0;
  std::vector<Header> headers;  // lowercase names
  std::string body;             // empty when a sink consumed it
  uint64_t body_bytes = 0;      // bytes of body received
  const std::string* FindHeader(std::string_view lower_name) const;
};

class HttpConnection {
 public:
  // `tls` null: plain HTTP. Otherwise each (re)connect runs a TLS handshake naming `host`.
  HttpConnection(std::string host, uint16_t port, int timeout_ms = 60'000,
                 std::shared_ptr<const TlsContext> tls = nullptr);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends one request with `body` as payload (Content-Length framing; headers must not carry
  // Content-Length) and reads the response. When `sink` is set, body bytes are passed to it
  // as they arrive instead of being stored (2xx responses only: error documents are stored).
  // Reconnects once if a reused connection was closed.
  Result<ClientResponse> Send(std::string_view method, std::string_view target,
                              const std::vector<Header>& headers, std::string_view body,
                              const std::function<void(const char*, size_t)>& sink = nullptr);

  // Like Send without a sink, but a 2xx body is received straight into dest[0, dest_size):
  // one copy, from the kernel. A larger body fails with kEntityTooLarge (and closes the
  // connection); resp.body stays empty and resp.body_bytes tells how much arrived.
  Result<ClientResponse> SendInto(std::string_view method, std::string_view target,
                                  const std::vector<Header>& headers, std::string_view body,
                                  char* dest, size_t dest_size);

 private:
  using Sink = std::function<void(const char*, size_t)>;
  Status Connect();
  void Close();
  Status WriteRequest(std::string_view head, std::string_view body);
  // `*got_bytes` tells the caller whether any response byte arrived (a retry is safe if not).
  Result<ClientResponse> ReadResponse(bool head_request, const Sink& sink, bool* got_bytes);
  Result<size_t> Fill();
  ssize_t RecvSome(char* dst, size_t n);
  Status ReadBody(uint64_t length, const Sink& sink, ClientResponse* resp);
  Status ReadChunkedBody(const Sink& sink, ClientResponse* resp);
  Status ReadUntilEof(const Sink& sink, ClientResponse* resp);

  std::string host_;
  uint16_t port_;
  int timeout_ms_;
  std::shared_ptr<const TlsContext> tls_;
  std::unique_ptr<TlsSession> session_;  // the TLS state of fd_, when tls_ is set
  int fd_ = -1;
  // Receive buffer; [buf_start_, buf_end_) holds bytes not yet consumed (for a pipelining
  // server, possibly the start of the next response).
  std::unique_ptr<char[]> buf_;
  size_t buf_start_ = 0;
  size_t buf_end_ = 0;
  std::string request_head_;  // reused across requests
  char* dest_ = nullptr;      // SendInto's destination while it runs
  size_t dest_size_ = 0;
};

}  // namespace vlake::http
