// MilvusGrpcService's data RPCs (grpc_service.h): inserts and deletes, flush, indexes,
// load/release, search and query.
#include <chrono>
#include <climits>
#include <cmath>

#include "common/encoding.h"
#include "milvus/data_map.h"
#include "milvus/grpc_auth.h"
#include "milvus/grpc_service.h"

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

// vlake collections have the one partition Milvus gives every collection.
Status DefaultPartitionOnly(const std::string& partition) {
  if (partition.empty() || partition == "_default") return Status::Ok();
  return Status(Code::kInvalidArgument, "partition not found[partition=" + partition +
                                            "]: vlake collections have the _default partition");
}

void AddParam(pm::IndexDescription* d, const std::string& key, const std::string& value) {
  auto* kv = d->add_params();
  kv->set_key(key);
  kv->set_value(value);
}

}  // namespace

Result<vector::CollectionSchema> MilvusGrpcService::Usable(const vectordb::Caller& caller,
                                                           const std::string& name,
                                                           const std::string& partition) const {
  VLAKE_RETURN_IF_ERROR(CheckOwner(caller, name));
  VLAKE_RETURN_IF_ERROR(DefaultPartitionOnly(partition));
  return engine_->Schema(name);
}

grpc::Status MilvusGrpcService::Insert(grpc::ServerContext* ctx, const pm::InsertRequest* req,
                                       pm::MutationResult* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  Result<vector::CollectionSchema> schema =
      Usable(*caller, req->collection_name(), req->partition_name());
  Result<vector::RowBatch> rows = schema.ok()
                                      ? RowsFromFieldData(*schema, req->fields_data(), req->num_rows())
                                      : Result<vector::RowBatch>(schema.status());
  Result<vectordb::InsertResult> inserted =
      rows.ok() ? engine_->Insert(req->collection_name(), std::move(*rows))
                : Result<vectordb::InsertResult>(rows.status());
  if (!inserted.ok()) {
    // No err_index list: num_rows is the client's claim, not a count of what arrived (a
    // fuzzed 4-billion num_rows made the reply that large).
    FillStatus(inserted.status(), Missing::kCollection, resp->mutable_status());
    return grpc::Status::OK;
  }
  auto* ids = resp->mutable_ids()->mutable_int_id();
  ids->mutable_data()->Add(inserted->ids.begin(), inserted->ids.end());
  for (uint32_t i = 0; i < inserted->ids.size(); ++i) resp->add_succ_index(i);
  resp->set_insert_cnt(static_cast<int64_t>(inserted->ids.size()));
  resp->set_timestamp(HybridNow());
  return grpc::Status::OK;
}

grpc::Status MilvusGrpcService::Delete(grpc::ServerContext* ctx, const pm::DeleteRequest* req,
                                       pm::MutationResult* resp) {
  VLAKE_MILVUS_AUTH(resp->mutable_status());
  Result<vector::CollectionSchema> schema =
      Usable(*caller, req->collection_name(), req->partition_name());
  Result<int64_t> n = !schema.ok() ? Result<int64_t>(schema.status())
                      : req->expr().empty()
                          ? Result<int64_t>(Status(Code::kInvalidArgument, "expr is required"))
                          : engine_->Delete(req->collection_name(), {}, req->expr());
  if (!n.ok()) {
    FillStatus(n.status(), Missing::kCollection, resp->mutable_status());
    return grpc::Status::OK;
  }
  resp->set_delete_cnt(*n);
  resp->mutable_ids()->mutable_int_id();
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

// The output fields a request names, resolved against the schema: "*" = every field; the
// primary key is always returned (first) and so not listed again.
Result<std::vector<const vector::FieldSchema*>> OutputFields(
    const vector::CollectionSchema& schema,
    const google::protobuf::RepeatedPtrField<std::string>& names, bool* count) {
  std::vector<const vector::FieldSchema*> out;
  auto add = [&](const vector::FieldSchema* f) {
    if (f->primary_key) return;
    for (const auto* g : out) {
      if (g == f) return;
    }
    out.push_back(f);
  };
  for (const std::string& n : names) {
    if (n == "*") {
      for (const auto& f : schema.fields) add(&f);
    } else if (count != nullptr && n == "count(*)") {
      *count = true;
    } else {
      const vector::FieldSchema* f = schema.Find(n);
      if (f == nullptr) {
        return Status(Code::kInvalidArgument, "field " + n + " not exist");
      }
      add(f);
    }
  }
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
  for (const std::string& p : req->partition_names()) {
    if (Status st = DefaultPartitionOnly(p); !st.ok()) return fail(st);
  }
  Result<vector::CollectionSchema> schema = Usable(*caller, name);
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
  Result<std::vector<const vector::FieldSchema*>> outputs =
      OutputFields(*schema, req->output_fields(), nullptr);
  if (!outputs.ok()) return fail(outputs.status());
  vectordb::SearchRequest sr;
  Result<std::vector<float>> vectors = QueryVectors(req->placeholder_group(), schema->dim(), &sr.nq);
  if (!vectors.ok()) return fail(vectors.status());
  sr.vectors = std::move(*vectors);
  sr.params = choice->params;
  sr.filter = req->dsl();
  for (const auto* f : *outputs) sr.output_fields.push_back(f->name);
  Result<vectordb::SearchResponse> found = engine_->Search(name, sr);
  if (!found.ok()) return fail(found.status());

  ps::SearchResultData* out = resp->mutable_results();
  out->set_num_queries(sr.nq);
  out->set_top_k(choice->topk);
  out->set_primary_field_name(schema->primary().name);
  std::vector<int64_t> ids;
  std::vector<std::vector<vectordb::FieldValue>> columns(outputs->size());
  const double scale = choice->round_decimal >= 0 ? std::pow(10.0, choice->round_decimal) : 0;
  for (auto& hits : found->hits) {
    int64_t kept = 0;
    for (size_t h = static_cast<size_t>(choice->offset); h < hits.size(); ++h) {
      vectordb::Hit& hit = hits[h];
      ids.push_back(hit.id);
      float score = hit.distance;
      if (scale > 0) score = static_cast<float>(std::round(score * scale) / scale);
      out->add_scores(score);
      out->add_distances(score);
      for (size_t c = 0; c < columns.size(); ++c) columns[c].push_back(std::move(hit.fields[c]));
      ++kept;
    }
    out->add_topks(kept);
  }
  out->mutable_ids()->mutable_int_id()->mutable_data()->Add(ids.begin(), ids.end());
  // The SDKs build hits from fields_data and output_fields: the primary key goes in both.
  *out->add_fields_data() = PrimaryKeyData(schema->primary(), ids);
  out->add_output_fields(schema->primary().name);
  for (size_t c = 0; c < columns.size(); ++c) {
    *out->add_fields_data() = FieldDataOf(*(*outputs)[c], columns[c]);
    out->add_output_fields((*outputs)[c]->name);
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
  for (const std::string& p : req->partition_names()) {
    if (Status st = DefaultPartitionOnly(p); !st.ok()) return fail(st);
  }
  Result<vector::CollectionSchema> schema = Usable(*caller, name);
  if (!schema.ok()) return fail(schema.status());
  bool count = false;
  Result<std::vector<const vector::FieldSchema*>> outputs =
      OutputFields(*schema, req->output_fields(), &count);
  if (!outputs.ok()) return fail(outputs.status());
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
  qr.filter = req->expr().empty() ? "true" : req->expr();  // every row
  qr.limit = count ? std::numeric_limits<int64_t>::max()
                   : (limit < 0 ? vector::kMaxTopK : limit + offset);
  if (!count) {
    for (const auto* f : *outputs) qr.output_fields.push_back(f->name);
  }
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
  const size_t begin = std::min(found->ids.size(), static_cast<size_t>(offset));
  std::vector<int64_t> ids(found->ids.begin() + static_cast<std::ptrdiff_t>(begin), found->ids.end());
  *resp->add_fields_data() = PrimaryKeyData(schema->primary(), ids);
  resp->add_output_fields(schema->primary().name);
  resp->set_primary_field_name(schema->primary().name);
  for (size_t c = 0; c < outputs->size(); ++c) {
    std::vector<vectordb::FieldValue> values;
    for (size_t r = begin; r < found->rows.size(); ++r) values.push_back(std::move(found->rows[r][c]));
    *resp->add_fields_data() = FieldDataOf(*(*outputs)[c], values);
    resp->add_output_fields((*outputs)[c]->name);
  }
  return grpc::Status::OK;
}

}  // namespace vlake::milvus
