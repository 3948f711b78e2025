// VectorEngine: the vector database's service layer. Collections keep their data as objects in
// an S3 bucket (ObjectStore): a write-ahead log of insert/delete batches, sealed segments, their
// tombstones and index files, and one manifest per collection (docs/format/vectordb.md).
// Network APIs (http_api.h's JSON API now, a Milvus-compatible one later) translate their wire
// format to these calls and never reach further in.
//
// Durability: Insert and Delete return only after their WAL object is stored (a PUT that the
// store acknowledged), so after a crash Open() recovers every acknowledged write by replaying
// the WAL past the manifest's checkpoint.
//
// Thread-safety: every method is safe to call concurrently. Writes to one collection are
// applied in WAL order; searches run concurrently with each other and with inserts. Index
// builds run as jobs on a background thread; flushes of full growing segments too.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/metrics.h"
#include "vector/index.h"
#include "vector/segment.h"
#include "vector/types.h"
#include "vectordb/object_store.h"
#include "vlake/status.h"

namespace vlake::vectordb {

struct EngineOptions {
  // Growing rows are sealed into a segment object once a collection holds this many bytes of
  // unflushed vectors (per collection; CollectionOptions may override in rows).
  int64_t segment_max_bytes = 256ll << 20;
  // Seal growing data that has been idle this long (0 = only when full or on Flush).
  int64_t idle_flush_ms = 0;
  int job_threads = 1;  // index builds run one at a time per thread (peak memory is per job)
  // Seal full buffers and retry failed flushes on a background thread. Off only in tests
  // that need every object-store call to come from the calls they make.
  bool background_flush = true;
  // Commit concurrent inserts of a collection together in one WAL record (group commit); off
  // only to measure what it brings (bench/milvus.sh), one WAL PUT per insert then.
  bool group_commit = true;
  // Where the engine counts background failures (flushes, index jobs, exceptions caught at a
  // thread's entry); null: a registry of the engine's own (VectorEngine::metrics()).
  MetricsRegistry* metrics = nullptr;
};

struct CollectionOptions {
  int64_t segment_max_rows = 0;  // 0: EngineOptions::segment_max_bytes / (4 * dim)
  std::string owner;             // user id recorded as the collection's owner
};

using FieldValue =
    std::variant<std::monostate, int64_t, double, bool, std::string, std::vector<float>>;

struct InsertResult {
  std::vector<int64_t> ids;  // primary keys of the inserted rows, in order
};

struct SearchRequest {
  std::vector<float> vectors;  // nq * dim, row-major
  int64_t nq = 0;
  vector::SearchParams params;  // k, nprobe, ef, radius, range_filter (allowed is ignored)
  std::string filter;           // docs/filter.md; empty: every row
  std::vector<std::string> output_fields;
};

struct Hit {
  int64_t id = 0;
  float distance = 0;
  std::vector<FieldValue> fields;  // parallel to the request's output_fields
};

struct SearchResponse {
  std::vector<std::vector<Hit>> hits;  // per query, best first
};

struct QueryRequest {
  std::vector<int64_t> ids;  // by primary key (empty: use the filter)
  std::string filter;
  int64_t limit = 16384;
  std::vector<std::string> output_fields;
};

struct QueryResponse {
  std::vector<int64_t> ids;
  std::vector<std::vector<FieldValue>> rows;  // parallel to ids; fields as requested
};

struct SegmentInfo {
  std::string id;
  int64_t rows = 0;
  int64_t deleted = 0;
  int64_t bytes = 0;
  std::string index;  // index spec when indexed
};

struct CollectionInfo {
  vector::CollectionSchema schema;
  std::string owner;  // user id; empty for collections made before owners were recorded
  int64_t segment_max_rows = 0;
  int64_t rows = 0;          // live rows (inserted minus deleted)
  int64_t growing_rows = 0;  // not yet sealed
  std::vector<SegmentInfo> segments;
  std::string index_spec;  // empty when no index was requested
  bool loaded = true;
  uint64_t wal_seq = 0;  // last acknowledged write
};

// Time of each stage of building one segment's index, in seconds.
// Where index builds run. kGpu needs a CUDA build and a GPU on the vector database node.
enum class BuildDevice { kCpu, kGpu };
std::string_view BuildDeviceName(BuildDevice device);  // "cpu" / "gpu"

struct SegmentBuildReport {
  std::string segment;
  BuildDevice device = BuildDevice::kCpu;
  std::string fetch_path;  // client GetResult::path of the segment (or column) fetch
  int64_t rows = 0;
  double fetch_s = 0, decode_s = 0, train_s = 0, add_s = 0, serialize_s = 0, upload_s = 0;
  int64_t segment_bytes = 0;
  int64_t index_bytes = 0;
  bool fetched_direct = false;
  // Non-empty when the segment was left unindexed (searched exactly), e.g. too few rows to
  // train the index: "too few rows to train IVF_PQ (100 < 256)".
  std::string skipped;
};

struct Job {
  enum class State { kQueued, kRunning, kDone, kFailed };
  std::string id;
  std::string collection;
  std::string owner;  // the collection's owner when the job was queued
  std::string spec;
  BuildDevice device = BuildDevice::kCpu;
  State state = State::kQueued;
  std::string error;
  int64_t segments_total = 0;
  int64_t segments_done = 0;
  std::vector<SegmentBuildReport> segments;
  double total_s = 0;
  int64_t peak_rss_bytes = 0;  // process peak resident memory while the job ran
};
std::string_view JobStateName(Job::State state);

class Collection;

class VectorEngine {
 public:
  // Lists collections under the store prefix, loads each manifest and its segments, replays
  // its WAL, and starts the background flusher and job threads.
  static Result<std::unique_ptr<VectorEngine>> Open(std::unique_ptr<ObjectStore> store,
                                                    EngineOptions options = {});
  ~VectorEngine();  // stops the background threads (running jobs finish first)

  Status CreateCollection(const vector::CollectionSchema& schema,
                          const CollectionOptions& options = {});
  Result<std::vector<std::string>> ListCollections();
  Result<CollectionInfo> Describe(const std::string& name);
  Result<vector::CollectionSchema> Schema(const std::string& name);  // cheap (no counting)
  Result<std::string> Owner(const std::string& name);  // cheap; "" when none was recorded
  Status DropCollection(const std::string& name);

  // `rows` must hold every field of the schema (the primary key may be left empty when the
  // collection has auto_id). NaN/Inf, wrong dimension, unknown or missing fields:
  // InvalidArgument and nothing is written.
  Result<InsertResult> Insert(const std::string& name, vector::RowBatch rows);
  // Insert, where each row first replaces the live rows with the same key (the schema's
  // key_field, else the primary key), atomically: one WAL record. A collection whose key is an
  // auto_id primary key cannot upsert (InvalidArgument).
  Result<InsertResult> Upsert(const std::string& name, vector::RowBatch rows);
  // Deletes the rows with these primary keys, or matching the filter. Returns how many rows.
  Result<int64_t> Delete(const std::string& name, const std::vector<int64_t>& ids,
                         const std::string& filter);
  // Seals growing rows into segment objects and persists tombstones; then the WAL it covered
  // is removed.
  Status Flush(const std::string& name);
  // Rewrites segments whose deleted fraction exceeds `min_deleted_fraction` without their
  // deleted rows (and rebuilds their index). Returns segments rewritten.
  Result<int64_t> Compact(const std::string& name, double min_deleted_fraction = 0.0);

  // Flushes, then queues a job that builds `factory` (vector::MakeIndex syntax) for every
  // sealed segment without it; later flushes index their new segments too, on the same device.
  // kGpu: kUnavailable "no GPU: ..." when this node has none, kNotImplemented for index types
  // without a GPU builder (gpu/gpu_index.h). Returns the job id.
  Result<std::string> BuildIndex(const std::string& name, const std::string& factory,
                                 BuildDevice device = BuildDevice::kCpu);
  Result<Job> GetJob(const std::string& id);
  // Blocks until the job is done or failed (or timeout_ms passes: Timeout).
  Result<Job> WaitJob(const std::string& id, int64_t timeout_ms);

  // The distance metric, as Milvus clients set it at index creation: only while the collection
  // has no index spec, and to or from COSINE only before its first write (InvalidArgument).
  Status SetMetric(const std::string& name, vector::Metric metric);

  // Drops the collection's index (NotFound "index not found" when it has none); searches are
  // exact until BuildIndex is called again.
  Status DropIndex(const std::string& name);
  // Small named values kept with the collection (Collection::SetProperty).
  Status SetProperty(const std::string& name, const std::string& key, const std::string& value);
  Result<std::map<std::string, std::string>> Properties(const std::string& name);

  Status Load(const std::string& name);
  Status Release(const std::string& name);

  Result<SearchResponse> Search(const std::string& name, const SearchRequest& request);
  Result<QueryResponse> Query(const std::string& name, const QueryRequest& request);

  ObjectStore& store() { return *store_; }
  MetricsRegistry& metrics();

 private:
  struct Impl;
  explicit VectorEngine(std::unique_ptr<Impl> impl, ObjectStore* store);
  Result<std::shared_ptr<Collection>> Find(const std::string& name);

  std::unique_ptr<Impl> impl_;
  ObjectStore* store_;
};

}  // namespace vlake::vectordb
