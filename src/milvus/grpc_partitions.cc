// MilvusGrpcService's partition RPCs (grpc_service.h) over partitions.h.
#include "milvus/grpc_auth.h"
#include "milvus/grpc_service.h"
#include "milvus/partitions.h"
#include "milvus/schema_map.h"

namespace vlake::milvus {

grpc::Status MilvusGrpcService::CreatePartition(grpc::ServerContext* ctx,
                                                const pm::CreatePartitionRequest* req,
                                                pc::Status* resp) {
  VLAKE_MILVUS_AUTH(resp);
  Result<vector::CollectionSchema> schema = Usable(*caller, req->collection_name());
  Status st = schema.ok() ? milvus::CreatePartition(engine_, *schema, req->partition_name())
                          : schema.status();
  FillStatus(st, Missing::kCollection, resp);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::DropPartition(grpc::ServerContext* ctx,
                                              const pm::DropPartitionRequest* req,
                                              pc::Status* resp) {
  VLAKE_MILVUS_AUTH(resp);
  Result<vector::CollectionSchema> schema = Usable(*caller, req->collection_name());
  Status st = schema.ok() ? milvus::DropPartition(engine_, *schema, req->partition_name())
                          : schema.status();
  FillStatus(st, Missing::kCollection, resp);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::HasPartition(grpc::ServerContext* ctx,
                                             const pm::HasPartitionRequest* req,
                                             pm::BoolResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  Status st = CheckOwner(*caller, req->collection_name());
  if (st.ok()) {
    Status found = CheckPartitions(engine_, req->collection_name(), {req->partition_name()});
    if (found.ok() || found.code() == Code::kNotFound) {
      resp->set_value(found.ok() && !req->partition_name().empty());
      return grpc::Status::OK;
    }
    st = found;
  }
  FillStatus(st, Missing::kCollection, resp->mutable_status());
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::ShowPartitions(grpc::ServerContext* ctx,
                                               const pm::ShowPartitionsRequest* req,
                                               pm::ShowPartitionsResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  Status st = CheckOwner(*caller, req->collection_name());
  Result<std::vector<PartitionInfo>> list =
      st.ok() ? ListPartitions(engine_, req->collection_name())
              : Result<std::vector<PartitionInfo>>(st);
  if (!list.ok()) {
    FillStatus(list.status(), Missing::kCollection, resp->mutable_status());
    return grpc::Status::OK;
  }
  const auto& wanted = req->partition_names();
  for (const PartitionInfo& p : *list) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), p.name) == wanted.end()) continue;
    resp->add_partition_names(p.name);
    resp->add_partitionids(p.id);
    resp->add_created_timestamps(p.created_ms << 18);  // hybrid: physical ms << 18
    resp->add_created_utc_timestamps(p.created_ms);
  }
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::LoadPartitions(grpc::ServerContext* ctx,
                                               const pm::LoadPartitionsRequest* req,
                                               pc::Status* resp) {
  VLAKE_MILVUS_AUTH(resp);
  const std::string& name = req->collection_name();
  // vlake loads whole collections: loading partitions loads the collection.
  Result<vector::CollectionSchema> schema =
      Usable(*caller, name, {req->partition_names().begin(), req->partition_names().end()});
  FillStatus(schema.ok() ? engine_->Load(name) : schema.status(), Missing::kCollection, resp);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::ReleasePartitions(grpc::ServerContext* ctx,
                                                  const pm::ReleasePartitionsRequest* req,
                                                  pc::Status* resp) {
  VLAKE_MILVUS_AUTH(resp);
  // The partitions stay in memory with the rest of the collection (ReleaseCollection frees it).
  Result<vector::CollectionSchema> schema =
      Usable(*caller, req->collection_name(),
             {req->partition_names().begin(), req->partition_names().end()});
  FillStatus(schema.status(), Missing::kCollection, resp);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::GetPartitionStatistics(
    grpc::ServerContext* ctx, const pm::GetPartitionStatisticsRequest* req,
    pm::GetPartitionStatisticsResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  const std::string& name = req->collection_name();
  Result<vector::CollectionSchema> schema = Usable(*caller, name, {req->partition_name()});
  Result<std::string> filter = schema.ok() ? WithPartitions(*schema, "true", {req->partition_name()})
                                           : Result<std::string>(schema.status());
  Result<int64_t> rows = Status(Code::kInternal, "not counted");
  if (!filter.ok()) {
    rows = filter.status();
  } else {
    vectordb::QueryRequest qr;
    qr.filter = *filter;
    qr.limit = std::numeric_limits<int64_t>::max();
    Result<vectordb::QueryResponse> found = engine_->Query(name, qr);
    rows = found.ok() ? Result<int64_t>(static_cast<int64_t>(found->ids.size()))
                      : Result<int64_t>(found.status());
  }
  if (!rows.ok()) {
    FillStatus(rows.status(), Missing::kCollection, resp->mutable_status());
    return grpc::Status::OK;
  }
  auto* kv = resp->add_stats();
  kv->set_key("row_count");
  kv->set_value(std::to_string(*rows));
  return grpc::Status::OK;
}

}  // namespace vlake::milvus
