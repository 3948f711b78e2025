#include "vectordb/collection.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "common/hash.h"
#include "common/log.h"
#include "vectordb/index_build.h"
#include "vectordb/schema_json.h"

namespace vlake::vectordb {

using json = nlohmann::json;
using vector::Bitset;
using vector::CollectionSchema;
using vector::ColumnSource;
using vector::ColumnView;
using vector::FieldSchema;
using vector::FieldType;
using vector::RowBatch;
using vector::Segment;
using vector::SegmentKind;

namespace {

constexpr int kManifestFormat = 1;

std::string SeqKey(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020" PRIu64, seq);
  return buf;
}

FieldValue ValueAt(const ColumnView& v, int64_t row) {
  switch (vector::StorageOf(v.type)) {
    case vector::Storage::kInt64:
      return v.int64s()[row];
    case vector::Storage::kDouble:
      return v.doubles()[row];
    case vector::Storage::kBool:
      return v.bools()[row] != 0;
    case vector::Storage::kBytes:
      return std::string(v.varchar(row));
    case vector::Storage::kFloats:
      return std::vector<float>(v.floats() + row * v.dim, v.floats() + (row + 1) * v.dim);
  }
  return std::monostate{};
}

// The values of one column of an insert against its schema field: narrow integers in range,
// float32 rounded to float32, varchar within max_length, json documents that parse (objects
// for the dynamic field) and fit kMaxJsonBytes.
Status ValidateValues(const FieldSchema& f, vector::ColumnData* in) {
  auto bad = [&](const std::string& what) {
    return Status(Code::kInvalidArgument, "field '" + f.name + "': " + what);
  };
  switch (f.type) {
    case FieldType::kInt8:
    case FieldType::kInt16:
    case FieldType::kInt32:
      for (int64_t v : in->int64s) {
        if (v < vector::IntMin(f.type) || v > vector::IntMax(f.type)) {
          return bad("value " + std::to_string(v) + " is out of range for " +
                     std::string(vector::FieldTypeName(f.type)));
        }
      }
      break;
    case FieldType::kFloat:
      for (double& v : in->doubles) {
        if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max()) {
          return bad("value out of range for float32");
        }
        v = static_cast<float>(v);
      }
      break;
    case FieldType::kVarchar:
      for (size_t r = 0; r + 1 < in->offsets.size(); ++r) {
        if (in->offsets[r + 1] - in->offsets[r] > f.varchar_limit()) {
          return bad("a value is longer than max_length (" + std::to_string(f.varchar_limit()) +
                     " bytes)");
        }
      }
      break;
    case FieldType::kJson:
      for (size_t r = 0; r + 1 < in->offsets.size(); ++r) {
        std::string_view text(in->bytes.data() + in->offsets[r], in->offsets[r + 1] - in->offsets[r]);
        if (text.size() > vector::kMaxJsonBytes) {
          return bad("a JSON value is longer than " + std::to_string(vector::kMaxJsonBytes) +
                     " bytes");
        }
        json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (doc.is_discarded()) return bad("row " + std::to_string(r) + " is not valid JSON");
        if (f.dynamic && !doc.is_object()) {
          return bad("row " + std::to_string(r) + " of the dynamic field is not a JSON object");
        }
      }
      break;
    default:
      break;
  }
  return Status::Ok();
}

}  // namespace

namespace {

// `bits` with rows `rows` set, as a new bitset (the old one may be in a published snapshot).
std::shared_ptr<const Bitset> WithRows(const std::shared_ptr<const Bitset>& bits, int64_t size,
                                       const std::vector<int64_t>& rows) {
  auto out = bits ? std::make_shared<Bitset>(*bits) : std::make_shared<Bitset>(size);
  for (int64_t r : rows) out->set(r);
  return out;
}

}  // namespace

// A chunk merged from two: rows of `a` then `b`, their tombstones.
Collection::Chunk Collection::Merged(const std::vector<FieldSchema>& fields, const Chunk& a,
                                     const Chunk& b) {
  auto rows = std::make_shared<RowBatch>(fields);
  const int64_t na = a.rows->num_rows(), nb = b.rows->num_rows();
  rows->AppendRange(*a.rows, 0, na);
  rows->AppendRange(*b.rows, 0, nb);
  Chunk out;
  out.rows = std::move(rows);
  out.deleted_count = a.deleted_count + b.deleted_count;
  if (out.deleted_count > 0) {
    auto bits = std::make_shared<Bitset>(na + nb);
    for (int64_t r = 0; r < na; ++r) {
      if (a.deleted && a.deleted->test(r)) bits->set(r);
    }
    for (int64_t r = 0; r < nb; ++r) {
      if (b.deleted && b.deleted->test(r)) bits->set(na + r);
    }
    out.deleted = std::move(bits);
  }
  return out;
}

Result<std::shared_ptr<const Bitset>> Collection::Part::Allowed(const vector::Filter& filter) const {
  if (filter.empty()) {
    if (deleted_count == 0) return std::shared_ptr<const Bitset>();
    auto out = std::make_shared<Bitset>(*deleted);
    out->Flip();
    return std::shared_ptr<const Bitset>(std::move(out));
  }
  auto out = std::make_shared<Bitset>();
  VLAKE_RETURN_IF_ERROR(filter.Evaluate(*columns, out.get()));
  if (deleted_count > 0) out->AndNot(*deleted);
  return std::shared_ptr<const Bitset>(std::move(out));
}

Collection::Collection(ObjectStore* store, CollectionSchema schema, int64_t segment_max_rows)
    : store_(store),
      schema_(std::move(schema)),
      metric_(schema_.metric),
      segment_max_rows_(segment_max_rows),
      growing_(std::make_shared<Buffer>()) {
  Publish();
}

Result<std::shared_ptr<Collection>> Collection::Create(ObjectStore* store,
                                                       const CollectionSchema& schema,
                                                       int64_t segment_max_rows,
                                                       const std::string& owner) {
  VLAKE_RETURN_IF_ERROR(schema.Validate());
  // Objects left by a drop that crashed half-way have no manifest; clear them first.
  VLAKE_RETURN_IF_ERROR(store->DeleteAll(schema.name + "/"));
  std::shared_ptr<Collection> c(new Collection(store, schema, segment_max_rows));
  c->owner_ = owner;
  std::lock_guard<std::mutex> f(c->flush_mu_);
  VLAKE_RETURN_IF_ERROR(c->WriteManifest());
  return c;
}

Status Collection::WriteManifest() {
  if (dropped_) return Status(Code::kNotFound, "collection " + name() + " was dropped");
  json segments = json::array();
  json manifest;
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    for (const auto& s : sealed_) {
      if (s->max_seq > checkpoint_seq_) continue;  // its rows are still WAL records
      json j = {{"id", s->id}, {"rows", s->rows}, {"bytes", s->bytes}};
      if (!s->deleted_key.empty()) {
        j["deleted_key"] = s->deleted_key;
        j["deleted"] = s->deleted_count;
      }
      if (!s->index_key.empty()) j["index_key"] = s->index_key;
      if (!s->index_spec.empty()) j["index_spec"] = s->index_spec;  // no key: left exact
      segments.push_back(j);
    }
    manifest = {{"format", kManifestFormat},
                {"version", manifest_version_ + 1},
                {"schema", SchemaToJson(schema())},
                {"owner", owner_},
                {"segment_max_rows", segment_max_rows_},
                {"next_auto_id", next_auto_id_},
                {"next_segment", next_segment_},
                {"wal_checkpoint", checkpoint_seq_},
                {"index_spec", index_spec_},
                {"segments", segments}};
    if (!properties_.empty()) manifest["properties"] = properties_;
  }
  VLAKE_RETURN_IF_ERROR(store_->Put(Key("manifest.json"), manifest.dump(1)));
  ++manifest_version_;
  return Status::Ok();
}

Result<std::shared_ptr<Collection>> Collection::Open(ObjectStore* store, const std::string& name) {
  VLAKE_ASSIGN_OR_RETURN(Blob blob, store->Get(name + "/manifest.json"));
  json m = json::parse(blob.view(), nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded() || !m.is_object()) {
    return Status(Code::kCorruption, "collection " + name + ": manifest is not JSON");
  }
  std::shared_ptr<Collection> c;
  try {
    if (m.at("format").get<int>() != kManifestFormat) {
      return Status(Code::kCorruption, "collection " + name + ": unknown manifest format");
    }
    VLAKE_ASSIGN_OR_RETURN(CollectionSchema schema, SchemaFromJson(m.at("schema")));
    c.reset(new Collection(store, schema, m.at("segment_max_rows").get<int64_t>()));
    c->manifest_version_ = m.at("version").get<uint64_t>();
    c->owner_ = m.value("owner", "");
    c->next_auto_id_ = m.at("next_auto_id").get<int64_t>();
    c->next_segment_ = m.at("next_segment").get<int64_t>();
    c->checkpoint_seq_ = m.at("wal_checkpoint").get<uint64_t>();
    c->last_seq_ = c->checkpoint_seq_;
    c->index_spec_ = m.value("index_spec", "");
    if (m.contains("properties")) {
      c->properties_ = m.at("properties").get<std::map<std::string, std::string>>();
    }
    for (const json& j : m.at("segments")) {
      auto s = std::make_shared<Sealed>();
      s->id = j.at("id").get<std::string>();
      s->rows = j.at("rows").get<int64_t>();
      s->bytes = j.at("bytes").get<int64_t>();
      s->deleted_key = j.value("deleted_key", "");
      s->index_key = j.value("index_key", "");
      s->index_spec = j.value("index_spec", "");
      c->sealed_.push_back(std::move(s));
    }
  } catch (const json::exception& e) {
    return Status(Code::kCorruption, "collection " + name + ": manifest: " + e.what());
  }
  for (auto& s : c->sealed_) VLAKE_RETURN_IF_ERROR(c->LoadSealed(s.get()));
  VLAKE_RETURN_IF_ERROR(c->Replay());
  c->CollectGarbage();
  return c;
}

void Collection::CollectGarbage() {
  std::unordered_set<std::string> live = {"manifest.json"};
  for (const auto& s : sealed_) {
    live.insert("segments/" + s->id + ".vlsg");
    if (!s->deleted_key.empty()) live.insert(s->deleted_key);
    if (!s->index_key.empty()) live.insert(s->index_key);
  }
  // Stale WAL records (<= the checkpoint) that a failed trim left are garbage too; later
  // trims start at the checkpoint either way, and the next Open retries what fails here.
  wal_trimmed_seq_ = checkpoint_seq_;
  Result<std::vector<std::string>> keys = store_->List(Key(""));
  if (!keys.ok()) {
    Log(LogLevel::kWarn, "collection garbage not collected",
        {{"collection", name()}, {"error", keys.status().ToString()}});
    return;
  }
  for (const std::string& key : *keys) {
    const std::string rel = key.substr(name().size() + 1);
    if (live.count(rel)) continue;
    if (rel.rfind("wal/", 0) == 0) {
      std::string tail = rel.substr(4);
      char* end = nullptr;
      uint64_t seq = std::strtoull(tail.c_str(), &end, 10);
      if (!tail.empty() && *end == '\0' && seq > checkpoint_seq_) continue;  // replayed
    }
    Status st = store_->Delete(key);
    if (!st.ok()) {
      Log(LogLevel::kWarn, "collection garbage not collected",
          {{"collection", name()}, {"key", key}, {"error", st.ToString()}});
      return;
    }
  }
}

std::string Collection::NewSegmentId() {
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  char id[32];
  std::snprintf(id, sizeof id, "seg-%08" PRId64, next_segment_++);
  return id;
}

Status Collection::LoadSealed(Sealed* s) {
  VLAKE_ASSIGN_OR_RETURN(Blob blob, store_->Get(Key("segments/" + s->id + ".vlsg")));
  VLAKE_ASSIGN_OR_RETURN(s->data, Segment::Decode(blob.owner, blob.data, blob.size));
  VLAKE_RETURN_IF_ERROR(s->data->MatchesSchema(schema_.fields));
  if (s->data->num_rows() != s->rows) {
    return Status(Code::kCorruption, "segment " + s->id + " row count differs from manifest");
  }
  s->deleted.reset();
  s->deleted_count = 0;
  if (!s->deleted_key.empty()) {
    VLAKE_ASSIGN_OR_RETURN(Blob del, store_->Get(Key(s->deleted_key)));
    VLAKE_ASSIGN_OR_RETURN(auto seg, Segment::Decode(del.owner, del.data, del.size));
    VLAKE_ASSIGN_OR_RETURN(ColumnView rows, seg->Column("row"));
    auto bits = std::make_shared<Bitset>(s->rows);
    for (int64_t i = 0; i < rows.rows; ++i) {
      int64_t r = rows.int64s()[i];
      if (r < 0 || r >= s->rows) return Status(Code::kCorruption, "tombstone out of range");
      if (!bits->test(r)) {
        bits->set(r);
        ++s->deleted_count;
      }
    }
    if (s->deleted_count > 0) s->deleted = std::move(bits);
  }
  if (!s->index_key.empty()) {
    VLAKE_ASSIGN_OR_RETURN(Blob ib, store_->Get(Key(s->index_key)));
    VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<vector::VectorIndex> index,
                           vector::LoadIndexFile(ib.view()));
    if (index->size() != s->rows) {
      return Status(Code::kCorruption, "index of segment " + s->id + " has the wrong size");
    }
    s->index = std::move(index);
  }
  return Status::Ok();
}

Status Collection::Replay() {
  VLAKE_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_->List(Key("wal/")));
  for (const std::string& key : keys) {
    std::string tail = key.substr(key.rfind('/') + 1);
    char* end = nullptr;
    uint64_t seq = std::strtoull(tail.c_str(), &end, 10);
    if (tail.empty() || *end != '\0') continue;
    if (seq <= checkpoint_seq_) continue;  // folded in; CollectGarbage removes it
    VLAKE_ASSIGN_OR_RETURN(Blob blob, store_->Get(key));
    VLAKE_ASSIGN_OR_RETURN(auto seg, Segment::Decode(blob.owner, blob.data, blob.size));
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    if (seg->kind() == SegmentKind::kWalInsert || seg->kind() == SegmentKind::kWalUpsert) {
      VLAKE_RETURN_IF_ERROR(seg->MatchesSchema(schema_.fields));
      RowBatch rows(schema_.fields);
      rows.AppendRange(*seg, 0, seg->num_rows());
      const int64_t* pks = rows.Find(schema_.primary().name)->int64s.data();
      for (int64_t i = 0; i < rows.num_rows(); ++i) {
        next_auto_id_ = std::max(next_auto_id_, pks[i] + 1);
      }
      if (seg->kind() == SegmentKind::kWalUpsert) ApplyDeleteKeys(rows);
      ApplyInsert(std::move(rows), seq);
    } else if (seg->kind() == SegmentKind::kWalDelete) {
      VLAKE_ASSIGN_OR_RETURN(ColumnView pk, seg->Column("pk"));
      ApplyDelete(std::vector<int64_t>(pk.int64s(), pk.int64s() + pk.rows), seq);
    } else {
      return Status(Code::kCorruption, "WAL record " + key + " has an unexpected kind");
    }
  }
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  Publish();
  return Status::Ok();
}

Status Collection::ValidateInsert(RowBatch* rows) const {
  const FieldSchema& pk = schema_.primary();
  for (const vector::ColumnData& c : rows->columns()) {
    if (schema_.Find(c.field.name) == nullptr) {
      return Status(Code::kInvalidArgument, "unknown field '" + c.field.name + "'");
    }
  }
  RowBatch ordered(schema_.fields);
  int64_t n = -1;
  for (vector::ColumnData& c : ordered.mutable_columns()) {
    vector::ColumnData* in = rows->Find(c.field.name);
    if (in == nullptr || (c.field.primary_key && c.field.auto_id && in->rows() == 0)) {
      if (c.field.primary_key && c.field.auto_id) continue;
      return Status(Code::kInvalidArgument, "missing field '" + c.field.name + "'");
    }
    if (in->field.type != c.field.type) {
      return Status(Code::kInvalidArgument, "field '" + c.field.name + "' must be " +
                                                std::string(vector::FieldTypeName(c.field.type)));
    }
    if (c.field.type == FieldType::kFloatVector) {
      if (in->field.dim != c.field.dim) {
        return Status(Code::kInvalidArgument, "vector field '" + c.field.name + "' has dimension " +
                                                  std::to_string(c.field.dim) +
                                                  ", got vectors of dimension " +
                                                  std::to_string(in->field.dim));
      }
      if (!vector::AllFinite(in->floats.data(), static_cast<int64_t>(in->floats.size()))) {
        return Status(Code::kInvalidArgument,
                      "vector field '" + c.field.name + "' holds NaN or infinite values");
      }
    }
    VLAKE_RETURN_IF_ERROR(ValidateValues(c.field, in));
    c = std::move(*in);
    c.field = *schema_.Find(c.field.name);
    if (n >= 0 && c.rows() != n) {
      return Status(Code::kInvalidArgument, "field '" + c.field.name + "' has " +
                                                std::to_string(c.rows()) + " rows, expected " +
                                                std::to_string(n));
    }
    n = c.rows();
  }
  if (n <= 0) return Status(Code::kInvalidArgument, "insert has no rows");
  if (pk.auto_id && ordered.Find(pk.name)->rows() != 0) {
    return Status(Code::kInvalidArgument,
                  "primary key '" + pk.name + "' is auto_id: do not pass values for it");
  }
  if (metric() == vector::Metric::kCosine) {
    // COSINE collections keep unit vectors: every index then ranks by inner product.
    vector::ColumnData* v = ordered.Find(schema_.vector().name);
    v->floats = vector::NormalizedCopy(v->floats.data(), n, schema_.dim());
  }
  *rows = std::move(ordered);
  return Status::Ok();
}

Result<InsertResult> Collection::Insert(RowBatch rows) { return Write(std::move(rows), false); }

Result<InsertResult> Collection::Upsert(RowBatch rows) {
  const FieldSchema& key = schema_.key();
  if (key.primary_key && key.auto_id) {
    return Status(Code::kInvalidArgument, "collection " + name() + ": upsert needs the keys of "
                                          "the rows, and primary key '" + key.name +
                                          "' is auto_id (assigned by the engine)");
  }
  return Write(std::move(rows), true);
}

Result<InsertResult> Collection::Write(RowBatch rows, bool upsert) {
  VLAKE_RETURN_IF_ERROR(ValidateInsert(&rows));
  // Group commit: writes queue up; whoever finds no leader commits everything queued (inserts
  // that queued together share one WAL object), then hands the role on by leaving.
  PendingWrite me{std::move(rows), upsert};
  if (!group_commit_) {
    CommitWrites({&me});
    return std::move(me.result);
  }
  std::unique_lock<std::mutex> q(queue_mu_);
  queue_.push_back(&me);
  queue_cv_.wait(q, [&] { return me.done || !committing_; });
  if (me.done) return std::move(me.result);
  committing_ = true;
  while (!queue_.empty()) {
    std::vector<PendingWrite*> batch(queue_.begin(), queue_.end());
    queue_.clear();
    q.unlock();
    CommitWrites(batch);
    q.lock();
    for (PendingWrite* p : batch) p->done = true;
    queue_cv_.notify_all();
  }
  committing_ = false;
  queue_cv_.notify_all();
  return std::move(me.result);
}

void Collection::CommitWrites(const std::vector<PendingWrite*>& batch) {
  std::lock_guard<std::mutex> w(write_mu_);
  const FieldSchema& pk = schema_.primary();
  // Inserts in a row form one group (one WAL record, at most kGroupBytes of rows); each
  // upsert is a record of its own, so its delete applies after the inserts before it.
  constexpr int64_t kGroupBytes = 64 << 20;
  const int64_t row_bytes = 4 * static_cast<int64_t>(schema_.dim()) + 64;
  for (size_t begin = 0; begin < batch.size();) {
    size_t end = begin + 1;
    if (!batch[begin]->upsert) {
      int64_t bytes = batch[begin]->rows.num_rows() * row_bytes;
      while (end < batch.size() && !batch[end]->upsert &&
             bytes + batch[end]->rows.num_rows() * row_bytes <= kGroupBytes) {
        bytes += batch[end]->rows.num_rows() * row_bytes;
        ++end;
      }
    }
    auto fail = [&](const Status& st) {
      for (size_t i = begin; i < end; ++i) batch[i]->result = st;
    };
    if (dropped_) {
      fail(Status(Code::kNotFound, "collection " + name() + " was dropped"));
      begin = end;
      continue;
    }
    uint64_t seq;
    {
      std::unique_lock<std::shared_mutex> lock(state_mu_);
      seq = last_seq_ + 1;
      if (!loaded_) {
        fail(Status(Code::kInvalidArgument, "collection " + name() + " is released"));
        begin = end;
        continue;
      }
      for (size_t i = begin; i < end; ++i) {
        RowBatch& rows = batch[i]->rows;
        vector::ColumnData* ids = rows.Find(pk.name);
        const int64_t n = rows.Find(schema_.vector().name)->rows();
        if (pk.auto_id) {
          ids->int64s.resize(n);
          for (int64_t r = 0; r < n; ++r) ids->int64s[r] = next_auto_id_++;
        }
        VLAKE_CHECK(rows.Seal().ok());  // ValidateInsert made every column n rows long
      }
    }
    RowBatch group;
    if (end - begin == 1) {
      group = std::move(batch[begin]->rows);
    } else {
      group = RowBatch(schema_.fields);
      for (size_t i = begin; i < end; ++i) {
        group.AppendRange(batch[i]->rows, 0, batch[i]->rows.num_rows());
      }
    }
    Status st = Status::Ok();
    {
      const bool upsert = batch[begin]->upsert;
      st = store_->Put(Key("wal/" + SeqKey(seq)),
                       group.Encode(upsert ? SegmentKind::kWalUpsert : SegmentKind::kWalInsert));
    }
    if (!st.ok()) {
      fail(st);
      begin = end;
      continue;
    }
    // Acknowledged: each write's ids, in the order of the record.
    const int64_t* ids = group.Find(pk.name)->int64s.data();
    int64_t at = 0;
    for (size_t i = begin; i < end; ++i) {
      const int64_t n = end - begin == 1 ? group.num_rows() : batch[i]->rows.num_rows();
      InsertResult r;
      r.ids.assign(ids + at, ids + at + n);
      at += n;
      batch[i]->result = std::move(r);
    }
    {
      std::unique_lock<std::shared_mutex> lock(state_mu_);
      if (batch[begin]->upsert) ApplyDeleteKeys(group);
      ApplyInsert(std::move(group), seq);  // publishes both halves of an upsert at once
    }
    begin = end;
  }
}

void Collection::ApplyInsert(RowBatch rows, uint64_t seq) {
  const int64_t n = rows.num_rows();
  std::vector<Chunk>& chunks = growing_->chunks;
  chunks.push_back(Chunk{std::make_shared<const RowBatch>(std::move(rows)), nullptr, 0});
  growing_->rows += n;
  // Merge the newest chunk into its predecessor while they are of similar size: chunk sizes
  // then fall geometrically, so a buffer has O(log rows) chunks and each row is copied
  // O(log rows) times however small the inserts.
  while (chunks.size() >= 2 &&
         chunks[chunks.size() - 2].rows->num_rows() <= 2 * chunks.back().rows->num_rows()) {
    Chunk merged = Merged(schema_.fields, chunks[chunks.size() - 2], chunks.back());
    chunks.pop_back();
    chunks.back() = std::move(merged);
  }
  last_seq_ = seq;
  if (growing_->rows >= segment_max_rows_) needs_flush_ = true;
  Publish();
}

int64_t Collection::MarkDeleted(const std::string& field,
                                const std::function<bool(const ColumnView&, int64_t)>& match) {
  int64_t hit = 0;
  for (auto& s : sealed_) {
    if (!s->data) continue;
    const ColumnView col = *s->data->Column(field);
    std::vector<int64_t> rows;
    for (int64_t r = 0; r < s->rows; ++r) {
      if (!(s->deleted && s->deleted->test(r)) && match(col, r)) rows.push_back(r);
    }
    if (rows.empty()) continue;
    s->deleted = WithRows(s->deleted, s->rows, rows);
    s->deleted_count += static_cast<int64_t>(rows.size());
    ++s->deleted_version;
    hit += static_cast<int64_t>(rows.size());
  }
  auto mark = [&](Buffer& b) {
    for (Chunk& c : b.chunks) {
      const ColumnView col = *c.rows->Column(field);
      std::vector<int64_t> rows;
      for (int64_t r = 0; r < col.rows; ++r) {
        if (!(c.deleted && c.deleted->test(r)) && match(col, r)) rows.push_back(r);
      }
      if (rows.empty()) continue;
      c.deleted = WithRows(c.deleted, col.rows, rows);
      c.deleted_count += static_cast<int64_t>(rows.size());
      hit += static_cast<int64_t>(rows.size());
    }
  };
  for (auto& b : sealing_) mark(*b);
  mark(*growing_);
  return hit;
}

void Collection::ApplyDeleteKeys(const RowBatch& rows) {
  const FieldSchema& key = schema_.key();
  const ColumnView keys = *rows.Column(key.name);
  std::unordered_set<int64_t> ints;
  std::unordered_set<std::string_view> strings;
  for (int64_t r = 0; r < keys.rows; ++r) {
    if (key.type == FieldType::kVarchar) {
      strings.insert(keys.varchar(r));
    } else {
      ints.insert(keys.int64s()[r]);
    }
  }
  MarkDeleted(key.name, [&](const ColumnView& col, int64_t r) {
    return key.type == FieldType::kVarchar ? strings.count(col.varchar(r)) != 0
                                           : ints.count(col.int64s()[r]) != 0;
  });
}

int64_t Collection::ApplyDelete(const std::vector<int64_t>& pks, uint64_t seq) {
  std::unordered_set<int64_t> set(pks.begin(), pks.end());
  const int64_t hit = MarkDeleted(schema_.primary().name, [&](const ColumnView& col, int64_t r) {
    return set.count(col.int64s()[r]) != 0;
  });
  last_seq_ = seq;
  Publish();
  return hit;
}

Result<int64_t> Collection::Delete(const std::vector<int64_t>& ids, const std::string& filter) {
  std::vector<int64_t> pks = ids;
  std::lock_guard<std::mutex> w(write_mu_);
  if (dropped_) return Status(Code::kNotFound, "collection " + name() + " was dropped");
  if (!filter.empty()) {
    VLAKE_ASSIGN_OR_RETURN(vector::Filter f, vector::Filter::Parse(filter, schema_));
    // write_mu_ keeps other writes out, so the snapshot is the state this delete applies to.
    std::shared_ptr<const Snapshot> snap = snapshot();
    if (!snap->loaded) return Status(Code::kInvalidArgument, "collection " + name() + " is released");
    for (const Part& part : snap->parts) {
      VLAKE_ASSIGN_OR_RETURN(std::shared_ptr<const Bitset> match, part.Allowed(f));
      for (int64_t r = 0; r < part.rows; ++r) {
        if (match->test(r)) pks.push_back(part.pks[r]);
      }
    }
  }
  if (pks.empty()) return 0;
  RowBatch batch({FieldSchema{"pk", FieldType::kInt64, 0, true}});
  batch.mutable_columns()[0].int64s = pks;
  VLAKE_RETURN_IF_ERROR(batch.Seal());
  uint64_t seq;
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    if (!loaded_) return Status(Code::kInvalidArgument, "collection " + name() + " is released");
    seq = last_seq_ + 1;
  }
  VLAKE_RETURN_IF_ERROR(
      store_->Put(Key("wal/" + SeqKey(seq)), batch.Encode(SegmentKind::kWalDelete)));
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  return ApplyDelete(pks, seq);
}

bool Collection::NeedsFlush() const {
  if (!needs_flush_.load()) return false;
  return std::chrono::steady_clock::now().time_since_epoch().count() >= retry_after_.load();
}

void Collection::NoteFlushResult(const Status& st) {
  if (st.ok()) {
    retry_backoff_ms_ = 0;
    return;
  }
  // Retried in the background with exponential backoff (100 ms .. 10 s), so a store that is
  // down is neither hammered nor forgotten.
  retry_backoff_ms_ = std::clamp<int64_t>(retry_backoff_ms_ * 2, 100, 10'000);
  retry_after_ = (std::chrono::steady_clock::now() + std::chrono::milliseconds(retry_backoff_ms_))
                     .time_since_epoch()
                     .count();
  needs_flush_ = true;
}

Status Collection::Flush() {
  std::lock_guard<std::mutex> f(flush_mu_);
  Status st = FlushLocked();
  NoteFlushResult(st);
  return st;
}

Status Collection::FlushLocked() {
  std::vector<std::shared_ptr<Buffer>> pending;
  uint64_t checkpoint;
  {
    // Holding write_mu_ here would block inserts for the whole flush; the state lock alone
    // makes (growing_, last_seq_) a consistent cut because appliers hold it exclusively.
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    if (!loaded_) return Status(Code::kInvalidArgument, "collection " + name() + " is released");
    checkpoint = last_seq_;
    if (growing_->rows > 0) {
      sealing_.push_back(growing_);
      growing_ = std::make_shared<Buffer>();
    }
    // Buffers whose seal failed before are sealed again first: the checkpoint below covers
    // every WAL record up to the cut, so every buffer holding such rows must be in a segment.
    pending = sealing_;
    needs_flush_ = false;
  }
  for (const auto& buffer : pending) VLAKE_RETURN_IF_ERROR(SealBuffer(buffer, checkpoint));
  VLAKE_RETURN_IF_ERROR(WriteTombstones());
  // The manifest makes it all current at once; then the WAL it covers and the objects it no
  // longer names go. A failed manifest write leaves the checkpoint where it was.
  const uint64_t old_checkpoint = checkpoint_seq_;
  checkpoint_seq_ = checkpoint;
  Status st = WriteManifest();
  if (!st.ok()) {
    checkpoint_seq_ = old_checkpoint;
    return st;
  }
  return Trim();
}

Status Collection::SealBuffer(const std::shared_ptr<Buffer>& buffer, uint64_t cut) {
  // 1. New segments (rows of the buffer, deleted rows included so row numbers stay put;
  //    compaction drops them later). A failed PUT leaves the buffer in sealing_ (searchable,
  //    retried by the next flush); segments already written for it become garbage that the
  //    next Open collects. The chunks are immutable: no lock is needed to read them.
  std::vector<std::shared_ptr<Sealed>> made;
  const int64_t total = buffer->rows;
  size_t chunk = 0;
  int64_t chunk_at = 0;  // rows of chunks before `chunk`
  for (int64_t begin = 0; begin < total; begin += segment_max_rows_) {
    const int64_t end = std::min(total, begin + segment_max_rows_);
    RowBatch part(schema_.fields);
    for (int64_t at = begin; at < end;) {
      const RowBatch& c = *buffer->chunks[chunk].rows;
      const int64_t lo = at - chunk_at, hi = std::min(c.num_rows(), end - chunk_at);
      part.AppendRange(c, lo, hi);
      at += hi - lo;
      if (hi == c.num_rows()) {
        chunk_at += c.num_rows();
        ++chunk;
      }
    }
    VLAKE_RETURN_IF_ERROR(part.Seal());
    auto s = std::make_shared<Sealed>();
    s->id = NewSegmentId();
    std::string bytes = part.Encode(SegmentKind::kSealed);
    VLAKE_RETURN_IF_ERROR(store_->Put(Key("segments/" + s->id + ".vlsg"), bytes));
    s->rows = end - begin;
    s->bytes = static_cast<int64_t>(bytes.size());
    VLAKE_ASSIGN_OR_RETURN(s->data, Segment::Decode(std::move(bytes)));
    s->max_seq = cut;
    made.push_back(std::move(s));
  }
  // 2. Swap the buffer for its segments; deletes that landed meanwhile carry over.
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  std::vector<int64_t> deleted;  // buffer row numbers
  int64_t base = 0;
  for (const Chunk& c : buffer->chunks) {
    if (c.deleted_count > 0) {
      for (int64_t r = 0; r < c.rows->num_rows(); ++r) {
        if (c.deleted->test(r)) deleted.push_back(base + r);
      }
    }
    base += c.rows->num_rows();
  }
  size_t d = 0;
  base = 0;
  for (auto& s : made) {
    std::vector<int64_t> rows;
    for (; d < deleted.size() && deleted[d] < base + s->rows; ++d) rows.push_back(deleted[d] - base);
    if (!rows.empty()) {
      s->deleted = WithRows(nullptr, s->rows, rows);
      s->deleted_count = static_cast<int64_t>(rows.size());
      ++s->deleted_version;
    }
    base += s->rows;
    sealed_.push_back(s);
  }
  sealing_.erase(std::find(sealing_.begin(), sealing_.end(), buffer));
  Publish();
  return Status::Ok();
}

Status Collection::WriteTombstones() {
  // 3. Tombstones that changed since they were last written, each under a new key (the
  //    manifest in the store keeps naming the old one until the next manifest write).
  std::vector<std::shared_ptr<Sealed>> sealed_now;
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    sealed_now = sealed_;
  }
  for (auto& s : sealed_now) {
    RowBatch rows({FieldSchema{"row", FieldType::kInt64, 0, true}});
    uint64_t version;
    {
      std::shared_lock<std::shared_mutex> lock(state_mu_);
      version = s->deleted_version;
      if (version == s->persisted_version) continue;
      for (int64_t r = 0; r < s->rows; ++r) {
        if (s->deleted && s->deleted->test(r)) rows.mutable_columns()[0].int64s.push_back(r);
      }
    }
    VLAKE_RETURN_IF_ERROR(rows.Seal());
    std::string key = "segments/" + s->id + ".deleted." + std::to_string(version);
    VLAKE_RETURN_IF_ERROR(store_->Put(Key(key), rows.Encode(SegmentKind::kWalDelete)));
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    if (!s->deleted_key.empty() && s->deleted_key != key) garbage_.push_back(s->deleted_key);
    s->deleted_key = key;
    s->persisted_version = version;
  }
  return Status::Ok();
}

Status Collection::Trim() {
  // 5. Objects the durable manifest no longer names, then WAL records at or below its
  //    checkpoint. A failure leaves the rest for the next flush (or the next Open).
  while (!garbage_.empty()) {
    VLAKE_RETURN_IF_ERROR(store_->Delete(Key(garbage_.back())));
    garbage_.pop_back();
  }
  while (wal_trimmed_seq_ < checkpoint_seq_) {
    VLAKE_RETURN_IF_ERROR(store_->Delete(Key("wal/" + SeqKey(wal_trimmed_seq_ + 1))));
    ++wal_trimmed_seq_;
  }
  return Status::Ok();
}

Result<int64_t> Collection::Compact(double min_deleted_fraction) {
  // Writes are held off for the rewrite so no delete lands on a segment being replaced.
  std::lock_guard<std::mutex> w(write_mu_);
  VLAKE_RETURN_IF_ERROR(Flush());
  std::lock_guard<std::mutex> f(flush_mu_);
  std::vector<std::shared_ptr<Sealed>> victims;
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    for (auto& s : sealed_) {
      if (s->deleted_count > 0 &&
          static_cast<double>(s->deleted_count) / s->rows > min_deleted_fraction) {
        victims.push_back(s);
      }
    }
  }
  for (auto& old : victims) {
    std::vector<int64_t> live;
    for (int64_t r = 0; r < old->rows; ++r) {
      if (!old->deleted->test(r)) live.push_back(r);
    }
    std::shared_ptr<Sealed> fresh;
    if (!live.empty()) {
      RowBatch rows(schema_.fields);
      rows.AppendSelected(*old->data, live);
      fresh = std::make_shared<Sealed>();
      fresh->id = NewSegmentId();
      std::string bytes = rows.Encode(SegmentKind::kSealed);
      VLAKE_RETURN_IF_ERROR(store_->Put(Key("segments/" + fresh->id + ".vlsg"), bytes));
      fresh->rows = rows.num_rows();
      fresh->bytes = static_cast<int64_t>(bytes.size());
      VLAKE_ASSIGN_OR_RETURN(fresh->data, Segment::Decode(std::move(bytes)));
      fresh->max_seq = old->max_seq;
    }
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    auto it = std::find(sealed_.begin(), sealed_.end(), old);
    if (fresh) {
      *it = fresh;
    } else {
      sealed_.erase(it);
    }
    // Deleted only once a manifest without them is durable (Trim).
    garbage_.push_back("segments/" + old->id + ".vlsg");
    if (!old->deleted_key.empty()) garbage_.push_back(old->deleted_key);
    if (!old->index_key.empty()) garbage_.push_back(old->index_key);
    Publish();
  }
  if (victims.empty()) return 0;
  VLAKE_RETURN_IF_ERROR(WriteManifest());
  VLAKE_RETURN_IF_ERROR(Trim());
  return static_cast<int64_t>(victims.size());
}

Status Collection::DropIndex() {
  std::lock_guard<std::mutex> f(flush_mu_);
  if (dropped_) return Status(Code::kNotFound, "collection " + name() + " was dropped");
  {
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    if (index_spec_.empty()) {
      return Status(Code::kNotFound, "index not found[collection=" + name() + "]");
    }
    index_spec_.clear();
    for (auto& s : sealed_) {
      if (!s->index_key.empty()) garbage_.push_back(s->index_key);
      s->index_key.clear();
      s->index_spec.clear();
      s->index.reset();
    }
    Publish();
  }
  VLAKE_RETURN_IF_ERROR(WriteManifest());
  return Trim();
}

Status Collection::SetProperty(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> f(flush_mu_);
  if (dropped_) return Status(Code::kNotFound, "collection " + name() + " was dropped");
  std::map<std::string, std::string> old;
  {
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    old = properties_;
    if (value.empty()) {
      properties_.erase(key);
    } else {
      properties_[key] = value;
    }
  }
  Status st = WriteManifest();
  if (!st.ok()) {
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    properties_ = std::move(old);
  }
  return st;
}

std::map<std::string, std::string> Collection::properties() const {
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  return properties_;
}

Status Collection::SetIndexSpec(const std::string& factory) {
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<vector::VectorIndex> probe,
                         vector::MakeIndex(factory, schema_.dim(), metric()));
  std::lock_guard<std::mutex> f(flush_mu_);
  {
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    index_spec_ = probe->spec().ToString();
  }
  return WriteManifest();
}

Status Collection::SetMetric(vector::Metric m) {
  std::lock_guard<std::mutex> w(write_mu_);
  std::lock_guard<std::mutex> f(flush_mu_);
  const vector::Metric old = metric();
  if (m == old) return Status::Ok();
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    if (!index_spec_.empty()) {
      return Status(Code::kInvalidArgument,
                    "collection " + schema_.name + " is indexed (" + index_spec_ + ") for metric " +
                        std::string(vector::MetricName(old)) + "; its metric cannot change");
    }
    if ((m == vector::Metric::kCosine || old == vector::Metric::kCosine) && last_seq_ > 0) {
      return Status(Code::kInvalidArgument,
                    "collection " + schema_.name + " holds rows for metric " +
                        std::string(vector::MetricName(old)) +
                        ": COSINE vectors are stored normalized, so choose COSINE before the "
                        "first insert");
    }
  }
  if (dropped_) return Status(Code::kNotFound, "collection " + schema_.name + " was dropped");
  metric_.store(m);
  Status st = WriteManifest();
  if (!st.ok()) metric_.store(old);
  return st;
}

std::string Collection::index_spec() const {
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  return index_spec_;
}

std::vector<std::string> Collection::SegmentsToIndex() const {
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  std::vector<std::string> ids;
  if (index_spec_.empty()) return ids;
  for (const auto& s : sealed_) {
    if (s->index_spec != index_spec_) ids.push_back(s->id);
  }
  return ids;
}

Status Collection::BuildSegmentIndex(const std::string& segment_id, BuildDevice device,
                                     SegmentBuildReport* report) {
  std::string spec;
  int64_t rows = 0;
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    spec = index_spec_;
    for (const auto& s : sealed_) {
      if (s->id == segment_id) rows = s->rows;
    }
  }
  if (rows == 0) return Status::Ok();  // compacted away meanwhile
  report->segment = segment_id;
  report->rows = rows;
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<vector::VectorIndex> probe,
                         vector::MakeIndex(spec, schema_.dim(), metric()));
  if (rows < probe->min_training_rows()) {
    // Too small to train (a flush's remainder): exact search over it is cheap and exact. The
    // spec is recorded so later jobs do not retry it; compaction or new data may merge it.
    report->skipped = "too few rows to train " + probe->spec().type + " (" + std::to_string(rows) +
                      " < " + std::to_string(probe->min_training_rows()) + ")";
    std::lock_guard<std::mutex> f(flush_mu_);
    std::string old_key;
    {
      std::unique_lock<std::shared_mutex> lock(state_mu_);
      auto it = std::find_if(sealed_.begin(), sealed_.end(),
                             [&](const auto& s) { return s->id == segment_id; });
      if (it == sealed_.end() || index_spec_ != spec) return Status::Ok();
      old_key = (*it)->index_key;
      (*it)->index_key.clear();
      (*it)->index_spec = spec;
      (*it)->index.reset();
      Publish();
    }
    if (!old_key.empty()) garbage_.push_back(old_key);
    VLAKE_RETURN_IF_ERROR(WriteManifest());
    return Trim();
  }
  // The job reads the segment object from the store (direct path when offered), as a build
  // node without the collection in memory would.
  SegmentIndexBuild build;
  build.segment_key = Key("segments/" + segment_id + ".vlsg");
  const std::string key = "indexes/" + segment_id + "." +
                          std::to_string(Crc32cUpdate(0, spec.data(), spec.size())) + ".vlix";
  build.index_key = Key(key);
  build.vector_field = schema_.vector().name;
  build.spec = spec;
  build.metric = metric();
  build.metadata = json({{"collection", name()}, {"segment", segment_id}}).dump();
  build.device = device;
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<vector::VectorIndex> index,
                         BuildSegmentIndexFile(store_, build, report));
  std::lock_guard<std::mutex> f(flush_mu_);
  std::string old_key;
  {
    std::unique_lock<std::shared_mutex> lock(state_mu_);
    auto it = std::find_if(sealed_.begin(), sealed_.end(),
                           [&](const auto& s) { return s->id == segment_id; });
    if (it == sealed_.end() || index_spec_ != spec) return store_->Delete(build.index_key);
    if ((*it)->index_key != key) old_key = (*it)->index_key;
    (*it)->index_key = key;
    (*it)->index_spec = spec;
    if (loaded_) (*it)->index = std::move(index);
    Publish();
  }
  if (!old_key.empty()) garbage_.push_back(old_key);
  VLAKE_RETURN_IF_ERROR(WriteManifest());
  return Trim();
}

Result<CollectionInfo> Collection::Describe() const {
  std::shared_lock<std::shared_mutex> lock(state_mu_);
  CollectionInfo info;
  info.schema = schema();
  info.owner = owner_;
  info.segment_max_rows = segment_max_rows_;
  info.index_spec = index_spec_;
  info.loaded = loaded_;
  info.wal_seq = last_seq_;
  for (const auto& s : sealed_) {
    std::string index = s->index_key.empty() && !s->index_spec.empty()
                            ? "exact (too few rows for " + s->index_spec + ")"
                            : s->index_spec;
    info.segments.push_back({s->id, s->rows, s->deleted_count, s->bytes, index});
    info.rows += s->rows - s->deleted_count;
  }
  auto count = [&](const Buffer& b) {
    int64_t live = b.rows;
    for (const Chunk& c : b.chunks) live -= c.deleted_count;
    return live;
  };
  for (const auto& b : sealing_) {
    info.rows += count(*b);
    info.growing_rows += b->rows;
  }
  info.rows += count(*growing_);
  info.growing_rows += growing_->rows;
  return info;
}

Status Collection::Load() {
  std::lock_guard<std::mutex> w(write_mu_);
  std::lock_guard<std::mutex> f(flush_mu_);
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    if (loaded_) return Status::Ok();
  }
  // Reload from the store: manifest state is current (Release flushed everything).
  std::vector<std::shared_ptr<Sealed>> sealed;
  {
    std::shared_lock<std::shared_mutex> lock(state_mu_);
    sealed = sealed_;
  }
  for (auto& s : sealed) VLAKE_RETURN_IF_ERROR(LoadSealed(s.get()));
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  loaded_ = true;
  Publish();
  return Status::Ok();
}

Status Collection::Release() {
  VLAKE_RETURN_IF_ERROR(Flush());
  std::lock_guard<std::mutex> w(write_mu_);
  std::lock_guard<std::mutex> f(flush_mu_);
  std::unique_lock<std::shared_mutex> lock(state_mu_);
  if (growing_->rows > 0 || !sealing_.empty()) {
    return Status(Code::kUnavailable, "writes arrived during release; retry");
  }
  for (auto& s : sealed_) {
    s->data.reset();
    s->index.reset();
    s->deleted.reset();
  }
  loaded_ = false;
  Publish();  // searches already running keep their snapshot (and its memory) until they end
  return Status::Ok();
}

void Collection::Publish() {
  auto snap = std::make_shared<Snapshot>();
  snap->loaded = loaded_;
  if (loaded_) {
    const std::string& pk = schema_.primary().name;
    const std::string& vec = schema_.vector().name;
    for (const auto& s : sealed_) {
      if (!s->data) continue;
      Part part;
      part.columns = s->data;
      part.rows = s->rows;
      part.vectors = s->data->Column(vec)->floats();
      part.pks = s->data->Column(pk)->int64s();
      part.index = s->index;
      part.deleted = s->deleted;
      part.deleted_count = s->deleted_count;
      snap->parts.push_back(std::move(part));
    }
    auto add_buffer = [&](const Buffer& b) {
      for (const Chunk& c : b.chunks) {
        Part part;
        part.columns = c.rows;
        part.rows = c.rows->num_rows();
        part.vectors = c.rows->Find(vec)->floats.data();
        part.pks = c.rows->Find(pk)->int64s.data();
        part.deleted = c.deleted;
        part.deleted_count = c.deleted_count;
        snap->parts.push_back(std::move(part));
      }
    };
    for (const auto& b : sealing_) add_buffer(*b);
    add_buffer(*growing_);
  }
  snapshot_.store(std::move(snap));
}

Result<SearchResponse> Collection::Search(const SearchRequest& req) const {
  const int dim = schema_.dim();
  if (req.nq <= 0 || static_cast<int64_t>(req.vectors.size()) != req.nq * dim) {
    return Status(Code::kInvalidArgument,
                  "search vectors must be nq x " + std::to_string(dim) + " floats");
  }
  if (req.params.k < 1 || req.params.k > vector::kMaxTopK) {
    return Status(Code::kInvalidArgument, "k must be 1.." + std::to_string(vector::kMaxTopK));
  }
  if (!vector::AllFinite(req.vectors.data(), static_cast<int64_t>(req.vectors.size()))) {
    return Status(Code::kInvalidArgument, "query vectors hold NaN or infinite values");
  }
  std::vector<ColumnView> outputs;
  vector::Filter filter;
  if (!req.filter.empty()) {
    VLAKE_ASSIGN_OR_RETURN(filter, vector::Filter::Parse(req.filter, schema_));
  }
  for (const std::string& f : req.output_fields) {
    if (schema_.Find(f) == nullptr) {
      return Status(Code::kInvalidArgument, "unknown output field '" + f + "'");
    }
  }
  const int64_t k = req.params.k;
  const bool larger = vector::LargerIsCloser(metric());
  struct Candidate {
    float distance;
    int source;
    int64_t row;
  };
  std::vector<std::vector<Candidate>> cands(req.nq);

  // No lock from here on: the snapshot owns everything it points into.
  const std::shared_ptr<const Snapshot> snap = snapshot();
  if (!snap->loaded) {
    return Status(Code::kInvalidArgument, "collection " + name() + " is not loaded");
  }
  const std::vector<Part>& sources = snap->parts;
  for (size_t si = 0; si < sources.size(); ++si) {
    const Part& s = sources[si];
    VLAKE_ASSIGN_OR_RETURN(std::shared_ptr<const Bitset> allowed, s.Allowed(filter));
    const bool use_allowed = allowed != nullptr;
    int64_t passing = use_allowed ? allowed->count() : s.rows;
    if (passing == 0) continue;
    vector::SearchParams p = req.params;
    p.allowed = allowed.get();
    vector::SearchResult r;
    // A selective filter makes graph and IVF search wander; exact search over the few rows
    // that pass is both faster and exact.
    if (s.index != nullptr && !(use_allowed && passing * 20 < s.rows)) {
      VLAKE_RETURN_IF_ERROR(s.index->Search(req.vectors.data(), req.nq, p, &r));
    } else {
      VLAKE_RETURN_IF_ERROR(vector::BruteForceSearch(metric(), s.vectors, s.rows, dim,
                                                     req.vectors.data(), req.nq, p, &r));
    }
    for (int64_t q = 0; q < req.nq; ++q) {
      for (int64_t i = 0; i < r.k; ++i) {
        int64_t row = r.labels[q * r.k + i];
        if (row < 0) continue;
        cands[q].push_back({r.distances[q * r.k + i], static_cast<int>(si), row});
      }
    }
  }
  SearchResponse resp;
  resp.hits.resize(req.nq);
  for (int64_t q = 0; q < req.nq; ++q) {
    auto& c = cands[q];
    auto better = [larger](const Candidate& a, const Candidate& b) {
      return larger ? a.distance > b.distance : a.distance < b.distance;
    };
    size_t keep = std::min<size_t>(c.size(), k);
    std::partial_sort(c.begin(), c.begin() + keep, c.end(), better);
    for (size_t i = 0; i < keep; ++i) {
      const Part& s = sources[c[i].source];
      Hit h;
      h.id = s.pks[c[i].row];
      h.distance = c[i].distance;
      for (const std::string& f : req.output_fields) {
        h.fields.push_back(ValueAt(*s.columns->Column(f), c[i].row));
      }
      resp.hits[q].push_back(std::move(h));
    }
  }
  return resp;
}

Result<QueryResponse> Collection::Query(const QueryRequest& req) const {
  for (const std::string& f : req.output_fields) {
    if (schema_.Find(f) == nullptr) {
      return Status(Code::kInvalidArgument, "unknown output field '" + f + "'");
    }
  }
  if (req.ids.empty() && req.filter.empty()) {
    return Status(Code::kInvalidArgument, "query needs ids or a filter");
  }
  vector::Filter filter;
  if (!req.filter.empty()) {
    VLAKE_ASSIGN_OR_RETURN(filter, vector::Filter::Parse(req.filter, schema_));
  }
  std::unordered_set<int64_t> wanted(req.ids.begin(), req.ids.end());
  QueryResponse resp;
  const std::shared_ptr<const Snapshot> snap = snapshot();  // no lock while the query runs
  if (!snap->loaded) {
    return Status(Code::kInvalidArgument, "collection " + name() + " is not loaded");
  }
  for (const Part& s : snap->parts) {
    VLAKE_ASSIGN_OR_RETURN(std::shared_ptr<const Bitset> match, s.Allowed(filter));
    std::vector<ColumnView> cols;
    for (const std::string& f : req.output_fields) cols.push_back(*s.columns->Column(f));
    for (int64_t r = 0; r < s.rows; ++r) {
      if (static_cast<int64_t>(resp.ids.size()) >= req.limit) return resp;
      if (match && !match->test(r)) continue;
      if (!wanted.empty() && !wanted.count(s.pks[r])) continue;
      resp.ids.push_back(s.pks[r]);
      std::vector<FieldValue> row;
      for (const ColumnView& c : cols) row.push_back(ValueAt(c, r));
      resp.rows.push_back(std::move(row));
    }
  }
  return resp;
}

Status Collection::Drop() {
  std::lock_guard<std::mutex> w(write_mu_);
  std::lock_guard<std::mutex> f(flush_mu_);
  // The manifest goes first and is the commit point: a crash or a failed request after it
  // leaves only garbage (collected by the next Create of the name or the engine's next Open),
  // never half a collection.
  VLAKE_RETURN_IF_ERROR(store_->Delete(Key("manifest.json")));
  dropped_ = true;
  Status st = store_->DeleteAll(name() + "/");
  if (!st.ok()) {
    Log(LogLevel::kWarn, "dropped collection's objects left for later",
        {{"collection", name()}, {"error", st.ToString()}});
  }
  return Status::Ok();
}

}  // namespace vlake::vectordb
