// The gRPC server of the vector port. It listens on no port of its own: the HTTP server of the
// vector port hands it each connection that opens with the HTTP/2 preface
// (http::ServerOptions::http2_handoff -> Adopt), so gRPC and the HTTP APIs share one port, as
// Milvus does on 19530.
//
// Settings a Milvus client needs: messages up to kMaxMessageBytes (batch inserts are large),
// and keep-alive pings accepted from idle clients every 5 s or more, without strikes.
//
// Thread-safety: Adopt may be called from any thread; Shutdown once, from the owner.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "vlake/status.h"

namespace vlake::milvus {

inline constexpr int kMaxMessageBytes = 512 << 20;

class GrpcFront {
 public:
  // Starts a server for `service` (which must outlive the front).
  static Result<std::unique_ptr<GrpcFront>> Start(grpc::Service* service);
  ~GrpcFront();  // Shutdown()
  GrpcFront(const GrpcFront&) = delete;
  GrpcFront& operator=(const GrpcFront&) = delete;

  // A channel to this server inside the process (the REST v2 translation uses it).
  std::shared_ptr<grpc::Channel> InProcessChannel();
  // Serves one accepted, connected socket; the front owns it from now on.
  void Adopt(int fd);
  // Ends every call (deadline 5 s) and closes the adopted connections.
  void Shutdown();

 private:
  GrpcFront() = default;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace vlake::milvus
