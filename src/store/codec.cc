#include "store/codec.h"

#include <cstring>

#include "common/encoding.h"
#include "common/hash.h"

namespace vlake::store::codec {
namespace {

constexpr char kTagFormat = 'F';
constexpr char kTagBucket = 'B';
constexpr char kTagObject = 'O';
constexpr char kTagUpload = 'U';
constexpr char kTagPart = 'P';
constexpr char kTagRef = 'R';
constexpr char kTagGarbage = 'G';

constexpr size_t kHeaderBytes = 2;   // type, version
constexpr size_t kTrailerBytes = 4;  // crc32c
constexpr size_t kRawBlobIdBytes = 16;

void AppendTerminated(std::string* out, std::string_view s) {
  AppendEscaped(out, s);
  out->push_back('\0');
  out->push_back('\x01');
}

// ---- Writer: appends primitive fields to a record under construction. ----
class Writer {
 public:
  explicit Writer(RecordType type, uint8_t version = kRecordVersion) {
    buf_.push_back(static_cast<char>(type));
    buf_.push_back(static_cast<char>(version));
  }
  void U8(uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
  }
  void Fixed32(uint32_t v) {
    for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void Fixed64(uint64_t v) {
    for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void Str(std::string_view s) {
    Varint(s.size());
    buf_.append(s);
  }
  void BlobId(std::string_view hex_id) {
    // Ids are made by the store; a malformed one is a bug, not an input error.
    VLAKE_CHECK(IsBlobId(hex_id));
    std::optional<std::string> raw = HexDecode(hex_id);
    VLAKE_CHECK(raw.has_value() && raw->size() == kRawBlobIdBytes);
    buf_.append(*raw);
  }
  std::string Finish() {
    Fixed32(Crc32cUpdate(0, buf_.data(), buf_.size()));
    return std::move(buf_);
  }

 private:
  std::string buf_;
};

// ---- Reader: bounds-checked reads; the first failure sticks and every later read fails. ----
class Reader {
 public:
  explicit Reader(std::string_view payload) : in_(payload) {}

  bool U8(uint8_t* v) {
    if (!Need(1)) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
      if (!Need(1)) return false;
      auto byte = static_cast<uint8_t>(in_[0]);
      in_.remove_prefix(1);
      if (shift == 63 && byte > 1) return Fail();  // more than 64 bits
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return Fail();
  }
  bool Int(int max, int* v) {
    uint64_t u = 0;
    if (!Varint(&u)) return false;
    if (u > static_cast<uint64_t>(max)) return Fail();
    *v = static_cast<int>(u);
    return true;
  }
  bool Fixed64(uint64_t* v) {
    if (!Need(8)) return false;
    uint64_t r = 0;
    for (int i = 0; i < 8; ++i) r |= static_cast<uint64_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(8);
    *v = r;
    return true;
  }
  bool Int64(int64_t* v) {
    uint64_t u = 0;
    if (!Fixed64(&u)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  bool Str(std::string* s) {
    uint64_t n = 0;
    if (!Varint(&n)) return false;
    if (n > in_.size()) return Fail();
    s->assign(in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  bool BlobId(std::string* hex_id) {
    if (!Need(kRawBlobIdBytes)) return false;
    *hex_id = HexEncode(in_.substr(0, kRawBlobIdBytes));
    in_.remove_prefix(kRawBlobIdBytes);
    return true;
  }
  // A count of items that each take at least one byte: larger than what is left is corrupt,
  // which also keeps a forged count from driving a huge allocation.
  bool Count(uint64_t* n) {
    if (!Varint(n)) return false;
    if (*n > in_.size()) return Fail();
    return true;
  }
  bool Done() const { return ok_ && in_.empty(); }

 private:
  bool Need(size_t n) {
    if (!ok_ || in_.size() < n) return Fail();
    return true;
  }
  bool Fail() {
    ok_ = false;
    in_ = {};
    return false;
  }

  std::string_view in_;
  bool ok_ = true;
};

Status Corrupt(std::string_view what) {
  return Error(Code::kCorruption, "store record: " + std::string(what));
}

// Verifies the envelope and returns the payload; `version` (when given) receives the record
// version, which may then be up to `max_version`.
Result<std::string_view> Open(RecordType type, std::string_view record,
                              uint8_t max_version = kRecordVersion, uint8_t* version = nullptr) {
  if (record.size() < kHeaderBytes + kTrailerBytes) return Corrupt("too short");
  std::string_view body = record.substr(0, record.size() - kTrailerBytes);
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) {
    stored |= static_cast<uint32_t>(static_cast<uint8_t>(record[body.size() + i])) << (8 * i);
  }
  if (Crc32cUpdate(0, body.data(), body.size()) != stored) return Corrupt("checksum mismatch");
  if (static_cast<uint8_t>(body[0]) != static_cast<uint8_t>(type)) return Corrupt("wrong type");
  const auto v = static_cast<uint8_t>(body[1]);
  if (v < kRecordVersion || v > max_version) return Corrupt("unknown record version");
  if (version != nullptr) *version = v;
  return body.substr(kHeaderBytes);
}

void PutKeyValues(Writer* w, const KeyValues& kvs) {
  w->Varint(kvs.size());
  for (const auto& [k, v] : kvs) {
    w->Str(k);
    w->Str(v);
  }
}

bool GetKeyValues(Reader* r, KeyValues* kvs) {
  uint64_t n = 0;
  if (!r->Count(&n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!r->Str(&k) || !r->Str(&v)) return false;
    kvs->emplace_back(std::move(k), std::move(v));
  }
  return true;
}

void PutChecksum(Writer* w, const std::optional<ChecksumValue>& c) {
  if (!c.has_value()) {
    w->U8(0);
    return;
  }
  w->U8(1);
  w->U8(static_cast<uint8_t>(c->algorithm));
  w->U8(static_cast<uint8_t>(c->type));
  w->Str(c->value);
}

bool GetChecksum(Reader* r, std::optional<ChecksumValue>* c) {
  uint8_t present = 0;
  if (!r->U8(&present) || present > 1) return false;
  if (present == 0) {
    c->reset();
    return true;
  }
  uint8_t alg = 0, type = 0;
  ChecksumValue v;
  if (!r->U8(&alg) || !r->U8(&type) || !r->Str(&v.value)) return false;
  if (alg > static_cast<uint8_t>(ChecksumAlgorithm::kSha256)) return false;
  if (type > static_cast<uint8_t>(ChecksumType::kComposite)) return false;
  v.algorithm = static_cast<ChecksumAlgorithm>(alg);
  v.type = static_cast<ChecksumType>(type);
  *c = std::move(v);
  return true;
}

// ObjectMeta is shared by object and upload records.
void PutMeta(Writer* w, const ObjectMeta& m) {
  w->Varint(m.size);
  w->Str(m.etag);
  w->Fixed64(static_cast<uint64_t>(m.mtime_unix_ms));
  w->Str(m.owner_id);
  PutKeyValues(w, m.headers);
  PutKeyValues(w, m.tags);
  PutChecksum(w, m.checksum);
  w->Varint(m.parts.size());
  for (const PartSummary& p : m.parts) {
    w->Varint(p.size);
    w->Str(p.etag);
    w->Str(p.checksum);
  }
  w->Varint(m.extents.size());
  for (const Extent& e : m.extents) {
    w->BlobId(e.blob_id);
    w->Varint(e.size);
  }
}

bool GetMeta(Reader* r, ObjectMeta* m) {
  if (!r->Varint(&m->size) || !r->Str(&m->etag) || !r->Int64(&m->mtime_unix_ms) ||
      !r->Str(&m->owner_id) || !GetKeyValues(r, &m->headers) || !GetKeyValues(r, &m->tags) ||
      !GetChecksum(r, &m->checksum)) {
    return false;
  }
  uint64_t n = 0;
  if (!r->Count(&n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    PartSummary p;
    if (!r->Varint(&p.size) || !r->Str(&p.etag) || !r->Str(&p.checksum)) return false;
    m->parts.push_back(std::move(p));
  }
  if (!r->Count(&n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    Extent e;
    if (!r->BlobId(&e.blob_id) || !r->Varint(&e.size)) return false;
    m->extents.push_back(std::move(e));
  }
  return true;
}

}  // namespace

// ---- Keys ----

void AppendEscaped(std::string* out, std::string_view s) {
  for (char c : s) {
    out->push_back(c);
    if (c == '\0') out->push_back('\xff');
  }
}

std::string FormatKey() { return std::string(1, kTagFormat); }

std::string BucketPrefix() { return std::string(1, kTagBucket); }

std::string BucketKey(std::string_view bucket) {
  std::string k(1, kTagBucket);
  k.append(bucket);  // the whole key: no terminator needed
  return k;
}

std::string ObjectPrefix(std::string_view bucket) {
  std::string k(1, kTagObject);
  AppendTerminated(&k, bucket);
  return k;
}

std::string ObjectKey(std::string_view bucket, std::string_view key) {
  std::string k = ObjectPrefix(bucket);
  k.append(key);
  return k;
}

std::string UploadPrefix(std::string_view bucket) {
  std::string k(1, kTagUpload);
  AppendTerminated(&k, bucket);
  return k;
}

std::string UploadKeyPrefix(std::string_view bucket, std::string_view key_prefix) {
  std::string k = UploadPrefix(bucket);
  AppendEscaped(&k, key_prefix);
  return k;
}

std::string UploadKey(std::string_view bucket, std::string_view key, std::string_view upload_id) {
  std::string k = UploadPrefix(bucket);
  AppendTerminated(&k, key);
  k.append(upload_id);
  return k;
}

std::string PartPrefix(std::string_view upload_id) {
  std::string k(1, kTagPart);
  k.append(upload_id);
  return k;
}

std::string PartKey(std::string_view upload_id, int part_number) {
  std::string k = PartPrefix(upload_id);
  auto n = static_cast<uint32_t>(part_number);
  for (int shift = 24; shift >= 0; shift -= 8) k.push_back(static_cast<char>((n >> shift) & 0xff));
  return k;
}

std::string RefKey(std::string_view blob_id) {
  std::string k(1, kTagRef);
  k.append(blob_id);
  return k;
}

std::string GarbagePrefix() { return std::string(1, kTagGarbage); }

std::string GarbageKey(std::string_view blob_id) {
  std::string k(1, kTagGarbage);
  k.append(blob_id);
  return k;
}

std::optional<std::string> PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    auto last = static_cast<uint8_t>(s.back());
    if (last != 0xff) {
      s.back() = static_cast<char>(last + 1);
      return s;
    }
    s.pop_back();
  }
  return std::nullopt;
}

bool IsBlobId(std::string_view s) {
  if (s.size() != 2 * kRawBlobIdBytes) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// ---- Records ----

std::string EncodeFormat() {
  Writer w(RecordType::kFormat);
  w.Fixed32(kFormatVersion);
  return w.Finish();
}

Status DecodeFormat(std::string_view record) {
  VLAKE_ASSIGN_OR_RETURN(std::string_view payload, Open(RecordType::kFormat, record));
  if (payload.size() != 4) return Corrupt("format record size");
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<uint8_t>(payload[i])) << (8 * i);
  if (v != kFormatVersion) {
    return Error(Code::kNotImplemented, "store format version " + std::to_string(v) +
                                            " is not supported (this build "
                                            "reads version " +
                                            std::to_string(kFormatVersion) + ")");
  }
  return Status::Ok();
}

std::string EncodeBucket(const BucketInfo& bucket) {
  Writer w(RecordType::kBucket);
  w.Str(bucket.owner_id);
  w.Fixed64(static_cast<uint64_t>(bucket.created_unix_ms));
  return w.Finish();
}

Result<BucketInfo> DecodeBucket(std::string_view record) {
  VLAKE_ASSIGN_OR_RETURN(std::string_view payload, Open(RecordType::kBucket, record));
  Reader r(payload);
  BucketInfo b;
  if (!r.Str(&b.owner_id) || !r.Int64(&b.created_unix_ms) || !r.Done()) {
    return Corrupt("bucket record fields");
  }
  return b;
}

std::string EncodeObject(const ObjectMeta& meta) {
  if (meta.completed_upload_id.empty()) {
    Writer w(RecordType::kObject);
    PutMeta(&w, meta);
    return w.Finish();
  }
  // Version 2: the v1 fields, then str completed_upload_id and one varint part number per
  // part summary.
  VLAKE_CHECK(!meta.parts.empty());
  Writer w(RecordType::kObject, kObjectRecordVersionCompleted);
  PutMeta(&w, meta);
  w.Str(meta.completed_upload_id);
  for (const PartSummary& p : meta.parts) {
    VLAKE_CHECK(p.part_number >= 1 && p.part_number <= kMaxPartNumber);
    w.Varint(static_cast<uint64_t>(p.part_number));
  }
  return w.Finish();
}

Result<ObjectMeta> DecodeObject(std::string_view record) {
  uint8_t version = 0;
  VLAKE_ASSIGN_OR_RETURN(std::string_view payload, Open(RecordType::kObject, record,
                                                        kObjectRecordVersionCompleted, &version));
  Reader r(payload);
  ObjectMeta m;
  if (!GetMeta(&r, &m)) return Corrupt("object record fields");
  if (version == kObjectRecordVersionCompleted) {
    // A v2 record always names its upload and numbers parts strictly ascending in 1..10000.
    if (!r.Str(&m.completed_upload_id) || m.completed_upload_id.empty() || m.parts.empty()) {
      return Corrupt("object record completion fields");
    }
    int previous = 0;
    for (PartSummary& p : m.parts) {
      if (!r.Int(kMaxPartNumber, &p.part_number) || p.part_number <= previous) {
        return Corrupt("object record part numbers");
      }
      previous = p.part_number;
    }
  }
  if (!r.Done()) return Corrupt("object record fields");
  return m;
}

std::string EncodeUpload(const UploadInfo& upload) {
  Writer w(RecordType::kUpload);
  w.Str(upload.upload_id);
  w.Str(upload.bucket);
  w.Str(upload.key);
  w.Fixed64(static_cast<uint64_t>(upload.initiated_unix_ms));
  PutMeta(&w, upload.meta);
  return w.Finish();
}

Result<UploadInfo> DecodeUpload(std::string_view record) {
  VLAKE_ASSIGN_OR_RETURN(std::string_view payload, Open(RecordType::kUpload, record));
  Reader r(payload);
  UploadInfo u;
  if (!r.Str(&u.upload_id) || !r.Str(&u.bucket) || !r.Str(&u.key) ||
      !r.Int64(&u.initiated_unix_ms) || !GetMeta(&r, &u.meta) || !r.Done()) {
    return Corrupt("upload record fields");
  }
  return u;
}

std::string EncodePart(const PartInfo& part) {
  Writer w(RecordType::kPart);
  w.Varint(static_cast<uint64_t>(part.part_number));
  w.Varint(part.size);
  w.Str(part.etag);
  PutChecksum(&w, part.checksum);
  w.Fixed64(static_cast<uint64_t>(part.mtime_unix_ms));
  w.BlobId(part.blob_id);
  return w.Finish();
}

Result<PartInfo> DecodePart(std::string_view record) {
  VLAKE_ASSIGN_OR_RETURN(std::string_view payload, Open(RecordType::kPart, record));
  Reader r(payload);
  PartInfo p;
  if (!r.Int(kMaxPartNumber, &p.part_number) || !r.Varint(&p.size) || !r.Str(&p.etag) ||
      !GetChecksum(&r, &p.checksum) || !r.Int64(&p.mtime_unix_ms) || !r.BlobId(&p.blob_id) ||
      !r.Done()) {
    return Corrupt("part record fields");
  }
  return p;
}

std::string EncodeMarker(RecordType type) {
  Writer w(type);
  return w.Finish();
}

Status DecodeMarker(RecordType type, std::string_view record) {
  VLAKE_ASSIGN_OR_RETURN(std::string_view payload, Open(type, record));
  if (!payload.empty()) return Corrupt("marker record has fields");
  return Status::Ok();
}

}  // namespace vlake::store::codec
