#include "vectordb/http_api.h"

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "common/hash.h"
#include "s3/errors.h"
#include "vectordb/schema_json.h"

namespace vlake::vectordb {
namespace {

using json = nlohmann::json;
using vector::FieldType;

constexpr size_t kMaxJsonBody = 512ull << 20;
constexpr size_t kMaxBinaryBody = 2ull << 30;

http::HttpResponse JsonReply(int status, const json& body) {
  http::HttpResponse r;
  r.status = status;
  r.AddHeader("Content-Type", "application/json");
  r.body = body.dump();
  r.body += '\n';
  return r;
}

http::HttpResponse ErrorReply(const Status& st) {
  s3::S3ErrorInfo info = s3::LookupError(st.code());
  return JsonReply(info.http_status,
                   {{"error", {{"code", std::string(info.code)}, {"message", st.message()}}}});
}

Status Bad(const std::string& msg) { return Status(Code::kInvalidArgument, msg); }

json ValueToJson(const FieldValue& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return nullptr;
        } else {
          return x;
        }
      },
      v);
}

// Finite float from a JSON number, with a message naming where it was.
Result<float> ToFloat(const json& v, const std::string& where) {
  if (!v.is_number()) return Bad(where + " must be a number");
  double d = v.get<double>();
  float f = static_cast<float>(d);
  if (!std::isfinite(f)) return Bad(where + " is not a finite float32");
  return f;
}

Result<std::vector<float>> ToVector(const json& v, int dim, const std::string& where) {
  if (!v.is_array()) return Bad(where + " must be an array of numbers");
  if (static_cast<int>(v.size()) != dim) {
    return Bad(where + " has dimension " + std::to_string(v.size()) + ", collection has " +
               std::to_string(dim));
  }
  std::vector<float> out;
  out.reserve(dim);
  for (size_t i = 0; i < v.size(); ++i) {
    VLAKE_ASSIGN_OR_RETURN(float f, ToFloat(v[i], where + "[" + std::to_string(i) + "]"));
    out.push_back(f);
  }
  return out;
}

Result<vector::RowBatch> RowsFromJson(const vector::CollectionSchema& schema, const json& rows) {
  if (!rows.is_array() || rows.empty()) return Bad("'rows' must be a non-empty array");
  const vector::FieldSchema& pk = schema.primary();
  std::vector<vector::FieldSchema> fields;
  for (const auto& f : schema.fields) {
    if (!(f.primary_key && f.auto_id)) fields.push_back(f);
  }
  vector::RowBatch batch(fields);
  for (size_t r = 0; r < rows.size(); ++r) {
    const json& row = rows[r];
    std::string at = "rows[" + std::to_string(r) + "]";
    if (!row.is_object()) return Bad(at + " must be an object");
    for (const auto& [key, value] : row.items()) {
      if (schema.Find(key) == nullptr) return Bad(at + ": unknown field '" + key + "'");
      if (key == pk.name && pk.auto_id) {
        return Bad(at + ": primary key '" + key + "' is auto_id: do not pass values for it");
      }
    }
    for (vector::ColumnData& c : batch.mutable_columns()) {
      auto it = row.find(c.field.name);
      std::string where = at + "." + c.field.name;
      if (it == row.end()) return Bad(at + ": missing field '" + c.field.name + "'");
      const json& v = *it;
      switch (vector::StorageOf(c.field.type)) {
        case vector::Storage::kInt64:
          if (!v.is_number_integer()) return Bad(where + " must be an integer");
          c.int64s.push_back(v.get<int64_t>());  // the engine checks narrow types' ranges
          break;
        case vector::Storage::kDouble:
          if (!v.is_number()) return Bad(where + " must be a number");
          c.doubles.push_back(v.get<double>());
          break;
        case vector::Storage::kBool:
          if (!v.is_boolean()) return Bad(where + " must be true or false");
          c.bools.push_back(v.get<bool>() ? 1 : 0);
          break;
        case vector::Storage::kBytes:
          if (!v.is_string()) return Bad(where + " must be a string");
          c.bytes += v.get<std::string>();
          c.offsets.push_back(c.bytes.size());
          break;
        case vector::Storage::kFloats: {
          VLAKE_ASSIGN_OR_RETURN(std::vector<float> vec, ToVector(v, c.field.dim, where));
          c.floats.insert(c.floats.end(), vec.begin(), vec.end());
          break;
        }
      }
    }
  }
  VLAKE_RETURN_IF_ERROR(batch.Seal());
  return batch;
}

Result<vector::RowBatch> RowsFromSegment(std::string bytes) {
  VLAKE_ASSIGN_OR_RETURN(auto seg, vector::Segment::Decode(std::move(bytes)));
  if (seg->kind() != vector::SegmentKind::kWalInsert) {
    return Bad("binary insert bodies must be segment-format insert batches (kind 2)");
  }
  vector::RowBatch batch(seg->fields());
  batch.AppendRange(*seg, 0, seg->num_rows());
  VLAKE_RETURN_IF_ERROR(batch.Seal());
  return batch;
}

Result<vector::CollectionSchema> SchemaFromRequest(const json& j) {
  vector::CollectionSchema s;
  if (!j.contains("name") || !j["name"].is_string()) return Bad("'name' (string) is required");
  s.name = j["name"].get<std::string>();
  if (!j.contains("dim") || !j["dim"].is_number_integer())
    return Bad("'dim' (integer) is required");
  int64_t dim = j["dim"].get<int64_t>();
  if (dim < 1 || dim > vector::kMaxDim) {
    return Bad("'dim' must be 1.." + std::to_string(vector::kMaxDim));
  }
  VLAKE_ASSIGN_OR_RETURN(s.metric, vector::ParseMetric(j.value("metric", "L2")));
  vector::FieldSchema pk{j.value("primary_key", "id"), FieldType::kInt64, 0, true,
                         j.value("auto_id", false)};
  vector::FieldSchema vec{j.value("vector_field", "vector"), FieldType::kFloatVector,
                          static_cast<int>(dim)};
  s.fields = {pk, vec};
  if (j.contains("fields")) {
    if (!j["fields"].is_array()) return Bad("'fields' must be an array");
    for (const json& f : j["fields"]) {
      if (!f.is_object() || !f.contains("name") || !f.contains("type")) {
        return Bad("each field needs 'name' and 'type'");
      }
      vector::FieldSchema fs;
      fs.name = f["name"].get<std::string>();
      VLAKE_ASSIGN_OR_RETURN(fs.type, vector::ParseFieldType(f["type"].get<std::string>()));
      if (fs.type == FieldType::kFloatVector) return Bad("only one vector field is supported");
      if (fs.type == FieldType::kJson) {
        return Bad("json fields are served by the Milvus API (docs/milvus-compat.md), not /v1");
      }
      s.fields.push_back(fs);
    }
  }
  VLAKE_RETURN_IF_ERROR(s.Validate());
  return s;
}

// The manifest's schema JSON plus the dimension, for clients.
json SchemaJson(const vector::CollectionSchema& s) {
  json j = SchemaToJson(s);
  j["dim"] = s.dim();
  return j;
}

json JobJson(const Job& job) {
  json segs = json::array();
  for (const SegmentBuildReport& r : job.segments) {
    segs.push_back({{"segment", r.segment},
                    {"rows", r.rows},
                    {"fetch_s", r.fetch_s},
                    {"decode_s", r.decode_s},
                    {"train_s", r.train_s},
                    {"add_s", r.add_s},
                    {"serialize_s", r.serialize_s},
                    {"upload_s", r.upload_s},
                    {"segment_bytes", r.segment_bytes},
                    {"index_bytes", r.index_bytes},
                    {"fetched_direct", r.fetched_direct},
                    {"fetch_path", r.fetch_path},
                    {"device", std::string(BuildDeviceName(r.device))},
                    {"skipped", r.skipped}});
  }
  return {{"id", job.id},
          {"collection", job.collection},
          {"spec", job.spec},
          {"device", std::string(BuildDeviceName(job.device))},
          {"state", std::string(JobStateName(job.state))},
          {"error", job.error},
          {"segments_total", job.segments_total},
          {"segments_done", job.segments_done},
          {"total_s", job.total_s},
          {"peak_rss_bytes", job.peak_rss_bytes},
          {"segments", segs}};
}

Result<std::vector<std::string>> StringList(const json& j, const char* key) {
  std::vector<std::string> out;
  if (!j.contains(key)) return out;
  if (!j[key].is_array()) return Bad(std::string("'") + key + "' must be an array of strings");
  for (const json& v : j[key]) {
    if (!v.is_string()) return Bad(std::string("'") + key + "' must be an array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::vector<int64_t>> IdList(const json& j) {
  std::vector<int64_t> out;
  if (!j.contains("ids")) return out;
  if (!j["ids"].is_array()) return Bad("'ids' must be an array of integers");
  for (const json& v : j["ids"]) {
    if (!v.is_number_integer()) return Bad("'ids' must be an array of integers");
    out.push_back(v.get<int64_t>());
  }
  return out;
}

Result<std::string> FilterOf(const json& j) {
  if (!j.contains("filter")) return std::string();
  if (!j["filter"].is_string()) return Bad("'filter' must be a string");
  return j["filter"].get<std::string>();
}

Result<BuildDevice> DeviceOf(const json& j) {
  if (!j.contains("device")) return BuildDevice::kCpu;
  if (!j["device"].is_string()) return Bad("'device' must be \"cpu\" or \"gpu\"");
  std::string d = j["device"].get<std::string>();
  if (d == "cpu") return BuildDevice::kCpu;
  if (d == "gpu") return BuildDevice::kGpu;
  return Bad("'device' must be \"cpu\" or \"gpu\", got \"" + d + "\"");
}

Result<std::string> FactoryOf(const json& j) {
  if (j.contains("factory")) {
    if (!j["factory"].is_string()) return Bad("'factory' must be a string");
    return j["factory"].get<std::string>();
  }
  if (!j.contains("type") || !j["type"].is_string()) {
    return Bad("'type' (FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, HNSW) or 'factory' is required");
  }
  std::string f = j["type"].get<std::string>();
  if (j.contains("params")) {
    if (!j["params"].is_object()) return Bad("'params' must be an object");
    char sep = ':';
    for (const auto& [k, v] : j["params"].items()) {
      if (!v.is_number_integer()) return Bad("index parameter '" + k + "' must be an integer");
      f += sep + k + "=" + std::to_string(v.get<int64_t>());
      sep = ',';
    }
  }
  return f;
}

class Router {
 public:
  Router(VectorEngine* engine, const ApiAuthenticator* auth, http::HttpRequest& req,
         http::BodyReader& body)
      : engine_(engine), auth_(auth), req_(req), body_(body) {}

  Result<http::HttpResponse> Route() {
    std::vector<std::string> parts;
    std::string_view path = req_.path;
    while (!path.empty()) {
      size_t slash = path.find('/');
      if (slash != 0) {
        std::optional<std::string> part =
            UriDecode(path.substr(0, slash), PlusDecoding::kPlusLiteral);
        if (!part) return Bad("malformed percent-encoding in the path");
        parts.push_back(std::move(*part));
      }
      if (slash == std::string_view::npos) break;
      path.remove_prefix(slash + 1);
    }
    const std::string& m = req_.method;
    if (parts.size() == 2 && parts[0] == "v1" && parts[1] == "health" && m == "GET") {
      return JsonReply(200, {{"status", "ok"}});  // the only open path: liveness probes
    }
    VLAKE_ASSIGN_OR_RETURN(caller_, auth_->Authenticate(req_));
    req_.authenticated = true;  // leaves the server's unauthenticated-connection limits
    if (parts.size() == 1 && parts[0] == "metrics" && m == "GET") {
      http::HttpResponse r;
      r.status = 200;
      r.AddHeader("Content-Type", "text/plain; version=0.0.4");
      r.body = engine_->metrics().Render();
      return r;
    }
    if (parts.empty() || parts[0] != "v1") return Status(Code::kNotFound, "no such API path");
    if (parts.size() == 3 && parts[1] == "jobs" && m == "GET") {
      VLAKE_ASSIGN_OR_RETURN(Job first, engine_->GetJob(parts[2]));
      if (!auth_->Owns(caller_, first.owner)) {
        return Status(Code::kAccessDenied, "job " + parts[2] + " belongs to another user");
      }
      int64_t wait_ms = QueryInt("wait_ms", 0);
      Result<Job> job =
          wait_ms > 0 ? engine_->WaitJob(parts[2], wait_ms) : engine_->GetJob(parts[2]);
      if (!job.ok() && job.status().code() == Code::kTimeout) job = engine_->GetJob(parts[2]);
      VLAKE_RETURN_IF_ERROR(job.status());
      return JsonReply(200, JobJson(*job));
    }
    if (parts.size() < 2 || parts[1] != "collections") {
      return Status(Code::kNotFound, "no such API path");
    }
    if (parts.size() == 2 && m == "GET") {
      VLAKE_ASSIGN_OR_RETURN(auto all, engine_->ListCollections());
      std::vector<std::string> names;
      for (const std::string& n : all) {
        Result<std::string> owner = engine_->Owner(n);
        if (owner.ok() && auth_->Owns(caller_, *owner)) names.push_back(n);
      }
      return JsonReply(200, {{"collections", names}});
    }
    if (parts.size() == 2 && m == "POST") {
      VLAKE_ASSIGN_OR_RETURN(json j, JsonBody());
      VLAKE_ASSIGN_OR_RETURN(vector::CollectionSchema s, SchemaFromRequest(j));
      CollectionOptions opts;
      opts.segment_max_rows = j.value("segment_max_rows", int64_t{0});
      opts.owner = caller_.user_id;
      VLAKE_RETURN_IF_ERROR(engine_->CreateCollection(s, opts));
      return JsonReply(201, {{"created", s.name}});
    }
    if (parts.size() < 3) return Status(Code::kMethodNotAllowed, "method not allowed");
    const std::string& name = parts[2];
    VLAKE_ASSIGN_OR_RETURN(std::string owner, engine_->Owner(name));
    if (!auth_->Owns(caller_, owner)) {
      return Status(Code::kAccessDenied, "collection '" + name + "' belongs to another user");
    }
    if (parts.size() == 3 && m == "GET") return Describe(name);
    if (parts.size() == 3 && m == "DELETE") {
      VLAKE_RETURN_IF_ERROR(engine_->DropCollection(name));
      return JsonReply(200, {{"dropped", name}});
    }
    if (parts.size() != 4 || m != "POST")
      return Status(Code::kMethodNotAllowed, "method not allowed");
    const std::string& op = parts[3];
    if (op == "insert") return Insert(name);
    VLAKE_ASSIGN_OR_RETURN(json j, JsonBody());
    if (op == "delete") {
      VLAKE_ASSIGN_OR_RETURN(auto ids, IdList(j));
      VLAKE_ASSIGN_OR_RETURN(std::string filter, FilterOf(j));
      if (ids.empty() && filter.empty()) return Bad("delete needs 'ids' or 'filter'");
      VLAKE_ASSIGN_OR_RETURN(int64_t n, engine_->Delete(name, ids, filter));
      return JsonReply(200, {{"delete_count", n}});
    }
    if (op == "flush") {
      VLAKE_RETURN_IF_ERROR(engine_->Flush(name));
      return Describe(name);
    }
    if (op == "compact") {
      VLAKE_ASSIGN_OR_RETURN(int64_t n,
                             engine_->Compact(name, j.value("min_deleted_fraction", 0.0)));
      return JsonReply(200, {{"segments_rewritten", n}});
    }
    if (op == "load") {
      VLAKE_RETURN_IF_ERROR(engine_->Load(name));
      return JsonReply(200, {{"loaded", name}});
    }
    if (op == "release") {
      VLAKE_RETURN_IF_ERROR(engine_->Release(name));
      return JsonReply(200, {{"released", name}});
    }
    if (op == "index") {
      VLAKE_ASSIGN_OR_RETURN(std::string factory, FactoryOf(j));
      VLAKE_ASSIGN_OR_RETURN(BuildDevice device, DeviceOf(j));
      VLAKE_ASSIGN_OR_RETURN(std::string id, engine_->BuildIndex(name, factory, device));
      if (j.value("wait", false)) {
        VLAKE_ASSIGN_OR_RETURN(Job job, engine_->WaitJob(id, j.value("timeout_ms", 3'600'000)));
        return JsonReply(job.state == Job::State::kDone ? 200 : 500, JobJson(job));
      }
      return JsonReply(202, {{"job", id}});
    }
    if (op == "search") return Search(name, j);
    if (op == "query") return Query(name, j);
    return Status(Code::kNotFound, "no such operation '" + op + "'");
  }

 private:
  int64_t QueryInt(std::string_view key, int64_t fallback) {
    std::string_view q = req_.query;
    while (!q.empty()) {
      size_t amp = q.find('&');
      std::string_view kv = q.substr(0, amp);
      if (kv.substr(0, key.size()) == key && kv.size() > key.size() && kv[key.size()] == '=') {
        if (auto v = ParseUint64(kv.substr(key.size() + 1))) return static_cast<int64_t>(*v);
      }
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
    return fallback;
  }

  // The whole body; checked against the SHA-256 that a SigV4 signature covered, if any.
  Result<std::string> ReadBody(size_t limit) {
    VLAKE_ASSIGN_OR_RETURN(std::string bytes, http::ReadAll(body_, limit));
    if (!caller_.payload_sha256.empty() &&
        HexEncode(Sha256Digest(bytes)) != caller_.payload_sha256) {
      return Status(Code::kContentSha256Mismatch,
                    "the body does not match the signed x-amz-content-sha256");
    }
    return bytes;
  }

  Result<json> JsonBody() {
    VLAKE_ASSIGN_OR_RETURN(std::string text, ReadBody(kMaxJsonBody));
    if (text.empty()) return json::object();
    json j;
    try {
      j = json::parse(text);
    } catch (const json::parse_error& e) {
      // NaN and Infinity are not JSON numbers: such vectors end up here too.
      return Bad(std::string("request body is not valid JSON (NaN/Infinity are not JSON "
                             "numbers): ") +
                 e.what());
    }
    if (!j.is_object()) return Bad("request body must be a JSON object");
    return j;
  }

  Result<http::HttpResponse> Describe(const std::string& name) {
    VLAKE_ASSIGN_OR_RETURN(CollectionInfo info, engine_->Describe(name));
    json segs = json::array();
    for (const SegmentInfo& s : info.segments) {
      segs.push_back({{"id", s.id},
                      {"rows", s.rows},
                      {"deleted", s.deleted},
                      {"bytes", s.bytes},
                      {"index", s.index}});
    }
    return JsonReply(200, {{"schema", SchemaJson(info.schema)},
                           {"rows", info.rows},
                           {"growing_rows", info.growing_rows},
                           {"segment_max_rows", info.segment_max_rows},
                           {"index_spec", info.index_spec},
                           {"loaded", info.loaded},
                           {"wal_seq", info.wal_seq},
                           {"segments", segs}});
  }

  Result<http::HttpResponse> Insert(const std::string& name) {
    VLAKE_ASSIGN_OR_RETURN(vector::CollectionSchema schema, engine_->Schema(name));
    vector::RowBatch rows;
    std::string_view type = req_.HeaderOr("content-type", "application/json");
    if (type.substr(0, kSegmentContentType.size()) == kSegmentContentType) {
      VLAKE_ASSIGN_OR_RETURN(std::string bytes, ReadBody(kMaxBinaryBody));
      Result<vector::RowBatch> r = RowsFromSegment(std::move(bytes));
      if (!r.ok() && r.status().code() == Code::kCorruption) {
        return Bad("binary insert body: " + r.status().message());
      }
      VLAKE_ASSIGN_OR_RETURN(rows, std::move(r));
    } else {
      VLAKE_ASSIGN_OR_RETURN(json j, JsonBody());
      if (!j.contains("rows")) return Bad("insert needs 'rows'");
      VLAKE_ASSIGN_OR_RETURN(rows, RowsFromJson(schema, j["rows"]));
    }
    VLAKE_ASSIGN_OR_RETURN(InsertResult res, engine_->Insert(name, std::move(rows)));
    json reply = {{"insert_count", res.ids.size()}};
    if (res.ids.size() <= 100000) reply["ids"] = res.ids;
    return JsonReply(200, reply);
  }

  Result<http::HttpResponse> Search(const std::string& name, const json& j) {
    VLAKE_ASSIGN_OR_RETURN(vector::CollectionSchema schema, engine_->Schema(name));
    const int dim = schema.dim();
    SearchRequest req;
    if (!j.contains("vectors") || !j["vectors"].is_array() || j["vectors"].empty()) {
      return Bad("search needs 'vectors': an array of query vectors");
    }
    for (size_t i = 0; i < j["vectors"].size(); ++i) {
      VLAKE_ASSIGN_OR_RETURN(std::vector<float> v,
                             ToVector(j["vectors"][i], dim, "vectors[" + std::to_string(i) + "]"));
      req.vectors.insert(req.vectors.end(), v.begin(), v.end());
    }
    req.nq = static_cast<int64_t>(j["vectors"].size());
    if (j.contains("k") && !j["k"].is_number_integer()) return Bad("'k' must be an integer");
    req.params.k = j.value("k", int64_t{10});
    VLAKE_ASSIGN_OR_RETURN(req.filter, FilterOf(j));
    VLAKE_ASSIGN_OR_RETURN(req.output_fields, StringList(j, "output_fields"));
    if (j.contains("params")) {
      const json& p = j["params"];
      if (!p.is_object()) return Bad("'params' must be an object");
      for (const auto& [k, v] : p.items()) {
        if (k == "nprobe" || k == "ef") {
          if (!v.is_number_integer() || v.get<int64_t>() < 1) {
            return Bad("search parameter '" + k + "' must be a positive integer");
          }
          (k == "nprobe" ? req.params.nprobe : req.params.ef) = v.get<int64_t>();
        } else if (k == "radius" || k == "range_filter") {
          VLAKE_ASSIGN_OR_RETURN(float f, ToFloat(v, "search parameter '" + k + "'"));
          (k == "radius" ? req.params.radius : req.params.range_filter) = f;
        } else {
          return Bad("unknown search parameter '" + k + "' (nprobe, ef, radius, range_filter)");
        }
      }
    }
    VLAKE_ASSIGN_OR_RETURN(SearchResponse resp, engine_->Search(name, req));
    json results = json::array();
    for (const auto& hits : resp.hits) {
      json list = json::array();
      for (const Hit& h : hits) {
        json fields = json::object();
        for (size_t f = 0; f < req.output_fields.size(); ++f) {
          fields[req.output_fields[f]] = ValueToJson(h.fields[f]);
        }
        list.push_back({{"id", h.id}, {"distance", h.distance}, {"fields", fields}});
      }
      results.push_back(list);
    }
    return JsonReply(200, {{"results", results}});
  }

  Result<http::HttpResponse> Query(const std::string& name, const json& j) {
    QueryRequest req;
    VLAKE_ASSIGN_OR_RETURN(req.ids, IdList(j));
    VLAKE_ASSIGN_OR_RETURN(req.filter, FilterOf(j));
    VLAKE_ASSIGN_OR_RETURN(req.output_fields, StringList(j, "output_fields"));
    if (j.contains("limit")) {
      if (!j["limit"].is_number_integer() || j["limit"].get<int64_t>() < 0) {
        return Bad("'limit' must be a non-negative integer");
      }
      req.limit = j["limit"].get<int64_t>();
    }
    VLAKE_ASSIGN_OR_RETURN(QueryResponse resp, engine_->Query(name, req));
    json rows = json::array();
    for (size_t i = 0; i < resp.ids.size(); ++i) {
      json row = {{"id", resp.ids[i]}};
      for (size_t f = 0; f < req.output_fields.size(); ++f) {
        row[req.output_fields[f]] = ValueToJson(resp.rows[i][f]);
      }
      rows.push_back(row);
    }
    return JsonReply(200, {{"rows", rows}});
  }

  VectorEngine* engine_;
  const ApiAuthenticator* auth_;
  http::HttpRequest& req_;
  http::BodyReader& body_;
  Caller caller_;
};

}  // namespace

http::HttpResponse VectorHttpApi::Handle(http::HttpRequest& request, http::BodyReader& body) {
  try {
    Router router(engine_, auth_, request, body);
    Result<http::HttpResponse> r = router.Route();
    if (!r.ok()) {
      http::HttpResponse resp = ErrorReply(r.status());
      if (r.status().code() == Code::kUnauthenticated) {
        resp.AddHeader("WWW-Authenticate", "Bearer realm=\"vlake\"");
      }
      return resp;
    }
    return std::move(*r);
  } catch (const std::exception& e) {
    // nlohmann::json type errors on unexpected shapes: the request was malformed.
    return ErrorReply(Status(Code::kInvalidArgument, std::string("bad request: ") + e.what()));
  }
}

}  // namespace vlake::vectordb
