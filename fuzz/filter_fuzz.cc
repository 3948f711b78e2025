// Fuzzes the filter expression language (src/vector/filter.h).
//
// The input is parsed as an expression against a fixed schema; any Status is fine, crashes and
// sanitizer reports are not. What parses is evaluated over a fixed 20-row source whose values
// sit on the edges (NaN, infinities, -0.0, int64 limits, 2^53 + 1, empty and non-ASCII
// strings). Properties: a parsed filter keeps its text, reads only scalar fields of the schema,
// and evaluates without error to one bit per row.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "vector/filter.h"

namespace {

using namespace vlake::vector;

constexpr int64_t kRows = 20;

const CollectionSchema& Schema() {
  static const CollectionSchema schema = [] {
    CollectionSchema s;
    s.name = "fuzz";
    s.fields = {{"id", FieldType::kInt64, 0, true}, {"emb", FieldType::kFloatVector, 4},
                {"price", FieldType::kDouble},      {"qty", FieldType::kInt64},
                {"ok", FieldType::kBool},           {"name", FieldType::kVarchar}};
    return s;
  }();
  return schema;
}

class FixedSource : public ColumnSource {
 public:
  FixedSource() {
    constexpr double kInf = std::numeric_limits<double>::infinity();
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    const double prices[] = {0.0,   -0.0,   1.5,    -2.5,    std::nan(""), kInf, -kInf,
                             1e300, 0x1p53, 0x1p63, -0x1p63, 3.0,          2.0,  10.0,
                             0.1,   -1.0,   5e-324, 100.0,   std::nan(""), 7.0};
    const int64_t qtys[] = {0,   1,    -1, 2,  3, kMax, kMin, 9007199254740993, 9007199254740992,
                            5,   -100, 10, 42, 7, 8,    9,    kMax - 1,         kMin + 1,
                            100, 4};
    const char* const names[] = {"",   "a",   "b",      "apple", "\xc3\xa9", "A",   "a\"b'c",
                                 "\\", "\n",  "banana", "red",   "blue",     "zzz", "ab",
                                 "ba", "a b", "x",      "y",     "\t",       "z"};
    for (int64_t i = 0; i < kRows; ++i) {
      ids_.push_back(i);
      price_.push_back(prices[i]);
      qty_.push_back(qtys[i]);
      ok_.push_back(i % 3 == 0);
      offsets_.push_back(bytes_.size());
      bytes_ += names[i];
    }
    offsets_.push_back(bytes_.size());
  }

  int64_t num_rows() const override { return kRows; }
  vlake::Result<ColumnView> Column(std::string_view field) const override {
    ColumnView v;
    v.rows = kRows;
    if (field == "id" || field == "qty") {
      v.type = FieldType::kInt64;
      v.data = field == "id" ? ids_.data() : qty_.data();
    } else if (field == "price") {
      v.type = FieldType::kDouble;
      v.data = price_.data();
    } else if (field == "ok") {
      v.type = FieldType::kBool;
      v.data = ok_.data();
    } else if (field == "name") {
      v.type = FieldType::kVarchar;
      v.data = bytes_.data();
      v.offsets = offsets_.data();
    } else {
      return vlake::Status(vlake::Code::kNotFound, "no column");
    }
    return v;
  }

 private:
  std::vector<int64_t> ids_, qty_;
  std::vector<double> price_;
  std::vector<uint8_t> ok_;
  std::string bytes_;
  std::vector<uint64_t> offsets_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const FixedSource source;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto filter = Filter::Parse(input, Schema());
  if (!filter.ok()) return 0;
  if (filter->text() != input) __builtin_trap();
  for (const std::string& field : filter->fields()) {
    const FieldSchema* f = Schema().Find(field);
    if (f == nullptr || f->type == FieldType::kFloatVector) __builtin_trap();
  }
  Bitset bits(3, true);
  if (!filter->Evaluate(source, &bits).ok() || bits.size() != kRows) __builtin_trap();
  return 0;
}
