// Store on RocksDB (metadata) + one file per blob. The protocol is described in store.h and
// docs/format/store.md; this file follows it step by step and says where each step happens.

#include "store/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "common/encoding.h"
#include "common/log.h"
#include "store/codec.h"
#include "store/crc_combine.h"
#include "store/env.h"

namespace vlake::store {
namespace {

// User-space buffer of a BlobWriter: large enough that a blob costs few write(2) calls, small
// enough to keep per-request memory modest. Appends at least this large bypass it.
constexpr size_t kWriteBufferBytes = 1 << 20;
// OpenObject attempts when a blob vanishes between the record lookup and the open.
constexpr int kOpenAttempts = 8;
constexpr size_t kKeyStripes = 256;
constexpr size_t kUploadStripes = 64;
// Upload ids: 12 hex digits of initiation time in ms (so ids of one key sort by initiation),
// then 32 hex digits of randomness.
constexpr size_t kUploadIdTimeHex = 12;
constexpr size_t kUploadIdBytes = kUploadIdTimeHex + 32;

// The one place RocksDB errors become Status.
Status RocksStatus(std::string_view context, const rocksdb::Status& s) {
  if (s.ok()) return Status::Ok();
  Code code = Code::kIoError;
  if (s.IsCorruption()) code = Code::kCorruption;
  if (s.IsNotFound()) code = Code::kNotFound;
  if (s.IsInvalidArgument()) code = Code::kInvalidArgument;
  return Error(code, std::string(context) + ": " + s.ToString());
}

Status Annotate(const Status& s, std::string_view context) {
  return Error(s.code(), std::string(context) + ": " + s.message());
}

std::string BlobDirName(std::string_view blob_id) { return std::string(blob_id.substr(0, 2)); }

bool IsUploadId(std::string_view s) {
  if (s.size() != kUploadIdBytes) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string NewUploadId() {
  char time_hex[kUploadIdTimeHex + 1];
  std::snprintf(time_hex, sizeof(time_hex), "%012llx",
                static_cast<unsigned long long>(UnixMillis()) & 0xffffffffffffull);
  return std::string(time_hex, kUploadIdTimeHex) + HexEncode(RandomBytes(16));
}

std::string StripQuotes(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

class StoreImpl;

// A blob being written to tmp/<id>.
// Invariants: state_ moves kWriting -> kFinished (flushed, synced, closed) -> kHandedOver, or to
// kFailed on any error. Only in kHandedOver does the destructor leave tmp/<id> alone: from then
// on the file belongs to the committed record (or to recovery when the commit outcome is
// unknown).
class FileBlobWriter final : public BlobWriter {
 public:
  enum class State { kWriting, kFinished, kFailed, kHandedOver };

  FileBlobWriter(const StoreImpl* owner, Env* env, std::string id, std::string tmp_path,
                 std::unique_ptr<WritableFile> file)
      : owner_(owner),
        env_(env),
        id_(std::move(id)),
        tmp_path_(std::move(tmp_path)),
        file_(std::move(file)) {}

  ~FileBlobWriter() override {
    if (state_ == State::kHandedOver) return;
    file_.reset();
    env_->Unlink(tmp_path_).IgnoreError();  // best effort; recovery removes leftovers
  }

  Status Append(const char* data, size_t n) override {
    if (state_ != State::kWriting) return Error(Code::kInternal, "append to a finished blob");
    Status s = AppendInner(data, n);
    if (!s.ok()) Fail(s);
    if (s.ok()) size_ += n;
    return s;
  }

  uint64_t size() const override { return size_; }
  const std::string& blob_id() const override { return id_; }
  const StoreImpl* owner() const { return owner_; }

  // Flushes the buffer, syncs when asked, closes.
  Status Finish(bool sync) {
    if (state_ == State::kFailed) return error_;
    if (state_ != State::kWriting) return Error(Code::kInternal, "blob finished twice");
    Status s = Flush();
    if (s.ok() && sync) s = file_->Sync();
    if (s.ok()) s = file_->Close();
    if (!s.ok()) {
      Fail(s);
      return s;
    }
    buffer_.reset();
    state_ = State::kFinished;
    return Status::Ok();
  }

  // The commit batch was written (or its outcome is unknown): the file is no longer ours.
  void HandOver() { state_ = State::kHandedOver; }

 private:
  Status AppendInner(const char* data, size_t n) {
    if (n >= kWriteBufferBytes) {
      // Large appends go straight to the file; buffering them would only add a copy.
      VLAKE_RETURN_IF_ERROR(Flush());
      return file_->Append(data, n);
    }
    if (!buffer_) buffer_.reset(new char[kWriteBufferBytes]);
    while (n > 0) {
      size_t take = std::min(n, kWriteBufferBytes - buffered_);
      std::memcpy(buffer_.get() + buffered_, data, take);
      buffered_ += take;
      data += take;
      n -= take;
      if (buffered_ == kWriteBufferBytes) VLAKE_RETURN_IF_ERROR(Flush());
    }
    return Status::Ok();
  }

  Status Flush() {
    if (buffered_ == 0) return Status::Ok();
    Status s = file_->Append(buffer_.get(), buffered_);
    buffered_ = 0;
    return s;
  }

  void Fail(const Status& s) {
    state_ = State::kFailed;
    error_ = s;
  }

  const StoreImpl* owner_;
  Env* env_;
  std::string id_;
  std::string tmp_path_;
  std::unique_ptr<WritableFile> file_;
  std::unique_ptr<char[]> buffer_;
  size_t buffered_ = 0;
  uint64_t size_ = 0;
  State state_ = State::kWriting;
  Status error_;
};

// The record currently stored under an object key, as a commit sees it.
struct CurrentObject {
  bool exists = false;
  std::optional<ObjectMeta> meta;  // nullopt when exists but the record is corrupt
  Status decode_error;             // why meta is missing
};

class StoreImpl final : public Store {
 public:
  StoreImpl(std::string dir, StoreOptions options)
      : dir_(std::move(dir)),
        meta_dir_(dir_ + "/meta"),
        blobs_dir_(dir_ + "/blobs"),
        tmp_dir_(dir_ + "/tmp"),
        options_(options),
        env_(options.env != nullptr ? options.env : Env::Default()) {
    sync_write_.sync = options_.sync;
    // Removing G records after their blobs are unlinked needs no sync: a lost removal only
    // repeats an unlink at the next Open.
    lazy_write_.sync = false;
  }

  ~StoreImpl() override {
    if (db_) {
      Status s = RocksStatus("close metadata db", db_->Close());
      if (!s.ok()) Log(LogLevel::kWarn, "store close", {{"error", s.ToString()}});
    }
  }

  Status Init();

  // ---- Buckets ----

  Status CreateBucket(const std::string& name, const std::string& owner_id) override {
    std::unique_lock lock(bucket_mu_);
    auto it = buckets_.find(name);
    if (it != buckets_.end()) {
      if (it->second.owner_id == owner_id) {
        return Error(Code::kBucketAlreadyOwnedByYou, "bucket " + name + " is already yours");
      }
      return Error(Code::kBucketAlreadyExists, "bucket " + name + " exists");
    }
    BucketInfo info{name, owner_id, UnixMillis()};
    rocksdb::WriteBatch batch;
    batch.Put(codec::BucketKey(name), codec::EncodeBucket(info));
    VLAKE_RETURN_IF_ERROR(Write(&batch, "create bucket"));
    buckets_.emplace(name, std::move(info));
    return Status::Ok();
  }

  Result<BucketInfo> GetBucket(const std::string& name) override {
    std::shared_lock lock(bucket_mu_);
    auto it = buckets_.find(name);
    if (it == buckets_.end()) return NoSuchBucket(name);
    return it->second;
  }

  Status SetBucketOwner(const std::string& name, const std::string& owner_id) override {
    std::unique_lock lock(bucket_mu_);
    auto it = buckets_.find(name);
    if (it == buckets_.end()) return NoSuchBucket(name);
    BucketInfo info = it->second;
    info.owner_id = owner_id;
    rocksdb::WriteBatch batch;
    batch.Put(codec::BucketKey(name), codec::EncodeBucket(info));
    VLAKE_RETURN_IF_ERROR(Write(&batch, "set bucket owner"));
    it->second = std::move(info);
    return Status::Ok();
  }

  Status DeleteBucket(const std::string& name) override;

  Result<std::vector<BucketInfo>> ListBuckets() override {
    std::shared_lock lock(bucket_mu_);
    std::vector<BucketInfo> out;
    out.reserve(buckets_.size());
    for (const auto& [name, info] : buckets_) out.push_back(info);
    return out;
  }

  // ---- Objects ----

  Result<std::unique_ptr<BlobWriter>> NewBlob() override {
    std::string id = HexEncode(RandomBytes(16));
    std::string path = TmpPath(id);
    VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, env_->NewWritableFile(path));
    return std::unique_ptr<BlobWriter>(
        new FileBlobWriter(this, env_, std::move(id), std::move(path), std::move(file)));
  }

  Result<ObjectMeta> PutObject(const std::string& bucket, const std::string& key,
                               std::unique_ptr<BlobWriter> blob, ObjectMeta meta,
                               const WriteConditions& conditions) override;

  Result<ObjectMeta> HeadObject(const std::string& bucket, const std::string& key) override {
    VLAKE_ASSIGN_OR_RETURN(std::optional<std::string> value, Get(codec::ObjectKey(bucket, key)));
    if (!value) return MissingObject(bucket, key);
    return DecodeObjectAt(*value, bucket, key);
  }

  Result<ObjectHandle> OpenObject(const std::string& bucket, const std::string& key) override;
  Status DeleteObject(const std::string& bucket, const std::string& key) override;
  Status SetObjectTags(const std::string& bucket, const std::string& key, KeyValues tags) override;
  Result<ListResult> ListObjects(const std::string& bucket, const ListOptions& options) override;

  // ---- Multipart ----

  Result<std::string> CreateMultipartUpload(const std::string& bucket, const std::string& key,
                                            ObjectMeta meta) override;
  Result<UploadInfo> GetUpload(const std::string& bucket, const std::string& key,
                               const std::string& upload_id) override {
    return ReadUpload(bucket, key, upload_id, BucketLock::kNotHeld);
  }
  Result<PartInfo> PutPart(const std::string& bucket, const std::string& key,
                           const std::string& upload_id, int part_number,
                           std::unique_ptr<BlobWriter> blob, std::string etag,
                           std::optional<ChecksumValue> checksum) override;
  Result<ListPartsResult> ListParts(const std::string& bucket, const std::string& key,
                                    const std::string& upload_id, int part_number_marker,
                                    int max_parts) override;
  Result<ObjectMeta> CompleteMultipartUpload(const std::string& bucket, const std::string& key,
                                             const std::string& upload_id,
                                             const std::vector<CompletedPart>& parts,
                                             const WriteConditions& conditions) override;
  Status AbortMultipartUpload(const std::string& bucket, const std::string& key,
                              const std::string& upload_id) override;
  Result<ListUploadsResult> ListMultipartUploads(const std::string& bucket,
                                                 const ListUploadsOptions& options) override;

 private:
  std::string BlobPath(std::string_view id) const {
    return blobs_dir_ + "/" + BlobDirName(id) + "/" + std::string(id);
  }
  std::string TmpPath(std::string_view id) const { return tmp_dir_ + "/" + std::string(id); }

  std::mutex& KeyStripe(std::string_view bucket, std::string_view key) {
    size_t h = std::hash<std::string_view>{}(bucket)*0x9e3779b97f4a7c15ull ^
               std::hash<std::string_view>{}(key);
    return key_stripes_[h % kKeyStripes];
  }
  std::mutex& UploadStripe(std::string_view upload_id) {
    return upload_stripes_[std::hash<std::string_view>{}(upload_id) % kUploadStripes];
  }

  static Status NoSuchBucket(std::string_view bucket) {
    return Error(Code::kNoSuchBucket, "bucket " + std::string(bucket) + " does not exist");
  }
  // Needs bucket_mu_ held (either way).
  bool BucketExistsLocked(const std::string& bucket) const { return buckets_.count(bucket) > 0; }
  bool BucketExists(const std::string& bucket) const {
    std::shared_lock lock(bucket_mu_);
    return BucketExistsLocked(bucket);
  }
  // The error for a missing object: the bucket is only consulted on this (cold) path.
  Status MissingObject(const std::string& bucket, const std::string& key) const {
    if (!BucketExists(bucket)) return NoSuchBucket(bucket);
    return Error(Code::kNoSuchKey, "no such key: " + key);
  }
  // Whether the caller holds bucket_mu_ (shared_mutex is not recursive: never lock it twice).
  enum class BucketLock { kHeld, kNotHeld };
  Status MissingUpload(const std::string& bucket, const std::string& upload_id,
                       BucketLock lock) const {
    // Under the lock the caller has already checked the bucket.
    if (lock == BucketLock::kNotHeld && !BucketExists(bucket)) return NoSuchBucket(bucket);
    return Error(Code::kNoSuchUpload, "no such upload: " + upload_id);
  }

  Result<std::optional<std::string>> Get(const std::string& key) {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    VLAKE_RETURN_IF_ERROR(RocksStatus("metadata get", s));
    return std::optional<std::string>(std::move(value));
  }

  Status Write(rocksdb::WriteBatch* batch, std::string_view what) {
    return RocksStatus(what, db_->Write(sync_write_, batch));
  }

  static Result<ObjectMeta> DecodeObjectAt(std::string_view value, std::string_view bucket,
                                           std::string_view key) {
    Result<ObjectMeta> meta = codec::DecodeObject(value);
    if (!meta) {
      return Annotate(meta.error(), "object " + std::string(bucket) + "/" + std::string(key));
    }
    return meta;
  }

  Result<CurrentObject> ReadCurrent(const std::string& object_key, std::string_view bucket,
                                    std::string_view key) {
    CurrentObject cur;
    VLAKE_ASSIGN_OR_RETURN(std::optional<std::string> value, Get(object_key));
    if (!value) return cur;
    cur.exists = true;
    Result<ObjectMeta> meta = DecodeObjectAt(*value, bucket, key);
    if (meta) {
      cur.meta = std::move(*meta);
    } else {
      cur.decode_error = meta.error();
    }
    return cur;
  }

  static Status CheckConditions(const CurrentObject& cur, const WriteConditions& c) {
    if (c.if_none_match_star && cur.exists) {
      return Error(Code::kPreconditionFailed, "If-None-Match: * and the key exists");
    }
    if (c.if_match) {
      if (!cur.exists) return Error(Code::kNoSuchKey, "If-Match on a key that does not exist");
      if (*c.if_match != "*") {
        if (!cur.meta) return cur.decode_error;
        if (StripQuotes(*c.if_match) != cur.meta->etag) {
          return Error(Code::kPreconditionFailed, "If-Match: etag differs");
        }
      }
    }
    return Status::Ok();
  }

  // Adds the delete-R/put-G pair for each extent of a replaced object to the batch. A corrupt
  // old record cannot say which blobs it had: they stay referenced (leaked) and we say so.
  static void RetireObject(const CurrentObject& cur, std::string_view what,
                           rocksdb::WriteBatch* batch, std::vector<std::string>* garbage) {
    if (!cur.exists) return;
    if (!cur.meta) {
      Log(LogLevel::kError, "replacing a corrupt object record; its blobs stay allocated",
          {{"object", what}, {"error", cur.decode_error.ToString()}});
      return;
    }
    for (const Extent& e : cur.meta->extents) RetireBlob(e.blob_id, batch, garbage);
  }

  static void RetireBlob(const std::string& id, rocksdb::WriteBatch* batch,
                         std::vector<std::string>* garbage) {
    batch->Delete(codec::RefKey(id));
    batch->Put(codec::GarbageKey(id), codec::EncodeMarker(codec::RecordType::kGarbage));
    garbage->push_back(id);
  }

  Result<FileBlobWriter*> Adopt(BlobWriter* blob) const {
    auto* w = dynamic_cast<FileBlobWriter*>(blob);
    if (w == nullptr || w->owner() != this) {
      return Error(Code::kInvalidArgument, "blob was not created by this store");
    }
    return w;
  }

  // Step 1 of the protocol: the blob's bytes and its name tmp/<id> are durable before the batch
  // can reference it, so a committed R/<id> always finds its file after a crash. Runs before
  // any store lock is taken: the fsyncs of large blobs never hold up other commits.
  Status MakeBlobDurable(FileBlobWriter* writer) {
    VLAKE_RETURN_IF_ERROR(writer->Finish(options_.sync));
    if (!options_.sync) return Status::Ok();
    return env_->SyncDir(tmp_dir_);
  }

  // Step 3: called under the commit's lock right after the batch. The rename is not synced:
  // losing it in a crash leaves a referenced tmp/<id>, which recovery renames. A failure is
  // logged, not returned: the version is committed and readable from tmp/.
  void MoveIntoBlobs(const std::string& id) {
    Status s = env_->Rename(TmpPath(id), BlobPath(id));
    if (s.ok()) return;
    Log(LogLevel::kWarn, "blob rename after commit failed; recovery will finish it",
        {{"blob", id}, {"error", s.ToString()}});
  }

  // Unlinks retired blobs (committed as G records) and drops the G records of those gone.
  void CollectGarbage(const std::vector<std::string>& ids);

  Result<UploadInfo> ReadUpload(const std::string& bucket, const std::string& key,
                                const std::string& upload_id, BucketLock lock) {
    if (!IsUploadId(upload_id)) return MissingUpload(bucket, upload_id, lock);
    VLAKE_ASSIGN_OR_RETURN(std::optional<std::string> value,
                           Get(codec::UploadKey(bucket, key, upload_id)));
    if (!value) return MissingUpload(bucket, upload_id, lock);
    Result<UploadInfo> upload = codec::DecodeUpload(*value);
    if (!upload) return Annotate(upload.error(), "upload " + upload_id);
    return upload;
  }

  // Every part record of an upload, ascending by number.
  Result<std::vector<PartInfo>> ReadParts(const std::string& upload_id, int after_part, int limit) {
    std::string prefix = codec::PartPrefix(upload_id);
    std::string upper = *codec::PrefixSuccessor(prefix);  // upload ids are hex: never all 0xff
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    std::vector<PartInfo> parts;
    for (it->Seek(codec::PartKey(upload_id, after_part + 1));
         it->Valid() && static_cast<int>(parts.size()) < limit; it->Next()) {
      Result<PartInfo> part = codec::DecodePart(ToView(it->value()));
      if (!part) return Annotate(part.error(), "part of upload " + upload_id);
      parts.push_back(std::move(*part));
    }
    VLAKE_RETURN_IF_ERROR(RocksStatus("list parts", it->status()));
    return parts;
  }

  // Adds the deletion of every part record of an upload to the batch; their blobs become
  // garbage unless `keep` (part numbers used by a completed object) lists them.
  Status RetireParts(const std::string& upload_id, const std::vector<bool>& keep,
                     rocksdb::WriteBatch* batch, std::vector<std::string>* garbage) {
    VLAKE_ASSIGN_OR_RETURN(std::vector<PartInfo> parts, ReadParts(upload_id, 0, kMaxPartNumber));
    for (const PartInfo& p : parts) {
      batch->Delete(codec::PartKey(upload_id, p.part_number));
      bool kept = static_cast<size_t>(p.part_number) < keep.size() && keep[p.part_number];
      if (!kept) RetireBlob(p.blob_id, batch, garbage);
    }
    return Status::Ok();
  }

  Status Recover();

  const std::string dir_;
  const std::string meta_dir_;
  const std::string blobs_dir_;
  const std::string tmp_dir_;
  const StoreOptions options_;
  Env* const env_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions sync_write_;
  rocksdb::WriteOptions lazy_write_;

  // Shared by every object and upload mutation, exclusive for bucket create/delete, so that no
  // write lands in a bucket being deleted. Guards buckets_.
  mutable std::shared_mutex bucket_mu_;
  // Mirror of the B records: existence checks on the write path cost no metadata read.
  std::map<std::string, BucketInfo> buckets_;
  // Commits of one (bucket, key) serialize on its stripe: read old record, check, write batch,
  // rename, in one critical section.
  std::array<std::mutex, kKeyStripes> key_stripes_;
  // PutPart, Complete and Abort of one upload serialize on its stripe, so a part can never be
  // stored into an upload that completed or was aborted.
  std::array<std::mutex, kUploadStripes> upload_stripes_;
};

// ---------------------------------------------------------------------------------------------
// Open and recovery

Status StoreImpl::Init() {
  for (const std::string& d : {dir_, meta_dir_, blobs_dir_, tmp_dir_}) {
    VLAKE_RETURN_IF_ERROR(env_->CreateDirIfMissing(d));
  }
  for (int i = 0; i < 256; ++i) {
    char name[3];
    std::snprintf(name, sizeof(name), "%02x", i);
    VLAKE_RETURN_IF_ERROR(env_->CreateDirIfMissing(blobs_dir_ + "/" + name));
  }
  if (options_.sync) {
    VLAKE_RETURN_IF_ERROR(env_->SyncDir(blobs_dir_));
    VLAKE_RETURN_IF_ERROR(env_->SyncDir(dir_));
  }

  rocksdb::Options o;
  o.create_if_missing = true;
  o.max_open_files = 512;
  o.manual_wal_flush = false;
  o.keep_log_file_num = 4;
  o.max_log_file_size = 8 << 20;
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
  // Point lookups (HeadObject, R checks) dominate; a bloom filter saves a block read on misses.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* db = nullptr;
  VLAKE_RETURN_IF_ERROR(
      RocksStatus("open metadata db " + meta_dir_, rocksdb::DB::Open(o, meta_dir_, &db)));
  db_.reset(db);

  VLAKE_ASSIGN_OR_RETURN(std::optional<std::string> format, Get(codec::FormatKey()));
  if (format) {
    VLAKE_RETURN_IF_ERROR(codec::DecodeFormat(*format));
  } else {
    rocksdb::WriteBatch batch;
    batch.Put(codec::FormatKey(), codec::EncodeFormat());
    VLAKE_RETURN_IF_ERROR(Write(&batch, "write format record"));
  }

  {
    std::string prefix = codec::BucketPrefix();
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      std::string name(ToView(it->key()).substr(prefix.size()));
      Result<BucketInfo> info = codec::DecodeBucket(ToView(it->value()));
      if (!info) return Annotate(info.error(), "bucket " + name);
      info->name = name;
      buckets_.emplace(std::move(name), std::move(*info));
    }
    VLAKE_RETURN_IF_ERROR(RocksStatus("load buckets", it->status()));
  }
  return Recover();
}

Status StoreImpl::Recover() {
  auto referenced = [&](const std::string& id) -> Result<bool> {
    VLAKE_ASSIGN_OR_RETURN(std::optional<std::string> ref, Get(codec::RefKey(id)));
    return ref.has_value();
  };
  int tmp_finished = 0, tmp_removed = 0, garbage_removed = 0, orphans_removed = 0;
  std::vector<bool> dir_touched(256, false);

  // 1. tmp/: a referenced blob committed but was not renamed; anything else never committed.
  VLAKE_ASSIGN_OR_RETURN(std::vector<std::string> tmp_names, env_->ListDir(tmp_dir_));
  for (const std::string& name : tmp_names) {
    bool keep = false;
    if (codec::IsBlobId(name)) {
      VLAKE_ASSIGN_OR_RETURN(keep, referenced(name));
    }
    if (keep) {
      VLAKE_RETURN_IF_ERROR(env_->Rename(TmpPath(name), BlobPath(name)));
      dir_touched[std::stoi(BlobDirName(name), nullptr, 16)] = true;
      ++tmp_finished;
    } else {
      Status s = env_->Unlink(TmpPath(name));
      if (!s.ok() && s.code() != Code::kNotFound) return s;
      ++tmp_removed;
    }
  }
  if (options_.sync && !tmp_names.empty()) VLAKE_RETURN_IF_ERROR(env_->SyncDir(tmp_dir_));

  // 2. G records: blobs retired by a commit whose unlink did not (durably) happen.
  {
    rocksdb::WriteBatch done;
    std::string prefix = codec::GarbagePrefix();
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      std::string id(ToView(it->key()).substr(prefix.size()));
      if (codec::IsBlobId(id)) {
        Status s = env_->Unlink(BlobPath(id));
        if (!s.ok() && s.code() != Code::kNotFound) return s;
        dir_touched[std::stoi(BlobDirName(id), nullptr, 16)] = true;
      }
      done.Delete(it->key());
      ++garbage_removed;
    }
    VLAKE_RETURN_IF_ERROR(RocksStatus("scan garbage", it->status()));
    if (done.Count() > 0) VLAKE_RETURN_IF_ERROR(Write(&done, "drop garbage records"));
  }

  // 3. Orphans: files in blobs/ that no record references.
  if (options_.sweep_orphan_blobs) {
    for (int i = 0; i < 256; ++i) {
      char sub[3];
      std::snprintf(sub, sizeof(sub), "%02x", i);
      std::string dir = blobs_dir_ + "/" + sub;
      VLAKE_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir));
      for (const std::string& name : names) {
        bool keep = false;
        if (codec::IsBlobId(name) && BlobDirName(name) == sub) {
          VLAKE_ASSIGN_OR_RETURN(keep, referenced(name));
        }
        if (keep) continue;
        Status s = env_->Unlink(dir + "/" + name);
        if (!s.ok() && s.code() != Code::kNotFound) return s;
        dir_touched[i] = true;
        ++orphans_removed;
      }
    }
  }

  if (options_.sync) {
    for (int i = 0; i < 256; ++i) {
      if (!dir_touched[i]) continue;
      char sub[3];
      std::snprintf(sub, sizeof(sub), "%02x", i);
      VLAKE_RETURN_IF_ERROR(env_->SyncDir(blobs_dir_ + "/" + sub));
    }
  }

  int total = tmp_finished + tmp_removed + garbage_removed + orphans_removed;
  std::string a = std::to_string(tmp_finished), b = std::to_string(tmp_removed),
              c = std::to_string(garbage_removed), d = std::to_string(orphans_removed);
  Log(total > 0 ? LogLevel::kInfo : LogLevel::kDebug, "store recovery",
      {{"dir", dir_},
       {"tmp_renamed", a},
       {"tmp_removed", b},
       {"garbage_removed", c},
       {"orphans_removed", d}});
  return Status::Ok();
}

void StoreImpl::CollectGarbage(const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  rocksdb::WriteBatch done;
  for (const std::string& id : ids) {
    // A retired blob is normally in blobs/; it is still in tmp/ only if its own rename failed.
    Status s = env_->Unlink(BlobPath(id));
    if (s.code() == Code::kNotFound) s = env_->Unlink(TmpPath(id));
    if (s.ok() || s.code() == Code::kNotFound) {
      done.Delete(codec::GarbageKey(id));
    } else {
      Log(LogLevel::kWarn, "unlink of a retired blob failed; next Open retries",
          {{"blob", id}, {"error", s.ToString()}});
    }
  }
  if (done.Count() == 0) return;
  Status s = RocksStatus("drop garbage records", db_->Write(lazy_write_, &done));
  if (!s.ok()) Log(LogLevel::kWarn, "garbage record cleanup", {{"error", s.ToString()}});
}

// ---------------------------------------------------------------------------------------------
// Buckets

Status StoreImpl::DeleteBucket(const std::string& name) {
  std::vector<std::string> garbage;
  {
    std::unique_lock lock(bucket_mu_);
    if (!BucketExistsLocked(name)) return NoSuchBucket(name);
    std::string objects = codec::ObjectPrefix(name);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->Seek(objects);
    if (it->Valid() && it->key().starts_with(objects)) {
      return Error(Code::kBucketNotEmpty, "bucket " + name + " is not empty");
    }
    VLAKE_RETURN_IF_ERROR(RocksStatus("check bucket empty", it->status()));

    rocksdb::WriteBatch batch;
    batch.Delete(codec::BucketKey(name));
    std::string uploads = codec::UploadPrefix(name);
    for (it->Seek(uploads); it->Valid() && it->key().starts_with(uploads); it->Next()) {
      // The upload id is the fixed-size tail of the key, so even a corrupt upload record can
      // be aborted completely.
      std::string_view k = ToView(it->key());
      std::string upload_id(k.substr(k.size() - std::min(k.size(), kUploadIdBytes)));
      batch.Delete(it->key());
      VLAKE_RETURN_IF_ERROR(RetireParts(upload_id, {}, &batch, &garbage));
    }
    VLAKE_RETURN_IF_ERROR(RocksStatus("scan uploads", it->status()));
    VLAKE_RETURN_IF_ERROR(Write(&batch, "delete bucket"));
    buckets_.erase(name);
  }
  CollectGarbage(garbage);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Objects

Status CheckKey(const std::string& key) {
  if (key.empty()) return Error(Code::kInvalidArgument, "empty object key");
  if (key.size() > kMaxKeyBytes) return Error(Code::kKeyTooLong, "object key too long");
  return Status::Ok();
}

Result<ObjectMeta> StoreImpl::PutObject(const std::string& bucket, const std::string& key,
                                        std::unique_ptr<BlobWriter> blob, ObjectMeta meta,
                                        const WriteConditions& conditions) {
  VLAKE_ASSIGN_OR_RETURN(FileBlobWriter * writer, Adopt(blob.get()));
  VLAKE_RETURN_IF_ERROR(CheckKey(key));
  VLAKE_RETURN_IF_ERROR(MakeBlobDurable(writer));
  const std::string& id = writer->blob_id();
  meta.size = writer->size();
  meta.extents = {Extent{id, writer->size()}};
  meta.parts.clear();
  if (meta.mtime_unix_ms == 0) meta.mtime_unix_ms = UnixMillis();

  std::vector<std::string> garbage;
  {
    std::shared_lock bucket_lock(bucket_mu_);
    if (!BucketExistsLocked(bucket)) return NoSuchBucket(bucket);
    std::lock_guard key_lock(KeyStripe(bucket, key));
    std::string object_key = codec::ObjectKey(bucket, key);
    VLAKE_ASSIGN_OR_RETURN(CurrentObject cur, ReadCurrent(object_key, bucket, key));
    VLAKE_RETURN_IF_ERROR(CheckConditions(cur, conditions));
    // Step 2: one synced batch: the record, the reference, the retirement of the old blobs.
    rocksdb::WriteBatch batch;
    batch.Put(object_key, codec::EncodeObject(meta));
    batch.Put(codec::RefKey(id), codec::EncodeMarker(codec::RecordType::kRef));
    RetireObject(cur, bucket + "/" + key, &batch, &garbage);
    Status s = Write(&batch, "commit object");
    // Even a failed write may have reached the WAL; the tmp file is left for recovery to judge.
    writer->HandOver();
    VLAKE_RETURN_IF_ERROR(s);
    // Step 3: rename under the key lock (see store.h, Concurrency).
    MoveIntoBlobs(id);
  }
  CollectGarbage(garbage);
  return meta;
}

Result<ObjectHandle> StoreImpl::OpenObject(const std::string& bucket, const std::string& key) {
  std::string object_key = codec::ObjectKey(bucket, key);
  std::string previous_value;
  for (int attempt = 0; attempt < kOpenAttempts; ++attempt) {
    VLAKE_ASSIGN_OR_RETURN(std::optional<std::string> value, Get(object_key));
    if (!value) return MissingObject(bucket, key);
    VLAKE_ASSIGN_OR_RETURN(ObjectMeta meta, DecodeObjectAt(*value, bucket, key));
    ObjectHandle handle;
    std::string missing;
    for (const Extent& e : meta.extents) {
      Result<UniqueFd> fd = env_->OpenForRead(BlobPath(e.blob_id));
      // Not yet renamed (commit in flight) -> still in tmp/.
      if (!fd && fd.error().code() == Code::kNotFound) fd = env_->OpenForRead(TmpPath(e.blob_id));
      if (!fd) {
        if (fd.error().code() != Code::kNotFound) return fd.error();
        missing = e.blob_id;
        break;
      }
      handle.extents.push_back(
          OpenExtent{std::make_shared<const UniqueFd>(std::move(*fd)), e.size});
    }
    if (missing.empty()) {
      handle.meta = std::move(meta);
      return handle;
    }
    // The version was replaced and its blobs unlinked after our lookup (the record changed), or
    // the rename raced between our two opens (one retry finds it). The same record missing the
    // same blob twice means the blob is really gone.
    if (*value == previous_value) {
      return Error(Code::kCorruption,
                   "object " + bucket + "/" + key + ": blob " + missing + " is missing");
    }
    previous_value = std::move(*value);
  }
  return Error(Code::kUnavailable, "object " + bucket + "/" + key + " changes too fast to open");
}

Status StoreImpl::DeleteObject(const std::string& bucket, const std::string& key) {
  std::vector<std::string> garbage;
  {
    std::shared_lock bucket_lock(bucket_mu_);
    if (!BucketExistsLocked(bucket)) return NoSuchBucket(bucket);
    std::lock_guard key_lock(KeyStripe(bucket, key));
    std::string object_key = codec::ObjectKey(bucket, key);
    VLAKE_ASSIGN_OR_RETURN(CurrentObject cur, ReadCurrent(object_key, bucket, key));
    if (!cur.exists) return Status::Ok();
    rocksdb::WriteBatch batch;
    batch.Delete(object_key);
    RetireObject(cur, bucket + "/" + key, &batch, &garbage);
    VLAKE_RETURN_IF_ERROR(Write(&batch, "delete object"));
  }
  CollectGarbage(garbage);
  return Status::Ok();
}

Status StoreImpl::SetObjectTags(const std::string& bucket, const std::string& key, KeyValues tags) {
  std::shared_lock bucket_lock(bucket_mu_);
  if (!BucketExistsLocked(bucket)) return NoSuchBucket(bucket);
  std::lock_guard key_lock(KeyStripe(bucket, key));
  std::string object_key = codec::ObjectKey(bucket, key);
  VLAKE_ASSIGN_OR_RETURN(CurrentObject cur, ReadCurrent(object_key, bucket, key));
  if (!cur.exists) return Error(Code::kNoSuchKey, "no such key: " + key);
  if (!cur.meta) return cur.decode_error;
  cur.meta->tags = std::move(tags);
  rocksdb::WriteBatch batch;
  batch.Put(object_key, codec::EncodeObject(*cur.meta));
  return Write(&batch, "set object tags");
}

Result<ListResult> StoreImpl::ListObjects(const std::string& bucket, const ListOptions& options) {
  if (!BucketExists(bucket)) return NoSuchBucket(bucket);
  ListResult out;
  if (options.max_keys <= 0) return out;
  const std::string base = codec::ObjectPrefix(bucket);
  const std::string lower = base + options.prefix;
  // base ends in 0x01, so a successor always exists.
  std::string upper = codec::PrefixSuccessor(lower).value_or(*codec::PrefixSuccessor(base));
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;  // every key seen starts with lower
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));

  const std::string& after = options.start_after;
  it->Seek(after > options.prefix ? base + after : lower);
  int count = 0;
  std::string last;
  while (it->Valid()) {
    std::string_view key = ToView(it->key()).substr(base.size());
    if (key <= std::string_view(after)) {  // only the start_after key itself
      it->Next();
      continue;
    }
    if (!options.delimiter.empty()) {
      size_t pos = key.find(options.delimiter, options.prefix.size());
      if (pos != std::string_view::npos) {
        std::string common(key.substr(0, pos + options.delimiter.size()));
        if (common > after) {
          if (count == options.max_keys) {
            out.truncated = true;
            break;
          }
          out.common_prefixes.push_back(common);
          last = common;
          ++count;
        }
        // Jump over every key under this common prefix instead of walking them.
        std::optional<std::string> next = codec::PrefixSuccessor(base + common);
        if (!next) break;
        it->Seek(*next);
        continue;
      }
    }
    if (count == options.max_keys) {
      out.truncated = true;
      break;
    }
    VLAKE_ASSIGN_OR_RETURN(ObjectMeta meta, DecodeObjectAt(ToView(it->value()), bucket, key));
    meta.extents.clear();
    out.objects.push_back(ListEntry{std::string(key), std::move(meta)});
    last = out.objects.back().key;
    ++count;
    it->Next();
  }
  VLAKE_RETURN_IF_ERROR(RocksStatus("list objects", it->status()));
  if (out.truncated) out.next_marker = std::move(last);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Multipart

Result<std::string> StoreImpl::CreateMultipartUpload(const std::string& bucket,
                                                     const std::string& key, ObjectMeta meta) {
  VLAKE_RETURN_IF_ERROR(CheckKey(key));
  UploadInfo upload;
  upload.upload_id = NewUploadId();
  upload.bucket = bucket;
  upload.key = key;
  upload.initiated_unix_ms = UnixMillis();
  meta.size = 0;
  meta.etag.clear();
  meta.parts.clear();
  meta.extents.clear();
  if (meta.checksum) meta.checksum->value.clear();
  upload.meta = std::move(meta);

  std::shared_lock bucket_lock(bucket_mu_);
  if (!BucketExistsLocked(bucket)) return NoSuchBucket(bucket);
  rocksdb::WriteBatch batch;
  batch.Put(codec::UploadKey(bucket, key, upload.upload_id), codec::EncodeUpload(upload));
  VLAKE_RETURN_IF_ERROR(Write(&batch, "create upload"));
  return upload.upload_id;
}

Result<PartInfo> StoreImpl::PutPart(const std::string& bucket, const std::string& key,
                                    const std::string& upload_id, int part_number,
                                    std::unique_ptr<BlobWriter> blob, std::string etag,
                                    std::optional<ChecksumValue> checksum) {
  VLAKE_ASSIGN_OR_RETURN(FileBlobWriter * writer, Adopt(blob.get()));
  if (part_number < 1 || part_number > kMaxPartNumber) {
    return Error(Code::kInvalidArgument, "part number must be 1..10000");
  }
  VLAKE_RETURN_IF_ERROR(MakeBlobDurable(writer));
  PartInfo part;
  part.part_number = part_number;
  part.size = writer->size();
  part.etag = StripQuotes(etag);
  part.checksum = std::move(checksum);
  part.mtime_unix_ms = UnixMillis();
  part.blob_id = writer->blob_id();

  std::vector<std::string> garbage;
  {
    std::shared_lock bucket_lock(bucket_mu_);
    if (!BucketExistsLocked(bucket)) return NoSuchBucket(bucket);
    std::lock_guard upload_lock(UploadStripe(upload_id));
    // Checked under the upload's lock: Complete and Abort take it too.
    VLAKE_RETURN_IF_ERROR(ReadUpload(bucket, key, upload_id, BucketLock::kHeld).status());
    std::string part_key = codec::PartKey(upload_id, part_number);
    VLAKE_ASSIGN_OR_RETURN(std::optional<std::string> old_value, Get(part_key));
    rocksdb::WriteBatch batch;
    batch.Put(part_key, codec::EncodePart(part));
    batch.Put(codec::RefKey(part.blob_id), codec::EncodeMarker(codec::RecordType::kRef));
    if (old_value) {
      Result<PartInfo> old = codec::DecodePart(*old_value);
      if (old) {
        RetireBlob(old->blob_id, &batch, &garbage);
      } else {
        Log(LogLevel::kError, "replacing a corrupt part record; its blob stays allocated",
            {{"upload", upload_id}, {"error", old.error().ToString()}});
      }
    }
    Status s = Write(&batch, "commit part");
    writer->HandOver();
    VLAKE_RETURN_IF_ERROR(s);
    MoveIntoBlobs(part.blob_id);
  }
  CollectGarbage(garbage);
  return part;
}

Result<ListPartsResult> StoreImpl::ListParts(const std::string& bucket, const std::string& key,
                                             const std::string& upload_id, int part_number_marker,
                                             int max_parts) {
  VLAKE_RETURN_IF_ERROR(ReadUpload(bucket, key, upload_id, BucketLock::kNotHeld).status());
  ListPartsResult out;
  if (max_parts <= 0 || part_number_marker >= kMaxPartNumber) return out;
  int after = std::max(part_number_marker, 0);
  // One more than asked tells whether the listing is truncated.
  VLAKE_ASSIGN_OR_RETURN(out.parts, ReadParts(upload_id, after, max_parts + 1));
  if (static_cast<int>(out.parts.size()) > max_parts) {
    out.parts.resize(max_parts);
    out.truncated = true;
    out.next_part_number_marker = out.parts.back().part_number;
  }
  return out;
}

// The multipart checksum of the object from its parts' checksums: composite
// (checksum of the concatenated raw part checksums, "-N") or, for CRCs, the full-object CRC.
Result<ChecksumValue> CombineChecksums(const ChecksumValue& spec,
                                       const std::vector<const PartInfo*>& parts) {
  ChecksumValue out;
  out.algorithm = spec.algorithm;
  out.type = spec.type;
  if (spec.type == ChecksumType::kFullObject && !IsCombinableCrc(spec.algorithm)) {
    out.type = ChecksumType::kComposite;  // SHA digests cannot be combined: S3 never asks this
  }
  std::string concat;
  uint64_t crc = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const PartInfo& p = *parts[i];
    std::optional<std::string> raw =
        p.checksum ? Base64Decode(p.checksum->value) : std::optional<std::string>();
    if (!p.checksum || p.checksum->algorithm != spec.algorithm || !raw ||
        raw->size() != ChecksumSize(spec.algorithm)) {
      return Error(Code::kInvalidPart, "part " + std::to_string(p.part_number) + " has no " +
                                           std::string(ChecksumAlgorithmName(spec.algorithm)) +
                                           " checksum");
    }
    if (out.type == ChecksumType::kComposite) {
      concat += *raw;
    } else {
      uint64_t part_crc = *CrcFromDigest(spec.algorithm, *raw);
      crc = i == 0 ? part_crc : CrcCombine(spec.algorithm, crc, part_crc, p.size);
    }
  }
  if (out.type == ChecksumType::kComposite) {
    out.value =
        Base64Encode(ComputeChecksum(spec.algorithm, concat)) + "-" + std::to_string(parts.size());
  } else {
    out.value = Base64Encode(CrcToDigest(spec.algorithm, crc));
  }
  return out;
}

Result<ObjectMeta> StoreImpl::CompleteMultipartUpload(const std::string& bucket,
                                                      const std::string& key,
                                                      const std::string& upload_id,
                                                      const std::vector<CompletedPart>& parts,
                                                      const WriteConditions& conditions) {
  if (parts.empty()) {
    return Error(Code::kInvalidRequest, "you must specify at least one part");
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].part_number < 1 || parts[i].part_number > kMaxPartNumber) {
      return Error(Code::kInvalidPart, "part number out of range");
    }
    if (i > 0 && parts[i].part_number <= parts[i - 1].part_number) {
      return Error(Code::kInvalidPartOrder, "parts must be listed in ascending order");
    }
  }

  std::vector<std::string> garbage;
  ObjectMeta meta;
  {
    std::shared_lock bucket_lock(bucket_mu_);
    if (!BucketExistsLocked(bucket)) return NoSuchBucket(bucket);
    std::lock_guard key_lock(KeyStripe(bucket, key));
    std::lock_guard upload_lock(UploadStripe(upload_id));
    VLAKE_ASSIGN_OR_RETURN(UploadInfo upload,
                           ReadUpload(bucket, key, upload_id, BucketLock::kHeld));
    VLAKE_ASSIGN_OR_RETURN(std::vector<PartInfo> stored, ReadParts(upload_id, 0, kMaxPartNumber));
    std::vector<const PartInfo*> by_number(kMaxPartNumber + 1, nullptr);
    for (const PartInfo& p : stored) by_number[p.part_number] = &p;

    std::vector<const PartInfo*> chosen;
    std::vector<bool> keep(kMaxPartNumber + 1, false);
    Md5 etag_md5;
    for (const CompletedPart& c : parts) {
      const PartInfo* p = by_number[c.part_number];
      std::string part_name = "part " + std::to_string(c.part_number);
      if (p == nullptr) return Error(Code::kInvalidPart, part_name + " was not uploaded");
      if (!EqualsIgnoreCase(StripQuotes(c.etag), p->etag)) {
        return Error(Code::kInvalidPart, part_name + ": etag does not match");
      }
      if (c.checksum && (!p->checksum || p->checksum->value != *c.checksum)) {
        return Error(Code::kInvalidPart, part_name + ": checksum does not match");
      }
      std::optional<std::string> raw_md5 = HexDecode(p->etag);
      if (!raw_md5 || raw_md5->size() != 16) {
        return Error(Code::kInvalidPart, part_name + ": stored etag is not an md5");
      }
      etag_md5.Update(*raw_md5);
      chosen.push_back(p);
      keep[c.part_number] = true;
    }
    for (size_t i = 0; i + 1 < chosen.size(); ++i) {
      if (chosen[i]->size < kMinPartSize) {
        return Error(Code::kEntityTooSmall,
                     "part " + std::to_string(chosen[i]->part_number) + " is smaller than 5 MiB");
      }
    }

    meta = std::move(upload.meta);
    meta.etag = HexEncode(etag_md5.Final()) + "-" + std::to_string(chosen.size());
    meta.mtime_unix_ms = UnixMillis();
    meta.size = 0;
    meta.parts.clear();
    meta.extents.clear();
    for (const PartInfo* p : chosen) {
      meta.size += p->size;
      meta.parts.push_back(PartSummary{p->size, p->etag, p->checksum ? p->checksum->value : ""});
      meta.extents.push_back(Extent{p->blob_id, p->size});
    }
    if (meta.checksum) {
      VLAKE_ASSIGN_OR_RETURN(meta.checksum, CombineChecksums(*meta.checksum, chosen));
    }

    std::string object_key = codec::ObjectKey(bucket, key);
    VLAKE_ASSIGN_OR_RETURN(CurrentObject cur, ReadCurrent(object_key, bucket, key));
    VLAKE_RETURN_IF_ERROR(CheckConditions(cur, conditions));

    // One batch: the object appears, the upload and its parts disappear, unlisted parts and
    // the replaced version become garbage. The listed parts' R records carry over unchanged.
    rocksdb::WriteBatch batch;
    batch.Put(object_key, codec::EncodeObject(meta));
    batch.Delete(codec::UploadKey(bucket, key, upload_id));
    for (const PartInfo& p : stored) {
      batch.Delete(codec::PartKey(upload_id, p.part_number));
      if (!keep[p.part_number]) RetireBlob(p.blob_id, &batch, &garbage);
    }
    RetireObject(cur, bucket + "/" + key, &batch, &garbage);
    VLAKE_RETURN_IF_ERROR(Write(&batch, "complete multipart upload"));
  }
  CollectGarbage(garbage);
  return meta;
}

Status StoreImpl::AbortMultipartUpload(const std::string& bucket, const std::string& key,
                                       const std::string& upload_id) {
  std::vector<std::string> garbage;
  {
    std::shared_lock bucket_lock(bucket_mu_);
    if (!BucketExistsLocked(bucket)) return NoSuchBucket(bucket);
    std::lock_guard upload_lock(UploadStripe(upload_id));
    // A corrupt upload record can still be aborted: only its existence matters here.
    if (!IsUploadId(upload_id)) return MissingUpload(bucket, upload_id, BucketLock::kHeld);
    std::string upload_key = codec::UploadKey(bucket, key, upload_id);
    VLAKE_ASSIGN_OR_RETURN(std::optional<std::string> value, Get(upload_key));
    if (!value) return MissingUpload(bucket, upload_id, BucketLock::kHeld);
    rocksdb::WriteBatch batch;
    batch.Delete(upload_key);
    VLAKE_RETURN_IF_ERROR(RetireParts(upload_id, {}, &batch, &garbage));
    VLAKE_RETURN_IF_ERROR(Write(&batch, "abort multipart upload"));
  }
  CollectGarbage(garbage);
  return Status::Ok();
}

Result<ListUploadsResult> StoreImpl::ListMultipartUploads(const std::string& bucket,
                                                          const ListUploadsOptions& options) {
  if (!BucketExists(bucket)) return NoSuchBucket(bucket);
  ListUploadsResult out;
  if (options.max_uploads <= 0) return out;
  const std::string base = codec::UploadPrefix(bucket);
  const std::string lower = codec::UploadKeyPrefix(bucket, options.prefix);
  std::string upper = codec::PrefixSuccessor(lower).value_or(*codec::PrefixSuccessor(base));
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));

  const std::string& key_marker = options.key_marker;
  const std::string& id_marker = options.upload_id_marker;
  // Escaped keys sort like raw keys, so the marker's escaped form is a valid seek target.
  it->Seek(key_marker > options.prefix ? codec::UploadKeyPrefix(bucket, key_marker) : lower);
  int count = 0;
  while (it->Valid()) {
    Result<UploadInfo> upload = codec::DecodeUpload(ToView(it->value()));
    if (!upload) return Annotate(upload.error(), "list uploads of " + bucket);
    const std::string& key = upload->key;
    if (!key_marker.empty() &&
        (key < key_marker ||
         (key == key_marker && (id_marker.empty() || upload->upload_id <= id_marker)))) {
      it->Next();
      continue;
    }
    if (!options.delimiter.empty()) {
      size_t pos = key.find(options.delimiter, options.prefix.size());
      if (pos != std::string::npos) {
        std::string common = key.substr(0, pos + options.delimiter.size());
        if (common > key_marker) {
          if (count == options.max_uploads) {
            out.truncated = true;
            break;
          }
          out.common_prefixes.push_back(common);
          out.next_key_marker = common;
          out.next_upload_id_marker.clear();
          ++count;
        }
        std::optional<std::string> next =
            codec::PrefixSuccessor(codec::UploadKeyPrefix(bucket, common));
        if (!next) break;
        it->Seek(*next);
        continue;
      }
    }
    if (count == options.max_uploads) {
      out.truncated = true;
      break;
    }
    out.next_key_marker = key;
    out.next_upload_id_marker = upload->upload_id;
    upload->meta.extents.clear();
    out.uploads.push_back(std::move(*upload));
    ++count;
    it->Next();
  }
  VLAKE_RETURN_IF_ERROR(RocksStatus("list uploads", it->status()));
  if (!out.truncated) {
    out.next_key_marker.clear();
    out.next_upload_id_marker.clear();
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& dir, StoreOptions options) {
  auto store = std::make_unique<StoreImpl>(dir, options);
  Status s = store->Init();
  if (!s.ok()) {
    // Whatever the OS said (ENOENT on a missing parent, a held LOCK file, ...), the store
    // could not be opened: callers see an I/O failure, with the reason in the message.
    Code code = s.code() == Code::kCorruption || s.code() == Code::kNotImplemented ? s.code()
                                                                                   : Code::kIoError;
    return Error(code, "open store " + dir + ": " + s.message());
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace vlake::store
