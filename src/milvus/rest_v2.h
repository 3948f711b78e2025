// Milvus's RESTful API v2 (`POST /v2/vectordb/...`, JSON) on the vector port, as a translation
// onto the gRPC service (grpc_service.h) through an in-process channel: one implementation of
// every rule (auth, owners, schemas, errors) for both wires. docs/milvus-compat.md lists the
// endpoints served.
//
// Auth: `Authorization: Bearer ACCESS_KEY:SECRET_KEY` (the plain user:password Milvus clients
// send); without it HTTP 401 {"code":1800}. Replies are HTTP 200 {"code":0,"data":...}, or
// {"code":<Milvus code>,"message":...} on error. Request bodies are JSON whatever their
// Content-Type (the Node SDK's HttpClient sends text/plain).
//
// Thread-safety: Handle runs on many HTTP threads at once.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "http/body.h"
#include "http/request.h"
#include "milvus.grpc.pb.h"

namespace vlake::milvus {

class MilvusRestV2 {
 public:
  explicit MilvusRestV2(std::shared_ptr<grpc::Channel> in_process)
      : stub_(::milvus::proto::milvus::MilvusService::NewStub(std::move(in_process))) {}

  static bool Handles(const http::HttpRequest& request) {
    return request.path.rfind("/v2/vectordb/", 0) == 0;
  }
  http::HttpResponse Handle(http::HttpRequest& request, http::BodyReader& body) const;

 private:
  http::HttpResponse Serve(http::HttpRequest& request, http::BodyReader& body) const;
  std::unique_ptr<::milvus::proto::milvus::MilvusService::Stub> stub_;
};

}  // namespace vlake::milvus
