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
#include <functional>
#include <map>
#include <mutex>
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

  // Data, indexes, loading, search (grpc_data.cc).
  grpc::Status Insert(grpc::ServerContext* ctx, const pm::InsertRequest* req,
                      pm::MutationResult* resp) override;
  grpc::Status Upsert(grpc::ServerContext* ctx, const pm::UpsertRequest* req,
                      pm::MutationResult* resp) override;
  grpc::Status Delete(grpc::ServerContext* ctx, const pm::DeleteRequest* req,
                      pm::MutationResult* resp) override;
  grpc::Status Flush(grpc::ServerContext* ctx, const pm::FlushRequest* req,
                     pm::FlushResponse* resp) override;
  grpc::Status GetFlushState(grpc::ServerContext* ctx, const pm::GetFlushStateRequest* req,
                             pm::GetFlushStateResponse* resp) override;
  grpc::Status CreateIndex(grpc::ServerContext* ctx, const pm::CreateIndexRequest* req,
                           pc::Status* resp) override;
  grpc::Status DescribeIndex(grpc::ServerContext* ctx, const pm::DescribeIndexRequest* req,
                             pm::DescribeIndexResponse* resp) override;
  grpc::Status DropIndex(grpc::ServerContext* ctx, const pm::DropIndexRequest* req,
                         pc::Status* resp) override;
  grpc::Status GetIndexState(grpc::ServerContext* ctx, const pm::GetIndexStateRequest* req,
                             pm::GetIndexStateResponse* resp) override;
  grpc::Status LoadCollection(grpc::ServerContext* ctx, const pm::LoadCollectionRequest* req,
                              pc::Status* resp) override;
  grpc::Status ReleaseCollection(grpc::ServerContext* ctx,
                                 const pm::ReleaseCollectionRequest* req,
                                 pc::Status* resp) override;
  grpc::Status GetLoadState(grpc::ServerContext* ctx, const pm::GetLoadStateRequest* req,
                            pm::GetLoadStateResponse* resp) override;
  grpc::Status GetLoadingProgress(grpc::ServerContext* ctx,
                                  const pm::GetLoadingProgressRequest* req,
                                  pm::GetLoadingProgressResponse* resp) override;
  // Partitions (grpc_partitions.cc, partitions.h).
  grpc::Status CreatePartition(grpc::ServerContext* ctx, const pm::CreatePartitionRequest* req,
                               pc::Status* resp) override;
  grpc::Status DropPartition(grpc::ServerContext* ctx, const pm::DropPartitionRequest* req,
                             pc::Status* resp) override;
  grpc::Status HasPartition(grpc::ServerContext* ctx, const pm::HasPartitionRequest* req,
                            pm::BoolResponse* resp) override;
  grpc::Status ShowPartitions(grpc::ServerContext* ctx, const pm::ShowPartitionsRequest* req,
                              pm::ShowPartitionsResponse* resp) override;
  grpc::Status LoadPartitions(grpc::ServerContext* ctx, const pm::LoadPartitionsRequest* req,
                              pc::Status* resp) override;
  grpc::Status ReleasePartitions(grpc::ServerContext* ctx,
                                 const pm::ReleasePartitionsRequest* req,
                                 pc::Status* resp) override;
  grpc::Status GetPartitionStatistics(grpc::ServerContext* ctx,
                                      const pm::GetPartitionStatisticsRequest* req,
                                      pm::GetPartitionStatisticsResponse* resp) override;
  grpc::Status Search(grpc::ServerContext* ctx, const pm::SearchRequest* req,
                      pm::SearchResults* resp) override;
  grpc::Status Query(grpc::ServerContext* ctx, const pm::QueryRequest* req,
                     pm::QueryResults* resp) override;

 private:
  // The caller, or the gRPC status to answer (UNAUTHENTICATED); checks `dbname` into *db
  // (a not-OK status when the database does not exist).
  Result<vectordb::Caller> Authenticate(grpc::ServerContext* ctx, grpc::Status* reply,
                                        Status* db) const;
  // Ok when `caller` may use collection `name`; NotFound / AccessDenied otherwise.
  Status CheckOwner(const vectordb::Caller& caller, const std::string& name) const;
  // CheckOwner, then `op` when it passed: the first failure.
  Status IfOwner(const vectordb::Caller& caller, const std::string& name,
                 const std::function<Status()>& op) const;
  // The collection's description when `caller` may use it.
  Result<vectordb::CollectionInfo> OwnedInfo(const vectordb::Caller& caller,
                                             const std::string& name) const;
  // The collection's schema when `caller` may use it and each of `partitions` exists ("" is
  // _default).
  Result<vector::CollectionSchema> Usable(const vectordb::Caller& caller, const std::string& name,
                                          const std::vector<std::string>& partitions = {}) const;
  // Insert and Upsert.
  grpc::Status Write(grpc::ServerContext* ctx, const std::string& name,
                     const std::string& partition,
                     const google::protobuf::RepeatedPtrField<::milvus::proto::schema::FieldData>&
                         fields,
                     uint32_t num_rows, bool upsert, pm::MutationResult* resp);
  // The index of the collection as DescribeIndex reports it (IndexNotExist when none).
  Status DescribeIndexOf(const std::string& name, pm::IndexDescription* out) const;

  vectordb::VectorEngine* engine_;
  const vectordb::ApiAuthenticator* auth_;
  std::atomic<int64_t> next_identifier_{1};
  mutable std::mutex jobs_mu_;
  std::map<std::string, std::string> last_job_;  // collection -> its latest index job id

};

}  // namespace vlake::milvus
