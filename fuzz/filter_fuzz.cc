// Fuzzes the filter expression language (src/vector/filter.h).
//
// The input is parsed as an expression against a fixed schema; any Status is fine, crashes and
// sanitizer reports are not. What parses is evaluated over a fixed 20-row source whose values
// sit on the edges (NaN, infinities, -0.0, int64 limits, 2^53 + 1, empty and non-ASCII
// strings), with a json field and a dynamic one ($meta) whose documents are edges too: invalid
// JSON, deep nesting, huge integers, escapes and invalid UTF-8, duplicate keys, non-object
// roots. Properties: a parsed filter keeps its text, reads only scalar and json fields of the
// schema, and evaluates without error to one bit per row.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
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
                {"ok", FieldType::kBool},           {"name", FieldType::kVarchar},
                {"doc", FieldType::kJson},          {"tiny", FieldType::kInt8},
                {"ratio", FieldType::kFloat}};
    FieldSchema meta;
    meta.name = "$meta";
    meta.type = FieldType::kJson;
    meta.dynamic = true;
    s.fields.push_back(meta);
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
    const char* const names[] = {"",   "a",   "b",      "apple", "\xc3\xa9", "A",       "a\"b'c",
                                 "\\", "\n",  "banana", "red",   "blue",     "zzz",     "ab",
                                 "ba", "a b", "x",      "y",     "\t",       "\xff\xc3"};
    constexpr float kFloatMax = std::numeric_limits<float>::max();
    const float ratios[] = {0.0f, -0.0f, 0.1f,      -2.5f,       std::nanf(""),
                            kInf, -kInf, kFloatMax, 16777217.0f, 1e-45f};
    std::string deep;  // 300 levels: deeper than any path may go
    for (int i = 0; i < 300; ++i) deep += i % 2 == 0 ? "{\"a\": " : "[";
    deep += "1";
    for (int i = 299; i >= 0; --i) deep += i % 2 == 0 ? "}" : "]";
    const std::string docs[] = {
        R"({"a": 1, "b": "red", "c": true, "d": [1, 2.5, "x"], "e": {"f": {"g": null}}})",
        R"({"a": 1.0, "b": "blue", "c": false})",
        R"({"a": 9007199254740993, "b": 9007199254740993.0})",
        R"({"a": 18446744073709551615, "b": -9223372036854775808})",
        R"({"a": 18446744073709551616, "b": 1e308, "c": -1e-320})",
        R"({"a": 1e999})",
        R"({"a": "\u00e9\ud83d\ude00", "b": "a%b_c\\"})",
        "{\"a\": \"\xff\"}",
        R"({"a": "\ud800"})",
        R"({"a": 1, "a": "dup", "b": {"c": 1}, "b": 2})",
        R"([1, {"a": 2}, [3]])",
        R"("just a string")",
        "null",
        "",
        R"({"a": )",
        R"({"a": 1} trailing)",
        "\xef\xbb\xbf{\"a\": -0.0}",
        deep,
        R"({"": 0, " ": {"": [[], {}]}})",
        R"({"a": [[[[[[[[[[0]]]]]]]]]], "e": {"f": {"g": {"h": {"i": {"j": 1}}}}}})",
    };
    const std::string metas[] = {
        R"({"color": "red", "age": 3})",
        R"({"color": "blue", "age": 2.5, "qty": 7})",
        "{}",
        R"({"color": 7, "age": null})",
        R"({"age": 9223372036854775807, "tags": ["x", "y"]})",
        "not json",
        R"({"color": "red"})",
        R"({"age": -9223372036854775808})",
        R"({"Color": "r\u0065d"})",
        R"([])",
    };
    for (int64_t i = 0; i < kRows; ++i) {
      ids_.push_back(i);
      price_.push_back(prices[i]);
      qty_.push_back(qtys[i]);
      tiny_.push_back(static_cast<int8_t>(qtys[i]));
      ratio_.push_back(ratios[i % std::size(ratios)]);
      ok_.push_back(i % 3 == 0);
      name_.Add(names[i]);
      doc_.Add(docs[i]);
      meta_.Add(metas[i % std::size(metas)]);
    }
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
    } else if (field == "tiny") {
      v.type = FieldType::kInt8;
      v.data = tiny_.data();
    } else if (field == "ratio") {
      v.type = FieldType::kFloat;
      v.data = ratio_.data();
    } else if (field == "name" || field == "doc" || field == "$meta") {
      const Bytes& b = field == "name" ? name_ : field == "doc" ? doc_ : meta_;
      v.type = field == "name" ? FieldType::kVarchar : FieldType::kJson;
      v.data = b.bytes.data();
      v.offsets = b.offsets.data();
    } else {
      return vlake::Status(vlake::Code::kNotFound, "no column");
    }
    return v;
  }

 private:
  struct Bytes {  // a varchar or json column
    std::string bytes;
    std::vector<uint64_t> offsets{0};
    void Add(std::string_view row) {
      bytes += row;
      offsets.push_back(bytes.size());
    }
  };
  std::vector<int64_t> ids_, qty_, tiny_;
  std::vector<double> price_, ratio_;
  std::vector<uint8_t> ok_;
  Bytes name_, doc_, meta_;
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
