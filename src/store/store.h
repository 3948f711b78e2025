// The object store engine: buckets, objects, multipart uploads, and their durability.
//
// Layout of a data folder (docs/format/store.md is the authority):
//   <dir>/meta/        RocksDB: buckets, object records, uploads, parts, blob references
//   <dir>/blobs/xx/ID  immutable object bytes, one file per blob (ID = 32 hex chars, xx = ID[0:2])
//   <dir>/tmp/ID       blobs being written, or written but not yet moved into blobs/
// Keys never become file names, so no key ("../", "//", control characters) can reach outside
// the folder.
//
// Durability (a write is acknowledged only when this holds):
//   1. the blob is written to tmp/ID, fsync'ed, and tmp/ is fsync'ed (the name is durable too);
//   2. one RocksDB WriteBatch, synced, records the object (or part) and a reference R/ID, and
//      for a replaced object a garbage record G/OLD;
//   3. tmp/ID is renamed to blobs/xx/ID (not synced: a lost rename is redone by recovery);
//      garbage blobs are unlinked and their G records removed (unsynced).
//   The synced batch is the commit point: an error after it (a failed rename) leaves the new
//   version committed and readable from tmp/; recovery finishes it.
//   Recovery (Open): for each tmp/ID, R/ID present -> finish the rename, else unlink; for each
//   G/ID unlink the blob; optionally (sweep_orphan_blobs) unlink any blobs/xx/ID without R/ID.
//   So a crash leaves the old object or the new one, never a torn one.
//
// Concurrency: any number of threads. Commits of one key serialize on a striped mutex; the last
// commit wins. Readers open the blob files of one committed version (OpenObject), so a
// concurrent overwrite never tears a read in progress (unlinked files stay readable).
// OpenObject may race a commit: the blob may still be in tmp/ (rename pending) or already
// unlinked (the version was replaced after the lookup); it then looks in tmp/, then re-reads the
// record and retries, at most 8 times (kUnavailable after that; kCorruption when the same record
// names a blob that is nowhere).
// Lock order: bucket lock (shared for object/upload work, exclusive for bucket create/delete)
// -> key stripe -> upload stripe. The rename of a new blob happens under the commit's lock, so
// a later commit of the same key never garbage-collects a blob whose rename is still pending.
//
// Thread-safety: Store is thread-safe. BlobWriter belongs to one thread.
// Ownership: Open() returns the sole owner of the data folder (RocksDB's LOCK file makes a second
// Open of the same folder fail with kIoError). BlobWriters must be destroyed before their store.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fd.h"
#include "common/hash.h"
#include "common/status.h"

namespace vlake::store {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

inline constexpr uint64_t kMinPartSize = 5ull * 1024 * 1024;  // all parts but the last
inline constexpr int kMaxPartNumber = 10000;
inline constexpr size_t kMaxKeyBytes = 1024;

struct BucketInfo {
  std::string name;
  std::string owner_id;
  int64_t created_unix_ms = 0;
};

enum class ChecksumType { kFullObject, kComposite };

struct ChecksumValue {
  ChecksumAlgorithm algorithm = ChecksumAlgorithm::kCrc32;
  ChecksumType type = ChecksumType::kFullObject;
  std::string value;  // base64 as on the wire; composite values carry the "-N" suffix
};

// One blob of an object's bytes. Single-part objects have one extent; multipart objects one
// per part, in order.
struct Extent {
  std::string blob_id;  // 32 lowercase hex chars
  uint64_t size = 0;
};

// What GetObject?partNumber= and x-amz-mp-parts-count need of a completed multipart object.
struct PartSummary {
  uint64_t size = 0;
  std::string etag;      // hex md5 of the part, no quotes
  std::string checksum;  // base64 part checksum when the upload had an algorithm, else ""
};

struct ObjectMeta {
  uint64_t size = 0;
  std::string etag;  // no quotes: hex md5, or "<hex md5 of md5s>-N" for multipart
  int64_t mtime_unix_ms = 0;
  std::string owner_id;
  KeyValues headers;  // stored response headers, lowercase names: content-type, cache-control,
                      // content-encoding, content-disposition, content-language, expires,
                      // x-amz-meta-*; returned exactly as stored
  KeyValues tags;     // object tags in order
  std::optional<ChecksumValue> checksum;
  std::vector<PartSummary> parts;  // empty unless multipart
  std::vector<Extent> extents;     // filled by the store
};

struct WriteConditions {
  // etag without quotes, or "*": the write needs the key to exist with that etag. A present key
  // with another etag -> kPreconditionFailed; an absent key -> kNoSuchKey (AWS: 404 for If-Match
  // on a missing object).
  std::optional<std::string> if_match;
  bool if_none_match_star = false;  // fail with kPreconditionFailed if the key exists
};

// A blob being written. Append bytes, then hand it to PutObject/PutPart, which make it durable.
// Destroying an uncommitted writer removes its temporary file.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  virtual Status Append(const char* data, size_t n) = 0;
  virtual uint64_t size() const = 0;
  virtual const std::string& blob_id() const = 0;
};

// One open blob of an object version; readable with pread/sendfile at explicit offsets.
struct OpenExtent {
  std::shared_ptr<const UniqueFd> fd;
  uint64_t size = 0;
};

struct ObjectHandle {
  ObjectMeta meta;
  std::vector<OpenExtent> extents;  // same order as meta.extents
};

struct ListOptions {
  std::string prefix;
  std::string delimiter;    // empty: no grouping
  std::string start_after;  // exclusive; keys and common prefixes <= it are skipped
  int max_keys = 1000;      // keys + common prefixes returned at most (0 allowed)
};

struct ListEntry {
  std::string key;
  ObjectMeta meta;  // extents not filled
};

struct ListResult {
  std::vector<ListEntry> objects;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_marker;  // the last key or common prefix returned, when truncated
};

struct UploadInfo {
  std::string upload_id;
  std::string bucket;
  std::string key;
  int64_t initiated_unix_ms = 0;
  ObjectMeta meta;  // headers, tags, owner and the checksum algorithm/type (value empty)
};

struct PartInfo {
  int part_number = 0;
  uint64_t size = 0;
  std::string etag;  // hex md5, no quotes
  std::optional<ChecksumValue> checksum;
  int64_t mtime_unix_ms = 0;
  std::string blob_id;
};

struct ListPartsResult {
  std::vector<PartInfo> parts;
  bool truncated = false;
  int next_part_number_marker = 0;
};

struct ListUploadsOptions {
  std::string prefix;
  std::string delimiter;
  std::string key_marker;
  std::string upload_id_marker;
  int max_uploads = 1000;
};

struct ListUploadsResult {
  std::vector<UploadInfo> uploads;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;
};

struct CompletedPart {
  int part_number = 0;
  std::string etag;                     // quotes already stripped
  std::optional<std::string> checksum;  // base64, when the client listed one
};

class Env;  // store/env.h

struct StoreOptions {
  // fsync data and metadata before acknowledging. Off only for benchmarks that say so.
  bool sync = true;
  // Filesystem for blobs and folders; nullptr means Env::Default() (POSIX). Not owned: it must
  // outlive the store and its BlobWriters. Tests pass one that injects failures.
  Env* env = nullptr;
  // Open() unlinks files under blobs/ that no R record references (left when a crash lost an
  // unsynced unlink). Costs one listing per blobs/xx folder and one point lookup per blob;
  // turn off where Open time on millions of blobs matters more than reclaiming leaked space.
  bool sweep_orphan_blobs = true;
  // RocksDB block cache for metadata. Small: records are point-read or scanned once.
  size_t block_cache_bytes = 32ull << 20;
};

class Store {
 public:
  // Opens (creating when missing) the data folder and runs recovery.
  static Result<std::unique_ptr<Store>> Open(const std::string& dir, StoreOptions options);
  virtual ~Store() = default;

  // Buckets. Name rules are the S3 layer's; the store only checks uniqueness.
  virtual Status CreateBucket(const std::string& name, const std::string& owner_id) = 0;
  virtual Result<BucketInfo> GetBucket(const std::string& name) = 0;  // kNoSuchBucket
  // Hands the bucket to another owner (durable before it returns). kNoSuchBucket.
  virtual Status SetBucketOwner(const std::string& name, const std::string& owner_id) = 0;
  // kBucketNotEmpty while objects exist; aborts the bucket's multipart uploads.
  virtual Status DeleteBucket(const std::string& name) = 0;
  virtual Result<std::vector<BucketInfo>> ListBuckets() = 0;  // sorted by name

  // Objects.
  virtual Result<std::unique_ptr<BlobWriter>> NewBlob() = 0;
  // Makes `blob` the bytes of bucket/key with `meta` (size and extents are filled in).
  // kNoSuchBucket, kPreconditionFailed.
  virtual Result<ObjectMeta> PutObject(const std::string& bucket, const std::string& key,
                                       std::unique_ptr<BlobWriter> blob, ObjectMeta meta,
                                       const WriteConditions& conditions) = 0;
  virtual Result<ObjectMeta> HeadObject(const std::string& bucket, const std::string& key) = 0;
  virtual Result<ObjectHandle> OpenObject(const std::string& bucket, const std::string& key) = 0;
  // Succeeds when the key is absent too (S3 semantics). kNoSuchBucket.
  virtual Status DeleteObject(const std::string& bucket, const std::string& key) = 0;
  // Replaces the tag set of an existing object without touching its bytes.
  virtual Status SetObjectTags(const std::string& bucket, const std::string& key,
                               KeyValues tags) = 0;
  virtual Result<ListResult> ListObjects(const std::string& bucket, const ListOptions& options) = 0;

  // Multipart uploads.
  virtual Result<std::string> CreateMultipartUpload(const std::string& bucket,
                                                    const std::string& key, ObjectMeta meta) = 0;
  virtual Result<UploadInfo> GetUpload(const std::string& bucket, const std::string& key,
                                       const std::string& upload_id) = 0;  // kNoSuchUpload
  // Stores part `part_number` (1..10000), replacing an earlier one with the same number.
  virtual Result<PartInfo> PutPart(const std::string& bucket, const std::string& key,
                                   const std::string& upload_id, int part_number,
                                   std::unique_ptr<BlobWriter> blob, std::string etag,
                                   std::optional<ChecksumValue> checksum) = 0;
  virtual Result<ListPartsResult> ListParts(const std::string& bucket, const std::string& key,
                                            const std::string& upload_id, int part_number_marker,
                                            int max_parts) = 0;
  // Validates the list (kInvalidPartOrder, kInvalidPart, kEntityTooSmall), computes the
  // "<md5 of md5s>-N" ETag and the composite checksum, and commits the object atomically;
  // unlisted parts become garbage. The upload disappears.
  virtual Result<ObjectMeta> CompleteMultipartUpload(const std::string& bucket,
                                                     const std::string& key,
                                                     const std::string& upload_id,
                                                     const std::vector<CompletedPart>& parts,
                                                     const WriteConditions& conditions) = 0;
  virtual Status AbortMultipartUpload(const std::string& bucket, const std::string& key,
                                      const std::string& upload_id) = 0;
  virtual Result<ListUploadsResult> ListMultipartUploads(const std::string& bucket,
                                                         const ListUploadsOptions& options) = 0;
};

}  // namespace vlake::store
