// Vector module vocabulary: metrics, field types, collection schemas and column views.
//
// A collection has exactly one float32 vector field, one int64 primary key and any number of
// scalar fields (int8/16/32/64, float, double, bool, varchar, json). Rows are stored column by
// column (segment.h) in one of five storage kinds (Storage below);
// ColumnView is the zero-copy window onto one column that filters (filter.h) and search read.
// Everything here is a plain value type; thread-safety is that of the containing object.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vlake/status.h"

namespace vlake::vector {

// Distances returned by search: kL2 = squared Euclidean (smaller is closer); kIP = inner
// product and kCosine = cosine similarity (larger is closer). Cosine indexes store and search
// unit-normalized vectors and rank by inner product.
enum class Metric : uint8_t { kL2 = 0, kIP = 1, kCosine = 2 };

std::string_view MetricName(Metric metric);  // "L2", "IP", "COSINE"
Result<Metric> ParseMetric(std::string_view name);  // case-insensitive
// True when a larger distance value means a closer match (IP, COSINE).
inline bool LargerIsCloser(Metric metric) { return metric != Metric::kL2; }

// Column types. The numeric values are part of the segment format (docs/format/segment.md).
enum class FieldType : uint8_t {
  kInt64 = 1,
  kDouble = 2,
  kBool = 3,
  kVarchar = 4,
  kFloatVector = 5,
  kInt8 = 6,
  kInt16 = 7,
  kInt32 = 8,
  kFloat = 9,  // float32 values, kept exactly in a double column
  kJson = 10,  // one JSON document per row (UTF-8 text), kept like varchar
};

// How a column's values are held in memory and in segments. The narrow integers widen to
// int64 and float32 to double (both exact); json is bytes with offsets, like varchar.
enum class Storage : uint8_t { kInt64, kDouble, kBool, kBytes, kFloats };
Storage StorageOf(FieldType type);
// The inclusive range of an integer type's values.
int64_t IntMin(FieldType type);
int64_t IntMax(FieldType type);

// "int8", "int16", "int32", "int64", "float32", "double", "bool", "varchar", "json",
// "float_vector".
std::string_view FieldTypeName(FieldType type);
// The names above, case-insensitive; also "float" (= double, as the JSON API always took it)
// and "string" (= varchar).
Result<FieldType> ParseFieldType(std::string_view name);

inline constexpr int kMaxDim = 32768;
inline constexpr size_t kMaxVarcharBytes = 65535;
inline constexpr size_t kMaxFieldNameBytes = 255;

struct FieldSchema {
  std::string name;
  FieldType type = FieldType::kInt64;
  int dim = 0;               // kFloatVector only: 1..kMaxDim
  bool primary_key = false;  // exactly one kInt64 field per schema
  bool auto_id = false;      // primary key only: ids assigned by the engine
  int max_length = 0;        // kVarchar: most bytes per value, 1..kMaxVarcharBytes (0 = that)
  // kJson only: the collection's dynamic field, holding every inserted key that is not a
  // field of its own (a JSON object per row). Filters read its keys as bare names
  // (`color == "red"` is `$meta["color"] == "red"`). At most one; it may be named "$meta".
  bool dynamic = false;

  size_t varchar_limit() const { return max_length > 0 ? max_length : kMaxVarcharBytes; }
};

inline constexpr size_t kMaxJsonBytes = 65536;  // one row's JSON document

struct CollectionSchema {
  std::string name;
  Metric metric = Metric::kL2;
  std::vector<FieldSchema> fields;
  // The field whose value identifies a row to Upsert (an upserted row replaces the live rows
  // with the same value): an int64 or varchar field; empty = the primary key. An API whose
  // clients key rows by a string sets it to that field and lets the engine number the rows
  // with an auto_id primary key.
  std::string key_field;

  // Checks the invariants: a valid name, unique field names, one int64 primary key, one float
  // vector with 1 <= dim <= kMaxDim, at most one dynamic json field, a valid key_field.
  // InvalidArgument says which rule failed.
  Status Validate() const;
  const FieldSchema* Find(std::string_view field) const;
  const FieldSchema* dynamic_field() const;  // null when none
  const FieldSchema& key() const;            // key_field, or the primary key
  const FieldSchema& primary() const;  // requires Validate() == Ok
  const FieldSchema& vector() const;   // requires Validate() == Ok
  int dim() const { return vector().dim; }
};

// Collection and field names: 1..255 bytes of [A-Za-z0-9_], not starting with a digit.
bool IsValidName(std::string_view name);

// A read-only, zero-copy view of one column of `rows` rows.
struct ColumnView {
  FieldType type = FieldType::kInt64;
  int64_t rows = 0;
  int dim = 0;                        // kFloatVector: components per row
  // By StorageOf(type): kInt64/kDouble: rows values; kBool: rows bytes (0/1); kFloats:
  // rows*dim floats; kBytes: the UTF-8 bytes of every row.
  const void* data = nullptr;
  const uint64_t* offsets = nullptr;  // kBytes only: rows+1 ascending byte offsets into data

  const int64_t* int64s() const { return static_cast<const int64_t*>(data); }
  const double* doubles() const { return static_cast<const double*>(data); }
  const uint8_t* bools() const { return static_cast<const uint8_t*>(data); }
  const float* floats() const { return static_cast<const float*>(data); }
  std::string_view varchar(int64_t row) const {
    return {static_cast<const char*>(data) + offsets[row], offsets[row + 1] - offsets[row]};
  }
};

// Anything that holds rows column-wise: sealed segments and the growing buffer.
class ColumnSource {
 public:
  virtual ~ColumnSource() = default;
  virtual int64_t num_rows() const = 0;
  // NotFound for a field the source does not hold.
  virtual Result<ColumnView> Column(std::string_view field) const = 0;
};

}  // namespace vlake::vector
