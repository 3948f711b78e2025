#include "milvus/rest_v2.h"

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "common/encoding.h"
#include "milvus/rest_rows.h"

namespace vlake::milvus {

namespace pm = ::milvus::proto::milvus;
namespace pc = ::milvus::proto::common;
namespace ps = ::milvus::proto::schema;
using json = nlohmann::json;

namespace {

constexpr size_t kMaxBody = 512u << 20;
constexpr int kCodeNeedAuth = 1800;
constexpr int kCodeBadJson = 1801;
constexpr int kCodeMissingParam = 1802;
constexpr int kCodeInvalidParam = 1100;

http::HttpResponse Reply(int http_status, const json& body) {
  http::HttpResponse r;
  r.status = http_status;
  r.AddHeader("Content-Type", "application/json");
  r.body = body.dump();
  return r;
}
http::HttpResponse Error(int code, const std::string& message) {
  return Reply(200, json{{"code", code}, {"message", message}});
}
http::HttpResponse Ok(json data) { return Reply(200, json{{"code", 0}, {"data", std::move(data)}}); }

// A failed call or a non-success status as the REST reply; nullopt when all went well.
std::optional<http::HttpResponse> Failure(const grpc::Status& st, const pc::Status* status) {
  if (st.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    return Reply(401, json{{"code", kCodeNeedAuth}, {"message", st.error_message()}});
  }
  if (!st.ok()) return Error(65535, st.error_message());
  if (status != nullptr && (status->error_code() != pc::Success || status->code() != 0)) {
    return Error(status->code() != 0 ? status->code() : 65535, status->reason());
  }
  return std::nullopt;
}

// The common.Status of a reply: the reply itself, or its `status` field.
const pc::Status& StatusOf(const pc::Status& s) { return s; }
template <typename Resp>
const pc::Status& StatusOf(const Resp& r) {
  return r.status();
}

// The request as a text for string fields: JSON strings as they are, other values dumped.
std::string Text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string Str(const json& body, const char* key, const std::string& fallback = "") {
  auto it = body.find(key);
  return it != body.end() && it->is_string() ? it->get<std::string>() : fallback;
}

void Kv(google::protobuf::RepeatedPtrField<pc::KeyValuePair>* out, const std::string& k,
        const std::string& v) {
  auto* kv = out->Add();
  kv->set_key(k);
  kv->set_value(v);
}

ps::DataType TypeByName(const std::string& name) {
  ps::DataType t = ps::None;
  return ps::DataType_Parse(name, &t) ? t : ps::None;
}

}  // namespace

http::HttpResponse MilvusRestV2::Handle(http::HttpRequest& request, http::BodyReader& body_reader) const {
  try {
    return Serve(request, body_reader);
  } catch (const json::exception& e) {
    // A value of the wrong JSON type somewhere in the body (a string limit, a numeric name).
    return Error(kCodeInvalidParam, std::string("bad request body: ") + e.what());
  }
}

http::HttpResponse MilvusRestV2::Serve(http::HttpRequest& request, http::BodyReader& body_reader) const {
  if (request.method != "POST") return Error(kCodeInvalidParam, "REST v2 requests are POSTs");
  std::string authorization;
  if (const std::string* a = request.FindHeader("authorization")) {
    constexpr std::string_view kBearer = "Bearer ";
    if (a->size() > kBearer.size() && std::string_view(*a).substr(0, kBearer.size()) == kBearer) {
      authorization = Base64Encode(a->substr(kBearer.size()));
    }
  }
  if (authorization.empty()) {
    return Reply(401, json{{"code", kCodeNeedAuth},
                           {"message", "user hasn't authenticated: Authorization: Bearer ACCESS_KEY:SECRET_KEY"}});
  }
  Result<std::string> text = http::ReadAll(body_reader, kMaxBody);
  if (!text.ok()) return Error(kCodeBadJson, text.status().message());
  json body = text->empty() ? json::object() : json::parse(*text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return Error(kCodeBadJson, "the body must be a JSON object");
  const std::string db = Str(body, "dbName", "default");
  const std::string name = Str(body, "collectionName");
  const std::string* allow = request.FindHeader("accept-type-allow-int64");
  const bool int64_numbers = allow != nullptr && *allow == "true";
  auto ctx = [&](grpc::ClientContext* c) {
    c->AddMetadata("authorization", authorization);
    c->AddMetadata("dbname", db);
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  };
  // One RPC on the in-process channel; the REST failure reply, or nullopt. The reply's status
  // is read after the call (a reference taken before it would be the unset default).
  auto call = [&](auto method, const auto& req, auto* resp) -> std::optional<http::HttpResponse> {
    grpc::ClientContext c;
    ctx(&c);
    const grpc::Status st = (stub_.get()->*method)(&c, req, resp);
    return Failure(st, &StatusOf(*resp));
  };
  using Stub = pm::MilvusService::Stub;
  const std::string op = request.path.substr(std::strlen("/v2/vectordb/"));
  auto need_name = [&]() -> std::optional<http::HttpResponse> {
    if (name.empty()) return Error(kCodeMissingParam, "collectionName is required");
    return std::nullopt;
  };

  // ---- collections ----
  if (op == "collections/list") {
    pm::ShowCollectionsResponse resp;
    if (auto f = call(&Stub::ShowCollections, pm::ShowCollectionsRequest(), &resp)) return *f;
    return Ok(json(std::vector<std::string>(resp.collection_names().begin(), resp.collection_names().end())));
  }
  if (auto f = need_name()) return *f;
  auto describe = [&](pm::DescribeCollectionResponse* out) {
    pm::DescribeCollectionRequest req;
    req.set_collection_name(name);
    return call(&Stub::DescribeCollection, req, out);
  };
  // An RPC answering common.Status whose request names only the collection.
  auto simple = [&](auto method, auto req) {
    req.set_collection_name(name);
    pc::Status resp;
    return call(method, req, &resp);
  };
  auto create_indexes = [&](const json& params) -> std::optional<http::HttpResponse> {
    for (const json& p : params) {
      pm::CreateIndexRequest req;
      req.set_collection_name(name);
      req.set_field_name(Str(p, "fieldName"));
      req.set_index_name(Str(p, "indexName"));
      json inner = p.contains("params") && p["params"].is_object() ? p["params"] : json::object();
      std::string type = Str(p, "indexType", inner.value("index_type", "AUTOINDEX"));
      inner.erase("index_type");
      Kv(req.mutable_extra_params(), "index_type", type);
      if (!Str(p, "metricType").empty()) Kv(req.mutable_extra_params(), "metric_type", Str(p, "metricType"));
      Kv(req.mutable_extra_params(), "params", inner.dump());
      pc::Status resp;
      if (auto f = call(&Stub::CreateIndex, req, &resp)) return f;
    }
    return std::nullopt;
  };
  if (op == "collections/create") {
    ps::CollectionSchema schema;
    schema.set_name(name);
    json index_params = body.value("indexParams", json::array());
    if (body.contains("schema")) {
      const json& s = body["schema"];
      schema.set_autoid(s.value("autoID", false));
      schema.set_enable_dynamic_field(s.value("enableDynamicField", false));
      for (const json& f : s.value("fields", json::array())) {
        ps::FieldSchema* o = schema.add_fields();
        o->set_name(Str(f, "fieldName"));
        o->set_data_type(TypeByName(Str(f, "dataType")));
        o->set_is_primary_key(f.value("isPrimary", false));
        o->set_autoid(f.value("autoID", schema.autoid()) && o->is_primary_key());
        o->set_nullable(f.value("nullable", false));
        o->set_is_partition_key(f.value("isPartitionKey", false));
        if (f.contains("elementTypeParams") && f["elementTypeParams"].is_object()) {
          for (const auto& [k, v] : f["elementTypeParams"].items()) Kv(o->mutable_type_params(), k, Text(v));
        }
      }
    } else {
      // Quick setup: a primary key, a vector of `dimension`, the dynamic field, an AUTOINDEX,
      // loaded.
      if (!body.contains("dimension")) return Error(kCodeMissingParam, "dimension is required (or a schema)");
      const json params = body.value("params", json::object());
      schema.set_enable_dynamic_field(params.is_object() ? params.value("enableDynamicField", true) : true);
      ps::FieldSchema* pk = schema.add_fields();
      pk->set_name(Str(body, "primaryFieldName", "id"));
      pk->set_data_type(TypeByName(Str(body, "idType", "Int64")));
      pk->set_is_primary_key(true);
      pk->set_autoid(body.value("autoID", false));
      if (pk->data_type() == ps::VarChar) {
        Kv(pk->mutable_type_params(), "max_length",
           params.is_object() && params.contains("max_length") ? Text(params["max_length"]) : "65535");
      }
      ps::FieldSchema* vec = schema.add_fields();
      vec->set_name(Str(body, "vectorFieldName", "vector"));
      vec->set_data_type(ps::FloatVector);
      Kv(vec->mutable_type_params(), "dim", Text(body["dimension"]));
      if (index_params.empty()) {
        index_params = json::array({{{"fieldName", vec->name()}, {"indexType", "AUTOINDEX"},
                                     {"metricType", Str(body, "metricType", "COSINE")}}});
      }
    }
    pm::CreateCollectionRequest req;
    req.set_collection_name(name);
    req.set_schema(schema.SerializeAsString());
    pc::Status resp;
    if (auto f = call(&Stub::CreateCollection, req, &resp)) return *f;
    if (!index_params.empty()) {
      if (auto f = create_indexes(index_params)) return *f;
      if (auto f = simple(&Stub::LoadCollection, pm::LoadCollectionRequest())) return *f;
    }
    return Ok(json::object());
  }
  if (op == "collections/has") {
    pm::DescribeCollectionResponse d;
    auto f = describe(&d);
    if (f && d.status().code() != 100) return *f;
    return Ok(json{{"has", !f.has_value()}});
  }
  if (op == "collections/describe") {
    pm::DescribeCollectionResponse d;
    if (auto f = describe(&d)) return *f;
    json fields = json::array();
    for (const ps::FieldSchema& f : d.schema().fields()) {
      json params = json::array();
      for (const auto& kv : f.type_params()) params.push_back({{"key", kv.key()}, {"value", kv.value()}});
      fields.push_back({{"name", f.name()}, {"id", f.fieldid()}, {"type", ps::DataType_Name(f.data_type())},
                        {"primaryKey", f.is_primary_key()}, {"autoId", f.autoid()},
                        {"partitionKey", false}, {"nullable", false}, {"description", f.description()},
                        {"params", params}});
    }
    pm::GetLoadStateRequest lreq;
    lreq.set_collection_name(name);
    pm::GetLoadStateResponse lresp;
    (void)call(&Stub::GetLoadState, lreq, &lresp);  // the load state is optional here
    return Ok(json{{"collectionName", name}, {"collectionID", d.collectionid()},
                   {"description", d.schema().description()}, {"autoId", d.schema().autoid()},
                   {"fields", fields}, {"load", pc::LoadState_Name(lresp.state())},
                   {"shardsNum", d.shards_num()}, {"partitionsNum", d.num_partitions()},
                   {"consistencyLevel", pc::ConsistencyLevel_Name(d.consistency_level())},
                   {"enableDynamicField", d.schema().enable_dynamic_field()},
                   {"properties", json::array()}, {"aliases", json::array()}});
  }
  if (op == "collections/drop") {
    if (auto f = simple(&Stub::DropCollection, pm::DropCollectionRequest())) return *f;
    return Ok(json::object());
  }
  if (op == "collections/load") {
    if (auto f = simple(&Stub::LoadCollection, pm::LoadCollectionRequest())) return *f;
    return Ok(json::object());
  }
  if (op == "collections/release") {
    if (auto f = simple(&Stub::ReleaseCollection, pm::ReleaseCollectionRequest())) return *f;
    return Ok(json::object());
  }
  if (op == "collections/get_stats") {
    pm::GetCollectionStatisticsRequest req;
    req.set_collection_name(name);
    pm::GetCollectionStatisticsResponse resp;
    if (auto f = call(&Stub::GetCollectionStatistics, req, &resp)) return *f;
    int64_t rows = 0;
    for (const auto& kv : resp.stats()) {
      if (kv.key() == "row_count") rows = ParseInt64(kv.value()).value_or(0);
    }
    return Ok(json{{"rowCount", rows}});
  }
  if (op == "collections/get_load_state") {
    pm::GetLoadStateRequest req;
    req.set_collection_name(name);
    pm::GetLoadStateResponse resp;
    if (auto f = call(&Stub::GetLoadState, req, &resp)) return *f;
    return Ok(json{{"loadState", pc::LoadState_Name(resp.state())},
                   {"loadProgress", resp.state() == pc::LoadStateLoaded ? 100 : 0}});
  }
  if (op == "collections/flush") {
    pm::FlushRequest req;
    req.add_collection_names(name);
    pm::FlushResponse resp;
    if (auto f = call(&Stub::Flush, req, &resp)) return *f;
    return Ok(json::object());
  }

  // ---- indexes ----
  if (op == "indexes/create") {
    if (!body.contains("indexParams") || !body["indexParams"].is_array()) {
      return Error(kCodeMissingParam, "indexParams is required");
    }
    if (auto f = create_indexes(body["indexParams"])) return *f;
    return Ok(json::object());
  }
  if (op == "indexes/describe" || op == "indexes/list") {
    pm::DescribeIndexRequest req;
    req.set_collection_name(name);
    if (op == "indexes/describe") req.set_index_name(Str(body, "indexName"));
    pm::DescribeIndexResponse resp;
    grpc::ClientContext c;
    ctx(&c);
    const grpc::Status st = stub_->DescribeIndex(&c, req, &resp);
    if (op == "indexes/list" && st.ok() && resp.status().code() == 700) return Ok(json::array());
    if (auto f = Failure(st, &resp.status())) return *f;
    json out = json::array();
    for (const pm::IndexDescription& d : resp.index_descriptions()) {
      if (op == "indexes/list") {
        out.push_back(d.index_name());
        continue;
      }
      std::string type, metric;
      for (const auto& kv : d.params()) {
        if (kv.key() == "index_type") type = kv.value();
        if (kv.key() == "metric_type") metric = kv.value();
      }
      out.push_back({{"fieldName", d.field_name()}, {"indexName", d.index_name()}, {"indexType", type},
                     {"metricType", metric}, {"indexState", pc::IndexState_Name(d.state())},
                     {"indexedRows", d.indexed_rows()}, {"totalRows", d.total_rows()},
                     {"pendingRows", d.pending_index_rows()}, {"failReason", d.index_state_fail_reason()}});
    }
    return Ok(out);
  }

  if (op == "indexes/drop") {
    pm::DropIndexRequest req;
    req.set_collection_name(name);
    req.set_index_name(Str(body, "indexName"));
    pc::Status resp;
    if (auto f = call(&Stub::DropIndex, req, &resp)) return *f;
    return Ok(json::object());
  }

  // ---- partitions ----
  const std::string partition = Str(body, "partitionName");
  std::vector<std::string> partition_names;
  for (const json& p : body.value("partitionNames", json::array())) {
    if (p.is_string()) partition_names.push_back(p.get<std::string>());
  }
  auto partition_call = [&](auto method, auto req) {
    req.set_collection_name(name);
    req.set_partition_name(partition);
    pc::Status resp;
    return call(method, req, &resp);
  };
  if (op == "partitions/create") {
    if (auto f = partition_call(&Stub::CreatePartition, pm::CreatePartitionRequest())) return *f;
    return Ok(json::object());
  }
  if (op == "partitions/drop") {
    if (auto f = partition_call(&Stub::DropPartition, pm::DropPartitionRequest())) return *f;
    return Ok(json::object());
  }
  if (op == "partitions/has") {
    pm::HasPartitionRequest req;
    req.set_collection_name(name);
    req.set_partition_name(partition);
    pm::BoolResponse resp;
    if (auto f = call(&Stub::HasPartition, req, &resp)) return *f;
    return Ok(json{{"has", resp.value()}});
  }
  if (op == "partitions/list") {
    pm::ShowPartitionsRequest req;
    req.set_collection_name(name);
    pm::ShowPartitionsResponse resp;
    if (auto f = call(&Stub::ShowPartitions, req, &resp)) return *f;
    return Ok(json(std::vector<std::string>(resp.partition_names().begin(), resp.partition_names().end())));
  }
  if (op == "partitions/get_stats") {
    pm::GetPartitionStatisticsRequest req;
    req.set_collection_name(name);
    req.set_partition_name(partition);
    pm::GetPartitionStatisticsResponse resp;
    if (auto f = call(&Stub::GetPartitionStatistics, req, &resp)) return *f;
    int64_t rows = 0;
    for (const auto& kv : resp.stats()) {
      if (kv.key() == "row_count") rows = ParseInt64(kv.value()).value_or(0);
    }
    return Ok(json{{"rowCount", rows}});
  }
  if (op == "partitions/load" || op == "partitions/release") {
    pc::Status resp;
    if (op == "partitions/load") {
      pm::LoadPartitionsRequest req;
      req.set_collection_name(name);
      for (const std::string& p : partition_names) req.add_partition_names(p);
      if (auto f = call(&Stub::LoadPartitions, req, &resp)) return *f;
    } else {
      pm::ReleasePartitionsRequest req;
      req.set_collection_name(name);
      for (const std::string& p : partition_names) req.add_partition_names(p);
      if (auto f = call(&Stub::ReleasePartitions, req, &resp)) return *f;
    }
    return Ok(json::object());
  }

  // ---- entities ----
  auto ids_json = [&](const ps::IDs& ids) {
    json out = json::array();
    if (ids.has_str_id()) {
      for (const std::string& id : ids.str_id().data()) out.push_back(id);
    } else {
      for (int64_t id : ids.int_id().data()) out.push_back(int64_numbers ? json(id) : json(std::to_string(id)));
    }
    return out;
  };
  if (op == "entities/insert" || op == "entities/upsert") {
    pm::DescribeCollectionResponse d;
    if (auto f = describe(&d)) return *f;
    pm::InsertRequest req;  // Upsert's request has the same fields
    req.set_collection_name(name);
    req.set_partition_name(Str(body, "partitionName"));
    const json data = body.value("data", json::array());
    if (Status st = ColumnsFromRows(d.schema(), data, req.mutable_fields_data()); !st.ok()) {
      return Error(kCodeInvalidParam, st.message());
    }
    req.set_num_rows(static_cast<uint32_t>(data.size()));
    pm::MutationResult resp;
    if (op == "entities/upsert") {
      pm::UpsertRequest up;
      up.set_collection_name(name);
      up.set_partition_name(req.partition_name());
      up.set_num_rows(req.num_rows());
      *up.mutable_fields_data() = std::move(*req.mutable_fields_data());
      if (auto f = call(&Stub::Upsert, up, &resp)) return *f;
      return Ok(json{{"upsertCount", resp.upsert_cnt()}, {"upsertIds", ids_json(resp.ids())}});
    }
    if (auto f = call(&Stub::Insert, req, &resp)) return *f;
    return Ok(json{{"insertCount", resp.insert_cnt()}, {"insertIds", ids_json(resp.ids())}});
  }
  if (op == "entities/delete") {
    pm::DeleteRequest req;
    req.set_collection_name(name);
    req.set_partition_name(Str(body, "partitionName"));
    req.set_expr(Str(body, "filter"));
    if (req.expr().empty()) return Error(kCodeMissingParam, "filter is required");
    pm::MutationResult resp;
    if (auto f = call(&Stub::Delete, req, &resp)) return *f;
    return Ok(json{{"deleteCount", resp.delete_cnt()}});
  }
  auto output_fields = [&](auto* repeated, bool star_default) {
    const json of = body.value("outputFields", star_default ? json::array({"*"}) : json::array());
    for (const json& f : of) {
      if (f.is_string()) repeated->Add(f.get<std::string>());
    }
  };
  auto rows_of = [&](const google::protobuf::RepeatedPtrField<ps::FieldData>& cols, int64_t begin, int64_t end,
                     json* out, const char* distance_key, const google::protobuf::RepeatedField<float>* scores) {
    RowsFromColumns(cols, begin, end, int64_numbers, scores, distance_key, out);
  };
  if (op == "entities/query" || op == "entities/get") {
    pm::QueryRequest req;
    req.set_collection_name(name);
    req.set_expr(Str(body, "filter"));
    if (op == "entities/get") {
      // By primary key: `id` is one key or an array of keys.
      pm::DescribeCollectionResponse d;
      if (auto f = describe(&d)) return *f;
      std::string pk;
      for (const ps::FieldSchema& f : d.schema().fields()) {
        if (f.is_primary_key()) pk = f.name();
      }
      json ids = body.value("id", json::array());
      if (!ids.is_array()) ids = json::array({ids});
      if (ids.empty()) return Error(kCodeMissingParam, "id is required");
      std::string list;
      for (const json& id : ids) {
        if (!id.is_string() && !id.is_number_integer()) return Error(kCodeInvalidParam, "id must hold keys");
        list += (list.empty() ? "" : ", ") + FilterLiteral(id);
      }
      req.set_expr(pk + " in [" + list + "]");
      body["limit"] = static_cast<int64_t>(ids.size());
    }
    output_fields(req.mutable_output_fields(), true);
    for (const json& p : body.value("partitionNames", json::array())) {
      if (p.is_string()) req.add_partition_names(p.get<std::string>());
    }
    Kv(req.mutable_query_params(), "limit", std::to_string(body.value("limit", 100)));
    if (body.contains("offset")) Kv(req.mutable_query_params(), "offset", Text(body["offset"]));
    pm::QueryResults resp;
    if (auto f = call(&Stub::Query, req, &resp)) return *f;
    json out = json::array();
    const int64_t n = resp.fields_data_size() > 0 ? RowsOf(resp.fields_data(0)) : 0;
    rows_of(resp.fields_data(), 0, n, &out, nullptr, nullptr);
    return Ok(out);
  }
  if (op == "entities/search") {
    pm::DescribeCollectionResponse d;
    if (auto f = describe(&d)) return *f;
    const json data = body.value("data", json::array());
    if (!data.is_array() || data.empty()) return Error(kCodeMissingParam, "data must hold query vectors");
    pc::PlaceholderGroup group;
    pc::PlaceholderValue* p = group.add_placeholders();
    p->set_tag("$0");
    p->set_type(pc::FloatVector);
    for (const json& q : data) {
      if (!q.is_array()) return Error(kCodeInvalidParam, "each query must be an array of numbers");
      std::string bytes;
      for (const json& x : q) {
        if (!x.is_number()) return Error(kCodeInvalidParam, "each query must be an array of numbers");
        const float f = x.get<float>();
        bytes.append(reinterpret_cast<const char*>(&f), sizeof f);
      }
      p->add_values(std::move(bytes));
    }
    pm::SearchRequest req;
    req.set_collection_name(name);
    req.set_placeholder_group(group.SerializeAsString());
    req.set_nq(static_cast<int64_t>(data.size()));
    req.set_dsl(Str(body, "filter"));
    req.set_dsl_type(pc::BoolExprV1);
    output_fields(req.mutable_output_fields(), false);
    for (const json& pn : body.value("partitionNames", json::array())) {
      if (pn.is_string()) req.add_partition_names(pn.get<std::string>());
    }
    Kv(req.mutable_search_params(), "topk", std::to_string(body.value("limit", 100)));
    if (body.contains("offset")) Kv(req.mutable_search_params(), "offset", Text(body["offset"]));
    if (!Str(body, "annsField").empty()) Kv(req.mutable_search_params(), "anns_field", Str(body, "annsField"));
    const json sp = body.value("searchParams", json::object());
    if (sp.is_object()) {
      if (sp.contains("metric_type")) Kv(req.mutable_search_params(), "metric_type", Text(sp["metric_type"]));
      if (sp.contains("metricType")) Kv(req.mutable_search_params(), "metric_type", Text(sp["metricType"]));
      if (sp.contains("params")) Kv(req.mutable_search_params(), "params", sp["params"].dump());
    }
    pm::SearchResults resp;
    if (auto f = call(&Stub::Search, req, &resp)) return *f;
    const ps::SearchResultData& r = resp.results();
    json out = json::array();
    rows_of(r.fields_data(), 0, r.scores_size(), &out, "distance", &r.scores());
    json topks = json::array();
    for (int64_t k : r.topks()) topks.push_back(k);
    return Reply(200, json{{"code", 0}, {"data", out}, {"topks", topks}, {"cost", 0}});
  }
  return Error(kCodeInvalidParam, "no such REST v2 endpoint: " + request.path + " (docs/milvus-compat.md)");
}

}  // namespace vlake::milvus
