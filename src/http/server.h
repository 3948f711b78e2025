// HTTP/1.1 server: blocking sockets, one thread per connection, keep-alive, pipelining-safe,
// chunked request bodies, Expect: 100-continue, zero-copy file bodies via sendfile(2).
//
// Why thread-per-connection: S3 clients keep few long-lived connections and do large
// streaming transfers; a blocking thread per connection keeps the per-request code straight-line
// (hash while reading, write while hashing) with bounded buffers. Connections are capped
// (max_connections); beyond it new connections get 503 and are closed.
//
// Lifecycle: Start() binds and spawns the accept thread; Stop() stops accepting, closes idle
// keep-alive connections, waits up to drain_timeout_ms for in-flight requests to finish, then
// shuts the rest down. The handler must be thread-safe; it is never called after Stop returns.
//
// Thread-safety: Start/Stop from one controlling thread; handler from connection threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/status.h"
#include "http/body.h"
#include "http/request.h"

namespace vlake::http {

struct ServerOptions {
  std::string host = "127.0.0.1";  // bind address
  uint16_t port = 9000;            // 0 picks a free port (see HttpServer::port())
  int max_connections = 1024;
  size_t max_header_bytes = 64 * 1024;  // request line + headers; larger -> 431
  int header_timeout_ms = 30'000;       // first byte to end of headers
  int idle_timeout_ms = 60'000;         // keep-alive wait for the next request
  int io_timeout_ms = 60'000;           // a stalled body read or write
  int drain_timeout_ms = 30'000;        // Stop(): wait this long for in-flight requests
  // A header, idle or io timeout <= 0 means no limit.
};

// Called once per request. `body` yields the request payload; the handler need not drain it
// (the server drains small remainders or closes the connection).
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

 private:
  struct Connection;
  void AcceptLoop();
  void Serve(std::shared_ptr<Connection> conn);

  ServerOptions options_;
  Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::shared_ptr<Connection>> connections_;  // guarded by mu_
  int live_threads_ = 0;                               // guarded by mu_
};

}  // namespace vlake::http
