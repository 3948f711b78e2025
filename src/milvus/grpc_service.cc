#include "milvus/grpc_service.h"

#include <algorithm>

#include "common/encoding.h"
#include "milvus/partitions.h"
#include "milvus/schema_map.h"
#include "milvus/status_map.h"

namespace vlake::milvus {

namespace {

std::string Metadata(const grpc::ServerContext* ctx, const char* key) {
  auto range = ctx->client_metadata().equal_range(key);
  if (range.first == range.second) return "";
  return std::string(range.first->second.data(), range.first->second.size());
}

}  // namespace

Result<vectordb::Caller> MilvusGrpcService::Authenticate(grpc::ServerContext* ctx,
                                                         grpc::Status* reply,
                                                         Status* db) const {
  const std::string token = Metadata(ctx, "authorization");
  Status why(Code::kUnauthenticated,
             "credentials required: metadata authorization = base64(ACCESS_KEY:SECRET_KEY)");
  if (!token.empty()) {
    std::optional<std::string> decoded = Base64Decode(token);
    const size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon != std::string::npos) {
      Result<vectordb::Caller> caller =
          auth_->AuthenticateKey(std::string_view(*decoded).substr(0, colon),
                                 std::string_view(*decoded).substr(colon + 1));
      if (caller.ok()) {
        const std::string dbname = Metadata(ctx, "dbname");
        *db = dbname.empty() || dbname == "default"
                  ? Status::Ok()
                  : Status(Code::kNotFound, "database " + dbname +
                                                " not found: vlake has only the default database");
        return caller;
      }
      why = caller.status();
    } else {
      why = Status(Code::kUnauthenticated, "authorization must be base64(ACCESS_KEY:SECRET_KEY)");
    }
  }
  *reply = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, why.message());
  return why;
}

Status MilvusGrpcService::CheckOwner(const vectordb::Caller& caller,
                                     const std::string& name) const {
  Result<std::string> owner = engine_->Owner(name);
  if (!owner.ok()) {
    if (owner.status().code() == Code::kNotFound) {
      return Status(Code::kNotFound, "collection not found[collection=" + name + "]");
    }
    return owner.status();
  }
  if (!auth_->Owns(caller, *owner)) {
    return Status(Code::kAccessDenied, "collection " + name + " belongs to another user");
  }
  return Status::Ok();
}

#include "milvus/grpc_auth.h"  // VLAKE_MILVUS_AUTH

Status MilvusGrpcService::IfOwner(const vectordb::Caller& caller, const std::string& name,
                                  const std::function<Status()>& op) const {
  VLAKE_RETURN_IF_ERROR(CheckOwner(caller, name));
  return op();
}

Result<vectordb::CollectionInfo> MilvusGrpcService::OwnedInfo(const vectordb::Caller& caller,
                                                              const std::string& name) const {
  VLAKE_RETURN_IF_ERROR(CheckOwner(caller, name));
  return engine_->Describe(name);
}

grpc::Status MilvusGrpcService::Connect(grpc::ServerContext* ctx, const pm::ConnectRequest*,
                                        pm::ConnectResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  resp->set_identifier(next_identifier_.fetch_add(1));
  auto* info = resp->mutable_server_info();
  info->set_build_tags("vlake");
  info->set_deploy_mode("STANDALONE");
  (*info->mutable_reserved())["vlake_api"] = kMilvusApiVersion;
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::GetVersion(grpc::ServerContext* ctx, const pm::GetVersionRequest*,
                                           pm::GetVersionResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  resp->set_version(kMilvusApiVersion);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::CheckHealth(grpc::ServerContext*, const pm::CheckHealthRequest*,
                                            pm::CheckHealthResponse* resp) {
  resp->set_ishealthy(true);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::ListDatabases(grpc::ServerContext* ctx,
                                              const pm::ListDatabasesRequest*,
                                              pm::ListDatabasesResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  resp->add_db_names("default");
  resp->add_created_timestamp(0);
  resp->add_db_ids(1);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::CreateCollection(grpc::ServerContext* ctx,
                                                 const pm::CreateCollectionRequest* req,
                                                 pc::Status* resp) {
  VLAKE_MILVUS_AUTH(resp);
  ::milvus::proto::schema::CollectionSchema wire;
  if (!wire.ParseFromString(req->schema())) {
    FillStatus(Status(Code::kInvalidArgument, "schema is not a serialized CollectionSchema"),
               Missing::kOther, resp);
    return grpc::Status::OK;
  }
  Result<vector::CollectionSchema> schema = FromMilvusSchema(wire, req->collection_name());
  if (!schema.ok()) {
    FillStatus(schema.status(), Missing::kOther, resp);
    return grpc::Status::OK;
  }
  vectordb::CollectionOptions options;
  options.owner = caller->user_id;
  Status st = engine_->CreateCollection(*schema, options);
  if (st.code() == Code::kAlreadyExists) {
    // As Milvus: creating an existing collection again with the same schema succeeds.
    Result<vector::CollectionSchema> existing = engine_->Schema(req->collection_name());
    Status owned = CheckOwner(*caller, req->collection_name());
    if (existing.ok() && owned.ok() &&
        ToMilvusSchema(*existing).SerializeAsString() == ToMilvusSchema(*schema).SerializeAsString()) {
      st = Status::Ok();
    } else {
      st = Status(Code::kAlreadyExists, "collection " + req->collection_name() +
                                            " already exists with another schema");
    }
  }
  FillStatus(st, Missing::kOther, resp);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::DropCollection(grpc::ServerContext* ctx,
                                               const pm::DropCollectionRequest* req,
                                               pc::Status* resp) {
  VLAKE_MILVUS_AUTH(resp);
  const std::string& name = req->collection_name();
  FillStatus(IfOwner(*caller, name, [&] { return engine_->DropCollection(name); }),
             Missing::kCollection, resp);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::HasCollection(grpc::ServerContext* ctx,
                                              const pm::HasCollectionRequest* req,
                                              pm::BoolResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  Status st = CheckOwner(*caller, req->collection_name());
  if (st.code() == Code::kNotFound) {
    resp->set_value(false);
    return grpc::Status::OK;
  }
  resp->set_value(st.ok());
  FillStatus(st, Missing::kCollection, resp->mutable_status());
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::DescribeCollection(grpc::ServerContext* ctx,
                                                   const pm::DescribeCollectionRequest* req,
                                                   pm::DescribeCollectionResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  const std::string& name = req->collection_name();
  Status st = CheckOwner(*caller, name);
  Result<vector::CollectionSchema> schema =
      st.ok() ? engine_->Schema(name) : Result<vector::CollectionSchema>(st);
  if (!schema.ok()) {
    FillStatus(schema.status(), Missing::kCollection, resp->mutable_status());
    return grpc::Status::OK;
  }
  *resp->mutable_schema() = ToMilvusSchema(*schema);
  resp->set_collectionid(StableId(name));
  resp->set_collection_name(name);
  resp->set_db_name("default");
  resp->set_shards_num(1);
  Result<std::vector<PartitionInfo>> partitions = ListPartitions(engine_, name);
  resp->set_num_partitions(partitions.ok() ? static_cast<int64_t>(partitions->size()) : 1);
  // Growing rows are searchable as soon as their insert is acknowledged.
  resp->set_consistency_level(pc::Strong);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::ShowCollections(grpc::ServerContext* ctx,
                                                const pm::ShowCollectionsRequest* req,
                                                pm::ShowCollectionsResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  Result<std::vector<std::string>> names = engine_->ListCollections();
  if (!names.ok()) {
    FillStatus(names.status(), Missing::kOther, resp->mutable_status());
    return grpc::Status::OK;
  }
  const auto& wanted = req->collection_names();
  for (const std::string& name : *names) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), name) == wanted.end()) continue;
    if (!CheckOwner(*caller, name).ok()) continue;
    resp->add_collection_names(name);
    resp->add_collection_ids(StableId(name));
    resp->add_created_timestamps(0);
    resp->add_created_utc_timestamps(0);
    resp->add_inmemory_percentages(100);
    resp->add_query_service_available(true);
  }
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::GetCollectionStatistics(
    grpc::ServerContext* ctx, const pm::GetCollectionStatisticsRequest* req,
    pm::GetCollectionStatisticsResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  Result<vectordb::CollectionInfo> info = OwnedInfo(*caller, req->collection_name());
  if (!info.ok()) {
    FillStatus(info.status(), Missing::kCollection, resp->mutable_status());
    return grpc::Status::OK;
  }
  auto* kv = resp->add_stats();
  kv->set_key("row_count");
  kv->set_value(std::to_string(info->rows));
  return grpc::Status::OK;
}

}  // namespace vlake::milvus
