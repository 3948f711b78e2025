// MilvusGrpcService's data RPCs (grpc_service.h): inserts and deletes, flush, indexes,
// load/release, search and query.
#include <chrono>
#include <climits>
#include <cmath>

#include "common/encoding.h"
#include "milvus/data_map.h"
#include "milvus/grpc_auth.h"
#include "milvus/grpc_service.h"
#include "milvus/partitions.h"
#include "milvus/schema_map.h"

namespace vlake::milvus {

namespace ps = ::milvus::proto::schema;

namespace {

// A Milvus-style hybrid timestamp (physical milliseconds << 18) for MutationResult.timestamp.
uint64_t HybridNow() {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return static_cast<uint64_t>(ms) << 18;
}

// "HNSW:M=16,efConstruction=200" -> index_type HNSW and its params as a JSON object text.
void SpecParams(const std::string& spec, std::string* type, std::string* params) {
  const size_t colon = spec.find(':');
  *type = spec.substr(0, colon);
  std::string json = "{";
  if (colon != std::string::npos) {
    std::string rest = spec.substr(colon + 1);
    size_t at = 0;
    bool first = true;
    while (at <= rest.size()) {
      size_t comma = rest.find(',', at);
      if (comma == std::string::npos) comma = rest.size();
      const std::string kv = rest.substr(at, comma - at);
      const size_t eq = kv.find('=');
      if (eq != std::string::npos) {
        json += (first ? "\"" : ",\"") + kv.substr(0, eq) + "\":" + kv.substr(eq + 1);
        first = false;
      }
      at = comma + 1;
    }
  }
  *params = json + "}";
}

// Which thing a NotFound of the index RPCs is about.
Missing MissingOf(const Status& st) {
  return st.message().rfind("index not found", 0) == 0 ? Missing::kIndex : Missing::kCollection;
}

void AddParam(pm::IndexDescription* d, const std::string& key, const std::string& value) {
  auto* kv = d->add_params();
  kv->set_key(key);
  kv->set_value(value);
}

}  // namespace

Result<vector::CollectionSchema> MilvusGrpcService::Usable(
    const vectordb::Caller& caller, const std::string& name,
    const std::vector<std::string>& partitions) const {
  VLAKE_RETURN_IF_ERROR(CheckOwner(caller, name));
  VLAKE_RETURN_IF_ERROR(CheckPartitions(engine_, name, partitions));
  return engine_->Schema(name);
}

namespace {

std::vector<std::string> Names(const google::protobuf::RepeatedPtrField<std::string>& names) {
  return {names.begin(), names.end()};
}

// The VarChar key column of the request's rows (what Insert and Upsert answer as IDs); empty
// for Int64 keys, which the engine's reply gives (auto ids included).
std::vector<vectordb::FieldValue> KeysOf(const vector::RowBatch& rows,
                                         const vector::FieldSchema& key) {
  std::vector<vectordb::FieldValue> out;
  if (key.type != vector::FieldType::kVarchar) return out;
  const vector::ColumnView col = *rows.Column(key.name);
  for (int64_t r = 0; r < col.rows; ++r) out.emplace_back(std::string(col.varchar(r)));
  return out;
}

}  // namespace

grpc::Status MilvusGrpcService::Write(grpc::ServerContext* ctx, const std::string& name,
                                      const std::string& partition, const FieldDatas& fields,
                                      uint32_t num_rows, bool upsert, pm::MutationResult* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  Result<vector::CollectionSchema> schema = Usable(*caller, name, {partition});
  std::vector<vectordb::FieldValue> keys;
  Result<vectordb::InsertResult> written = Status(Code::kInternal, "not written");
  if (!schema.ok()) {
    written = schema.status();
  } else {
    Result<vector::RowBatch> batch = RowsFromFieldData(
        *schema, fields, num_rows, partition.empty() ? std::string(kDefaultPartition) : partition);
    if (batch.ok()) {
      keys = KeysOf(*batch, MilvusPrimary(*schema));  // VarChar keys: before the batch moves
      written = upsert ? engine_->Upsert(name, std::move(*batch))
                       : engine_->Insert(name, std::move(*batch));
    } else {
      written = batch.status();
    }
  }
  if (!written.ok()) {
    // No err_index list: num_rows is the client's claim, not a count of what arrived (a
    // fuzzed 4-billion num_rows made the reply that large).
    FillStatus(written.status(), Missing::kCollection, resp->mutable_status());
    return grpc::Status::OK;
  }
  const vector::FieldSchema& key = MilvusPrimary(*schema);
  if (key.type != vector::FieldType::kVarchar) keys.assign(written->ids.begin(), written->ids.end());
  SetIds(key, keys, resp->mutable_ids());
  const auto n = static_cast<uint32_t>(written->ids.size());
  for (uint32_t i = 0; i < n; ++i) resp->add_succ_index(i);
  (upsert ? resp->set_upsert_cnt(n) : resp->set_insert_cnt(n));
  resp->set_timestamp(HybridNow());
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::Insert(grpc::ServerContext* ctx, const pm::InsertRequest* req,
                                       pm::MutationResult* resp) {
  return Write(ctx, req->collection_name(), req->partition_name(), req->fields_data(),
               req->num_rows(), false, resp);
}

grpc::Status MilvusGrpcService::Upsert(grpc::ServerContext* ctx, const pm::UpsertRequest* req,
                                       pm::MutationResult* resp) {
  return Write(ctx, req->collection_name(), req->partition_name(), req->fields_data(),
               req->num_rows(), true, resp);
}

grpc::Status MilvusGrpcService::Delete(grpc::ServerContext* ctx, const pm::DeleteRequest* req,
                                       pm::MutationResult* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  const std::string& name = req->collection_name();
  std::vector<std::string> partitions;
  if (!req->partition_name().empty()) partitions.push_back(req->partition_name());
  Result<vector::CollectionSchema> schema = Usable(*caller, name, partitions);
  Result<std::string> filter =
      !schema.ok() ? Result<std::string>(schema.status())
      : req->expr().empty()
          ? Result<std::string>(Status(Code::kInvalidArgument, "expr is required"))
          : WithPartitions(*schema, req->expr(), partitions);
  Result<int64_t> n = filter.ok() ? engine_->Delete(name, {}, *filter)
                                  : Result<int64_t>(filter.status());
  if (!n.ok()) {
    FillStatus(n.status(), Missing::kCollection, resp->mutable_status());
    return grpc::Status::OK;
  }
  resp->set_delete_cnt(*n);
  if (MilvusPrimary(*schema).type == vector::FieldType::kVarchar) {
    resp->mutable_ids()->mutable_str_id();
  } else {
    resp->mutable_ids()->mutable_int_id();
  }
  resp->set_timestamp(HybridNow());
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::Flush(grpc::ServerContext* ctx, const pm::FlushRequest* req,
                                      pm::FlushResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  resp->set_db_name("default");
  for (const std::string& name : req->collection_names()) {
    Status st = CheckOwner(*caller, name);
    if (st.ok()) st = engine_->Flush(name);
    if (!st.ok()) {
      FillStatus(st, Missing::kCollection, resp->mutable_status());
      return grpc::Status::OK;
    }
    (*resp->mutable_coll_segids())[name];  // flushed already: nothing to wait for
  }
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::GetFlushState(grpc::ServerContext* ctx,
                                              const pm::GetFlushStateRequest*,
                                              pm::GetFlushStateResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  resp->set_flushed(true);  // Flush returns once sealed
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::CreateIndex(grpc::ServerContext* ctx,
                                            const pm::CreateIndexRequest* req, pc::Status* resp) {
  VLAKE_MILVUS_AUTH(resp);
  const std::string& name = req->collection_name();
  Result<vector::CollectionSchema> schema = Usable(*caller, name);
  if (!schema.ok()) {
    FillStatus(schema.status(), Missing::kCollection, resp);
    return grpc::Status::OK;
  }
  if (!req->field_name().empty() && req->field_name() != schema->vector().name) {
    FillStatus(Status(Code::kInvalidArgument, "field " + req->field_name() +
                                                  " is not the vector field: vlake indexes " +
                                                  schema->vector().name + " only"),
               Missing::kOther, resp);
    return grpc::Status::OK;
  }
  Result<IndexChoice> choice = IndexFromParams(req->extra_params());
  Status st = choice.status();
  if (st.ok() && choice->metric && *choice->metric != schema->metric) {
    st = engine_->SetMetric(name, *choice->metric);
  }
  Result<std::string> job = st.ok() ? engine_->BuildIndex(name, choice->factory, choice->device)
                                    : Result<std::string>(st);
  if (!job.ok() && job.status().code() == Code::kUnavailable &&
      choice->device == vectordb::BuildDevice::kGpu) {
    // No GPU on this node: not a transient condition, so not retriable.
    job = Status(Code::kInvalidArgument, "index type " + choice->index_type +
                                             " builds on a GPU, and this node has none: " +
                                             job.status().message());
  }
  if (!job.ok()) {
    FillStatus(job.status(), Missing::kCollection, resp);
    return grpc::Status::OK;
  }
  std::lock_guard<std::mutex> lock(jobs_mu_);
  last_job_[name] = *job;
  return grpc::Status::OK;
}

Status MilvusGrpcService::DescribeIndexOf(const std::string& name,
                                          pm::IndexDescription* out) const {
  VLAKE_ASSIGN_OR_RETURN(vectordb::CollectionInfo info, engine_->Describe(name));
  if (info.index_spec.empty()) {
    return Status(Code::kNotFound, "index not found[collection=" + name + "]");
  }
  std::string type, params;
  SpecParams(info.index_spec, &type, &params);
  out->set_index_name(info.schema.vector().name);
  out->set_field_name(info.schema.vector().name);
  out->set_indexid(1);
  AddParam(out, "index_type", type);
  AddParam(out, "metric_type", std::string(vector::MetricName(info.schema.metric)));
  AddParam(out, "params", params);
  int64_t indexed = 0;
  for (const vectordb::SegmentInfo& s : info.segments) {
    if (s.index == info.index_spec) indexed += s.rows - s.deleted;
  }
  out->set_total_rows(info.rows);
  out->set_indexed_rows(indexed);
  out->set_pending_index_rows(std::max<int64_t>(0, info.rows - indexed));
  out->set_state(pc::Finished);
  std::string job_id;
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    auto it = last_job_.find(name);
    if (it != last_job_.end()) job_id = it->second;
  }
  if (!job_id.empty()) {
    Result<vectordb::Job> job = engine_->GetJob(job_id);
    if (job.ok() && (job->state == vectordb::Job::State::kQueued ||
                     job->state == vectordb::Job::State::kRunning)) {
      out->set_state(pc::InProgress);
    } else if (job.ok() && job->state == vectordb::Job::State::kFailed) {
      out->set_state(pc::Failed);
      out->set_index_state_fail_reason(job->error);
    }
  }
  return Status::Ok();
}

grpc::Status MilvusGrpcService::DescribeIndex(grpc::ServerContext* ctx,
                                              const pm::DescribeIndexRequest* req,
                                              pm::DescribeIndexResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  pm::IndexDescription d;
  Status st = IfOwner(*caller, req->collection_name(),
                      [&] { return DescribeIndexOf(req->collection_name(), &d); });
  if (st.ok() && !req->index_name().empty() && req->index_name() != d.index_name()) {
    st = Status(Code::kNotFound, "index not found[index=" + req->index_name() + "]");
  }
  if (!st.ok()) {
    FillStatus(st, MissingOf(st), resp->mutable_status());
    return grpc::Status::OK;
  }
  *resp->add_index_descriptions() = std::move(d);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::DropIndex(grpc::ServerContext* ctx,
                                          const pm::DropIndexRequest* req, pc::Status* resp) {
  VLAKE_MILVUS_AUTH(resp);
  const std::string& name = req->collection_name();
  Status st = IfOwner(*caller, name, [&]() -> Status {
    VLAKE_ASSIGN_OR_RETURN(vector::CollectionSchema schema, engine_->Schema(name));
    const std::string& vec = schema.vector().name;
    if ((!req->field_name().empty() && req->field_name() != vec) ||
        (!req->index_name().empty() && req->index_name() != vec)) {
      return Status(Code::kNotFound, "index not found[index=" +
                                         (req->index_name().empty() ? req->field_name()
                                                                    : req->index_name()) +
                                         "]");
    }
    Status dropped = engine_->DropIndex(name);
    // As Milvus: dropping where there is no index succeeds.
    if (dropped.code() == Code::kNotFound && MissingOf(dropped) == Missing::kIndex) {
      return Status::Ok();
    }
    return dropped;
  });
  FillStatus(st, MissingOf(st), resp);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::GetIndexState(grpc::ServerContext* ctx,
                                              const pm::GetIndexStateRequest* req,
                                              pm::GetIndexStateResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  pm::IndexDescription d;
  Status st = IfOwner(*caller, req->collection_name(),
                      [&] { return DescribeIndexOf(req->collection_name(), &d); });
  if (!st.ok()) {
    FillStatus(st, MissingOf(st), resp->mutable_status());
    return grpc::Status::OK;
  }
  resp->set_state(d.state());
  resp->set_fail_reason(d.index_state_fail_reason());
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::LoadCollection(grpc::ServerContext* ctx,
                                               const pm::LoadCollectionRequest* req,
                                               pc::Status* resp) {
  VLAKE_MILVUS_AUTH(resp);
  const std::string& name = req->collection_name();
  FillStatus(IfOwner(*caller, name, [&] { return engine_->Load(name); }), Missing::kCollection,
             resp);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::ReleaseCollection(grpc::ServerContext* ctx,
                                                  const pm::ReleaseCollectionRequest* req,
                                                  pc::Status* resp) {
  VLAKE_MILVUS_AUTH(resp);
  const std::string& name = req->collection_name();
  FillStatus(IfOwner(*caller, name, [&] { return engine_->Release(name); }), Missing::kCollection,
             resp);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::GetLoadState(grpc::ServerContext* ctx,
                                             const pm::GetLoadStateRequest* req,
                                             pm::GetLoadStateResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  Result<vectordb::CollectionInfo> info = OwnedInfo(*caller, req->collection_name());
  if (!info.ok()) {
    if (info.status().code() == Code::kNotFound) {
      resp->set_state(pc::LoadStateNotExist);
    }
    FillStatus(info.status(), Missing::kCollection, resp->mutable_status());
    return grpc::Status::OK;
  }
  resp->set_state(info->loaded ? pc::LoadStateLoaded : pc::LoadStateNotLoad);
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::GetLoadingProgress(grpc::ServerContext* ctx,
                                                   const pm::GetLoadingProgressRequest* req,
                                                   pm::GetLoadingProgressResponse* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  Result<vectordb::CollectionInfo> info = OwnedInfo(*caller, req->collection_name());
  if (!info.ok()) {
    FillStatus(info.status(), Missing::kCollection, resp->mutable_status());
    return grpc::Status::OK;
  }
  resp->set_progress(info->loaded ? 100 : 0);  // Load returns once loaded
  resp->set_refresh_progress(resp->progress());
  return grpc::Status::OK;
}

namespace {

// What a request's output_fields resolve to: the fields to fetch (never the primary key, which
// every reply carries first; the key field is fetched by the caller when it is a VarChar), and
// the dynamic field's keys when only some were named.
struct Outputs {
  std::vector<const vector::FieldSchema*> fields;
  std::vector<std::string> dynamic_keys;  // non-empty: reduce `$meta` to these keys
  bool count = false;                     // count(*)
};

// "*" = every visible field (and all of `$meta`); a name that is no field is a key of the
// dynamic field when the collection has one, else an error.
Result<Outputs> ResolveOutputs(const vector::CollectionSchema& schema,
                               const google::protobuf::RepeatedPtrField<std::string>& names,
                               bool allow_count) {
  Outputs out;
  const vector::FieldSchema& pk = MilvusPrimary(schema);
  const vector::FieldSchema* dynamic = schema.dynamic_field();
  bool whole_meta = false;
  auto add = [&](const vector::FieldSchema* f) {
    if (f == &pk || IsHiddenField(f->name)) return;
    if (std::find(out.fields.begin(), out.fields.end(), f) == out.fields.end()) {
      out.fields.push_back(f);
    }
  };
  for (const std::string& n : names) {
    if (n == "*") {
      for (const auto& f : schema.fields) add(&f);
      whole_meta = true;
    } else if (allow_count && n == "count(*)") {
      out.count = true;
    } else if (const vector::FieldSchema* f = schema.Find(n); f != nullptr && !IsHiddenField(n)) {
      add(f);
      if (f->dynamic) whole_meta = true;
    } else if (dynamic != nullptr && vector::IsValidName(n)) {
      add(dynamic);
      out.dynamic_keys.push_back(n);
    } else {
      return Status(Code::kInvalidArgument, "field " + n + " not exist");
    }
  }
  if (whole_meta) out.dynamic_keys.clear();
  return out;
}

// One reply column: the values of `field`, `$meta` reduced to the named keys.
ps::FieldData OutputColumn(const vector::FieldSchema& field, const Outputs& outputs,
                           std::vector<vectordb::FieldValue> values) {
  if (field.dynamic && !outputs.dynamic_keys.empty()) {
    for (auto& v : values) {
      if (auto* text = std::get_if<std::string>(&v)) *text = PickKeys(*text, outputs.dynamic_keys);
    }
  }
  return FieldDataOf(field, values);
}

// The engine's output_fields for `outputs`: the VarChar key first when there is one (the
// engine's own primary key is then the hidden row id).
std::vector<std::string> EngineOutputs(const vector::CollectionSchema& schema,
                                       const Outputs& outputs, bool* key_first) {
  std::vector<std::string> out;
  *key_first = MilvusPrimary(schema).type == vector::FieldType::kVarchar;
  if (*key_first) out.push_back(MilvusPrimary(schema).name);
  for (const auto* f : outputs.fields) out.push_back(f->name);
  return out;
}

}  // namespace

grpc::Status MilvusGrpcService::Search(grpc::ServerContext* ctx, const pm::SearchRequest* req,
                                       pm::SearchResults* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  const std::string& name = req->collection_name();
  resp->set_collection_name(name);
  auto fail = [&](const Status& st) {
    FillStatus(st, Missing::kCollection, resp->mutable_status());
    return grpc::Status::OK;
  };
  const std::vector<std::string> partitions = Names(req->partition_names());
  Result<vector::CollectionSchema> schema = Usable(*caller, name, partitions);
  if (!schema.ok()) return fail(schema.status());
  const std::string anns = Param(req->search_params(), "anns_field");
  if (!anns.empty() && anns != schema->vector().name) {
    return fail(Status(Code::kInvalidArgument, "anns_field " + anns + " is not the vector field"));
  }
  Result<SearchChoice> choice = SearchFromParams(req->search_params());
  if (!choice.ok()) return fail(choice.status());
  if (choice->metric && *choice->metric != schema->metric) {
    return fail(Status(Code::kInvalidArgument,
                       "metric type not match: invalid parameter[expected=" +
                           std::string(vector::MetricName(schema->metric)) + "][actual=" +
                           std::string(vector::MetricName(*choice->metric)) + "]"));
  }
  Result<Outputs> outputs = ResolveOutputs(*schema, req->output_fields(), false);
  if (!outputs.ok()) return fail(outputs.status());
  vectordb::SearchRequest sr;
  Result<std::vector<float>> vectors = QueryVectors(req->placeholder_group(), schema->dim(), &sr.nq);
  if (!vectors.ok()) return fail(vectors.status());
  sr.vectors = std::move(*vectors);
  sr.params = choice->params;
  Result<std::string> filter = WithPartitions(*schema, req->dsl(), partitions);
  if (!filter.ok()) return fail(filter.status());
  sr.filter = std::move(*filter);
  bool key_first = false;
  sr.output_fields = EngineOutputs(*schema, *outputs, &key_first);
  Result<vectordb::SearchResponse> found = engine_->Search(name, sr);
  if (!found.ok()) return fail(found.status());

  const vector::FieldSchema& pk = MilvusPrimary(*schema);
  ps::SearchResultData* out = resp->mutable_results();
  out->set_num_queries(sr.nq);
  out->set_top_k(choice->topk);
  out->set_primary_field_name(pk.name);
  std::vector<vectordb::FieldValue> ids;
  std::vector<std::vector<vectordb::FieldValue>> columns(outputs->fields.size());
  const double scale = choice->round_decimal >= 0 ? std::pow(10.0, choice->round_decimal) : 0;
  const size_t skip = key_first ? 1 : 0;
  for (auto& hits : found->hits) {
    int64_t kept = 0;
    for (size_t h = static_cast<size_t>(choice->offset); h < hits.size(); ++h) {
      vectordb::Hit& hit = hits[h];
      if (key_first) {
        ids.push_back(std::move(hit.fields[0]));
      } else {
        ids.emplace_back(hit.id);
      }
      float score = hit.distance;
      if (scale > 0) score = static_cast<float>(std::round(score * scale) / scale);
      out->add_scores(score);
      out->add_distances(score);
      for (size_t c = 0; c < columns.size(); ++c) columns[c].push_back(std::move(hit.fields[c + skip]));
      ++kept;
    }
    out->add_topks(kept);
  }
  SetIds(pk, ids, out->mutable_ids());
  // The SDKs build hits from fields_data and output_fields: the primary key goes in both.
  *out->add_fields_data() = PrimaryKeyData(pk, ids);
  out->add_output_fields(pk.name);
  for (size_t c = 0; c < columns.size(); ++c) {
    const vector::FieldSchema& f = *outputs->fields[c];
    *out->add_fields_data() = OutputColumn(f, *outputs, std::move(columns[c]));
    // As Milvus: dynamic keys asked for by name are listed by name (the SDKs then read them
    // out of `$meta`); `*` or `$meta` lists `$meta` itself.
    if (f.dynamic && !outputs->dynamic_keys.empty()) {
      for (const std::string& k : outputs->dynamic_keys) out->add_output_fields(k);
    } else {
      out->add_output_fields(f.name);
    }
  }
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::Query(grpc::ServerContext* ctx, const pm::QueryRequest* req,
                                      pm::QueryResults* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  const std::string& name = req->collection_name();
  resp->set_collection_name(name);
  auto fail = [&](const Status& st) {
    FillStatus(st, Missing::kCollection, resp->mutable_status());
    return grpc::Status::OK;
  };
  const std::vector<std::string> partitions = Names(req->partition_names());
  Result<vector::CollectionSchema> schema = Usable(*caller, name, partitions);
  if (!schema.ok()) return fail(schema.status());
  Result<Outputs> outputs = ResolveOutputs(*schema, req->output_fields(), true);
  if (!outputs.ok()) return fail(outputs.status());
  const bool count = outputs->count;
  int64_t limit = -1, offset = 0;
  for (const char* key : {"limit", "offset"}) {
    const std::string v = Param(req->query_params(), key);
    if (v.empty()) continue;
    std::optional<uint64_t> n = ParseUint64(v);
    if (!n || *n > static_cast<uint64_t>(INT64_MAX / 2)) {  // limit + offset must not overflow
      return fail(Status(Code::kInvalidArgument, std::string(key) + " must be a non-negative integer"));
    }
    (key[0] == 'l' ? limit : offset) = static_cast<int64_t>(*n);
  }
  if (req->expr().empty() && limit < 0 && !count) {
    return fail(Status(Code::kInvalidArgument, "empty expression should be used with limit"));
  }
  vectordb::QueryRequest qr;
  Result<std::string> filter =
      WithPartitions(*schema, req->expr().empty() ? "true" : req->expr(), partitions);
  if (!filter.ok()) return fail(filter.status());
  qr.filter = std::move(*filter);
  qr.limit = count ? std::numeric_limits<int64_t>::max()
                   : (limit < 0 ? vector::kMaxTopK : limit + offset);
  bool key_first = false;
  if (!count) qr.output_fields = EngineOutputs(*schema, *outputs, &key_first);
  Result<vectordb::QueryResponse> found = engine_->Query(name, qr);
  if (!found.ok()) return fail(found.status());
  if (count) {
    ps::FieldData* c = resp->add_fields_data();
    c->set_type(ps::Int64);
    c->set_field_name("count(*)");
    c->mutable_scalars()->mutable_long_data()->add_data(static_cast<int64_t>(found->ids.size()));
    resp->add_output_fields("count(*)");
    return grpc::Status::OK;
  }
  const vector::FieldSchema& pk = MilvusPrimary(*schema);
  const size_t begin = std::min(found->ids.size(), static_cast<size_t>(offset));
  const size_t skip = key_first ? 1 : 0;
  std::vector<vectordb::FieldValue> ids;
  for (size_t r = begin; r < found->ids.size(); ++r) {
    if (key_first) {
      ids.push_back(std::move(found->rows[r][0]));
    } else {
      ids.emplace_back(found->ids[r]);
    }
  }
  *resp->add_fields_data() = PrimaryKeyData(pk, ids);
  resp->add_output_fields(pk.name);
  resp->set_primary_field_name(pk.name);
  for (size_t c = 0; c < outputs->fields.size(); ++c) {
    std::vector<vectordb::FieldValue> values;
    for (size_t r = begin; r < found->rows.size(); ++r) {
      values.push_back(std::move(found->rows[r][c + skip]));
    }
    *resp->add_fields_data() = OutputColumn(*outputs->fields[c], *outputs, std::move(values));
    resp->add_output_fields(outputs->fields[c]->name);
  }
  return grpc::Status::OK;
}

}  // namespace vlake::milvus
