// HTTP/1.1 server: blocking sockets, one thread per connection, keep-alive, pipelining-safe,
// chunked request bodies, Expect: 100-continue, zero-copy file bodies via sendfile(2).
//
// Why thread-per-connection: S3 clients keep few long-lived connections and do large
// streaming transfers; a blocking thread per connection keeps the per-request code straight-line
// (hash while reading, write while hashing) with bounded buffers. Connections are capped
// (max_connections); beyond it new connections get 503 and are closed.
//
// Hardening against clients that hold threads without doing work: a connection none of whose
// requests passed authentication (HttpRequest::authenticated, set by the handler) is bounded
// separately, in all and per peer address; a new one over those limits closes the oldest such
// connection that is between requests (or, when all are inside a request, gets 503). A request
// head must arrive within header_timeout_ms, a body at min_body_rate_bytes_per_s, and an idle
// keep-alive connection closes after idle_timeout_ms; so one byte every few seconds cannot
// keep a thread for long.
//
// Lifecycle: Start() binds and spawns the accept thread; Stop() stops accepting, closes idle
// keep-alive connections, waits up to drain_timeout_ms for in-flight requests to finish, then
// shuts the rest down. The handler must be thread-safe; it is never called after Stop returns.
//
// TLS: with ServerOptions::tls every connection starts with a TLS handshake (in its own thread,
// never the accept thread); the rest is unchanged.
//
// Thread-safety: Start/Stop from one controlling thread; handler from connection threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/status.h"
#include "http/body.h"
#include "http/request.h"

namespace vlake::http {

class TlsContext;

struct ServerOptions {
  std::string host = "127.0.0.1";  // bind address
  uint16_t port = 9000;            // 0 picks a free port (see HttpServer::port())
  int max_connections = 1024;
  // Connections that have not authenticated yet (no request with HttpRequest::authenticated):
  // at most this many in all, and this many from one peer address. Over a limit, the oldest
  // such connection that waits between requests (or inside a request head) is closed to make
  // room, so sockets opened and left idle or dribbling cannot lock out a signing client; when
  // none is, the new connection gets `reject` (503) and is closed. <= 0: no limit.
  int max_unauthenticated_connections = 256;
  int max_unauthenticated_per_peer = 64;
  size_t max_header_bytes = 64 * 1024;  // request line + headers; larger -> 431
  // The whole request head, from the connection's start (first request) or the head's first
  // byte (later requests) to its end. Real clients send a head in one write.
  int header_timeout_ms = 15'000;
  int idle_timeout_ms = 60'000;   // keep-alive wait for the next request
  int io_timeout_ms = 60'000;     // a stalled body read or write
  int drain_timeout_ms = 30'000;  // Stop(): wait this long for in-flight requests
  // A header, idle or io timeout <= 0 means no limit.

  // Minimum request body rate: after body_rate_grace_ms spent waiting for body bytes, each
  // further body_rate_window_ms of waiting must bring min_body_rate_bytes_per_s * window bytes,
  // else the read fails with kRequestTimeout (400 RequestTimeout) and the connection closes.
  // Only time blocked on the socket counts, never time the handler spends between reads, so a
  // slow disk or a slow handler cannot trip it. The default (1 KiB/s, 8 kbit/s) is below any
  // real link; 0 turns the check off (io_timeout_ms still bounds each stall).
  uint64_t min_body_rate_bytes_per_s = 1024;
  int body_rate_grace_ms = 10'000;
  int body_rate_window_ms = 10'000;

  // The reply to a connection refused over the unauthenticated limits (a kUnavailable status);
  // the service layer renders it from its error table. Unset: a plain-text 503.
  std::function<HttpResponse(const Status&)> reject;

  // Serve HTTPS with this context (TlsContext::ForServer); null: plain HTTP. The handshake
  // must finish within header_timeout_ms. File bodies are then read and encrypted instead of
  // sent with sendfile(2), and refused connections are closed without a reply.
  std::shared_ptr<const TlsContext> tls;

  // One port for HTTP/1.1 and HTTP/2 (gRPC), as Milvus serves both on 19530: a plain-text
  // connection whose first bytes are the HTTP/2 client preface ("PRI * HTTP/2.0...") is handed
  // to this function, which then owns the socket (e.g. grpc::AddInsecureChannelFromFd), and is
  // no longer the HTTP server's. Unset (or with TLS): every connection is HTTP/1.1.
  std::function<void(int fd)> http2_handoff;
};

// Called once per request. `body` yields the request payload; the handler need not drain it
// (the server drains small remainders or closes the connection). A handler sets
// request.authenticated when the request passed authentication.
using Handler = std::function<HttpResponse(HttpRequest& request, BodyReader& body)>;

class HttpServer {
 public:
  HttpServer(ServerOptions options, Handler handler);
  ~HttpServer();  // calls Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status Start();
  void Stop();
  uint16_t port() const { return port_; }  // the bound port, after Start
  int in_flight() const { return in_flight_.load(); }
  // Connections open now that have not authenticated (see ServerOptions).
  int unauthenticated_connections() const;

 private:
  struct Connection;
  void AcceptLoop();
  void Serve(std::shared_ptr<Connection> conn);
  void ServeHttp1(const std::shared_ptr<Connection>& conn);  // may throw; Serve catches
  // Makes room for one more unauthenticated connection from `peer_host`; false when none can
  // be closed. Caller holds mu_.
  bool AdmitUnauthenticated(const std::string& peer_host);
  void ForgetUnauthenticated(Connection& conn);  // caller holds mu_

  ServerOptions options_;
  Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::shared_ptr<Connection>> connections_;    // guarded by mu_
  int live_threads_ = 0;                                 // guarded by mu_
  int unauthenticated_ = 0;                              // guarded by mu_
  std::map<std::string, int> unauthenticated_per_peer_;  // guarded by mu_
  uint64_t next_connection_seq_ = 0;                     // guarded by mu_
  std::string reject_bytes_;                             // built by Start
};

}  // namespace vlake::http
