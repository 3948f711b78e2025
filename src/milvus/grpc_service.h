// milvus.proto.milvus.MilvusService over the vector database's service layer (VectorEngine):
// what vlake serves of it is declared in proto/milvus.proto and listed in docs/milvus-compat.md;
// every other RPC answers UNIMPLEMENTED.
//
// Auth: every RPC but CheckHealth needs the `authorization` metadata (base64 of
// "user:password", user = a vlake access key, password = its secret key) and answers gRPC
// UNAUTHENTICATED without it, as Milvus with authorization enabled does. Collections are their
// creator's: another user's answer PermissionDenied, and ShowCollections lists one's own.
// `dbname` metadata: only "default" (or none) exists.
//
// Thread-safety: the RPC methods run on gRPC's threads concurrently; the engine is thread-safe.
#pragma once

#include <atomic>
#include <string>

#include "milvus.grpc.pb.h"
#include "vectordb/api_auth.h"
#include "vectordb/engine.h"

namespace vlake::milvus {

namespace pm = ::milvus::proto::milvus;
namespace pc = ::milvus::proto::common;

// The Milvus version vlake answers GetVersion with (the API level it speaks).
inline constexpr char kMilvusApiVersion[] = "v2.5.0";

class MilvusGrpcService final : public pm::MilvusService::Service {
 public:
  MilvusGrpcService(vectordb::VectorEngine* engine, const vectordb::ApiAuthenticator* auth)
      : engine_(engine), auth_(auth) {}

  grpc::Status Connect(grpc::ServerContext* ctx, const pm::ConnectRequest* req,
                       pm::ConnectResponse* resp) override;
  grpc::Status GetVersion(grpc::ServerContext* ctx, const pm::GetVersionRequest* req,
                          pm::GetVersionResponse* resp) override;
  grpc::Status CheckHealth(grpc::ServerContext* ctx, const pm::CheckHealthRequest* req,
                           pm::CheckHealthResponse* resp) override;
  grpc::Status ListDatabases(grpc::ServerContext* ctx, const pm::ListDatabasesRequest* req,
                             pm::ListDatabasesResponse* resp) override;
  grpc::Status CreateCollection(grpc::ServerContext* ctx, const pm::CreateCollectionRequest* req,
                                pc::Status* resp) override;
  grpc::Status DropCollection(grpc::ServerContext* ctx, const pm::DropCollectionRequest* req,
                              pc::Status* resp) override;
  grpc::Status HasCollection(grpc::ServerContext* ctx, const pm::HasCollectionRequest* req,
                             pm::BoolResponse* resp) override;
  grpc::Status DescribeCollection(grpc::ServerContext* ctx,
                                  const pm::DescribeCollectionRequest* req,
                                  pm::DescribeCollectionResponse* resp) override;
  grpc::Status ShowCollections(grpc::ServerContext* ctx, const pm::ShowCollectionsRequest* req,
                               pm::ShowCollectionsResponse* resp) override;
  grpc::Status GetCollectionStatistics(grpc::ServerContext* ctx,
                                       const pm::GetCollectionStatisticsRequest* req,
                                       pm::GetCollectionStatisticsResponse* resp) override;

 private:
  // The caller, or the gRPC status to answer (UNAUTHENTICATED); checks `dbname` into *db
  // (a not-OK status when the database does not exist).
  Result<vectordb::Caller> Authenticate(grpc::ServerContext* ctx, grpc::Status* reply,
                                        Status* db) const;
  // Ok when `caller` may use collection `name`; NotFound / AccessDenied otherwise.
  Status CheckOwner(const vectordb::Caller& caller, const std::string& name) const;

  vectordb::VectorEngine* engine_;
  const vectordb::ApiAuthenticator* auth_;
  std::atomic<int64_t> next_identifier_{1};
};

}  // namespace vlake::milvus
