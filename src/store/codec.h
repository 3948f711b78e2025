// The store's metadata encodings: RocksDB keys and the versioned, checksummed records stored
// under them. docs/format/store.md is the authority for every byte here; change both together
// and add a record version (kRecordVersion, kObjectRecordVersionCompleted) / bump
// kFormatVersion when a layout changes.
//
// Keys (one tag byte, then fields; all orders are plain byte-wise RocksDB order):
//   'F'                                    format record (kFormatVersion)
//   'B' bucket                             bucket record
//   'O' Esc(bucket) 00 01 key              object record; key bytes raw (it is the suffix), so
//                                          a bucket's objects sort by raw key bytes and a key
//                                          prefix is a RocksDB prefix
//   'U' Esc(bucket) 00 01 Esc(key) 00 01 upload_id    upload record, by key then upload id
//   'P' upload_id BE32(part_number)        part record
//   'R' blob_id (32 hex chars)             reference: the blob belongs to an object or a part
//   'G' blob_id (32 hex chars)             garbage: the blob is to be unlinked
// Esc() writes each 00 byte as 00 FF; 00 01 terminates a field. The escaping keeps byte order
// (Esc(a) < Esc(b) iff a < b, and a terminated field sorts before any longer one), so any byte,
// 0x00 included, may appear in bucket names and keys without ambiguity.
//
// Records: type(1) version(1) payload crc32c(4, little-endian, over type..payload). Decoding
// checks length, checksum, type, version and that the payload is consumed exactly; any failure
// is kCorruption. Decoders never read out of bounds whatever the input.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "store/store.h"

namespace vlake::store::codec {

inline constexpr uint32_t kFormatVersion = 1;  // of the folder as a whole ('F' record)
// Record versions (byte 1 of every record). Version 1: every record type. Version 2: object
// records of a version completed from a multipart upload (they add the upload id and the part
// numbers). A writer uses the lowest version that holds the record, so a folder only has v2
// records where multipart completions happened; readers accept both.
inline constexpr uint8_t kRecordVersion = 1;
inline constexpr uint8_t kObjectRecordVersionCompleted = 2;

enum class RecordType : uint8_t {
  kFormat = 1,
  kBucket = 2,
  kObject = 3,
  kUpload = 4,
  kPart = 5,
  kRef = 6,
  kGarbage = 7,
};

// ---- Keys ----
std::string FormatKey();
std::string BucketPrefix();  // all bucket records
std::string BucketKey(std::string_view bucket);
std::string ObjectPrefix(std::string_view bucket);  // all objects of a bucket
std::string ObjectKey(std::string_view bucket, std::string_view key);
std::string UploadPrefix(std::string_view bucket);  // all uploads of a bucket
// Uploads of the bucket whose key starts with key_prefix (an unterminated escaped prefix).
std::string UploadKeyPrefix(std::string_view bucket, std::string_view key_prefix);
std::string UploadKey(std::string_view bucket, std::string_view key, std::string_view upload_id);
std::string PartPrefix(std::string_view upload_id);
std::string PartKey(std::string_view upload_id, int part_number);
std::string RefKey(std::string_view blob_id);
std::string GarbagePrefix();
std::string GarbageKey(std::string_view blob_id);

// Appends Esc(s) without the terminator.
void AppendEscaped(std::string* out, std::string_view s);
// The smallest string greater than every string starting with `prefix`; nullopt when there is
// none (empty or all 0xFF).
std::optional<std::string> PrefixSuccessor(std::string_view prefix);
// 32 lowercase hex characters.
bool IsBlobId(std::string_view s);

// ---- Records ----
std::string EncodeFormat();
Status DecodeFormat(std::string_view record);  // kCorruption, or kNotImplemented when newer

std::string EncodeBucket(const BucketInfo& bucket);  // name not stored (it is the key)
Result<BucketInfo> DecodeBucket(std::string_view record);

std::string EncodeObject(const ObjectMeta& meta);
Result<ObjectMeta> DecodeObject(std::string_view record);

std::string EncodeUpload(const UploadInfo& upload);
Result<UploadInfo> DecodeUpload(std::string_view record);

std::string EncodePart(const PartInfo& part);
Result<PartInfo> DecodePart(std::string_view record);

// R and G records carry no fields; the record still has a type, version and checksum so that
// every value in the database decodes the same way.
std::string EncodeMarker(RecordType type);
Status DecodeMarker(RecordType type, std::string_view record);

}  // namespace vlake::store::codec
