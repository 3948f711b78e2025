// Collection: one collection's state and its persistence (private to src/vectordb; the public
// face is engine.h). Layout of its objects: docs/format/vectordb.md.
//
// State: sealed segments (immutable rows + a tombstone bitset + an optional index), buffers
// being sealed, and the growing buffer (a list of immutable row chunks). Every piece a search
// reads is immutable and shared: a tombstone change makes a new bitset (copy on write), an
// insert adds a chunk. After each change the writer publishes a Snapshot (the list of those
// pieces) through one atomic pointer; searches, queries and filtered deletes take the current
// snapshot and hold no lock while they run, so no search ever delays an insert, a delete or a
// flush, and each sees one consistent state (an upsert's delete and insert together).
//
// Locks, in acquisition order:
//   queue_mu_  guards the group-commit queue (Insert/Upsert); never held while committing;
//   write_mu_  serializes WAL appends (Insert/Delete), so writes apply in WAL order;
//   flush_mu_  serializes flush, compaction, index attachment and manifest writes;
//   state_mu_  (shared) guards the writers' state; appliers hold it exclusively and only for
//              in-memory work (never across a store round trip). Searches do not take it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "vector/bitset.h"
#include "vector/filter.h"
#include "vector/index.h"
#include "vector/segment.h"
#include "vectordb/engine.h"
#include "vectordb/object_store.h"

namespace vlake::vectordb {

class Collection {
 public:
  static Result<std::shared_ptr<Collection>> Create(ObjectStore* store,
                                                    const vector::CollectionSchema& schema,
                                                    int64_t segment_max_rows,
                                                    const std::string& owner);
  static Result<std::shared_ptr<Collection>> Open(ObjectStore* store, const std::string& name);

  // The schema, with the current metric (SetMetric may change it before the first write).
  vector::CollectionSchema schema() const {
    vector::CollectionSchema s = schema_;
    s.metric = metric();
    return s;
  }
  vector::Metric metric() const { return metric_.load(); }
  const std::string& name() const { return schema_.name; }
  // The user id that created it; empty for collections made before owners were recorded.
  const std::string& owner() const { return owner_; }

  Result<InsertResult> Insert(vector::RowBatch rows);
  // Like Insert, but each row first replaces the live rows with the same key
  // (CollectionSchema::key()); one WAL record, so both halves take effect or neither.
  Result<InsertResult> Upsert(vector::RowBatch rows);
  // EngineOptions::group_commit (default on).
  void set_group_commit(bool on) { group_commit_ = on; }
  Result<int64_t> Delete(const std::vector<int64_t>& ids, const std::string& filter);
  // Seals the growing buffer (and any buffer whose seal failed before) into segment objects,
  // writes changed tombstones, then the manifest (the commit point), then trims the WAL and
  // the objects the manifest no longer names. Any failure leaves every acknowledged row in
  // memory and in the WAL; the flush is retried (NeedsFlush turns true after a backoff).
  Status Flush();
  // True when the background flusher should seal: a full buffer, or a failed flush whose
  // retry backoff has passed.
  bool NeedsFlush() const;
  Result<int64_t> Compact(double min_deleted_fraction);

  // Records the index spec in the manifest; segments without it are then listed by
  // SegmentsToIndex and built one by one with BuildSegmentIndex.
  Status SetIndexSpec(const std::string& factory);
  // Changes the distance metric (recorded in the manifest), as Milvus clients choose it when
  // they create the index: allowed while no index spec is set, and to or from COSINE only
  // before the first write (COSINE vectors are stored normalized). InvalidArgument otherwise.
  Status SetMetric(vector::Metric metric);
  std::string index_spec() const;
  // Forgets the index spec and every segment's index (searches go exact); the index objects
  // are deleted once a manifest without them is stored. An index job still running attaches
  // nothing (its spec is no longer the collection's).
  Status DropIndex();
  // A small named value kept in the manifest for the APIs above the engine (the Milvus API's
  // partition list); an empty value erases the key. One manifest PUT; on failure nothing
  // changes.
  Status SetProperty(const std::string& key, const std::string& value);
  std::map<std::string, std::string> properties() const;
  std::vector<std::string> SegmentsToIndex() const;
  Status BuildSegmentIndex(const std::string& segment_id, BuildDevice device,
                           SegmentBuildReport* report);

  Result<CollectionInfo> Describe() const;
  Status Load();
  Status Release();
  Result<SearchResponse> Search(const SearchRequest& request) const;
  Result<QueryResponse> Query(const QueryRequest& request) const;
  Status Drop();

 private:
  using Bits = std::shared_ptr<const vector::Bitset>;  // replaced, never changed in place
  struct Sealed {
    std::string id;
    int64_t rows = 0;
    int64_t bytes = 0;
    std::shared_ptr<const vector::Segment> data;  // null while released
    Bits deleted;  // null: none deleted (or released)
    int64_t deleted_count = 0;
    uint64_t deleted_version = 0;    // bumped by every delete that hits this segment
    uint64_t persisted_version = 0;  // deleted_version the tombstone object holds
    std::string deleted_key;         // tombstone object, empty when none
    std::string index_key;           // index file object, empty when none
    std::string index_spec;
    std::shared_ptr<const vector::VectorIndex> index;  // null while released / unbuilt
    // The flush cut whose WAL records this segment's rows came from. A manifest names the
    // segment only when its wal_checkpoint is >= this (else a restart would replay the same
    // rows from the WAL a second time); 0 for segments loaded from the manifest.
    uint64_t max_seq = 0;
  };
  // Rows of acknowledged inserts, as appended; a few chunks (small ones are merged, so a
  // buffer holds O(log rows) of them).
  struct Chunk {
    std::shared_ptr<const vector::RowBatch> rows;
    Bits deleted;  // null: none deleted
    int64_t deleted_count = 0;
  };
  struct Buffer {
    std::vector<Chunk> chunks;
    int64_t rows = 0;
  };
  // One searchable piece: a sealed segment or a chunk, owning what it points into.
  struct Part {
    std::shared_ptr<const vector::ColumnSource> columns;
    const float* vectors = nullptr;
    const int64_t* pks = nullptr;
    int64_t rows = 0;
    std::shared_ptr<const vector::VectorIndex> index;
    Bits deleted;
    int64_t deleted_count = 0;
    // The rows to consider: not deleted and (when given) matching `filter`; null = all.
    Result<std::shared_ptr<const vector::Bitset>> Allowed(const vector::Filter& filter) const;
  };
  struct Snapshot {
    std::vector<Part> parts;
    bool loaded = true;
  };
  // A chunk of the rows of `a` then `b`, with their tombstones.
  static Chunk Merged(const std::vector<vector::FieldSchema>& fields, const Chunk& a,
                      const Chunk& b);

  Collection(ObjectStore* store, vector::CollectionSchema schema, int64_t segment_max_rows);

  std::string Key(const std::string& rel) const { return schema_.name + "/" + rel; }
  Status ValidateInsert(vector::RowBatch* rows) const;
  // An insert or upsert waiting to be committed (group commit, Write).
  struct PendingWrite {
    vector::RowBatch rows;
    bool upsert = false;
    Result<InsertResult> result = Status(Code::kInternal, "not committed");
    bool done = false;  // guarded by queue_mu_
  };
  Result<InsertResult> Write(vector::RowBatch rows, bool upsert);
  // Writes `batch` to the WAL and applies it: runs of inserts as one record each.
  void CommitWrites(const std::vector<PendingWrite*>& batch);
  // Marks deleted every live row whose key equals a key of `rows` (state_mu_ exclusive).
  void ApplyDeleteKeys(const vector::RowBatch& rows);
  void ApplyInsert(vector::RowBatch rows, uint64_t seq);               // state_mu_ exclusive
  int64_t ApplyDelete(const std::vector<int64_t>& pks, uint64_t seq);  // state_mu_ exclusive
  Status Replay();
  Status WriteManifest();  // flush_mu_ held
  // Flush's steps, flush_mu_ held (docs/format/vectordb.md, "Recovery").
  Status FlushLocked();
  Status SealBuffer(const std::shared_ptr<Buffer>& buffer, uint64_t cut);
  Status WriteTombstones();
  Status Trim();
  void NoteFlushResult(const Status& st);
  // Deletes objects under the collection that the manifest does not name (left by a crash or
  // a failed request between an object's PUT and the manifest naming it). Open only.
  void CollectGarbage();
  Status LoadSealed(Sealed* s);
  std::string NewSegmentId();  // takes state_mu_
  // Makes the current state the one searches see (state_mu_ held exclusively).
  void Publish();
  std::shared_ptr<const Snapshot> snapshot() const { return snapshot_.load(); }
  // Marks deleted the live rows of every tier for which match(column `field`, row) holds;
  // returns how many (state_mu_ exclusive).
  int64_t MarkDeleted(const std::string& field,
                      const std::function<bool(const vector::ColumnView&, int64_t)>& match);

  ObjectStore* store_;
  const vector::CollectionSchema schema_;  // its metric: the one at creation (see metric_)
  std::atomic<vector::Metric> metric_;
  const int64_t segment_max_rows_;
  std::string owner_;  // set once by Create / Open

  // Group commit: queued writes, and whether a writer is committing them (queue_mu_ is taken
  // before write_mu_ is, never while holding it).
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<PendingWrite*> queue_;
  bool committing_ = false;
  std::atomic<bool> group_commit_{true};

  std::mutex write_mu_;
  std::mutex flush_mu_;
  mutable std::shared_mutex state_mu_;

  // Guarded by state_mu_.
  std::vector<std::shared_ptr<Sealed>> sealed_;
  std::vector<std::shared_ptr<Buffer>> sealing_;
  std::shared_ptr<Buffer> growing_;
  bool loaded_ = true;
  std::string index_spec_;
  std::map<std::string, std::string> properties_;  // written holding flush_mu_ too
  uint64_t last_seq_ = 0;  // last WAL record applied
  int64_t next_auto_id_ = 1;
  int64_t next_segment_ = 1;

  // Set by Drop holding write_mu_ and flush_mu_; read holding either. A dropped collection
  // writes nothing more (a flush queued before the drop must not bring its manifest back).
  bool dropped_ = false;

  // Guarded by flush_mu_.
  uint64_t checkpoint_seq_ = 0;  // WAL records <= this are folded into the durable manifest
  uint64_t wal_trimmed_seq_ = 0;  // WAL records <= this are deleted (<= checkpoint_seq_)
  uint64_t manifest_version_ = 0;
  // Object keys (relative) that the in-memory state no longer names; deleted by Trim once a
  // manifest without them is durable.
  std::vector<std::string> garbage_;
  int64_t retry_backoff_ms_ = 0;

  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;

  std::atomic<bool> needs_flush_{false};
  std::atomic<int64_t> retry_after_{0};  // steady_clock ticks: no background retry before
};

}  // namespace vlake::vectordb
