#include "store/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "common/hash.h"
#include "store/test_util.h"

namespace vlake::store::codec {
namespace {

ObjectMeta SampleMeta() {
  ObjectMeta m;
  m.size = 123456789012ull;
  m.etag = "0123456789abcdef0123456789abcdef-3";
  m.mtime_unix_ms = -5;  // negative times survive too
  m.owner_id = "owner";
  m.headers = {{"content-type", "text/plain"}, {"x-amz-meta-a", std::string("\0b", 2)}};
  m.tags = {{"k", "v"}, {"", ""}};
  m.checksum = ChecksumValue{ChecksumAlgorithm::kCrc64Nvme, ChecksumType::kComposite, "abc=-3"};
  m.parts = {{5, "e1", "c1"}, {6, "e2", ""}};
  m.extents = {{"00112233445566778899aabbccddeeff", 5}, {"ffeeddccbbaa99887766554433221100", 6}};
  return m;
}

// A version completed from a multipart upload (written as record version 2).
ObjectMeta CompletedMeta() {
  ObjectMeta m = SampleMeta();
  m.completed_upload_id = "0000018c2b3a4d5e0123456789abcdef0123456789ab";
  m.parts[0].part_number = 2;
  m.parts[1].part_number = 10000;
  return m;
}

std::string Seal(RecordType type, uint8_t version, std::string payload) {
  std::string r;
  r.push_back(static_cast<char>(type));
  r.push_back(static_cast<char>(version));
  r += payload;
  uint32_t crc = Crc32cUpdate(0, r.data(), r.size());
  for (int i = 0; i < 4; ++i) r.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return r;
}

void ExpectSameMeta(const ObjectMeta& a, const ObjectMeta& b) {
  EXPECT_EQ(a.completed_upload_id, b.completed_upload_id);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.etag, b.etag);
  EXPECT_EQ(a.mtime_unix_ms, b.mtime_unix_ms);
  EXPECT_EQ(a.owner_id, b.owner_id);
  EXPECT_EQ(a.headers, b.headers);
  EXPECT_EQ(a.tags, b.tags);
  ASSERT_EQ(a.checksum.has_value(), b.checksum.has_value());
  if (a.checksum) {
    EXPECT_EQ(a.checksum->algorithm, b.checksum->algorithm);
    EXPECT_EQ(a.checksum->type, b.checksum->type);
    EXPECT_EQ(a.checksum->value, b.checksum->value);
  }
  ASSERT_EQ(a.parts.size(), b.parts.size());
  for (size_t i = 0; i < a.parts.size(); ++i) {
    EXPECT_EQ(a.parts[i].size, b.parts[i].size);
    EXPECT_EQ(a.parts[i].etag, b.parts[i].etag);
    EXPECT_EQ(a.parts[i].checksum, b.parts[i].checksum);
    EXPECT_EQ(a.parts[i].part_number, b.parts[i].part_number);
  }
  ASSERT_EQ(a.extents.size(), b.extents.size());
  for (size_t i = 0; i < a.extents.size(); ++i) {
    EXPECT_EQ(a.extents[i].blob_id, b.extents[i].blob_id);
    EXPECT_EQ(a.extents[i].size, b.extents[i].size);
  }
}

TEST(CodecTest, ObjectRoundTrip) {
  ObjectMeta m = SampleMeta();
  Result<ObjectMeta> back = DecodeObject(EncodeObject(m));
  ASSERT_OK(back);
  ExpectSameMeta(m, *back);

  ObjectMeta empty;
  Result<ObjectMeta> back_empty = DecodeObject(EncodeObject(empty));
  ASSERT_OK(back_empty);
  ExpectSameMeta(empty, *back_empty);
}

TEST(CodecTest, OtherRecordsRoundTrip) {
  BucketInfo b{"ignored", "me", 1700000000123};
  Result<BucketInfo> bb = DecodeBucket(EncodeBucket(b));
  ASSERT_OK(bb);
  EXPECT_EQ(bb->owner_id, "me");
  EXPECT_EQ(bb->created_unix_ms, 1700000000123);

  UploadInfo u{"upid", "bucket", std::string("k\0y", 3), 42, SampleMeta()};
  Result<UploadInfo> ub = DecodeUpload(EncodeUpload(u));
  ASSERT_OK(ub);
  EXPECT_EQ(ub->upload_id, u.upload_id);
  EXPECT_EQ(ub->bucket, u.bucket);
  EXPECT_EQ(ub->key, u.key);
  EXPECT_EQ(ub->initiated_unix_ms, 42);
  ExpectSameMeta(u.meta, ub->meta);

  PartInfo p{
      10000,  5ull << 20,
      "etag", ChecksumValue{ChecksumAlgorithm::kCrc32, ChecksumType::kFullObject, "AAAAAA=="},
      7,      "0123456789abcdef0123456789abcdef"};
  Result<PartInfo> pb = DecodePart(EncodePart(p));
  ASSERT_OK(pb);
  EXPECT_EQ(pb->part_number, 10000);
  EXPECT_EQ(pb->size, p.size);
  EXPECT_EQ(pb->etag, p.etag);
  ASSERT_TRUE(pb->checksum.has_value());
  EXPECT_EQ(pb->checksum->value, "AAAAAA==");
  EXPECT_EQ(pb->blob_id, p.blob_id);

  EXPECT_OK(DecodeMarker(RecordType::kRef, EncodeMarker(RecordType::kRef)));
  EXPECT_OK(DecodeFormat(EncodeFormat()));
}

TEST(CodecTest, WrongTypeIsCorruption) {
  EXPECT_CODE(DecodeMarker(RecordType::kGarbage, EncodeMarker(RecordType::kRef)),
              Code::kCorruption);
  EXPECT_CODE(
      DecodeObject(EncodePart(PartInfo{1, 1, "e", {}, 1, "0123456789abcdef0123456789abcdef"})),
      Code::kCorruption);
}

TEST(CodecTest, CompletedObjectIsVersion2AndRoundTrips) {
  ObjectMeta m = CompletedMeta();
  std::string record = EncodeObject(m);
  EXPECT_EQ(static_cast<uint8_t>(record[1]), kObjectRecordVersionCompleted);
  Result<ObjectMeta> back = DecodeObject(record);
  ASSERT_OK(back);
  ExpectSameMeta(m, *back);
  // Objects not completed from an upload keep version 1 (readable by older binaries), and a
  // version 1 record reads with part numbers 0.
  std::string plain = EncodeObject(SampleMeta());
  EXPECT_EQ(static_cast<uint8_t>(plain[1]), kRecordVersion);
  Result<ObjectMeta> old = DecodeObject(plain);
  ASSERT_OK(old);
  EXPECT_EQ(old->parts[0].part_number, 0);
  EXPECT_TRUE(old->completed_upload_id.empty());
}

// The v2 tail must hold a non-empty upload id and strictly ascending part numbers in 1..10000;
// version 2 exists for object records only; versions 0 and 3 are unknown.
TEST(CodecTest, ForgedVersion2RecordsFailCleanly) {
  std::string good = EncodeObject(CompletedMeta());
  std::string payload = good.substr(2, good.size() - 6);
  ASSERT_OK(DecodeObject(Seal(RecordType::kObject, 2, payload)));
  std::string v1_payload = EncodeObject(SampleMeta());
  v1_payload = v1_payload.substr(2, v1_payload.size() - 6);
  auto with_tail = [&](std::string tail) {
    return Seal(RecordType::kObject, 2, v1_payload + tail);
  };
  const std::string id = "\x05upid5";
  EXPECT_OK(DecodeObject(with_tail(id + "\x01\x02")));
  EXPECT_CODE(DecodeObject(with_tail("")), Code::kCorruption);  // no tail
  EXPECT_CODE(DecodeObject(with_tail(std::string("\x00\x01\x02", 3))), Code::kCorruption);
  EXPECT_CODE(DecodeObject(with_tail(id + "\x02\x02")), Code::kCorruption);  // not ascending
  EXPECT_CODE(DecodeObject(with_tail(id + "\x03\x02")), Code::kCorruption);  // descending
  EXPECT_CODE(DecodeObject(with_tail(id + std::string("\x00\x01", 2))), Code::kCorruption);
  EXPECT_CODE(DecodeObject(with_tail(id + "\x01\x91\x4e")), Code::kCorruption);  // 10001
  EXPECT_OK(DecodeObject(with_tail(id + "\x01\x90\x4e")));                       // 10000
  EXPECT_CODE(DecodeObject(with_tail(id + "\x01")), Code::kCorruption);          // one missing
  EXPECT_CODE(DecodeObject(with_tail(id + "\x01\x02\x03")), Code::kCorruption);  // trailing
  EXPECT_CODE(DecodeObject(with_tail("\x7fupid")), Code::kCorruption);           // length
  EXPECT_CODE(DecodeObject(Seal(RecordType::kObject, 3, payload)), Code::kCorruption);
  EXPECT_CODE(DecodeObject(Seal(RecordType::kObject, 0, v1_payload)), Code::kCorruption);
  // A v1 record carrying a v2 tail has trailing bytes.
  EXPECT_CODE(DecodeObject(Seal(RecordType::kObject, 1, payload)), Code::kCorruption);
  // Version 2 of another record type.
  std::string bucket = EncodeBucket(BucketInfo{"b", "o", 1});
  EXPECT_CODE(DecodeBucket(Seal(RecordType::kBucket, 2, bucket.substr(2, bucket.size() - 6))),
              Code::kCorruption);
  // An object completed from zero parts cannot be written as version 2.
  std::string no_parts = EncodeObject(ObjectMeta{});
  EXPECT_CODE(
      DecodeObject(Seal(RecordType::kObject, 2, no_parts.substr(2, no_parts.size() - 6) + id)),
      Code::kCorruption);
}

// Every flipped byte and every truncation of every record type must decode to kCorruption,
// never crash or read out of bounds (run under ASan to see the latter).
TEST(CodecTest, CorruptedRecordsAreRejected) {
  UploadInfo u{"upid", "b", "k", 1, SampleMeta()};
  PartInfo p{3, 9, "etag", {}, 7, "0123456789abcdef0123456789abcdef"};
  std::vector<std::pair<std::string, std::function<Status(std::string_view)>>> cases = {
      {EncodeObject(SampleMeta()), [](std::string_view r) { return DecodeObject(r).status(); }},
      {EncodeObject(CompletedMeta()), [](std::string_view r) { return DecodeObject(r).status(); }},
      {EncodeUpload(u), [](std::string_view r) { return DecodeUpload(r).status(); }},
      {EncodePart(p), [](std::string_view r) { return DecodePart(r).status(); }},
      {EncodeBucket(BucketInfo{"b", "o", 1}),
       [](std::string_view r) { return DecodeBucket(r).status(); }},
      {EncodeMarker(RecordType::kRef),
       [](std::string_view r) { return DecodeMarker(RecordType::kRef, r); }},
      {EncodeFormat(), [](std::string_view r) { return DecodeFormat(r); }},
  };
  for (const auto& [record, decode] : cases) {
    for (size_t i = 0; i < record.size(); ++i) {
      for (uint8_t mask : {0x01, 0x80, 0xff}) {
        std::string bad = record;
        bad[i] = static_cast<char>(bad[i] ^ mask);
        EXPECT_CODE(decode(bad), Code::kCorruption) << "byte " << i;
      }
    }
    for (size_t n = 0; n < record.size(); ++n) {
      EXPECT_CODE(decode(std::string_view(record).substr(0, n)), Code::kCorruption) << n;
    }
    EXPECT_CODE(decode(record + "x"), Code::kCorruption);
  }
}

// Garbage payloads with a valid envelope (right type, version, checksum) exercise the field
// parser itself: forged counts and lengths must fail cleanly.
TEST(CodecTest, ForgedPayloadsFailCleanly) {
  auto seal = [](RecordType type, std::string payload) {
    std::string r;
    r.push_back(static_cast<char>(type));
    r.push_back(static_cast<char>(kRecordVersion));
    r += payload;
    uint32_t crc = Crc32cUpdate(0, r.data(), r.size());
    for (int i = 0; i < 4; ++i) r.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
    return r;
  };
  // A string length of 2^63 and a header count of 2^40.
  EXPECT_CODE(DecodeObject(seal(RecordType::kObject, "\x01\xff\xff\xff\xff\xff\xff\xff\xff\x7f")),
              Code::kCorruption);
  EXPECT_CODE(
      DecodeObject(seal(RecordType::kObject, std::string("\x01\x00", 2) + std::string(8, '\0') +
                                                 std::string("\x00\x80\x80\x80\x80\x80\x20", 7))),
      Code::kCorruption);
  // An 11-byte varint.
  EXPECT_CODE(DecodeObject(seal(RecordType::kObject, std::string(11, '\xff'))), Code::kCorruption);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string payload(rng() % 64, '\0');
    for (char& c : payload) c = static_cast<char>(rng() % 4 == 0 ? rng() & 0xff : rng() % 3);
    Result<ObjectMeta> m = DecodeObject(seal(RecordType::kObject, payload));
    if (!m) {
      EXPECT_EQ(m.error().code(), Code::kCorruption);
    }
    Result<PartInfo> p = DecodePart(seal(RecordType::kPart, payload));
    if (!p) {
      EXPECT_EQ(p.error().code(), Code::kCorruption);
    }
  }
}

TEST(CodecTest, NewerFormatIsNotImplemented) {
  std::string r = EncodeFormat();
  // Version 2 with a fixed-up checksum.
  r[2] = 2;
  std::string body = r.substr(0, r.size() - 4);
  uint32_t crc = Crc32cUpdate(0, body.data(), body.size());
  for (int i = 0; i < 4; ++i) body.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  EXPECT_CODE(DecodeFormat(body), Code::kNotImplemented);
}

TEST(CodecTest, ObjectKeysSortByRawKeyBytes) {
  std::vector<std::string> keys = {"a",
                                   "a/b",
                                   "a//b",
                                   std::string("a\0", 2),
                                   std::string("a\0b", 3),
                                   "/lead",
                                   "../x",
                                   "\x01"
                                   "ctl",
                                   "\xc3\xa9",
                                   "\xff",
                                   "ab",
                                   "a\x01"};
  std::vector<std::string> encoded;
  for (const auto& k : keys) encoded.push_back(ObjectKey("bucket", k));
  std::vector<size_t> by_raw(keys.size()), by_enc(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) by_raw[i] = by_enc[i] = i;
  std::sort(by_raw.begin(), by_raw.end(), [&](size_t x, size_t y) { return keys[x] < keys[y]; });
  std::sort(by_enc.begin(), by_enc.end(),
            [&](size_t x, size_t y) { return encoded[x] < encoded[y]; });
  EXPECT_EQ(by_raw, by_enc);
  // A key prefix is a key-space prefix, and buckets never bleed into each other even when one
  // bucket name is a prefix of another or contains 0x00.
  EXPECT_TRUE(ObjectKey("bucket", "a/b").starts_with(ObjectKey("bucket", "a/")));
  EXPECT_FALSE(ObjectKey("bucketx", "a").starts_with(ObjectPrefix("bucket")));
  EXPECT_FALSE(ObjectKey(std::string("bucket\0", 7), "a").starts_with(ObjectPrefix("bucket")));
  EXPECT_LT(ObjectKey("bucket", "\xff\xff"), ObjectKey(std::string("bucket\0", 7), ""));
}

TEST(CodecTest, UploadKeysSortByKeyThenUploadId) {
  std::vector<std::tuple<std::string, std::string>> uploads = {
      {"a", "2"}, {"a", "1"}, {std::string("a\0", 2), "0"}, {"a/", "0"}, {"", "9"}, {"b", "0"}};
  std::vector<std::string> encoded;
  for (const auto& [k, id] : uploads) encoded.push_back(UploadKey("bkt", k, id));
  std::vector<size_t> a(uploads.size()), b(uploads.size());
  for (size_t i = 0; i < a.size(); ++i) a[i] = b[i] = i;
  std::sort(a.begin(), a.end(), [&](size_t x, size_t y) { return uploads[x] < uploads[y]; });
  std::sort(b.begin(), b.end(), [&](size_t x, size_t y) { return encoded[x] < encoded[y]; });
  EXPECT_EQ(a, b);
  EXPECT_TRUE(UploadKey("bkt", "a/b", "1").starts_with(UploadKeyPrefix("bkt", "a/")));
  EXPECT_FALSE(UploadKey("bkt", "b", "1").starts_with(UploadKeyPrefix("bkt", "a")));
}

TEST(CodecTest, PartKeysSortByNumber) {
  EXPECT_LT(PartKey("u", 2), PartKey("u", 10));
  EXPECT_LT(PartKey("u", 255), PartKey("u", 256));
  EXPECT_TRUE(PartKey("u", 7).starts_with(PartPrefix("u")));
}

TEST(CodecTest, PrefixSuccessor) {
  EXPECT_EQ(*PrefixSuccessor("ab"), "ac");
  EXPECT_EQ(*PrefixSuccessor("a\xff\xff"), "b");
  EXPECT_FALSE(PrefixSuccessor("\xff\xff").has_value());
  EXPECT_FALSE(PrefixSuccessor("").has_value());
}

}  // namespace
}  // namespace vlake::store::codec
