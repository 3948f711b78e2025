#include "vector/segment.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "common/hash.h"
#include "common/testing.h"

namespace vlake::vector {
namespace {

std::vector<FieldSchema> Fields() {
  return {{"id", FieldType::kInt64, 0, true, false},
          {"emb", FieldType::kFloatVector, 5},
          {"price", FieldType::kDouble},
          {"ok", FieldType::kBool},
          {"name", FieldType::kVarchar},
          {"tiny", FieldType::kInt8},
          {"small", FieldType::kInt16},
          {"mid", FieldType::kInt32},
          {"ratio", FieldType::kFloat},
          {"doc", FieldType::kJson}};
}

RowBatch MakeRows(int64_t n, uint64_t seed) {
  RowBatch b(Fields());
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    b.Find("id")->int64s.push_back(static_cast<int64_t>(rng()));
    for (int j = 0; j < 5; ++j) b.Find("emb")->floats.push_back(static_cast<float>(rng() % 1000));
    b.Find("price")->doubles.push_back(static_cast<double>(rng() % 100) / 3);
    b.Find("ok")->bools.push_back(rng() & 1);
    ColumnData* name = b.Find("name");
    name->bytes += std::string(rng() % 7, static_cast<char>('a' + i % 26));
    name->offsets.push_back(name->bytes.size());
    b.Find("tiny")->int64s.push_back(static_cast<int8_t>(rng()));
    b.Find("small")->int64s.push_back(static_cast<int16_t>(rng()));
    b.Find("mid")->int64s.push_back(static_cast<int32_t>(rng()));
    b.Find("ratio")->doubles.push_back(static_cast<float>(rng() % 1000) / 7);
    ColumnData* doc = b.Find("doc");
    doc->bytes += "{\"k\":" + std::to_string(rng() % 100) + "}";
    doc->offsets.push_back(doc->bytes.size());
  }
  EXPECT_OK(b.Seal());
  return b;
}

void ExpectSame(const ColumnSource& a, const ColumnSource& b) {
  ASSERT_EQ(a.num_rows(), b.num_rows());
  for (const FieldSchema& f : Fields()) {
    ColumnView x = *a.Column(f.name), y = *b.Column(f.name);
    ASSERT_EQ(x.type, y.type);
    for (int64_t r = 0; r < a.num_rows(); ++r) {
      switch (StorageOf(f.type)) {
        case Storage::kInt64:
          ASSERT_EQ(x.int64s()[r], y.int64s()[r]);
          break;
        case Storage::kDouble:
          ASSERT_EQ(x.doubles()[r], y.doubles()[r]);
          break;
        case Storage::kBool:
          ASSERT_EQ(x.bools()[r], y.bools()[r]);
          break;
        case Storage::kBytes:
          ASSERT_EQ(x.varchar(r), y.varchar(r));
          break;
        case Storage::kFloats:
          for (int j = 0; j < 5; ++j) ASSERT_EQ(x.floats()[r * 5 + j], y.floats()[r * 5 + j]);
          break;
      }
    }
  }
}

TEST(Segment, RoundTripsEveryColumnType) {
  for (int64_t n : {0, 1, 7, 1000}) {
    RowBatch b = MakeRows(n, n);
    std::string bytes = b.Encode(SegmentKind::kSealed);
    EXPECT_EQ(bytes.size() % 64, 0u);
    ASSERT_OK_AND_ASSIGN(auto seg, Segment::Decode(bytes));
    EXPECT_EQ(seg->kind(), SegmentKind::kSealed);
    EXPECT_OK(seg->MatchesSchema(Fields()));
    ExpectSame(b, *seg);
  }
}

TEST(Segment, ColumnsAreZeroCopyViews) {
  std::string bytes = MakeRows(10, 3).Encode(SegmentKind::kWalInsert);
  auto owner = std::make_shared<std::string>(bytes);
  ASSERT_OK_AND_ASSIGN(auto seg, Segment::Decode(owner, owner->data(), owner->size()));
  ColumnView v = *seg->Column("emb");
  EXPECT_GE(static_cast<const char*>(v.data), owner->data());
  EXPECT_LT(static_cast<const char*>(v.data), owner->data() + owner->size());
  EXPECT_EQ(seg->kind(), SegmentKind::kWalInsert);
}

// A reader that fetches only the header + directory learns where each column lies, without
// the column bytes (the GPU index build fetches the vector column alone).
TEST(Segment, LayoutFromTheHeadAlone) {
  std::string bytes = MakeRows(50, 4).Encode(SegmentKind::kSealed);
  ASSERT_OK_AND_ASSIGN(uint64_t head, SegmentHeadBytes(bytes.data(), kSegmentHeaderBytes));
  ASSERT_LT(head, bytes.size());
  ASSERT_OK_AND_ASSIGN(SegmentLayout layout, ParseSegmentLayout(bytes.data(), head, bytes.size()));
  EXPECT_EQ(layout.rows, 50u);
  ASSERT_OK_AND_ASSIGN(auto seg, Segment::Decode(bytes));
  ASSERT_OK_AND_ASSIGN(ColumnExtent emb, layout.Find("emb"));
  EXPECT_EQ(emb.field.dim, 5);
  EXPECT_EQ(emb.data_bytes, 50u * 5 * sizeof(float));
  EXPECT_EQ(std::memcmp(bytes.data() + emb.data_offset, seg->Column("emb")->data, emb.data_bytes),
            0);
  EXPECT_EQ(emb.crc32c, Crc32cUpdate(0, bytes.data() + emb.data_offset, emb.data_bytes));
  EXPECT_CODE(layout.Find("nope").status(), Code::kNotFound);
  // Too little head, a damaged directory, or a different object size: Corruption.
  EXPECT_CODE(ParseSegmentLayout(bytes.data(), head - 1, bytes.size()).status(), Code::kCorruption);
  EXPECT_CODE(ParseSegmentLayout(bytes.data(), head, bytes.size() - 64).status(),
              Code::kCorruption);
  std::string bad = bytes;
  bad[kSegmentHeaderBytes + 9] ^= 1;
  EXPECT_CODE(ParseSegmentLayout(bad.data(), head, bad.size()).status(), Code::kCorruption);
}

TEST(Segment, EveryTruncationIsCorruption) {
  std::string bytes = MakeRows(20, 9).Encode(SegmentKind::kSealed);
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_CODE(Segment::Decode(bytes.substr(0, len)).status(), Code::kCorruption) << len;
  }
}

TEST(Segment, EveryFlippedByteIsDetectedOrHarmless) {
  RowBatch b = MakeRows(20, 11);
  std::string bytes = b.Encode(SegmentKind::kSealed);
  int detected = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x5a;
    Result<std::shared_ptr<const Segment>> seg = Segment::Decode(bad);
    if (!seg.ok()) {
      EXPECT_EQ(seg.status().code(), Code::kCorruption);
      ++detected;
    } else {
      ExpectSame(b, **seg);  // only alignment padding is outside the checksums
    }
  }
  EXPECT_GT(detected, static_cast<int>(bytes.size() * 3 / 4));
}

TEST(Segment, SchemaMismatchIsReported) {
  ASSERT_OK_AND_ASSIGN(auto seg, Segment::Decode(MakeRows(3, 1).Encode(SegmentKind::kSealed)));
  std::vector<FieldSchema> other = Fields();
  other[1].dim = 6;
  EXPECT_CODE(seg->MatchesSchema(other), Code::kCorruption);
  other.pop_back();
  EXPECT_CODE(seg->MatchesSchema(other), Code::kCorruption);
}

TEST(RowBatch, SealRejectsRaggedColumns) {
  RowBatch b(Fields());
  b.Find("id")->int64s = {1, 2};
  EXPECT_CODE(b.Seal(), Code::kInvalidArgument);
}

TEST(RowBatch, AppendSelectedCopiesRows) {
  RowBatch src = MakeRows(10, 5);
  RowBatch dst(Fields());
  dst.AppendSelected(src, {9, 0, 4});
  ASSERT_EQ(dst.num_rows(), 3);
  EXPECT_EQ(dst.Column("id")->int64s()[0], src.Column("id")->int64s()[9]);
  EXPECT_EQ(dst.Column("name")->varchar(2), src.Column("name")->varchar(4));
  RowBatch range(Fields());
  range.AppendRange(src, 2, 5);
  EXPECT_EQ(range.num_rows(), 3);
  EXPECT_EQ(range.Column("price")->doubles()[0], src.Column("price")->doubles()[2]);
}

}  // namespace
}  // namespace vlake::vector
