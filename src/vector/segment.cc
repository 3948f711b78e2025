#include "vector/segment.h"

#include <bit>
#include <cstring>
#include <unordered_map>

#include "common/hash.h"
#include "vector/le.h"

namespace vlake::vector {
namespace {

constexpr char kMagic[4] = {'V', 'L', 'S', 'G'};
constexpr size_t kHeaderBytes = kSegmentHeaderBytes;
constexpr size_t kEntryFixedBytes = 48;
constexpr size_t kAlign = 64;
constexpr uint8_t kFlagPrimary = 1, kFlagAutoId = 2;

size_t AlignUp(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

using le::Get;
using le::Put;

Status Corrupt(const std::string& what) { return Status(Code::kCorruption, "segment: " + what); }

size_t ValueBytes(FieldType type, int dim) {
  switch (StorageOf(type)) {
    case Storage::kInt64:
      return 8;
    case Storage::kDouble:
      return 8;
    case Storage::kBool:
      return 1;
    case Storage::kBytes:
      return 1;
    case Storage::kFloats:
      return 4 * static_cast<size_t>(dim);
  }
  return 0;
}

// The bytes of a column's main region.
std::string_view Payload(const ColumnData& c) {
  switch (StorageOf(c.field.type)) {
    case Storage::kInt64:
      return {reinterpret_cast<const char*>(c.int64s.data()), c.int64s.size() * 8};
    case Storage::kDouble:
      return {reinterpret_cast<const char*>(c.doubles.data()), c.doubles.size() * 8};
    case Storage::kBool:
      return {reinterpret_cast<const char*>(c.bools.data()), c.bools.size()};
    case Storage::kBytes:
      return c.bytes;
    case Storage::kFloats:
      return {reinterpret_cast<const char*>(c.floats.data()), c.floats.size() * 4};
  }
  return {};
}

}  // namespace

int64_t ColumnData::rows() const {
  switch (StorageOf(field.type)) {
    case Storage::kInt64:
      return static_cast<int64_t>(int64s.size());
    case Storage::kDouble:
      return static_cast<int64_t>(doubles.size());
    case Storage::kBool:
      return static_cast<int64_t>(bools.size());
    case Storage::kBytes:
      return static_cast<int64_t>(offsets.size()) - 1;
    case Storage::kFloats:
      return field.dim == 0 ? 0 : static_cast<int64_t>(floats.size() / field.dim);
  }
  return 0;
}

ColumnView ColumnData::view() const {
  ColumnView v;
  v.type = field.type;
  v.rows = rows();
  v.dim = field.dim;
  switch (StorageOf(field.type)) {
    case Storage::kInt64:
      v.data = int64s.data();
      break;
    case Storage::kDouble:
      v.data = doubles.data();
      break;
    case Storage::kBool:
      v.data = bools.data();
      break;
    case Storage::kBytes:
      v.data = bytes.data();
      v.offsets = offsets.data();
      break;
    case Storage::kFloats:
      v.data = floats.data();
      break;
  }
  return v;
}

void ColumnData::Reserve(int64_t n) {
  switch (StorageOf(field.type)) {
    case Storage::kInt64:
      int64s.reserve(n);
      break;
    case Storage::kDouble:
      doubles.reserve(n);
      break;
    case Storage::kBool:
      bools.reserve(n);
      break;
    case Storage::kBytes:
      offsets.reserve(n + 1);
      break;
    case Storage::kFloats:
      floats.reserve(n * field.dim);
      break;
  }
}

RowBatch::RowBatch(const std::vector<FieldSchema>& fields) {
  columns_.reserve(fields.size());
  for (const FieldSchema& f : fields) columns_.push_back(ColumnData{.field = f});
}

Result<ColumnView> RowBatch::Column(std::string_view field) const {
  const ColumnData* c = Find(field);
  if (c == nullptr) return Status(Code::kNotFound, "no field '" + std::string(field) + "'");
  ColumnView v = c->view();
  v.rows = rows_;
  return v;
}

ColumnData* RowBatch::Find(std::string_view field) {
  for (ColumnData& c : columns_) {
    if (c.field.name == field) return &c;
  }
  return nullptr;
}

const ColumnData* RowBatch::Find(std::string_view field) const {
  return const_cast<RowBatch*>(this)->Find(field);
}

Status RowBatch::Seal() {
  int64_t n = columns_.empty() ? 0 : columns_.front().rows();
  for (const ColumnData& c : columns_) {
    if (c.rows() != n) {
      return Status(Code::kInvalidArgument, "field '" + c.field.name + "' has " +
                                                std::to_string(c.rows()) + " rows, expected " +
                                                std::to_string(n));
    }
  }
  rows_ = n;
  return Status::Ok();
}

void RowBatch::AppendRange(const ColumnSource& other, int64_t begin, int64_t end) {
  for (ColumnData& d : columns_) {
    Result<ColumnView> sv = other.Column(d.field.name);
    VLAKE_CHECK(sv.ok());
    const ColumnView& s = *sv;
    switch (StorageOf(d.field.type)) {
      case Storage::kInt64:
        d.int64s.insert(d.int64s.end(), s.int64s() + begin, s.int64s() + end);
        break;
      case Storage::kDouble:
        d.doubles.insert(d.doubles.end(), s.doubles() + begin, s.doubles() + end);
        break;
      case Storage::kBool:
        d.bools.insert(d.bools.end(), s.bools() + begin, s.bools() + end);
        break;
      case Storage::kBytes: {
        const uint64_t base = d.bytes.size();
        d.bytes.append(static_cast<const char*>(s.data) + s.offsets[begin],
                       s.offsets[end] - s.offsets[begin]);
        for (int64_t r = begin; r < end; ++r) {
          d.offsets.push_back(base + s.offsets[r + 1] - s.offsets[begin]);
        }
        break;
      }
      case Storage::kFloats:
        d.floats.insert(d.floats.end(), s.floats() + begin * d.field.dim,
                        s.floats() + end * d.field.dim);
        break;
    }
  }
  rows_ += end - begin;
}

void RowBatch::AppendSelected(const ColumnSource& other, const std::vector<int64_t>& rows) {
  for (ColumnData& d : columns_) {
    Result<ColumnView> sv = other.Column(d.field.name);
    VLAKE_CHECK(sv.ok());
    const ColumnView& s = *sv;
    d.Reserve(rows_ + static_cast<int64_t>(rows.size()));
    for (int64_t r : rows) {
      switch (StorageOf(d.field.type)) {
        case Storage::kInt64:
          d.int64s.push_back(s.int64s()[r]);
          break;
        case Storage::kDouble:
          d.doubles.push_back(s.doubles()[r]);
          break;
        case Storage::kBool:
          d.bools.push_back(s.bools()[r]);
          break;
        case Storage::kBytes:
          d.bytes.append(s.varchar(r));
          d.offsets.push_back(d.bytes.size());
          break;
        case Storage::kFloats:
          d.floats.insert(d.floats.end(), s.floats() + r * d.field.dim,
                          s.floats() + (r + 1) * d.field.dim);
          break;
      }
    }
  }
  rows_ += static_cast<int64_t>(rows.size());
}

void RowBatch::Clear() {
  for (ColumnData& c : columns_) c = ColumnData{.field = c.field};
  rows_ = 0;
}

std::string RowBatch::Encode(SegmentKind kind) const {
  // Directory first (its size fixes where the data starts), then 64-byte aligned regions.
  size_t dir_bytes = 4;
  for (const ColumnData& c : columns_) {
    dir_bytes += kEntryFixedBytes + (c.field.name.size() + 7) / 8 * 8;
  }
  size_t at = AlignUp(kHeaderBytes + dir_bytes);
  struct Region {
    size_t offsets_at, offsets_len, data_at, data_len;
  };
  std::vector<Region> regions;
  for (const ColumnData& c : columns_) {
    Region r{};
    if (StorageOf(c.field.type) == Storage::kBytes) {
      r.offsets_at = at;
      r.offsets_len = c.offsets.size() * 8;
      at = AlignUp(at + r.offsets_len);
    }
    r.data_at = at;
    r.data_len = Payload(c).size();
    at = AlignUp(at + r.data_len);
    regions.push_back(r);
  }
  std::string out(at, '\0');
  std::memcpy(out.data(), kMagic, 4);
  Put<uint16_t>(&out, 4, kSegmentFormatVersion);
  Put<uint16_t>(&out, 6, static_cast<uint16_t>(kind));
  Put<uint64_t>(&out, 8, static_cast<uint64_t>(rows_));
  Put<uint32_t>(&out, 16, static_cast<uint32_t>(columns_.size()));
  Put<uint32_t>(&out, 20, static_cast<uint32_t>(dir_bytes));
  Put<uint64_t>(&out, 24, out.size());
  Put<uint32_t>(&out, 60, Crc32cUpdate(0, out.data(), 60));

  size_t e = kHeaderBytes;
  for (size_t i = 0; i < columns_.size(); ++i) {
    const ColumnData& c = columns_[i];
    const Region& r = regions[i];
    std::string_view payload = Payload(c);
    if (r.offsets_len) std::memcpy(out.data() + r.offsets_at, c.offsets.data(), r.offsets_len);
    if (!payload.empty()) std::memcpy(out.data() + r.data_at, payload.data(), payload.size());
    uint32_t crc = Crc32cUpdate(0, out.data() + r.offsets_at, r.offsets_len);
    crc = Crc32cUpdate(crc, out.data() + r.data_at, r.data_len);
    out[e] = static_cast<char>(c.field.type);
    out[e + 1] = static_cast<char>((c.field.primary_key ? kFlagPrimary : 0) |
                                   (c.field.auto_id ? kFlagAutoId : 0));
    Put<uint16_t>(&out, e + 2, static_cast<uint16_t>(c.field.name.size()));
    Put<uint32_t>(&out, e + 4, static_cast<uint32_t>(c.field.dim));
    Put<uint64_t>(&out, e + 8, r.data_at);
    Put<uint64_t>(&out, e + 16, r.data_len);
    Put<uint64_t>(&out, e + 24, r.offsets_at);
    Put<uint64_t>(&out, e + 32, r.offsets_len);
    Put<uint32_t>(&out, e + 40, crc);
    std::memcpy(out.data() + e + kEntryFixedBytes, c.field.name.data(), c.field.name.size());
    e += kEntryFixedBytes + (c.field.name.size() + 7) / 8 * 8;
  }
  Put<uint32_t>(&out, e, Crc32cUpdate(0, out.data() + kHeaderBytes, dir_bytes - 4));
  return out;
}

Result<std::shared_ptr<const Segment>> Segment::Decode(std::string bytes) {
  auto owner = std::make_shared<std::string>(std::move(bytes));
  const char* data = owner->data();
  size_t size = owner->size();
  return Decode(std::move(owner), data, size);
}

Result<uint64_t> SegmentHeadBytes(const char* data, size_t size) {
  if (size < kHeaderBytes) return Corrupt("truncated: " + std::to_string(size) + " bytes");
  if (std::memcmp(data, kMagic, 4) != 0) return Corrupt("bad magic (not a vlake segment)");
  if (Get<uint32_t>(data + 60) != Crc32cUpdate(0, data, 60)) {
    return Corrupt("header checksum mismatch");
  }
  uint16_t version = Get<uint16_t>(data + 4);
  if (version != kSegmentFormatVersion) {
    return Corrupt("unsupported format version " + std::to_string(version));
  }
  return kHeaderBytes + uint64_t{Get<uint32_t>(data + 20)};
}

Result<SegmentLayout> ParseSegmentLayout(const char* data, size_t head_size, uint64_t size) {
  VLAKE_ASSIGN_OR_RETURN(uint64_t head_bytes, SegmentHeadBytes(data, head_size));
  uint16_t kind = Get<uint16_t>(data + 6);
  if (kind < 1 || kind > 4) return Corrupt("unknown kind " + std::to_string(kind));
  uint64_t rows = Get<uint64_t>(data + 8);
  uint32_t ncols = Get<uint32_t>(data + 16);
  uint32_t dir_bytes = Get<uint32_t>(data + 20);
  uint64_t file_bytes = Get<uint64_t>(data + 24);
  if (file_bytes != size) {
    return Corrupt("size is " + std::to_string(size) + " bytes, header says " +
                   std::to_string(file_bytes) + " (truncated?)");
  }
  if (rows > (uint64_t{1} << 40)) return Corrupt("implausible row count");
  if (dir_bytes < 4 || dir_bytes > size - kHeaderBytes || ncols > 4096) {
    return Corrupt("bad directory size");
  }
  if (head_size < head_bytes) return Corrupt("directory truncated");
  const char* dir = data + kHeaderBytes;
  if (Get<uint32_t>(dir + dir_bytes - 4) != Crc32cUpdate(0, dir, dir_bytes - 4)) {
    return Corrupt("directory checksum mismatch");
  }
  SegmentLayout layout;
  layout.kind = static_cast<SegmentKind>(kind);
  layout.rows = rows;
  layout.file_bytes = file_bytes;
  size_t e = 0;
  const size_t dir_end = dir_bytes - 4;
  for (uint32_t i = 0; i < ncols; ++i) {
    if (dir_end - e < kEntryFixedBytes) return Corrupt("directory truncated");
    const char* p = dir + e;
    ColumnExtent c;
    FieldSchema& f = c.field;
    auto type = static_cast<uint8_t>(p[0]);
    if (type < 1 || type > 10) return Corrupt("column " + std::to_string(i) + ": bad type");
    f.type = static_cast<FieldType>(type);
    uint8_t flags = static_cast<uint8_t>(p[1]);
    f.primary_key = flags & kFlagPrimary;
    f.auto_id = flags & kFlagAutoId;
    uint16_t name_len = Get<uint16_t>(p + 2);
    uint32_t dim = Get<uint32_t>(p + 4);
    c.data_offset = Get<uint64_t>(p + 8);
    c.data_bytes = Get<uint64_t>(p + 16);
    c.offsets_offset = Get<uint64_t>(p + 24);
    c.offsets_bytes = Get<uint64_t>(p + 32);
    c.crc32c = Get<uint32_t>(p + 40);
    size_t entry = kEntryFixedBytes + (name_len + 7u) / 8 * 8;
    if (dir_end - e < entry) return Corrupt("directory truncated");
    f.name.assign(p + kEntryFixedBytes, name_len);
    e += entry;
    std::string col = "column '" + f.name + "': ";
    if (f.type == FieldType::kFloatVector) {
      if (dim < 1 || dim > static_cast<uint32_t>(kMaxDim)) return Corrupt(col + "bad dim");
      f.dim = static_cast<int>(dim);
    } else if (dim != 0) {
      return Corrupt(col + "dim on a scalar column");
    }
    auto in_bounds = [&](uint64_t at, uint64_t len) {
      return at <= size && len <= size - at && (len == 0 || at % 8 == 0);
    };
    if (!in_bounds(c.data_offset, c.data_bytes) || !in_bounds(c.offsets_offset, c.offsets_bytes)) {
      return Corrupt(col + "region out of bounds");
    }
    if (StorageOf(f.type) == Storage::kBytes) {
      if (c.offsets_bytes != (rows + 1) * 8) return Corrupt(col + "offsets size mismatch");
    } else {
      if (c.offsets_bytes != 0) return Corrupt(col + "offsets on a fixed-width column");
      if (c.data_bytes != rows * ValueBytes(f.type, f.dim)) {
        return Corrupt(col + "size " + std::to_string(c.data_bytes) + " does not match " +
                       std::to_string(rows) + " rows");
      }
    }
    layout.columns.push_back(std::move(c));
  }
  if (e != dir_end) return Corrupt("directory has trailing bytes");
  return layout;
}

Result<ColumnExtent> SegmentLayout::Find(std::string_view name) const {
  for (const ColumnExtent& c : columns) {
    if (c.field.name == name) return c;
  }
  return Status(Code::kNotFound, "no column '" + std::string(name) + "' in the segment");
}

Result<std::shared_ptr<const Segment>> Segment::Decode(std::shared_ptr<const void> owner,
                                                       const char* data, size_t size) {
  if (reinterpret_cast<uintptr_t>(data) % 8 != 0) {
    return Decode(std::string(data, size));  // views need aligned int64/double/float
  }
  VLAKE_ASSIGN_OR_RETURN(SegmentLayout layout, ParseSegmentLayout(data, size, size));
  std::shared_ptr<Segment> seg(new Segment());
  seg->kind_ = layout.kind;
  seg->rows_ = static_cast<int64_t>(layout.rows);
  seg->size_ = size;
  const uint64_t rows = layout.rows;
  for (ColumnExtent& c : layout.columns) {
    std::string col = "column '" + c.field.name + "': ";
    uint32_t want = Crc32cUpdate(0, data + c.offsets_offset, c.offsets_bytes);
    want = Crc32cUpdate(want, data + c.data_offset, c.data_bytes);
    if (want != c.crc32c) return Corrupt(col + "checksum mismatch");
    ColumnView v;
    v.type = c.field.type;
    v.rows = seg->rows_;
    v.dim = c.field.dim;
    v.data = data + c.data_offset;
    if (StorageOf(c.field.type) == Storage::kBytes) {
      v.offsets = reinterpret_cast<const uint64_t*>(data + c.offsets_offset);
      if (v.offsets[0] != 0 || v.offsets[rows] != c.data_bytes) {
        return Corrupt(col + "offsets do not span the data");
      }
      for (uint64_t r = 0; r < rows; ++r) {
        if (v.offsets[r] > v.offsets[r + 1]) return Corrupt(col + "offsets not ascending");
      }
    }
    seg->fields_.push_back(std::move(c.field));
    seg->views_.push_back(v);
  }
  seg->owner_ = std::move(owner);
  return std::shared_ptr<const Segment>(std::move(seg));
}

Result<ColumnView> Segment::Column(std::string_view field) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name == field) return views_[i];
  }
  return Status(Code::kNotFound, "segment has no field '" + std::string(field) + "'");
}

Status Segment::MatchesSchema(const std::vector<FieldSchema>& fields) const {
  if (fields.size() != fields_.size()) {
    return Corrupt("has " + std::to_string(fields_.size()) + " columns, schema has " +
                   std::to_string(fields.size()));
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].name != fields_[i].name || fields[i].type != fields_[i].type ||
        fields[i].dim != fields_[i].dim) {
      return Corrupt("column " + std::to_string(i) + " ('" + fields_[i].name +
                     "') does not match the schema field '" + fields[i].name + "'");
    }
  }
  return Status::Ok();
}

}  // namespace vlake::vector
