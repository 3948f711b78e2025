// Columnar row storage: RowBatch (mutable, in memory) and Segment (immutable, decoded from the
// segment format of docs/format/segment.md without per-row parsing).
//
// The same encoding serves three roles, told apart by SegmentKind: sealed segments (objects in
// the store), write-ahead-log insert batches and write-ahead-log delete batches. A decoded
// Segment's column views point straight into the bytes it was given; it keeps them alive.
//
// Thread-safety: Segment is immutable and safe to share. RowBatch is not synchronized; the
// growing segment guards it with its own lock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vector/types.h"
#include "vlake/status.h"

namespace vlake::vector {

// Values are part of the format (docs/format/segment.md).
// kWalUpsert: rows that replace the live rows with the same key (CollectionSchema::key()).
enum class SegmentKind : uint16_t { kSealed = 1, kWalInsert = 2, kWalDelete = 3, kWalUpsert = 4 };

inline constexpr uint16_t kSegmentFormatVersion = 1;

// One column of a RowBatch. Exactly one storage vector is used, chosen by `type`.
struct ColumnData {
  FieldSchema field;
  std::vector<int64_t> int64s;
  std::vector<double> doubles;
  std::vector<uint8_t> bools;
  std::vector<float> floats;         // float vector: rows * dim
  std::vector<uint64_t> offsets{0};  // varchar: rows + 1 offsets into bytes
  std::string bytes;                 // varchar payload

  int64_t rows() const;
  ColumnView view() const;
  void Reserve(int64_t rows);
};

// Rows held column-wise in growable vectors, in the field order of the schema it was made for.
class RowBatch : public ColumnSource {
 public:
  RowBatch() = default;
  explicit RowBatch(const std::vector<FieldSchema>& fields);

  int64_t num_rows() const override { return rows_; }
  Result<ColumnView> Column(std::string_view field) const override;

  const std::vector<ColumnData>& columns() const { return columns_; }
  std::vector<ColumnData>& mutable_columns() { return columns_; }
  ColumnData* Find(std::string_view field);
  const ColumnData* Find(std::string_view field) const;

  // Call after filling every column with the same number of new rows; checks they agree.
  Status Seal();
  // Appends rows [begin, end) of `other`, which must hold every field of this batch (by
  // name, same types); copies whole column slices.
  void AppendRange(const ColumnSource& other, int64_t begin, int64_t end);
  // Appends the listed rows of `other` (same requirement), in that order.
  void AppendSelected(const ColumnSource& other, const std::vector<int64_t>& rows);
  void Clear();

  // Bytes in the segment format.
  std::string Encode(SegmentKind kind) const;

 private:
  std::vector<ColumnData> columns_;
  int64_t rows_ = 0;
};

// Where a segment's columns lie, read from its header and directory alone: what a reader that
// fetches only some columns (a GPU index build pulls the vector column straight into GPU
// memory) needs. Everything but the column regions is validated: header and directory CRCs,
// every region inside the object, fixed-width regions exactly rows x width bytes.
struct ColumnExtent {
  FieldSchema field;
  uint64_t data_offset = 0;
  uint64_t data_bytes = 0;
  uint64_t offsets_offset = 0;  // varchar only
  uint64_t offsets_bytes = 0;
  uint32_t crc32c = 0;  // of the offsets region followed by the data region
};
struct SegmentLayout {
  SegmentKind kind = SegmentKind::kSealed;
  uint64_t rows = 0;
  uint64_t file_bytes = 0;
  std::vector<ColumnExtent> columns;
  // The extent of column `name`; NotFound if absent.
  Result<ColumnExtent> Find(std::string_view name) const;
};
inline constexpr size_t kSegmentHeaderBytes = 64;
// Bytes from the start of the object that ParseSegmentLayout needs (header + directory), from
// the first kSegmentHeaderBytes; kCorruption if the header is invalid.
Result<uint64_t> SegmentHeadBytes(const char* header, size_t size);
// `head` holds at least SegmentHeadBytes bytes of an object of object_bytes bytes.
Result<SegmentLayout> ParseSegmentLayout(const char* head, size_t head_size, uint64_t object_bytes);

// A decoded segment-format blob. Column views alias the bytes passed to Decode.
class Segment : public ColumnSource {
 public:
  // Validates the header, directory and every column's bounds and CRC32C. Corrupted or
  // truncated input gives Code::kCorruption naming what is wrong; nothing is read out of bounds.
  // `owner` keeps `data` alive for the Segment's lifetime; data must be 8-byte aligned (it is
  // copied otherwise).
  static Result<std::shared_ptr<const Segment>> Decode(std::shared_ptr<const void> owner,
                                                       const char* data, size_t size);
  static Result<std::shared_ptr<const Segment>> Decode(std::string bytes);

  SegmentKind kind() const { return kind_; }
  int64_t num_rows() const override { return rows_; }
  Result<ColumnView> Column(std::string_view field) const override;
  const std::vector<FieldSchema>& fields() const { return fields_; }
  size_t size_bytes() const { return size_; }

  // Checks that the segment holds exactly the columns of `schema` (names, types, dims).
  Status MatchesSchema(const std::vector<FieldSchema>& fields) const;

 private:
  Segment() = default;

  std::shared_ptr<const void> owner_;
  size_t size_ = 0;
  SegmentKind kind_ = SegmentKind::kSealed;
  int64_t rows_ = 0;
  std::vector<FieldSchema> fields_;
  std::vector<ColumnView> views_;  // parallel to fields_
};

}  // namespace vlake::vector
