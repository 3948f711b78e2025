// Fuzzes the Milvus gRPC service (src/milvus), and the REST v2 translation onto it, end to end through an in-process gRPC channel,
// over an engine on an in-memory object store that holds two collections: "c" (Int64 key, a
// 4-d FloatVector, a VarChar and a Double) and "d" as the Milvus API makes one (a VarChar key,
// Int8, Float, JSON, the dynamic field, a partition "p"). The first input byte picks the RPC, the second the
// credentials (valid, wrong, none) and the database (default, unknown); the rest is parsed as
// that RPC's request message (whatever protobuf makes of it), so schemas, column data,
// placeholder groups, index and search parameters and expressions all get arbitrary bytes.
//
// Inputs whose first byte is >= 200 go to REST v2 instead (the second byte picks the endpoint,
// the rest is the JSON body): HTTP 200 or, without credentials, 401.
//
// Properties: no crash or sanitizer report; without valid credentials every RPC but
// CheckHealth answers UNAUTHENTICATED; with them, gRPC answers OK (application errors travel in
// common.Status, never as a failed call, which the SDKs would retry) and a non-zero error code
// always comes with a reason.
#include <google/protobuf/stubs/logging.h>
#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/encoding.h"
#include "milvus.grpc.pb.h"
#include "milvus/grpc_front.h"  // kMaxMessageBytes
#include "http/body.h"
#include "milvus/grpc_service.h"
#include "milvus/partitions.h"
#include "milvus/schema_map.h"
#include "milvus/rest_v2.h"
#include "s3/users.h"
#include "vectordb/api_auth.h"
#include "vectordb/engine.h"
#include "vectordb/object_store_testing.h"

namespace {

using namespace vlake;
namespace pm = ::milvus::proto::milvus;
namespace pc = ::milvus::proto::common;

constexpr char kKey[] = "AKIDFUZZ000000000001";
constexpr char kSecret[] = "fuzz-secret-0123456789";

struct World {
  std::unique_ptr<vectordb::VectorEngine> engine;
  std::unique_ptr<vectordb::ApiAuthenticator> auth;
  std::unique_ptr<vlake::milvus::MilvusGrpcService> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<pm::MilvusService::Stub> stub;
  std::unique_ptr<vlake::milvus::MilvusRestV2> rest;
  int64_t runs = 0;
};

void Reset(World* w) {
  w->rest.reset();
  w->stub.reset();
  if (w->server) w->server->Shutdown();
  w->server.reset();
  w->service.reset();
  w->engine.reset();
  vectordb::EngineOptions options;
  options.background_flush = false;
  auto engine =
      vectordb::VectorEngine::Open(std::make_unique<vectordb::MemoryObjectStore>(), options);
  if (!engine.ok()) std::abort();
  w->engine = std::move(*engine);
  vector::CollectionSchema schema;
  schema.name = "c";
  schema.fields = {{"id", vector::FieldType::kInt64, 0, true, false},
                   {"v", vector::FieldType::kFloatVector, 4, false, false},
                   {"s", vector::FieldType::kVarchar, 0, false, false},
                   {"x", vector::FieldType::kDouble, 0, false, false}};
  vectordb::CollectionOptions co;
  co.owner = "fuzzer";
  if (!w->engine->CreateCollection(schema, co).ok()) std::abort();
  // "d" as the Milvus API makes one: a VarChar key over a hidden row id, the narrow types, JSON,
  // the dynamic field and the partition column, with a partition "p".
  ::milvus::proto::schema::CollectionSchema wire;
  wire.set_enable_dynamic_field(true);
  auto add = [&](const char* name, ::milvus::proto::schema::DataType type, const char* param,
                 const char* value) {
    auto* f = wire.add_fields();
    f->set_name(name);
    f->set_data_type(type);
    if (param != nullptr) {
      auto* kv = f->add_type_params();
      kv->set_key(param);
      kv->set_value(value);
    }
    return f;
  };
  add("k", ::milvus::proto::schema::VarChar, "max_length", "8")->set_is_primary_key(true);
  add("v", ::milvus::proto::schema::FloatVector, "dim", "4");
  add("i8", ::milvus::proto::schema::Int8, nullptr, nullptr);
  add("f", ::milvus::proto::schema::Float, nullptr, nullptr);
  add("j", ::milvus::proto::schema::JSON, nullptr, nullptr);
  auto milvus_schema = vlake::milvus::FromMilvusSchema(wire, "d");
  if (!milvus_schema.ok() || !w->engine->CreateCollection(*milvus_schema, co).ok()) std::abort();
  if (!vlake::milvus::CreatePartition(w->engine.get(), *milvus_schema, "p").ok()) std::abort();
  s3::UserDirectory users({s3::User{kKey, kSecret, "fuzzer", "Fuzzer"}});
  w->auth = std::make_unique<vectordb::ApiAuthenticator>(std::move(users), "fuzzer");
  w->service = std::make_unique<vlake::milvus::MilvusGrpcService>(w->engine.get(), w->auth.get());
  grpc::ServerBuilder builder;
  builder.RegisterService(w->service.get());
  builder.SetMaxReceiveMessageSize(vlake::milvus::kMaxMessageBytes);
  w->server = builder.BuildAndStart();
  if (w->server == nullptr) std::abort();
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(vlake::milvus::kMaxMessageBytes);
  w->stub = pm::MilvusService::NewStub(w->server->InProcessChannel(args));
  w->rest = std::make_unique<vlake::milvus::MilvusRestV2>(w->server->InProcessChannel(args));
  w->runs = 0;
}

// Sends `bytes` parsed as Req to the RPC `call`; checks the properties above.
template <typename Req, typename Resp, typename Call>
void Send(World* w, const std::string& bytes, bool valid, bool health, Call call,
          const pc::Status* (*status_of)(const Resp&)) {
  Req req;
  // Bytes protobuf itself refuses (e.g. invalid UTF-8 in a string field) are refused by the
  // server's gRPC layer too: then only "no crash" is checked.
  const bool parsed = req.ParseFromString(bytes);
  Resp resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const grpc::Status st = call(w->stub.get(), &ctx, req, &resp);
  if (!parsed) return;
  if (!valid && !health) {
    if (st.error_code() != grpc::StatusCode::UNAUTHENTICATED) std::abort();
    return;
  }
  if (!st.ok()) {
    // Only the message size limit may stop a call with valid credentials.
    if (st.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) std::abort();
    return;
  }
  const pc::Status* s = status_of(resp);
  if (s != nullptr && (s->error_code() != pc::Success || s->code() != 0) && s->reason().empty()) {
    std::fprintf(stderr, "error without a reason: %s\n", s->ShortDebugString().c_str());
    std::abort();
  }
}

template <typename Resp>
const pc::Status* StatusField(const Resp& r) {
  return &r.status();
}
const pc::Status* Itself(const pc::Status& s) { return &s; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = [] {
    google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 etc. would log every run
    auto* world = new World;
    Reset(world);
    return world;
  }();
  if (size < 2) return 0;
  // Bounded state: every collection and row the inputs made goes away now and then.
  if (++w->runs > 500) Reset(w);
  const uint8_t op = data[0];
  const uint8_t who = data[1];
  const std::string bytes(reinterpret_cast<const char*>(data) + 2, size - 2);
  const bool valid = (who % 3) == 0;
  // Metadata is set per call below (ClientContext is per call).
  auto meta = [&](grpc::ClientContext* ctx) {
    if (who % 3 == 0) ctx->AddMetadata("authorization", Base64Encode(std::string(kKey) + ":" + kSecret));
    if (who % 3 == 1) ctx->AddMetadata("authorization", Base64Encode(std::string(kKey) + ":wrong"));
    if ((who / 3) % 4 == 1) ctx->AddMetadata("dbname", "nope");
  };
#define VLAKE_RPC(Method, Req, Resp, health, status_fn)                                       \
  Send<pm::Req, Resp>(                                                                        \
      w, bytes, valid, health,                                                                \
      [&](pm::MilvusService::Stub* stub, grpc::ClientContext* ctx, const pm::Req& r, Resp* o) { \
        meta(ctx);                                                                            \
        return stub->Method(ctx, r, o);                                                       \
      },                                                                                      \
      status_fn)
  if (op >= 200) {
    // REST v2: the second byte picks the endpoint; the rest is the body.
    static const char* const kPaths[] = {
        "collections/create", "collections/describe", "collections/list", "collections/has",
        "collections/drop", "collections/get_stats", "collections/load", "collections/release",
        "collections/get_load_state", "collections/flush", "indexes/create", "indexes/describe",
        "indexes/list", "entities/insert", "entities/delete", "entities/query", "entities/search",
        "entities/upsert", "entities/get", "indexes/drop", "partitions/create", "partitions/drop",
        "partitions/has", "partitions/list", "partitions/get_stats", "partitions/load",
        "partitions/release"};
    http::HttpRequest req;
    req.method = "POST";
    req.path = std::string("/v2/vectordb/") + kPaths[who % (sizeof kPaths / sizeof kPaths[0])];
    req.target = req.path;
    if (op % 2 == 0) {
      req.headers.push_back({"authorization", std::string("Bearer ") + kKey + ":" + kSecret});
    }
    http::StringBodyReader body(bytes);
    http::HttpResponse resp = w->rest->Handle(req, body);
    if (resp.status != 200 && resp.status != 401) std::abort();
    if (op % 2 != 0 && resp.status != 401) std::abort();
    return 0;
  }
  switch (op % 32) {
    case 0: VLAKE_RPC(CreateCollection, CreateCollectionRequest, pc::Status, false, Itself); break;
    case 1: VLAKE_RPC(DropCollection, DropCollectionRequest, pc::Status, false, Itself); break;
    case 2: VLAKE_RPC(HasCollection, HasCollectionRequest, pm::BoolResponse, false, StatusField<pm::BoolResponse>); break;
    case 3: VLAKE_RPC(DescribeCollection, DescribeCollectionRequest, pm::DescribeCollectionResponse, false, StatusField<pm::DescribeCollectionResponse>); break;
    case 4: VLAKE_RPC(ShowCollections, ShowCollectionsRequest, pm::ShowCollectionsResponse, false, StatusField<pm::ShowCollectionsResponse>); break;
    case 5: VLAKE_RPC(GetCollectionStatistics, GetCollectionStatisticsRequest, pm::GetCollectionStatisticsResponse, false, StatusField<pm::GetCollectionStatisticsResponse>); break;
    case 6: VLAKE_RPC(Connect, ConnectRequest, pm::ConnectResponse, false, StatusField<pm::ConnectResponse>); break;
    case 7: VLAKE_RPC(GetVersion, GetVersionRequest, pm::GetVersionResponse, false, StatusField<pm::GetVersionResponse>); break;
    case 8: VLAKE_RPC(CheckHealth, CheckHealthRequest, pm::CheckHealthResponse, true, StatusField<pm::CheckHealthResponse>); break;
    case 9: VLAKE_RPC(Insert, InsertRequest, pm::MutationResult, false, StatusField<pm::MutationResult>); break;
    case 10: VLAKE_RPC(Delete, DeleteRequest, pm::MutationResult, false, StatusField<pm::MutationResult>); break;
    case 11: VLAKE_RPC(Flush, FlushRequest, pm::FlushResponse, false, StatusField<pm::FlushResponse>); break;
    case 12: VLAKE_RPC(CreateIndex, CreateIndexRequest, pc::Status, false, Itself); break;
    case 13: VLAKE_RPC(DescribeIndex, DescribeIndexRequest, pm::DescribeIndexResponse, false, StatusField<pm::DescribeIndexResponse>); break;
    case 14: VLAKE_RPC(GetIndexState, GetIndexStateRequest, pm::GetIndexStateResponse, false, StatusField<pm::GetIndexStateResponse>); break;
    case 15: VLAKE_RPC(LoadCollection, LoadCollectionRequest, pc::Status, false, Itself); break;
    case 16: VLAKE_RPC(ReleaseCollection, ReleaseCollectionRequest, pc::Status, false, Itself); break;
    case 17: VLAKE_RPC(GetLoadState, GetLoadStateRequest, pm::GetLoadStateResponse, false, StatusField<pm::GetLoadStateResponse>); break;
    case 18: VLAKE_RPC(GetLoadingProgress, GetLoadingProgressRequest, pm::GetLoadingProgressResponse, false, StatusField<pm::GetLoadingProgressResponse>); break;
    case 19: VLAKE_RPC(Search, SearchRequest, pm::SearchResults, false, StatusField<pm::SearchResults>); break;
    case 20: VLAKE_RPC(Query, QueryRequest, pm::QueryResults, false, StatusField<pm::QueryResults>); break;
    case 21: VLAKE_RPC(ListDatabases, ListDatabasesRequest, pm::ListDatabasesResponse, false, StatusField<pm::ListDatabasesResponse>); break;
    case 22: VLAKE_RPC(Upsert, UpsertRequest, pm::MutationResult, false, StatusField<pm::MutationResult>); break;
    case 23: VLAKE_RPC(DropIndex, DropIndexRequest, pc::Status, false, Itself); break;
    case 24: VLAKE_RPC(CreatePartition, CreatePartitionRequest, pc::Status, false, Itself); break;
    case 25: VLAKE_RPC(DropPartition, DropPartitionRequest, pc::Status, false, Itself); break;
    case 26: VLAKE_RPC(HasPartition, HasPartitionRequest, pm::BoolResponse, false, StatusField<pm::BoolResponse>); break;
    case 27: VLAKE_RPC(ShowPartitions, ShowPartitionsRequest, pm::ShowPartitionsResponse, false, StatusField<pm::ShowPartitionsResponse>); break;
    case 28: VLAKE_RPC(LoadPartitions, LoadPartitionsRequest, pc::Status, false, Itself); break;
    case 29: VLAKE_RPC(ReleasePartitions, ReleasePartitionsRequest, pc::Status, false, Itself); break;
    case 30: VLAKE_RPC(GetPartitionStatistics, GetPartitionStatisticsRequest, pm::GetPartitionStatisticsResponse, false, StatusField<pm::GetPartitionStatisticsResponse>); break;
    default: VLAKE_RPC(GetFlushState, GetFlushStateRequest, pm::GetFlushStateResponse, false, StatusField<pm::GetFlushStateResponse>); break;
  }
#undef VLAKE_RPC
  return 0;
}
