#include "vector/filter.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "common/testing.h"

namespace vlake::vector {
namespace {

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

CollectionSchema TestSchema() {
  CollectionSchema s;
  s.name = "items";
  s.fields = {{"id", FieldType::kInt64, 0, true}, {"emb", FieldType::kFloatVector, 2},
              {"qty", FieldType::kInt64},         {"stock", FieldType::kInt64},
              {"price", FieldType::kDouble},      {"cost", FieldType::kDouble},
              {"ok", FieldType::kBool},           {"flag", FieldType::kBool},
              {"name", FieldType::kVarchar},      {"color", FieldType::kVarchar}};
  return s;
}

// A ColumnSource over std::vectors, one per scalar column.
class Table : public ColumnSource {
 public:
  explicit Table(int64_t rows) : rows_(rows) {}

  // `type` may be a narrow integer type (kInt8..kInt32), held as int64 values.
  void AddInt64(const std::string& name, std::vector<int64_t> v,
                FieldType type = FieldType::kInt64) {
    cols_[name].type = type;
    cols_[name].ints = std::move(v);
  }
  // `type` may be kFloat: float32 values held as doubles.
  void AddDouble(const std::string& name, std::vector<double> v,
                 FieldType type = FieldType::kDouble) {
    cols_[name].type = type;
    cols_[name].doubles = std::move(v);
  }
  void AddBool(const std::string& name, std::vector<uint8_t> v) {
    cols_[name].type = FieldType::kBool;
    cols_[name].bools = std::move(v);
  }
  // `type` may be kJson: one document per row, held like varchar.
  void AddVarchar(const std::string& name, const std::vector<std::string>& v,
                  FieldType type = FieldType::kVarchar) {
    Col& c = cols_[name];
    c.type = type;
    c.strings = v;
    c.offsets = {0};
    for (const std::string& s : v) {
      c.bytes += s;
      c.offsets.push_back(c.bytes.size());
    }
  }

  int64_t num_rows() const override { return rows_; }
  Result<ColumnView> Column(std::string_view field) const override {
    auto it = cols_.find(field);
    if (it == cols_.end()) return Status(Code::kNotFound, "no column " + std::string(field));
    const Col& c = it->second;
    ColumnView v;
    v.type = c.type;
    v.rows = rows_;
    switch (StorageOf(c.type)) {
      case Storage::kInt64:
        v.data = c.ints.data();
        break;
      case Storage::kDouble:
        v.data = c.doubles.data();
        break;
      case Storage::kBool:
        v.data = c.bools.data();
        break;
      case Storage::kBytes:
        v.data = c.bytes.data();
        v.offsets = c.offsets.data();
        break;
      case Storage::kFloats:
        break;
    }
    return v;
  }

  // Row values, for the reference evaluator.
  int64_t Int64(const std::string& f, int64_t row) const { return cols_.at(f).ints[row]; }
  double Double(const std::string& f, int64_t row) const { return cols_.at(f).doubles[row]; }
  bool Bool(const std::string& f, int64_t row) const { return cols_.at(f).bools[row] != 0; }
  const std::string& Varchar(const std::string& f, int64_t row) const {
    return cols_.at(f).strings[row];
  }

 private:
  struct Col {
    FieldType type = FieldType::kInt64;
    std::vector<int64_t> ints;
    std::vector<double> doubles;
    std::vector<uint8_t> bools;
    std::vector<std::string> strings;
    std::string bytes;
    std::vector<uint64_t> offsets;
  };
  int64_t rows_;
  std::map<std::string, Col, std::less<>> cols_;
};

// Eight rows chosen to hit the edges: NaN, infinities, -0.0, int64 limits, 2^53 + 1, empty and
// non-ASCII strings, quotes.
Table SmallTable() {
  Table t(8);
  t.AddInt64("id", {10, 11, 12, 13, 14, 15, 9007199254740993, 17});
  t.AddInt64("qty", {0, 1, 2, 3, -4, 5, kI64Max, kI64Min});
  t.AddInt64("stock", {5, 1, 0, 3, 10, 2, 0, 0});
  t.AddDouble("price", {1.5, 2.0, kNaN, -0.5, 10.0, 2.5, 1e300, -kInf});
  t.AddDouble("cost", {1.5, 3.0, 2.0, -0.5, kNaN, 2.0, 9007199254740992.0, -0.0});
  t.AddBool("ok", {1, 0, 1, 0, 1, 0, 1, 0});
  t.AddBool("flag", {0, 0, 1, 1, 0, 1, 1, 0});
  t.AddVarchar("name", {"apple", "banana", "", "cherry", "Apple", "date", "a\"b'c", "\xc3\xa9"});
  t.AddVarchar("color", {"red", "blue", "green", "red", "blue", "yellow", "red", ""});
  return t;
}

// The matching rows as "0 2 5", or the parse error.
std::string Match(std::string_view expr, const Table& table) {
  static const CollectionSchema schema = TestSchema();
  Result<Filter> f = Filter::Parse(expr, schema);
  if (!f.ok()) return "error: " + f.error().message();
  Bitset bits;
  Status s = f->Evaluate(table, &bits);
  if (!s.ok()) return "evaluate error: " + s.ToString();
  EXPECT_EQ(bits.size(), table.num_rows());
  std::string out;
  for (int64_t i = 0; i < bits.size(); ++i) {
    if (bits.test(i)) out += (out.empty() ? "" : " ") + std::to_string(i);
  }
  return out;
}

std::string Match(std::string_view expr) {
  static const Table table = SmallTable();
  return Match(expr, table);
}

const char* const kAll = "0 1 2 3 4 5 6 7";

// The parse error message, or "" when `expr` parses.
std::string ParseError(std::string_view expr) {
  Result<Filter> f = Filter::Parse(expr, TestSchema());
  if (f.ok()) return "";
  EXPECT_EQ(f.error().code(), Code::kInvalidArgument);
  return f.error().message();
}

TEST(FilterTest, EmptyExpressionMatchesAll) {
  for (std::string_view expr : {"", "  \t\n "}) {
    Result<Filter> f = Filter::Parse(expr, TestSchema());
    ASSERT_OK(f);
    EXPECT_TRUE(f->empty());
    EXPECT_TRUE(f->fields().empty());
    EXPECT_EQ(f->text(), expr);
    EXPECT_EQ(Match(expr), kAll);
  }
  EXPECT_TRUE(Filter().empty());
  Table empty(0);
  Bitset bits(3, true);
  ASSERT_OK(Filter().Evaluate(empty, &bits));
  EXPECT_EQ(bits.size(), 0);
}

TEST(FilterTest, Int64Operators) {
  EXPECT_EQ(Match("qty == 2"), "2");
  EXPECT_EQ(Match("qty = 2"), "2");
  EXPECT_EQ(Match("qty != 2"), "0 1 3 4 5 6 7");
  EXPECT_EQ(Match("qty <> 2"), "0 1 3 4 5 6 7");
  EXPECT_EQ(Match("qty < 2"), "0 1 4 7");
  EXPECT_EQ(Match("qty <= 2"), "0 1 2 4 7");
  EXPECT_EQ(Match("qty > 2"), "3 5 6");
  EXPECT_EQ(Match("qty >= 2"), "2 3 5 6");
  EXPECT_EQ(Match("2 > qty"), "0 1 4 7");  // literal first: the operator mirrors
  EXPECT_EQ(Match("2<=qty"), "2 3 5 6");
  EXPECT_EQ(Match("qty == +3"), "3");
  EXPECT_EQ(Match("qty == 9223372036854775807"), "6");
  EXPECT_EQ(Match("qty == -9223372036854775808"), "7");
  EXPECT_EQ(Match("qty < -9223372036854775807"), "7");
  EXPECT_EQ(Match("id == 9007199254740993"), "6");
}

TEST(FilterTest, Int64AgainstFloatLiteralIsExact) {
  EXPECT_EQ(Match("qty < 2.5"), "0 1 2 4 7");
  EXPECT_EQ(Match("qty <= 2.5"), "0 1 2 4 7");
  EXPECT_EQ(Match("qty > 2.5"), "3 5 6");
  EXPECT_EQ(Match("qty >= 2.5"), "3 5 6");
  EXPECT_EQ(Match("qty == 2.5"), "");
  EXPECT_EQ(Match("qty != 2.5"), kAll);
  EXPECT_EQ(Match("qty == 2.0"), "2");
  EXPECT_EQ(Match("qty == 2e0"), "2");
  EXPECT_EQ(Match("qty < -3.5"), "4 7");
  EXPECT_EQ(Match("qty > -3.5"), "0 1 2 3 5 6");
  EXPECT_EQ(Match("2.5 > qty"), "0 1 2 4 7");
  EXPECT_EQ(Match("qty < 1e19"), kAll);
  EXPECT_EQ(Match("qty > 1e19"), "");
  EXPECT_EQ(Match("qty >= -1e19"), kAll);
  EXPECT_EQ(Match("qty < -1e19"), "");
  // 9223372036854775807.0 is 2^63, above every int64; -2^63 is INT64_MIN exactly.
  EXPECT_EQ(Match("qty == 9223372036854775807.0"), "");
  EXPECT_EQ(Match("qty < 9223372036854775807.0"), kAll);
  EXPECT_EQ(Match("qty == -9223372036854775808.0"), "7");
  EXPECT_EQ(Match("qty in [2.0, 2.5, 1e30]"), "2");
}

TEST(FilterTest, DoubleOperatorsAndNaN) {
  // price: 1.5 2.0 NaN -0.5 10.0 2.5 1e300 -inf
  EXPECT_EQ(Match("price == 2"), "1");
  EXPECT_EQ(Match("price == 2.0"), "1");
  EXPECT_EQ(Match("price != 2"), "0 2 3 4 5 6 7");  // NaN != x is true
  EXPECT_EQ(Match("price < 2"), "0 3 7");
  EXPECT_EQ(Match("price <= 2"), "0 1 3 7");
  EXPECT_EQ(Match("price > 2"), "4 5 6");
  EXPECT_EQ(Match("price >= 2"), "1 4 5 6");
  EXPECT_EQ(Match("not (price < 2)"), "1 2 4 5 6");  // NaN fails every ordered comparison
  EXPECT_EQ(Match("price < -1e308"), "7");
  EXPECT_EQ(Match("price > .5e300"), "6");
  EXPECT_EQ(Match("price in [2, 2.5, 1e300]"), "1 5 6");
  EXPECT_EQ(Match("price not in [2]"), "0 2 3 4 5 6 7");
  EXPECT_EQ(Match("price in []"), "");
  EXPECT_EQ(Match("price not in []"), kAll);
}

TEST(FilterTest, DoubleAgainstLargeIntegerIsExact) {
  // cost: 1.5 3.0 2.0 -0.5 NaN 2.0 2^53 -0.0; 2^53 + 1 = 9007199254740993 is no double.
  EXPECT_EQ(Match("cost == 9007199254740993"), "");
  EXPECT_EQ(Match("cost != 9007199254740993"), kAll);
  EXPECT_EQ(Match("cost < 9007199254740993"), "0 1 2 3 5 6 7");
  EXPECT_EQ(Match("cost >= 9007199254740993"), "");
  EXPECT_EQ(Match("cost > 9007199254740991"), "6");
  EXPECT_EQ(Match("cost == 9007199254740992"), "6");
  EXPECT_EQ(Match("cost in [9007199254740993]"), "");
  EXPECT_EQ(Match("cost > 9223372036854775807"), "");
  EXPECT_EQ(Match("cost <= 9223372036854775807"), "0 1 2 3 5 6 7");
  EXPECT_EQ(Match("cost == 0"), "7");  // -0.0 == 0
  EXPECT_EQ(Match("cost in [-0.0]"), "7");

  // Integers that round up to the next double: 2^53 + 3 to 2^53 + 4, INT64_MAX to 2^63.
  Table t(3);
  t.AddDouble("cost", {0x1p63, 9007199254740996.0, 9007199254740994.0});
  EXPECT_EQ(Match("cost < 9223372036854775807", t), "1 2");
  EXPECT_EQ(Match("cost > 9223372036854775807", t), "0");
  EXPECT_EQ(Match("cost < 9007199254740995", t), "2");
  EXPECT_EQ(Match("cost <= 9007199254740995", t), "2");
  EXPECT_EQ(Match("cost > 9007199254740995", t), "0 1");
  EXPECT_EQ(Match("cost >= 9007199254740995", t), "0 1");
  EXPECT_EQ(Match("cost == 9007199254740995", t), "");
}

TEST(FilterTest, BoolOperators) {
  EXPECT_EQ(Match("ok"), "0 2 4 6");
  EXPECT_EQ(Match("not ok"), "1 3 5 7");
  EXPECT_EQ(Match("!ok"), "1 3 5 7");
  EXPECT_EQ(Match("ok == true"), "0 2 4 6");
  EXPECT_EQ(Match("ok = FALSE"), "1 3 5 7");
  EXPECT_EQ(Match("ok != true"), "1 3 5 7");
  EXPECT_EQ(Match("ok <> false"), "0 2 4 6");
  EXPECT_EQ(Match("true == ok"), "0 2 4 6");
  EXPECT_EQ(Match("ok == flag"), "1 2 6 7");
  EXPECT_EQ(Match("ok != flag"), "0 3 4 5");
  EXPECT_EQ(Match("ok in [true]"), "0 2 4 6");
  EXPECT_EQ(Match("ok in [true, false]"), kAll);
  EXPECT_EQ(Match("ok in []"), "");
  EXPECT_EQ(Match("ok not in [false]"), "0 2 4 6");
  EXPECT_EQ(Match("true"), kAll);
  EXPECT_EQ(Match("False"), "");
}

TEST(FilterTest, VarcharOperators) {
  // name: "apple" "banana" "" "cherry" "Apple" "date" a"b'c "é"; byte order, so 'A' < 'a' < 0xc3.
  EXPECT_EQ(Match("name == \"apple\""), "0");
  EXPECT_EQ(Match("name == 'apple'"), "0");
  EXPECT_EQ(Match("name != 'apple'"), "1 2 3 4 5 6 7");
  EXPECT_EQ(Match("name < 'b'"), "0 2 4 6");
  EXPECT_EQ(Match("name <= 'banana'"), "0 1 2 4 6");
  EXPECT_EQ(Match("name >= 'b'"), "1 3 5 7");
  EXPECT_EQ(Match("name > 'date'"), "7");
  EXPECT_EQ(Match("'date' < name"), "7");
  EXPECT_EQ(Match("name == ''"), "2");
  EXPECT_EQ(Match(R"(name == "a\"b'c")"), "6");
  EXPECT_EQ(Match(R"(name == 'a"b\'c')"), "6");
  EXPECT_EQ(Match("name == '\xc3\xa9'"), "7");
  EXPECT_EQ(Match("name in ['apple', \"date\", 'zzz']"), "0 5");
  EXPECT_EQ(Match("name not in ['apple']"), "1 2 3 4 5 6 7");
  EXPECT_EQ(Match("color in ['red', 'blue'] and price < 10"), "0 1 3");
  EXPECT_EQ(Match("name > color"), "7");
}

TEST(FilterTest, FieldAgainstField) {
  EXPECT_EQ(Match("qty < stock"), "0 4 7");
  EXPECT_EQ(Match("qty == stock"), "1 3");
  EXPECT_EQ(Match("qty >= stock"), "1 2 3 5 6");
  EXPECT_EQ(Match("qty == qty"), kAll);
  EXPECT_EQ(Match("price == price"), "0 1 3 4 5 6 7");  // NaN != NaN
  EXPECT_EQ(Match("price < cost"), "1 7");
  EXPECT_EQ(Match("price > cost"), "5 6");
  EXPECT_EQ(Match("price != cost"), "1 2 4 5 6 7");
  // int64 against double compares exact values, in either order.
  EXPECT_EQ(Match("qty < price"), "0 1 4 6");
  EXPECT_EQ(Match("price > qty"), "0 1 4 6");
  EXPECT_EQ(Match("qty > price"), "3 5 7");
  EXPECT_EQ(Match("qty != price"), kAll);
  EXPECT_EQ(Match("stock == cost"), "5 7");
  // 2^53 + 1 against the double 2^53: a conversion to double would call them equal.
  EXPECT_EQ(Match("id == cost"), "");
  EXPECT_EQ(Match("id > cost"), "0 1 2 3 5 6 7");
  EXPECT_EQ(Match("cost < id"), "0 1 2 3 5 6 7");
}

TEST(FilterTest, PrecedenceIsNotThenAndThenOr) {
  EXPECT_EQ(Match("ok or flag and qty > 100"), "0 2 4 6");
  EXPECT_EQ(Match("(ok or flag) and qty > 100"), "6");
  EXPECT_EQ(Match("flag and qty > 100 or ok"), "0 2 4 6");
  EXPECT_EQ(Match("not ok and flag"), "3 5");
  EXPECT_EQ(Match("not (ok and flag)"), "0 1 3 4 5 7");
  EXPECT_EQ(Match("not ok or flag"), "1 2 3 5 6 7");
  EXPECT_EQ(Match("NOT ok AND flag"), "3 5");
  EXPECT_EQ(Match("!ok && flag"), "3 5");
  EXPECT_EQ(Match("ok || flag && false"), "0 2 4 6");
  EXPECT_EQ(Match("not not ok"), "0 2 4 6");
  EXPECT_EQ(Match("not (qty >= 5 or ok)"), "1 3 7");
  EXPECT_EQ(Match("((ok))"), "0 2 4 6");
  EXPECT_EQ(Match("true and not false"), kAll);
}

TEST(FilterTest, Membership) {
  EXPECT_EQ(Match("qty in [1, 3, 5]"), "1 3 5");
  EXPECT_EQ(Match("qty IN [5,3,1,1]"), "1 3 5");
  EXPECT_EQ(Match("qty not in [1, 3, 5]"), "0 2 4 6 7");
  EXPECT_EQ(Match("qty Not In [1, 3, 5]"), "0 2 4 6 7");
  EXPECT_EQ(Match("qty in []"), "");
  EXPECT_EQ(Match("qty not in []"), kAll);
  EXPECT_EQ(Match("not qty in [0] and not qty not in [0, 1]"), "1");
  std::string big = "qty in [";
  for (int i = 0; i < 10000; ++i) big += std::to_string(i) + ",";
  big.back() = ']';
  EXPECT_EQ(Match(big), "0 1 2 3 5");
}

TEST(FilterTest, SyntaxErrorsSayWhereAndWhat) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"qty == )", "filter: at 7: expected a value after '==', found ')'"},
      {"qty ==", "filter: at 6: expected a value after '==', found the end of the expression"},
      {"price # 3", "filter: at 6: unexpected character '#'"},
      {"qty & 1", "filter: at 4: unexpected character '&'"},
      {"ok\x01", "filter: at 2: unexpected byte 0x01"},
      {"name == \"abc", "filter: at 8: unterminated string"},
      {"name == 'abc\\", "filter: at 8: unterminated string"},
      {"name == 'a\\qb'", "filter: at 10: unknown escape '\\q'"},
      {"qty < 9223372036854775808", "filter: at 6: integer '9223372036854775808' does not fit"},
      {"price < 1e999", "filter: at 8: number '1e999' is out of the range of a double"},
      {"qty < 12abc", "filter: at 6: malformed number '12abc'"},
      {"qty < 1.2.3", "filter: at 6: malformed number '1.2.3'"},
      {"price < 1e", "filter: at 10: expected exponent digits"},
      {"(qty < 3", "filter: at 8: expected ')' to close the '(' at 0, found the end"},
      {"qty < 3)", "filter: at 7: expected 'and', 'or' or the end, found ')'"},
      {"qty < 3 < 4", "filter: at 8: expected 'and', 'or' or the end, found '<'"},
      {"ok flag", "filter: at 3: expected 'and', 'or' or the end, found 'flag'"},
      {"and ok", "filter: at 0: expected a field, a value, 'not' or '(', found 'and'"},
      {"ok and", "filter: at 6: expected a field, a value, 'not' or '(', found the end"},
      {"()", "filter: at 1: expected a field, a value, 'not' or '(', found ')'"},
      {"5", "filter: at 1: expected a comparison operator after '5', found the end"},
      {"'x' and ok", "filter: at 4: expected a comparison operator after ''x'', found 'and'"},
      {"qty in 1", "filter: at 7: expected '[' after 'in', found '1'"},
      {"qty in [1, 2", "filter: at 12: expected ',' or ']' in the 'in' list, found the end"},
      {"qty in [1 2]", "filter: at 10: expected ',' or ']' in the 'in' list, found '2'"},
      {"qty in [1,]", "filter: at 10: expected a value in the 'in' list, found ']'"},
      {"qty in [stock]", "filter: at 8: expected a value in the 'in' list, found 'stock'"},
      {"1 < 2", "filter: at 0: a comparison needs a field on at least one side"},
      {"colour == 'red'", "filter: at 0: unknown field 'colour'"},
      {"Ok", "filter: at 0: unknown field 'Ok'"},  // field names are case-sensitive
      {"emb == 1", "filter: at 0: vector field 'emb' cannot be used in a filter"},
      {"qty", "filter: at 0: int64 field 'qty' is not a condition by itself"},
      {"ok and (name)", "filter: at 8: varchar field 'name' is not a condition by itself"},
  };
  for (const auto& [expr, want] : cases) {
    EXPECT_EQ(ParseError(expr).substr(0, want.size()), want) << expr;
  }
}

TEST(FilterTest, TypeErrorsNameTheField) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"name == 5", "filter: at 8: cannot compare varchar field 'name' with a number"},
      {"5 == name", "filter: at 0: cannot compare varchar field 'name' with a number"},
      {"qty == 'x'", "filter: at 7: cannot compare int64 field 'qty' with a string"},
      {"price > true", "filter: at 8: cannot compare double field 'price' with a bool"},
      {"ok == 1", "filter: at 6: cannot compare bool field 'ok' with a number"},
      {"ok < true", "filter: at 3: operator '<' does not apply to bool field 'ok' (use == or !=)"},
      {"ok >= flag", "filter: at 3: operator '>=' does not apply to bool field 'ok'"},
      {"qty < name", "filter: at 0: cannot compare int64 field 'qty' with varchar field 'name'"},
      {"ok == qty", "filter: at 0: cannot compare bool field 'ok' with int64 field 'qty'"},
      {"price == ok", "filter: at 0: cannot compare double field 'price' with bool field 'ok'"},
      {"name in ['a', 1]", "filter: at 14: cannot compare varchar field 'name' with a number"},
      {"qty in [true]", "filter: at 8: cannot compare int64 field 'qty' with a bool"},
      {"ok in ['yes']", "filter: at 7: cannot compare bool field 'ok' with a string"},
  };
  for (const auto& [expr, want] : cases) {
    EXPECT_EQ(ParseError(expr).substr(0, want.size()), want) << expr;
  }
}

TEST(FilterTest, Limits) {
  EXPECT_EQ(ParseError(std::string(kMaxFilterBytes, ' ')), "");
  EXPECT_EQ(ParseError(std::string(kMaxFilterBytes + 1, ' ')),
            "filter: expression is 65537 bytes, more than the limit of 65536");

  auto nested = [](int depth, std::string_view open, std::string_view close) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += open;
    s += "ok";
    for (int i = 0; i < depth; ++i) s += close;
    return s;
  };
  EXPECT_EQ(Match(nested(kMaxFilterDepth, "(", ")")), "0 2 4 6");
  EXPECT_EQ(Match(nested(kMaxFilterDepth, "not ", "")), "0 2 4 6");
  EXPECT_EQ(Match(nested(kMaxFilterDepth / 2, "not (", ")")), "0 2 4 6");
  EXPECT_EQ(ParseError(nested(kMaxFilterDepth + 1, "(", ")")),
            "filter: at 64: nesting deeper than 64 levels of '(' and 'not'");
  EXPECT_EQ(ParseError(nested(kMaxFilterDepth + 1, "!", "")).substr(0, 37),
            "filter: at 64: nesting deeper than 64");
  // Far deeper than any stack could take unbounded, and still a clean error.
  EXPECT_NE(ParseError(std::string(kMaxFilterBytes - 2, '(') + "ok"), "");

  // A long flat chain is no nesting at all.
  std::string chain = "ok";
  while (chain.size() < kMaxFilterBytes - 16) chain += " or ok and true";
  EXPECT_EQ(Match(chain), "0 2 4 6");
}

TEST(FilterTest, FieldsAndText) {
  const std::string expr = "price < 10 and (qty in [1] or price > qty) and not ok";
  Result<Filter> f = Filter::Parse(expr, TestSchema());
  ASSERT_OK(f);
  EXPECT_FALSE(f->empty());
  EXPECT_EQ(f->text(), expr);
  EXPECT_EQ(f->fields(), (std::vector<std::string>{"price", "qty", "ok"}));
  Filter copy = *f;  // copies share the parsed tree
  Bitset a, b;
  ASSERT_OK(f->Evaluate(SmallTable(), &a));
  ASSERT_OK(copy.Evaluate(SmallTable(), &b));
  EXPECT_EQ(a.words(), b.words());
}

TEST(FilterTest, EvaluateChecksTheSource) {
  Result<Filter> f = Filter::Parse("qty > 1 and name == 'x'", TestSchema());
  ASSERT_OK(f);
  Table missing(2);
  missing.AddInt64("qty", {1, 2});
  Bitset bits;
  EXPECT_CODE(f->Evaluate(missing, &bits), Code::kNotFound);

  Table wrong_type(2);
  wrong_type.AddInt64("qty", {1, 2});
  wrong_type.AddInt64("name", {1, 2});
  EXPECT_CODE(f->Evaluate(wrong_type, &bits), Code::kInvalidArgument);

  Table ok(2);
  ok.AddInt64("qty", {1, 2});
  ok.AddVarchar("name", {"x", "x"});
  ASSERT_OK(f->Evaluate(ok, &bits));
  EXPECT_EQ(bits.size(), 2);
  EXPECT_FALSE(bits.test(0));
  EXPECT_TRUE(bits.test(1));
}

// ---------------------------------------------------------------------------------------------
// Json paths, the dynamic field, like, arithmetic and the narrow types.

CollectionSchema JsonSchema() {
  CollectionSchema s;
  s.name = "docs";
  s.fields = {{"id", FieldType::kInt64, 0, true}, {"emb", FieldType::kFloatVector, 2},
              {"qty", FieldType::kInt64},         {"name", FieldType::kVarchar},
              {"ok", FieldType::kBool},           {"doc", FieldType::kJson},
              {"tiny", FieldType::kInt8},         {"small", FieldType::kInt16},
              {"mid", FieldType::kInt32},         {"ratio", FieldType::kFloat}};
  FieldSchema meta;
  meta.name = "$meta";
  meta.type = FieldType::kJson;
  meta.dynamic = true;
  s.fields.push_back(meta);
  return s;
}

// Twelve documents per json column, chosen for the edges: mixed int/double numbers, 2^53 + 1,
// uint64's maximum, nesting, arrays, duplicate keys, null, a non-object root, invalid text.
Table JsonTable() {
  Table t(12);
  std::vector<int64_t> ids(12), qty(12);
  std::vector<uint8_t> ok(12);
  for (int i = 0; i < 12; ++i) {
    ids[i] = i;
    qty[i] = i;
    ok[i] = i % 2 == 0;
  }
  t.AddInt64("id", ids);
  t.AddInt64("qty", qty);
  t.AddBool("ok", ok);
  t.AddVarchar("name", std::vector<std::string>(12, "n"));
  t.AddVarchar(
      "doc",
      {
          R"({"a": 1, "s": "red", "b": true, "arr": [1, 2, 3],
                       "o": {"x": 5, "y": [10, {"z": "deep"}]}})",
          R"({"a": 1.0, "s": "blue", "b": false, "arr": [4], "o": {"x": "5"}})",
          R"({"a": 9007199254740993, "s": "", "arr": []})",
          R"({"a": 9007199254740993.0, "s": "reddish"})", R"({"a": -3, "s": "Red", "b": 1})",
          R"({"a": 1)",  // not valid JSON
          R"({"a": 18446744073709551615, "s": "\u00e9t\u00e9"})",
          R"({"a": null, "s": null, "b": null})", R"([1, 2])", R"({"a": 2.5, "s": "a%b_c"})",
          R"({"a": 1, "a": 7, "s": "x", "s": "y"})",  // the last one wins
          "",                                         // not valid JSON
      },
      FieldType::kJson);
  t.AddVarchar("$meta",
               {
                   R"({"color": "red", "age": 3, "tags": ["x"]})",
                   R"({"color": "blue", "age": 5.5})",
                   "{}",
                   R"({"color": 7})",
                   R"({"age": -1, "qty": 99})",
                   "nope",
                   R"({"color": "red"})",
                   R"({"age": 3})",
                   R"({"Color": "red"})",
                   R"({"color": "redder", "age": 9223372036854775807})",
                   R"({"age": 10})",
                   "{}",
               },
               FieldType::kJson);
  t.AddInt64("tiny", {-128, 127, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, FieldType::kInt8);
  t.AddInt64("small", {-32768, 32767, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, FieldType::kInt16);
  t.AddInt64("mid", {-2147483648, 2147483647, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, FieldType::kInt32);
  t.AddDouble("ratio", {0.5, 1.25, static_cast<double>(0.1f), -2.0, 0, 0, 0, 0, 0, 0, 0, 3.5},
              FieldType::kFloat);
  return t;
}

std::string JsonMatch(std::string_view expr) {
  static const CollectionSchema schema = JsonSchema();
  static const Table table = JsonTable();
  Result<Filter> f = Filter::Parse(expr, schema);
  if (!f.ok()) return "error: " + f.error().message();
  Bitset bits;
  Status s = f->Evaluate(table, &bits);
  if (!s.ok()) return "evaluate error: " + s.ToString();
  std::string out;
  for (int64_t i = 0; i < bits.size(); ++i) {
    if (bits.test(i)) out += (out.empty() ? "" : " ") + std::to_string(i);
  }
  return out;
}

std::string JsonParseError(std::string_view expr) {
  Result<Filter> f = Filter::Parse(expr, JsonSchema());
  if (f.ok()) return "";
  EXPECT_EQ(f.error().code(), Code::kInvalidArgument);
  return f.error().message();
}

const char* const kAll12 = "0 1 2 3 4 5 6 7 8 9 10 11";

TEST(FilterJsonTest, SchemaIsValid) { EXPECT_OK(JsonSchema().Validate()); }

TEST(FilterJsonTest, NumbersCompareExactlyAcrossIntAndDouble) {
  EXPECT_EQ(JsonMatch(R"(doc["a"] == 1)"), "0 1");  // 1 and 1.0
  EXPECT_EQ(JsonMatch(R"(doc["a"] == 1.0)"), "0 1");
  EXPECT_EQ(JsonMatch(R"(doc['a'] = 1)"), "0 1");
  EXPECT_EQ(JsonMatch(R"(1 == doc["a"])"), "0 1");
  EXPECT_EQ(JsonMatch(R"(doc["a"] == 7)"), "10");  // duplicate keys: the last one wins
  // 2^53 + 1 as a JSON integer is exact; as a JSON double it is 2^53.
  EXPECT_EQ(JsonMatch(R"(doc["a"] == 9007199254740993)"), "2");
  EXPECT_EQ(JsonMatch(R"(doc["a"] == 9007199254740992)"), "3");
  EXPECT_EQ(JsonMatch(R"(doc["a"] == 9007199254740992.0)"), "3");
  EXPECT_EQ(JsonMatch(R"(doc["a"] > 9007199254740992)"), "2 6");
  // uint64's maximum is above every int64 and below 2^64 (the double 18446744073709551616.0).
  EXPECT_EQ(JsonMatch(R"(doc["a"] > 9223372036854775807)"), "6");
  EXPECT_EQ(JsonMatch(R"(doc["a"] > 1e19)"), "6");
  EXPECT_EQ(JsonMatch(R"(doc["a"] >= 18446744073709551616.0)"), "");
  EXPECT_EQ(JsonMatch(R"(doc["a"] < 18446744073709551616.0)"), "0 1 2 3 4 6 9 10");
  EXPECT_EQ(JsonMatch(R"(doc["a"] < 2)"), "0 1 4");
  EXPECT_EQ(JsonMatch(R"(doc["a"] <= 2.5)"), "0 1 4 9");
  EXPECT_EQ(JsonMatch(R"(doc["a"] > 2.4)"), "2 3 6 9 10");
  EXPECT_EQ(JsonMatch(R"(2.4 < doc["a"])"), "2 3 6 9 10");
}

TEST(FilterJsonTest, MissingKeysWrongTypesAndInvalidDocumentsMatchNoComparison) {
  // Rows 5 and 11 are not JSON, 7 holds null, 8 is an array: no comparison holds there, not
  // even !=, and neither does one with a value of another type.
  EXPECT_EQ(JsonMatch(R"(doc["a"] != 1)"), "2 3 4 6 9 10");
  EXPECT_EQ(JsonMatch(R"(doc["a"] == "1")"), "");
  EXPECT_EQ(JsonMatch(R"(doc["s"] == 1)"), "");
  EXPECT_EQ(JsonMatch(R"(doc["nope"] != 0)"), "");
  EXPECT_EQ(JsonMatch(R"(doc["nope"] in [0, "", true])"), "");
  // not and `not in` are plain negations of the positive form.
  EXPECT_EQ(JsonMatch(R"(not (doc["a"] == 1))"), "2 3 4 5 6 7 8 9 10 11");
  EXPECT_EQ(JsonMatch(R"(doc["a"] not in [1])"), "2 3 4 5 6 7 8 9 10 11");
  EXPECT_EQ(JsonMatch(R"(not (doc["nope"] != 0))"), kAll12);
  EXPECT_EQ(JsonMatch(R"(doc["a"] in [])"), "");
  EXPECT_EQ(JsonMatch(R"(doc["a"] not in [])"), kAll12);
}

TEST(FilterJsonTest, StringsAndBools) {
  EXPECT_EQ(JsonMatch(R"(doc["s"] == "red")"), "0");
  EXPECT_EQ(JsonMatch(R"(doc["s"] == 'red')"), "0");
  EXPECT_EQ(JsonMatch(R"(doc["s"] != "red")"), "1 2 3 4 6 9 10");
  EXPECT_EQ(JsonMatch(R"(doc["s"] < "b")"), "2 4 9");  // bytewise: "" < "Red" < "a%b_c" < "b"
  EXPECT_EQ(JsonMatch(R"(doc["s"] >= "r")"), "0 3 6 10");
  EXPECT_EQ(JsonMatch("doc[\"s\"] == '\xc3\xa9t\xc3\xa9'"), "6");  // JSON's \u00e9 is UTF-8 here
  EXPECT_EQ(JsonMatch(R"(doc["b"] == true)"), "0");
  EXPECT_EQ(JsonMatch(R"(doc["b"] == false)"), "1");
  EXPECT_EQ(JsonMatch(R"(doc["b"] != true)"), "1");
  EXPECT_EQ(JsonMatch(R"(doc["b"] == 1)"), "4");  // a number, not a bool
}

TEST(FilterJsonTest, NestedPathsAndArrayIndexes) {
  EXPECT_EQ(JsonMatch(R"(doc["arr"][0] == 1)"), "0");
  EXPECT_EQ(JsonMatch(R"(doc["arr"][2] == 3)"), "0");
  EXPECT_EQ(JsonMatch(R"(doc["arr"][0] > 0)"), "0 1");
  EXPECT_EQ(JsonMatch(R"(doc["arr"][3] > 0)"), "");
  EXPECT_EQ(JsonMatch(R"(doc["o"]["x"] == 5)"), "0");
  EXPECT_EQ(JsonMatch(R"(doc["o"]["x"] == "5")"), "1");
  EXPECT_EQ(JsonMatch(R"(doc["o"]["y"][0] == 10)"), "0");
  EXPECT_EQ(JsonMatch(R"(doc["o"]["y"][1]["z"] == "deep")"), "0");
  EXPECT_EQ(JsonMatch(R"(doc["o"]["y"]["z"] == "deep")"), "");  // a key step on an array
  EXPECT_EQ(JsonMatch(R"(doc["o"] == 5)"), "");                 // an object is no value
  EXPECT_EQ(JsonMatch(R"(doc["arr"] == 1)"), "");
  EXPECT_EQ(JsonMatch(R"(doc[0] == 1)"), "8");  // an array document
  EXPECT_EQ(JsonMatch(R"(doc[1] == 2)"), "8");
  EXPECT_EQ(JsonMatch(R"(doc[2] == 2)"), "");

  // Up to kMaxFilterPathDepth steps; the documents may nest deeper still.
  std::string deep_doc, path = "doc";
  for (int i = 0; i < 1000; ++i) deep_doc += "{\"k\": ";
  deep_doc += "1";
  for (int i = 0; i < 1000; ++i) deep_doc += "}";
  for (int i = 0; i < kMaxFilterPathDepth; ++i) path += "[\"k\"]";
  Table t(2);
  t.AddVarchar("doc", {deep_doc, deep_doc.substr(1)}, FieldType::kJson);
  Result<Filter> f = Filter::Parse(path + " > 0", JsonSchema());
  ASSERT_OK(f);
  Bitset bits;
  ASSERT_OK(f->Evaluate(t, &bits));
  EXPECT_FALSE(bits.test(0));  // an object 968 levels down is no number
  EXPECT_FALSE(bits.test(1));  // invalid
  EXPECT_EQ(JsonParseError(path + "[\"k\"] > 0"), "filter: at 163: json path deeper than 32 steps");
}

TEST(FilterJsonTest, Membership) {
  EXPECT_EQ(JsonMatch(R"(doc["a"] in [1, 7, "red", true])"), "0 1 10");
  EXPECT_EQ(JsonMatch(R"(doc["s"] in ["red", "blue", 1])"), "0 1");
  EXPECT_EQ(JsonMatch(R"(doc["a"] in [2.5, 9007199254740993])"), "2 9");
  EXPECT_EQ(JsonMatch(R"(doc["a"] in [9007199254740992.0])"), "3");
  EXPECT_EQ(JsonMatch(R"(doc["a"] in [1e19, 18446744073709551616.0])"), "");
  EXPECT_EQ(JsonMatch(R"(doc["b"] in [false])"), "1");
  EXPECT_EQ(JsonMatch(R"(doc["b"] IN [true, false])"), "0 1");
  EXPECT_EQ(JsonMatch(R"(doc["arr"][0] in [4, 1])"), "0 1");
}

TEST(FilterJsonTest, Like) {
  EXPECT_EQ(JsonMatch(R"(doc["s"] like "red%")"), "0 3");
  EXPECT_EQ(JsonMatch(R"(doc["s"] LIKE "%e%")"), "0 1 3 4");
  EXPECT_EQ(JsonMatch(R"(doc["s"] like "_t_")"), "6");  // "été": '_' is one code point
  EXPECT_EQ(JsonMatch(R"(doc["s"] like "a\%b\_c")"), "9");
  EXPECT_EQ(JsonMatch(R"(doc["s"] like "a%b_c")"), "9");
  EXPECT_EQ(JsonMatch(R"(doc["s"] like "%")"), "0 1 2 3 4 6 9 10");  // every string, only
  EXPECT_EQ(JsonMatch(R"(doc["a"] like "1%")"), "");                 // numbers are no strings
  EXPECT_EQ(JsonMatch(R"(not (doc["s"] like "r%"))"), "1 2 4 5 6 7 8 9 10 11");
}

TEST(FilterJsonTest, Arithmetic) {
  EXPECT_EQ(JsonMatch(R"(doc["a"] + 1 == 2)"), "0 1");
  EXPECT_EQ(JsonMatch(R"(doc["a"] * 2 > 5)"), "2 3 6 10");
  EXPECT_EQ(JsonMatch(R"(doc["a"] % 2 == 1)"), "0 2 6 10");  // integers only: not 1.0
  EXPECT_EQ(JsonMatch(R"(doc["a"] % 2 == -1)"), "4");        // truncated, as in C++
  EXPECT_EQ(JsonMatch(R"(doc["a"] - 1 < 0)"), "4");
  EXPECT_EQ(JsonMatch(R"(doc["a"] / 2 == 0.5)"), "0 1");
  // uint64's maximum + 1 is 2^64 exactly: no wrap, no rounding.
  EXPECT_EQ(JsonMatch(R"(doc["a"] + 1 >= 18446744073709551616.0)"), "6");
  EXPECT_EQ(JsonMatch(R"(doc["a"] + 1 > 18446744073709551616.0)"), "");
  EXPECT_EQ(JsonMatch(R"(doc["a"] * -1 < -9223372036854775807)"), "6");
  EXPECT_EQ(JsonMatch(R"(doc["s"] + 1 > 0)"), "");  // strings: no match, not an error
  EXPECT_EQ(JsonMatch(R"(doc["arr"][0] * 3 != 3)"), "1");
}

TEST(FilterJsonTest, DynamicFieldKeys) {
  // A name that is no field is a key of the dynamic field $meta.
  EXPECT_EQ(JsonMatch(R"(color == "red")"), "0 6");
  EXPECT_EQ(JsonMatch(R"($meta["color"] == "red")"), "0 6");
  EXPECT_EQ(JsonMatch(R"($meta['color'] == 'red')"), "0 6");
  EXPECT_EQ(JsonMatch(R"(Color == "red")"), "8");  // keys are case-sensitive
  EXPECT_EQ(JsonMatch(R"(color != "red")"), "1 9");
  EXPECT_EQ(JsonMatch(R"(not (color == "red"))"), "1 2 3 4 5 7 8 9 10 11");
  EXPECT_EQ(JsonMatch(R"(color like "red%")"), "0 6 9");
  EXPECT_EQ(JsonMatch(R"(age > 3)"), "1 9 10");
  EXPECT_EQ(JsonMatch(R"(age >= 3)"), "0 1 7 9 10");
  EXPECT_EQ(JsonMatch(R"(age in [3, 10])"), "0 7 10");
  EXPECT_EQ(JsonMatch(R"(age * 2 == 6)"), "0 7");
  EXPECT_EQ(JsonMatch(R"(age + 1 > 9223372036854775807)"), "9");  // exact, no overflow
  EXPECT_EQ(JsonMatch(R"(tags[0] == "x")"), "0");
  // A field of its own wins over a key of the same name.
  EXPECT_EQ(JsonMatch(R"(qty == 99)"), "");
  EXPECT_EQ(JsonMatch(R"($meta["qty"] == 99)"), "4");
  EXPECT_EQ(JsonMatch(R"(color == "red" and age == 3)"), "0");
  EXPECT_EQ(JsonMatch(R"(color == "red" or age == 3)"), "0 6 7");
  EXPECT_EQ(JsonMatch(R"(color == "red" and qty > 3)"), "6");
  EXPECT_EQ(JsonMatch(R"(ok and color == "red")"), "0 6");
  EXPECT_EQ(JsonMatch(R"(not ok or color == "red")"), "0 1 3 5 6 7 9 11");

  Result<Filter> f = Filter::Parse(R"(color == "red" and qty > 3 or doc["a"] == 1)", JsonSchema());
  ASSERT_OK(f);
  EXPECT_EQ(f->fields(), (std::vector<std::string>{"$meta", "qty", "doc"}));

  // Without a dynamic field, an unknown name stays an error.
  EXPECT_EQ(ParseError("colour == 'red'"), "filter: at 0: unknown field 'colour'");
  EXPECT_EQ(ParseError(R"($meta["a"] == 1)"), "filter: at 0: unknown field '$meta'");
}

TEST(FilterJsonTest, CostlyConditionsRunOnTheUndecidedRows) {
  // and/or evaluate json and like conditions last, on the rows they can still change; the
  // answers are those of any order.
  EXPECT_EQ(JsonMatch(R"(doc["a"] == 1 and qty > 0)"), "1");
  EXPECT_EQ(JsonMatch(R"(qty > 0 and doc["a"] == 1)"), "1");
  EXPECT_EQ(JsonMatch(R"(doc["a"] == 1 or qty > 9)"), "0 1 10 11");
  EXPECT_EQ(JsonMatch(R"(not (doc["a"] == 1 or qty > 9) and ok)"), "2 4 6 8");
  EXPECT_EQ(JsonMatch(R"((doc["s"] like "r%" or color == "blue") and not (qty < 1))"), "1 3");
  EXPECT_EQ(JsonMatch(R"(doc["a"] == 1 and color == "red" and ok)"), "0");
  EXPECT_EQ(JsonMatch(R"(false or doc["b"] == true or false)"), "0");
  EXPECT_EQ(JsonMatch(R"(qty < 0 and doc["a"] == 1)"), "");
  EXPECT_EQ(JsonMatch(R"(qty >= 0 or doc["a"] == 1)"), kAll12);
}

TEST(FilterJsonTest, NarrowTypes) {
  EXPECT_EQ(JsonMatch("tiny == -128"), "0");
  EXPECT_EQ(JsonMatch("tiny > 100"), "1");
  EXPECT_EQ(JsonMatch("tiny in [127, -128, 1000]"), "0 1");
  EXPECT_EQ(JsonMatch("tiny * 2 == 254"), "1");  // exact: no int8 wrap-around
  EXPECT_EQ(JsonMatch("tiny - 1 < -128"), "0");
  EXPECT_EQ(JsonMatch("small == 32767 or small == -32768"), "0 1");
  EXPECT_EQ(JsonMatch("mid + 1 > 2147483647"), "1");
  EXPECT_EQ(JsonMatch("tiny < qty"), "0 2 3 4 5 6 7 8 9 10 11");
  EXPECT_EQ(JsonMatch("ratio == 1.25"), "1");
  EXPECT_EQ(JsonMatch("ratio < 0"), "3");
  // float32 fields compare with the literal rounded to float32, as Milvus does: a stored 0.1f
  // (0.100000001490116...) is == 0.1 and not > 0.1.
  EXPECT_EQ(JsonMatch("ratio == 0.1"), "2");
  EXPECT_EQ(JsonMatch("ratio > 0.1"), "0 1 11");
  EXPECT_EQ(JsonMatch("ratio in [0.1, 3.5]"), "2 11");
  EXPECT_EQ(JsonMatch("ratio != 0.1 and ratio >= 0.1"), "0 1 11");
  EXPECT_EQ(JsonMatch("ratio < 1e39"), "0 1 2 3 4 5 6 7 8 9 10 11");  // beyond float32: infinity
  EXPECT_EQ(JsonMatch("ratio * 2 == 2.5"), "1");
  EXPECT_EQ(JsonMatch("ratio < tiny"), "1 3 4 5 6 7 8 9 10 11");

  const std::pair<std::string_view, std::string_view> cases[] = {
      {"tiny == 'x'", "filter: at 8: cannot compare int8 field 'tiny' with a string"},
      {"ratio == true", "filter: at 9: cannot compare float32 field 'ratio' with a bool"},
      {"small < name", "filter: at 0: cannot compare int16 field 'small' with varchar field"},
      {"mid", "filter: at 0: int32 field 'mid' is not a condition by itself"},
      {"ratio % 2 == 0", "filter: at 6: operator '%' needs integers, not float32 field 'ratio'"},
      {"tiny like 'a'", "filter: at 5: operator 'like' does not apply to int8 field 'tiny'"},
      {"mid in ['a']", "filter: at 8: cannot compare int32 field 'mid' with a string"},
  };
  for (const auto& [expr, want] : cases) {
    EXPECT_EQ(JsonParseError(expr).substr(0, want.size()), want) << expr;
  }
}

TEST(FilterJsonTest, ErrorsSayWhatWasExpected) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"doc == 1", R"(filter: at 0: json field 'doc' needs a path, such as doc["key"])"},
      {"1 < doc", R"(filter: at 4: json field 'doc' needs a path, such as doc["key"])"},
      {"doc", R"(filter: at 0: json field 'doc' needs a path)"},
      {"doc in [1]", R"(filter: at 0: json field 'doc' needs a path)"},
      {"doc like 'a'", R"(filter: at 0: json field 'doc' needs a path)"},
      {"doc + 1 > 2", R"(filter: at 0: json field 'doc' needs a path)"},
      {"$meta == 1", R"(filter: at 0: json field '$meta' needs a path, such as $meta["key"])"},
      {"$meta", R"(filter: at 0: json field '$meta' needs a path)"},
      {R"(doc["a"] == doc["s"])",
       R"(filter: at 0: cannot compare json path 'doc["a"]' with json path 'doc["s"]': json )"
       R"(paths compare with values only)"},
      {R"(qty < doc["a"])", R"(filter: at 0: cannot compare int64 field 'qty' with json path)"},
      {R"(doc["a"])", R"(filter: at 0: json path 'doc["a"]' is not a condition by itself)"},
      {"color", "filter: at 0: json path 'color' is not a condition by itself"},
      {R"(doc["b"] < true)", "filter: at 9: operator '<' does not apply to a bool (use == or !=)"},
      {R"(doc[-1] == 1)",
       "filter: at 4: expected a key (a string) or an array index (an integer >= 0) after '[', "
       "found '-1'"},
      {R"(doc[1.5] == 1)", "filter: at 4: expected a key (a string) or an array index"},
      {R"(doc[x] == 1)", "filter: at 4: expected a key (a string) or an array index"},
      {R"(doc["a" == 1)", "filter: at 8: expected ']' after the json path step, found '=='"},
      {R"(doc[)",
       "filter: at 4: expected a key (a string) or an array index (an integer >= 0) "
       "after '[', found the end of the expression"},
      {R"(qty["a"] == 1)", "filter: at 3: only json fields have paths, not int64 field 'qty'"},
      {R"($foo == 1)", "filter: at 0: unknown field '$foo'"},
      {R"($ == 1)", "filter: at 0: unexpected character '$'"},
      {R"(emb["a"] == 1)", "filter: at 0: vector field 'emb' cannot be used in a filter"},
      {R"(doc["s"] like 5)", "filter: at 14: expected a pattern string after 'like', found '5'"},
      {R"(doc["s"] like)", "filter: at 13: expected a pattern string after 'like', found the end"},
      {R"(doc["s"] not like "a")",
       "filter: at 9: 'not like' is not supported: write not (x like '...')"},
      {R"(json_contains(doc["tags"], "x"))",
       "filter: at 0: function 'json_contains' is not supported"},
      {"ARRAY_CONTAINS(arr, 1)", "filter: at 0: function 'ARRAY_CONTAINS' is not supported"},
      {R"(exists doc["a"])", "filter: at 0: 'exists' is not supported"},
      {R"(doc["a"] is null)", "filter: at 9: 'is null' and 'is not null' are not supported"},
      {"color IS NOT NULL", "filter: at 6: 'is null' and 'is not null' are not supported"},
      {R"(doc["a"] ** 2 > 1)", "filter: at 9: operator '**' is not supported"},
      {R"(doc["a"] % 1.5 == 0)", "filter: at 11: operator '%' needs an integer, found '1.5'"},
      {R"(doc["a"] / 0 == 0)", "filter: at 11: division by zero"},
      {R"(doc["a"] + 1 == "x")", R"(filter: at 16: cannot compare 'doc["a"] + 1' with a string)"},
  };
  for (const auto& [expr, want] : cases) {
    EXPECT_EQ(JsonParseError(expr).substr(0, want.size()), want) << expr;
  }
  // The dynamic key counts as the first step of its path.
  std::string path = "k";
  for (int i = 1; i < kMaxFilterPathDepth; ++i) path += "[\"k\"]";
  EXPECT_EQ(JsonParseError(path + " == 1"), "");
  EXPECT_EQ(JsonParseError(path + "[\"k\"] == 1"),
            "filter: at 156: json path deeper than 32 steps");
}

TEST(FilterJsonTest, EvaluateChecksTheJsonColumn) {
  Result<Filter> f = Filter::Parse(R"(doc["a"] == 1)", JsonSchema());
  ASSERT_OK(f);
  Bitset bits;
  Table as_varchar(1);
  as_varchar.AddVarchar("doc", {R"({"a": 1})"});
  EXPECT_CODE(f->Evaluate(as_varchar, &bits), Code::kInvalidArgument);
  Table as_json(1);
  as_json.AddVarchar("doc", {R"({"a": 1})"}, FieldType::kJson);
  ASSERT_OK(f->Evaluate(as_json, &bits));
  EXPECT_TRUE(bits.test(0));
}

TEST(FilterJsonTest, EdgeDocuments) {
  // Each row's document against `doc["a"] == 1`: only well-formed ones with that value match.
  const std::pair<std::string, bool> cases[] = {
      {R"({"a":1})", true},
      {"\xef\xbb\xbf{\"a\": 1}", true},  // a UTF-8 byte order mark is skipped
      {R"(  {"a" : 1 }  )", true},
      {R"({"a": 1} x)", false},  // trailing bytes
      {R"({"a": 1,})", false},
      {R"({"a": 01})", false},
      {R"({'a': 1})", false},
      {R"({"a": 1e999})", false},              // beyond a double: the document is refused
      {"{\"a\": 1, \"s\": \"\xff\"}", false},  // not UTF-8
      {R"({"a": 1, "s": "\ud800"})", false},   // a lone surrogate
      {R"({"b": {"a": 1}})", false},
      {R"({"a": [1]})", false},
      {R"({"a": "1"})", false},
      {R"({"a": true})", false},
      {R"({"a": 1.0000000000000001})", true},  // that is the double 1.0
      {R"({"a": 1E0})", true},
      {R"({"a": -0, "a": 1})", true},
      {R"({"a": 1, "a": {"x": 1}})", false},
      {"null", false},
      {"1", false},
      {R"({"\u0061": 1})", true},  // keys are compared decoded
  };
  for (const auto& [doc, want] : cases) {
    Table t(1);
    t.AddVarchar("doc", {doc}, FieldType::kJson);
    Result<Filter> f = Filter::Parse(R"(doc["a"] == 1)", JsonSchema());
    ASSERT_OK(f);
    Bitset bits;
    ASSERT_OK(f->Evaluate(t, &bits));
    EXPECT_EQ(bits.test(0), want) << doc;
  }
  // Duplicate keys on the way down: the last one wins there too.
  const std::pair<std::string, bool> nested[] = {
      {R"({"o": {"a": 1}, "o": {"b": 2}})", false},
      {R"({"o": {"b": 2}, "o": {"a": 1}})", true},
      {R"({"o": {"a": 1}, "o": 3})", false},
      {R"({"o": [{"a": 1}], "o": {"a": 1}})", true},
      {R"({"o": {"a": 1, "o": {"a": 2}}})", true},
  };
  for (const auto& [doc, want] : nested) {
    Table t(1);
    t.AddVarchar("doc", {doc}, FieldType::kJson);
    Result<Filter> f = Filter::Parse(R"(doc["o"]["a"] == 1)", JsonSchema());
    ASSERT_OK(f);
    Bitset bits;
    ASSERT_OK(f->Evaluate(t, &bits));
    EXPECT_EQ(bits.test(0), want) << doc;
  }
}

TEST(FilterLikeTest, Varchar) {
  // name: "apple" "banana" "" "cherry" "Apple" "date" a"b'c "é"
  EXPECT_EQ(Match("name like 'a%'"), "0 6");
  EXPECT_EQ(Match("name LIKE 'A%'"), "4");  // the keyword is case-insensitive, the text not
  EXPECT_EQ(Match("name Like \"%an%\""), "1");
  EXPECT_EQ(Match("name like '%e'"), "0 4 5");
  EXPECT_EQ(Match("name like '%a'"), "1");
  EXPECT_EQ(Match("name like '_'"), "7");  // é is one code point
  EXPECT_EQ(Match("name like '__'"), "");
  EXPECT_EQ(Match("name like ''"), "2");
  EXPECT_EQ(Match("name like '%'"), kAll);
  EXPECT_EQ(Match("name like '%%'"), kAll);
  EXPECT_EQ(Match("name like '_%_'"), "0 1 3 4 5 6");
  EXPECT_EQ(Match("name like 'b_n_n_'"), "1");
  EXPECT_EQ(Match("name like '%a%a%a%'"), "1");
  EXPECT_EQ(Match("name like 'a%e'"), "0");
  EXPECT_EQ(Match("name like '%p%p%'"), "0 4");
  EXPECT_EQ(Match("name like 'c_e%y'"), "3");
  EXPECT_EQ(Match("name like 'apple'"), "0");
  EXPECT_EQ(Match(R"(name like 'a"b\'c')"), "6");
  EXPECT_EQ(Match(R"(name like "%'%")"), "6");
  EXPECT_EQ(Match("not (name like 'a%')"), "1 2 3 4 5 7");
  EXPECT_EQ(Match("name like 'apple' or name like 'date'"), "0 5");
  EXPECT_EQ(Match("name like 'a%' and qty > 0"), "6");
}

TEST(FilterLikeTest, Escapes) {
  Table t(5);
  t.AddVarchar("name", {"100%", "1000", "a_b", "axb", "a\\b"});
  EXPECT_EQ(Match(R"(name like '100\%')", t), "0");
  EXPECT_EQ(Match(R"(name like '100%')", t), "0 1");
  EXPECT_EQ(Match(R"(name like '%\%')", t), "0");
  EXPECT_EQ(Match(R"(name like 'a\_b')", t), "2");
  EXPECT_EQ(Match(R"(name like '%\_%')", t), "2");
  EXPECT_EQ(Match(R"(name like 'a_b')", t), "2 3 4");
  EXPECT_EQ(Match(R"(name like 'a\\b')", t), "4");
  EXPECT_EQ(Match(R"(name like '%\\%')", t), "4");
  // Outside like, \% and \_ are just the characters.
  EXPECT_EQ(Match(R"(name == '100\%')", t), "0");
  EXPECT_EQ(Match(R"(name == 'a\_b')", t), "2");
}

TEST(FilterLikeTest, Utf8Units) {
  Table t(8);
  t.AddVarchar("name",
               {"\xc3\xa9", "e", "日本語", "日本", "\xff", "\xc3", "a\xc3\xa9", "\xc3\xa9\xa9"});
  // '_' is one well-formed UTF-8 sequence, or else one byte.
  EXPECT_EQ(Match("name like '_'", t), "0 1 4 5");
  EXPECT_EQ(Match("name like '__'", t), "3 6 7");
  EXPECT_EQ(Match("name like '___'", t), "2");
  EXPECT_EQ(Match("name like '日%'", t), "2 3");
  EXPECT_EQ(Match("name like '%語'", t), "2");
  EXPECT_EQ(Match("name like '_本%'", t), "2 3");
  EXPECT_EQ(Match("name like 'a_'", t), "6");
  EXPECT_EQ(Match("name like '%\xc3\xa9%'", t), "0 6 7");
  // A pattern's bytes match whole units only: no half of an é.
  EXPECT_EQ(Match("name like '%\xa9'", t), "7");
  EXPECT_EQ(Match("name like '\xc3%'", t), "5");
  EXPECT_EQ(Match("name like '%\xa9%'", t), "7");
}

TEST(FilterLikeTest, NoBacktracking) {
  // Each piece between '%'s is matched once, at its leftmost place: these would take
  // exponential time with a backtracking matcher.
  Table t(2);
  t.AddVarchar("name", {std::string(20000, 'a'), std::string(20000, 'a') + "b"});
  std::string many = "name like '";
  for (int i = 0; i < 500; ++i) many += "%a";
  EXPECT_EQ(Match(many + "%b'", t), "1");
  std::string ones = "name like '";
  for (int i = 0; i < 500; ++i) ones += "%a_";
  EXPECT_EQ(Match(ones + "%b'", t), "1");
  EXPECT_EQ(Match("name like '%" + std::string(5000, 'a') + "b%'", t), "1");
  EXPECT_EQ(Match("name like '%" + std::string(5000, '_') + "b'", t), "1");
  EXPECT_EQ(Match("name like '" + std::string(19999, '_') + "%_b'", t), "1");
}

TEST(FilterLikeTest, Errors) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"qty like 'a%'",
       "filter: at 4: operator 'like' does not apply to int64 field 'qty' (only to varchar "
       "fields and json paths)"},
      {"ok like 'a'", "filter: at 3: operator 'like' does not apply to bool field 'ok'"},
      {"name like 5", "filter: at 10: expected a pattern string after 'like', found '5'"},
      {"name like color", "filter: at 10: expected a pattern string after 'like', found 'color'"},
      {"name not like 'a%'", "filter: at 5: 'not like' is not supported"},
      {"'a' like name", "filter: at 4: expected a comparison operator after ''a'', found 'like'"},
      {"name like 'a\\q'", "filter: at 12: unknown escape '\\q'"},
  };
  for (const auto& [expr, want] : cases) {
    EXPECT_EQ(ParseError(expr).substr(0, want.size()), want) << expr;
  }
}

TEST(FilterArithmeticTest, IntegerFieldsAreExact) {
  // qty: 0 1 2 3 -4 5 INT64_MAX INT64_MIN
  EXPECT_EQ(Match("qty + 1 > 9223372036854775807"), "6");  // INT64_MAX + 1, exactly
  EXPECT_EQ(Match("qty - 1 < -9223372036854775808"), "7");
  EXPECT_EQ(Match("qty * 2 == 4"), "2");
  EXPECT_EQ(Match("qty * -1 == -9223372036854775807"), "6");
  EXPECT_EQ(Match("qty * -1 > 9223372036854775807"), "7");  // -INT64_MIN is 2^63
  EXPECT_EQ(Match("qty * 9223372036854775807 > 9.9e37"), "");
  EXPECT_EQ(Match("qty * 9223372036854775807 >= 8.5e37"), "6");  // 2^126 - 2^64 + 1
  EXPECT_EQ(Match("qty % 2 == 0"), "0 2 4 7");
  EXPECT_EQ(Match("qty % 2 == 1"), "1 3 5 6");
  EXPECT_EQ(Match("qty % 2 != 0"), "1 3 5 6");
  EXPECT_EQ(Match("qty % 3 == -1"), "4");  // truncated: -4 % 3 is -1
  EXPECT_EQ(Match("qty % 3 == -2"), "7");
  EXPECT_EQ(Match("qty % -3 == 1"), "1 6");
  EXPECT_EQ(Match("qty + 1 != 4"), "0 1 2 4 5 6 7");
  EXPECT_EQ(Match("qty + 1 <= 1"), "0 4 7");
  EXPECT_EQ(Match("qty - 1 >= 2"), "3 5 6");
  EXPECT_EQ(Match("qty -1 == 1"), "2");  // the sign of the number is the operator
  EXPECT_EQ(Match("qty-1 == 1"), "2");
  EXPECT_EQ(Match("qty - -1 == 1"), "0");
  EXPECT_EQ(Match("qty+1 == 1"), "0");
  EXPECT_EQ(Match("10 < qty + 8"), "3 5 6");  // the literal may come first
  EXPECT_EQ(Match("qty * 2 < 2.5"), "0 1 4 7");
  EXPECT_EQ(Match("qty * 2 == 2.0"), "1");
  // '/' and float operands are double arithmetic.
  EXPECT_EQ(Match("qty / 2 == 1.5"), "3");
  EXPECT_EQ(Match("qty / 2 == 1"), "2");
  EXPECT_EQ(Match("qty / 2 > 1e18"), "6");
  EXPECT_EQ(Match("qty * 1.5 == 3"), "2");
  EXPECT_EQ(Match("qty + 0.5 < 0"), "4 7");
}

TEST(FilterArithmeticTest, DoubleFields) {
  // price: 1.5 2.0 NaN -0.5 10.0 2.5 1e300 -inf
  EXPECT_EQ(Match("price * 2 > 10"), "4 6");
  EXPECT_EQ(Match("price + 1 != 3"), "0 2 3 4 5 6 7");  // NaN + 1 != 3
  EXPECT_EQ(Match("price - 0.5 == 2"), "5");
  EXPECT_EQ(Match("price / 2 == 0.75"), "0");
  EXPECT_EQ(Match("price * 0 == 0"), "0 1 3 4 5 6");  // NaN * 0 and -inf * 0 are NaN
  EXPECT_EQ(Match("price + 1 > 9007199254740993"), "6");
  EXPECT_EQ(Match("price * 2 <= -1"), "3 7");
  EXPECT_EQ(Match("price * 2 >= 20"), "4 6");
  EXPECT_EQ(Match("not (price * 2 > 10)"), "0 1 2 3 5 7");
}

TEST(FilterArithmeticTest, Errors) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"qty / 0 > 1", "filter: at 6: division by zero"},
      {"qty % 0 == 0", "filter: at 6: division by zero"},
      {"price / 0.0 > 1", "filter: at 8: division by zero"},
      {"price / -0.0 > 1", "filter: at 8: division by zero"},
      {"price % 2 == 0", "filter: at 6: operator '%' needs integers, not double field 'price'"},
      {"qty % 2.5 == 0", "filter: at 6: operator '%' needs an integer, found '2.5'"},
      {"name + 1 > 2",
       "filter: at 5: operator '+' does not apply to varchar field 'name' (only to numbers)"},
      {"ok * 2 == 1", "filter: at 3: operator '*' does not apply to bool field 'ok'"},
      {"name -1 > 2", "filter: at 5: operator '-' does not apply to varchar field 'name'"},
      {"qty ** 2 > 1", "filter: at 4: operator '**' is not supported"},
      {"qty + 1 + 2 > 3",
       "filter: at 8: only one arithmetic operator is supported, found '+' after 'qty + 1'"},
      {"qty * 2 -1 > 3", "filter: at 8: only one arithmetic operator is supported, found '-1'"},
      {"qty + stock > 3", "filter: at 6: expected a number after '+', found 'stock'"},
      {"qty * > 1", "filter: at 6: expected a number after '*', found '>'"},
      {"qty + 'a' > 1", "filter: at 6: expected a number after '+', found ''a''"},
      {"qty + 1 > stock",
       "filter: at 10: an arithmetic comparison needs a number on the other side, found int64 "
       "field 'stock'"},
      {"stock < qty + 1",
       "filter: at 0: an arithmetic comparison needs a number on the other side, found int64 "
       "field 'stock'"},
      {"qty + 1 > 'a'", "filter: at 10: cannot compare 'qty + 1' with a string"},
      {"qty + 1 == true", "filter: at 11: cannot compare 'qty + 1' with a bool"},
      {"qty + 1 in [1]",
       "filter: at 8: expected a comparison operator after 'qty + 1', found 'in'"},
      {"qty + 1", "filter: at 7: expected a comparison operator after 'qty + 1', found the end"},
      {"2 * qty > 1", "filter: at 2: expected a comparison operator after '2', found '*'"},
      {"qty % 2", "filter: at 7: expected a comparison operator after 'qty % 2'"},
  };
  for (const auto& [expr, want] : cases) {
    EXPECT_EQ(ParseError(expr).substr(0, want.size()), want) << expr;
  }
}

// ---------------------------------------------------------------------------------------------
// Randomized: random expressions over random data against a per-row reference evaluator.

using Value = std::variant<bool, int64_t, double, std::string>;

enum class Op { kEq, kNe, kLt, kLe, kGt, kGe };

// The reference: one row at a time, numbers compared as long double, which holds every int64
// and every double exactly (x86-64 extended precision), so no rounding can hide a bug.
static_assert(std::numeric_limits<long double>::digits >= 64);

template <typename T>
bool Holds(Op op, const T& a, const T& b) {
  switch (op) {
    case Op::kEq:
      return a == b;
    case Op::kNe:
      return a != b;
    case Op::kLt:
      return a < b;
    case Op::kLe:
      return a <= b;
    case Op::kGt:
      return a > b;
    case Op::kGe:
      return a >= b;
  }
  return false;
}

bool HoldsValues(Op op, const Value& a, const Value& b) {
  auto number = [](const Value& v) -> long double {
    if (auto* i = std::get_if<int64_t>(&v)) return static_cast<long double>(*i);
    return static_cast<long double>(std::get<double>(v));
  };
  if (auto* s = std::get_if<std::string>(&a)) return Holds(op, *s, std::get<std::string>(b));
  if (auto* x = std::get_if<bool>(&a)) return Holds(op, *x, std::get<bool>(b));
  return Holds(op, number(a), number(b));
}

struct Expr {
  enum Kind { kConst, kAnd, kOr, kNot, kBoolField, kCompare, kIn } kind = kConst;
  bool value = false;          // kConst; kIn: negated
  std::vector<Expr> kids;      // kAnd, kOr, kNot
  std::string field;           // kBoolField, kCompare (left), kIn
  std::string field2;          // kCompare: right-hand field, or "" for `literal`
  Value literal;               // kCompare
  bool literal_first = false;  // kCompare: render as `literal op field`
  Op op = Op::kEq;
  std::vector<Value> list;  // kIn
};

class RandomFilters {
 public:
  explicit RandomFilters(uint64_t seed) : rng_(seed) {}

  int64_t Int() {
    static constexpr int64_t kEdges[] = {kI64Min,           kI64Max,          9007199254740993,
                                         -9007199254740993, 9007199254740992, kI64Max - 1};
    if (Chance(0.05)) return kEdges[Below(std::size(kEdges))];
    return static_cast<int64_t>(Below(11)) - 5;
  }
  double Double(bool allow_nan_inf) {
    static constexpr double kEdges[] = {-2.5,
                                        -1.0,
                                        -0.0,
                                        0.0,
                                        0.5,
                                        1.0,
                                        2.0,
                                        2.5,
                                        3.0,
                                        1e19,
                                        -1e19,
                                        9007199254740992.0,
                                        9223372036854775808.0,
                                        -9223372036854775808.0,
                                        1e300,
                                        0.1};
    if (allow_nan_inf && Chance(0.1)) return std::numeric_limits<double>::quiet_NaN();
    if (allow_nan_inf && Chance(0.02)) return Chance(0.5) ? kInf : -kInf;
    if (Chance(0.4)) return kEdges[Below(std::size(kEdges))];
    return std::uniform_real_distribution<double>(-6, 6)(rng_);
  }
  std::string String() {
    static constexpr char kChars[] = {'a', 'b', 'A', '"', '\'', '\\', '\n', '\t', '\xc3', ' '};
    std::string s(Below(4), ' ');
    for (char& c : s) c = kChars[Below(std::size(kChars))];
    return s;
  }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  size_t Below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  Table MakeTable(int64_t rows) {
    Table t(rows);
    std::vector<int64_t> qty(rows), stock(rows), id(rows);
    std::vector<double> price(rows), cost(rows);
    std::vector<uint8_t> ok(rows), flag(rows);
    std::vector<std::string> name(rows), color(rows);
    for (int64_t i = 0; i < rows; ++i) {
      id[i] = i;
      qty[i] = Int();
      stock[i] = Int();
      price[i] = Double(true);
      cost[i] = Double(true);
      ok[i] = Chance(0.5);
      flag[i] = Chance(0.5);
      name[i] = String();
      color[i] = String();
    }
    t.AddInt64("id", id);
    t.AddInt64("qty", qty);
    t.AddInt64("stock", stock);
    t.AddDouble("price", price);
    t.AddDouble("cost", cost);
    t.AddBool("ok", ok);
    t.AddBool("flag", flag);
    t.AddVarchar("name", name);
    t.AddVarchar("color", color);
    return t;
  }

  // A literal that may be compared with `type`.
  Value Literal(FieldType type) {
    switch (type) {
      case FieldType::kInt64:
      case FieldType::kDouble:
        if (Chance(0.5)) return Int();
        return Double(false);
      case FieldType::kBool:
        return Chance(0.5);
      default:
        return String();
    }
  }

  Expr Make(int depth) {
    Expr e;
    if (depth > 0 && Chance(0.6)) {
      const size_t pick = Below(3);
      e.kind = pick == 0 ? Expr::kAnd : pick == 1 ? Expr::kOr : Expr::kNot;
      const size_t n = e.kind == Expr::kNot ? 1 : 2 + Below(3);
      for (size_t i = 0; i < n; ++i) e.kids.push_back(Make(depth - 1));
      return e;
    }
    static const std::pair<std::string, FieldType> kFields[] = {
        {"id", FieldType::kInt64},     {"qty", FieldType::kInt64},
        {"stock", FieldType::kInt64},  {"price", FieldType::kDouble},
        {"cost", FieldType::kDouble},  {"ok", FieldType::kBool},
        {"flag", FieldType::kBool},    {"name", FieldType::kVarchar},
        {"color", FieldType::kVarchar}};
    const auto& [field, type] = kFields[Below(std::size(kFields))];
    e.field = field;
    const bool is_bool = type == FieldType::kBool;
    switch (Below(8)) {
      case 0:
        e.kind = Expr::kConst;
        e.value = Chance(0.5);
        return e;
      case 1:
      case 2:
        e.kind = Expr::kIn;
        e.value = Chance(0.5);
        for (size_t n = Below(5); n > 0; --n) e.list.push_back(Literal(type));
        return e;
      default:
        break;
    }
    if (is_bool && Chance(0.3)) {
      e.kind = Expr::kBoolField;
      return e;
    }
    e.kind = Expr::kCompare;
    e.op = static_cast<Op>(Below(is_bool ? 2 : 6));
    if (Chance(0.3)) {  // another field of a comparable type
      std::vector<std::string> others;
      for (const auto& [f2, t2] : kFields) {
        const bool numeric = type == FieldType::kInt64 || type == FieldType::kDouble;
        const bool numeric2 = t2 == FieldType::kInt64 || t2 == FieldType::kDouble;
        if (t2 == type || (numeric && numeric2)) others.push_back(f2);
      }
      e.field2 = others[Below(others.size())];
    } else {
      e.literal = Literal(type);
      e.literal_first = Chance(0.3);
    }
    return e;
  }

  std::string Render(const Expr& e) {
    switch (e.kind) {
      case Expr::kConst:
        return Pick({e.value ? "true" : "false", e.value ? "TRUE" : "False"});
      case Expr::kAnd:
      case Expr::kOr: {
        std::string out;
        for (const Expr& kid : e.kids) {
          if (!out.empty()) {
            out += e.kind == Expr::kAnd ? Pick({" and ", " AND ", " && ", "&&"})
                                        : Pick({" or ", " Or ", " || ", "||"});
          }
          // An Or inside an And needs parentheses; anything may have them.
          const bool needs = e.kind == Expr::kAnd && kid.kind == Expr::kOr;
          out += Paren(Render(kid), needs || Chance(0.1));
        }
        return out;
      }
      case Expr::kNot: {
        const Expr& kid = e.kids[0];
        const bool needs = kid.kind == Expr::kAnd || kid.kind == Expr::kOr;
        return Pick({"not ", "NOT ", "!", "! "}) + Paren(Render(kid), needs || Chance(0.1));
      }
      case Expr::kBoolField:
        return e.field;
      case Expr::kCompare: {
        static const char* const kOps[][2] = {{"==", "="},  {"!=", "<>"}, {"<", "<"},
                                              {"<=", "<="}, {">", ">"},   {">=", ">="}};
        static constexpr Op kMirror[] = {Op::kEq, Op::kNe, Op::kGt, Op::kGe, Op::kLt, Op::kLe};
        const char* sep = Chance(0.8) ? " " : "";
        if (!e.field2.empty()) return e.field + sep + kOps[int(e.op)][Below(2)] + sep + e.field2;
        if (e.literal_first) {
          return RenderValue(e.literal) + sep + kOps[int(kMirror[int(e.op)])][Below(2)] + sep +
                 e.field;
        }
        return e.field + sep + kOps[int(e.op)][Below(2)] + sep + RenderValue(e.literal);
      }
      case Expr::kIn: {
        std::string out = e.field + (e.value ? Pick({" not in [", " NOT IN ["}) : " in [");
        for (size_t i = 0; i < e.list.size(); ++i) {
          out += (i > 0 ? Pick({", ", ","}) : "") + RenderValue(e.list[i]);
        }
        return out + "]";
      }
    }
    return "";
  }

  std::string RenderValue(const Value& v) {
    if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
    if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
    if (auto* d = std::get_if<double>(&v)) {
      char buf[64];
      std::string s(buf, std::to_chars(buf, buf + sizeof(buf), *d).ptr);
      // Shortest form may have neither '.' nor 'e' ("3", "123456789012345680000"): keep it a
      // float literal.
      if (s.find_first_of(".e") == std::string::npos) s += ".0";
      return s;
    }
    const std::string& s = std::get<std::string>(v);
    const char quote = Chance(0.5) ? '"' : '\'';
    std::string out(1, quote);
    for (char c : s) {
      if (c == quote || c == '\\') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\t' && Chance(0.5)) {
        out += "\\t";
      } else {
        out += c;
      }
    }
    return out + quote;
  }

 private:
  std::string Pick(std::initializer_list<const char*> options) {
    return *(options.begin() + Below(options.size()));
  }
  std::string Paren(const std::string& s, bool wrap) { return wrap ? "(" + s + ")" : s; }

  std::mt19937_64 rng_;
};

Value RowValue(const Table& t, const std::string& field, int64_t row) {
  if (field == "id" || field == "qty" || field == "stock") return t.Int64(field, row);
  if (field == "price" || field == "cost") return t.Double(field, row);
  if (field == "ok" || field == "flag") return t.Bool(field, row);
  return t.Varchar(field, row);
}

bool Reference(const Expr& e, const Table& t, int64_t row) {
  switch (e.kind) {
    case Expr::kConst:
      return e.value;
    case Expr::kAnd:
      for (const Expr& kid : e.kids) {
        if (!Reference(kid, t, row)) return false;
      }
      return true;
    case Expr::kOr:
      for (const Expr& kid : e.kids) {
        if (Reference(kid, t, row)) return true;
      }
      return false;
    case Expr::kNot:
      return !Reference(e.kids[0], t, row);
    case Expr::kBoolField:
      return t.Bool(e.field, row);
    case Expr::kCompare: {
      const Value rhs = e.field2.empty() ? e.literal : RowValue(t, e.field2, row);
      return HoldsValues(e.op, RowValue(t, e.field, row), rhs);
    }
    case Expr::kIn: {
      const Value v = RowValue(t, e.field, row);
      bool found = false;
      for (const Value& item : e.list) found = found || HoldsValues(Op::kEq, v, item);
      return found != e.value;
    }
  }
  return false;
}

TEST(FilterTest, RandomExpressionsMatchReference) {
  constexpr int64_t kRows = 5000;
  constexpr int kExpressions = 2000;
  RandomFilters gen(20240611);
  const Table table = gen.MakeTable(kRows);
  const CollectionSchema schema = TestSchema();
  int64_t matched = 0;
  for (int n = 0; n < kExpressions; ++n) {
    const Expr e = gen.Make(4);
    const std::string text = gen.Render(e);
    Result<Filter> f = Filter::Parse(text, schema);
    ASSERT_OK(f) << text;
    Bitset bits;
    ASSERT_OK(f->Evaluate(table, &bits)) << text;
    ASSERT_EQ(bits.size(), kRows);
    for (int64_t row = 0; row < kRows; ++row) {
      ASSERT_EQ(bits.test(row), Reference(e, table, row)) << "row " << row << " of: " << text;
    }
    matched += bits.count();
  }
  // Expressions that match nothing or everything test little: most rows should be mixed.
  EXPECT_GT(matched, kRows * kExpressions / 10);
  EXPECT_LT(matched, kRows * kExpressions * 9 / 10);
}

// ---------------------------------------------------------------------------------------------
// Randomized json: random conditions on json paths mixed with plain ones, over random
// documents, against a reference that parses each document into nlohmann's DOM and walks it.
// Numbers stay within what long double holds exactly, so the reference compares them there.

struct PathStep {
  std::string key;
  int64_t index = -1;  // >= 0: an array index
};

struct JsonLeaf {
  enum Kind { kCompare, kIn, kLike, kArith, kQty, kOk } kind = kCompare;
  std::vector<PathStep> path;  // json leaves
  std::string path_text;
  Op op = Op::kEq;
  Value literal;            // kCompare, kArith (the right-hand side), kQty
  std::vector<Value> list;  // kIn
  std::string pattern;      // kLike, as written between the quotes
  char arith = '+';         // kArith
  Value operand;            // kArith: int64_t or double
};

struct JsonExpr {
  enum Kind { kLeaf, kAnd, kOr, kNot } kind = kLeaf;
  JsonLeaf leaf;
  std::vector<JsonExpr> kids;
};

// The reference like: a DP over code points (the random strings are valid UTF-8).
std::vector<std::string> Units(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

bool RefLike(const std::string& text, const std::string& written) {
  struct Elem {
    int kind;  // 0 literal unit, 1 '_', 2 '%'
    std::string unit;
  };
  std::vector<Elem> pat;
  const std::vector<std::string> units = Units(written);
  for (size_t i = 0; i < units.size(); ++i) {
    if (units[i] == "\\") {
      pat.push_back({0, units[++i]});
    } else if (units[i] == "%" || units[i] == "_") {
      pat.push_back({units[i] == "%" ? 2 : 1, ""});
    } else {
      pat.push_back({0, units[i]});
    }
  }
  const std::vector<std::string> t = Units(text);
  // can[j]: the first i text units are matched by the first j pattern elements.
  std::vector<std::vector<bool>> can(t.size() + 1, std::vector<bool>(pat.size() + 1, false));
  can[0][0] = true;
  for (size_t i = 0; i <= t.size(); ++i) {
    for (size_t j = 1; j <= pat.size(); ++j) {
      const Elem& e = pat[j - 1];
      if (e.kind == 2) {
        can[i][j] = can[i][j - 1] || (i > 0 && can[i - 1][j]);
      } else if (i > 0) {
        can[i][j] = can[i - 1][j - 1] && (e.kind == 1 || e.unit == t[i - 1]);
      }
    }
  }
  return can[t.size()][pat.size()];
}

class RandomJson {
 public:
  explicit RandomJson(uint64_t seed) : rng_(seed) {}

  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  size_t Below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  std::string Str() {
    static const char* const kUnits[] = {"a", "b", "\xc3\xa9", "%", "_"};
    std::string s;
    for (size_t n = Below(4); n > 0; --n) s += kUnits[Below(std::size(kUnits))];
    return s;
  }
  // A JSON number as text, and whether it is an integer.
  std::string NumText() {
    static const char* const kNums[] = {"0",
                                        "1",
                                        "-1",
                                        "2",
                                        "3",
                                        "-3",
                                        "1.0",
                                        "2.5",
                                        "-0.0",
                                        "0.5",
                                        "1e2",
                                        "-2.5",
                                        "9007199254740993",
                                        "-9007199254740993",
                                        "4611686018427387904",
                                        "9007199254740992.0"};
    return kNums[Below(std::size(kNums))];
  }
  std::string ValueText(int depth) {
    switch (Below(depth > 0 ? 8 : 6)) {
      case 0:
      case 1:
        return NumText();
      case 2:
        return "\"" + Str() + "\"";
      case 3:
        return Chance(0.5) ? "true" : "false";
      case 4:
        return Chance(0.3) ? "null" : NumText();
      case 5:
        return Chance(0.5) ? "\"" + Str() + "\"" : NumText();
      case 6:
        return "[" + ValueText(depth - 1) + (Chance(0.5) ? ", " + ValueText(depth - 1) : "") + "]";
      default:
        return Object(depth - 1);
    }
  }
  std::string Object(int depth) {
    static const char* const kKeys[] = {"a", "b", "s", "o", "arr"};
    std::string out = "{";
    for (size_t n = Below(5); n > 0; --n) {
      if (out.size() > 1) out += ", ";
      out += "\"" + std::string(kKeys[Below(std::size(kKeys))]) + "\": " + ValueText(depth);
    }
    return out + "}";
  }
  std::string Document() {
    static const char* const kInvalid[] = {"",
                                           "{",
                                           "{\"a\": 1,}",
                                           "[1, 2",
                                           "nul",
                                           "{\"a\": 1} x",
                                           "{\"a\": 1e999}",
                                           "{\"s\": \"\xff\"}"};
    if (Chance(0.08)) return kInvalid[Below(std::size(kInvalid))];
    if (Chance(0.05)) return ValueText(1);  // not an object
    return Object(2);
  }

  Value Literal() {
    switch (Below(4)) {
      case 0:
        return static_cast<int64_t>(Below(7)) - 3;
      case 1: {
        static constexpr double kDoubles[] = {-2.5, -0.0, 0.5, 1.0, 2.5, 100.0, 9007199254740992.0};
        return kDoubles[Below(std::size(kDoubles))];
      }
      case 2:
        return Str();
      default:
        return Chance(0.5);
    }
  }

  JsonLeaf Leaf() {
    JsonLeaf l;
    switch (Below(9)) {
      case 0:
        l.kind = JsonLeaf::kQty;
        l.op = static_cast<Op>(Below(6));
        l.literal = static_cast<int64_t>(Below(7)) - 3;
        return l;
      case 1:
        l.kind = JsonLeaf::kOk;
        return l;
      default:
        break;
    }
    static const std::vector<std::vector<PathStep>> kPaths = {
        {{"a"}}, {{"b"}}, {{"s"}}, {{"o"}, {"a"}}, {{"arr"}, {"", 0}}, {{"arr"}, {"", 1}}, {{"o"}}};
    l.path = kPaths[Below(kPaths.size())];
    l.path_text = "doc";
    for (const PathStep& s : l.path) {
      l.path_text += s.index >= 0 ? "[" + std::to_string(s.index) + "]" : "[\"" + s.key + "\"]";
    }
    switch (Below(5)) {
      case 0:
        l.kind = JsonLeaf::kIn;
        for (size_t n = Below(4); n > 0; --n) l.list.push_back(Literal());
        return l;
      case 1: {
        l.kind = JsonLeaf::kLike;
        static const char* const kUnits[] = {"a", "b", "\xc3\xa9", "%", "_", "\\%", "\\_"};
        for (size_t n = Below(5); n > 0; --n) l.pattern += kUnits[Below(std::size(kUnits))];
        return l;
      }
      case 2: {
        l.kind = JsonLeaf::kArith;
        static const char kOps[] = {'+', '-', '*', '/', '%'};
        l.arith = kOps[Below(std::size(kOps))];
        if (l.arith == '%' || Chance(0.7)) {
          l.operand = static_cast<int64_t>(Below(3)) + 1;  // 1..3, never 0
        } else {
          l.operand = Chance(0.5) ? 0.5 : -2.0;
        }
        l.op = static_cast<Op>(Below(6));
        l.literal = Chance(0.5) ? Value(static_cast<int64_t>(Below(9)) - 4) : Value(1.5);
        return l;
      }
      default: {
        l.kind = JsonLeaf::kCompare;
        l.literal = Literal();
        l.op = static_cast<Op>(Below(std::holds_alternative<bool>(l.literal) ? 2 : 6));
        return l;
      }
    }
  }

  JsonExpr Make(int depth) {
    JsonExpr e;
    if (depth > 0 && Chance(0.6)) {
      const size_t pick = Below(3);
      e.kind = pick == 0 ? JsonExpr::kAnd : pick == 1 ? JsonExpr::kOr : JsonExpr::kNot;
      const size_t n = e.kind == JsonExpr::kNot ? 1 : 2 + Below(3);
      for (size_t i = 0; i < n; ++i) e.kids.push_back(Make(depth - 1));
      return e;
    }
    e.leaf = Leaf();
    return e;
  }

  static std::string RenderValue(const Value& v) {
    if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
    if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
    if (auto* d = std::get_if<double>(&v)) {
      char buf[64];
      std::string s(buf, std::to_chars(buf, buf + sizeof(buf), *d).ptr);
      if (s.find_first_of(".e") == std::string::npos) s += ".0";
      return s;
    }
    return "'" + std::get<std::string>(v) + "'";
  }

  static std::string Render(const JsonExpr& e) {
    static const char* const kOps[] = {"==", "!=", "<", "<=", ">", ">="};
    switch (e.kind) {
      case JsonExpr::kAnd:
      case JsonExpr::kOr: {
        std::string out;
        for (const JsonExpr& kid : e.kids) {
          if (!out.empty()) out += e.kind == JsonExpr::kAnd ? " and " : " or ";
          out += "(" + Render(kid) + ")";
        }
        return out;
      }
      case JsonExpr::kNot:
        return "not (" + Render(e.kids[0]) + ")";
      case JsonExpr::kLeaf:
        break;
    }
    const JsonLeaf& l = e.leaf;
    switch (l.kind) {
      case JsonLeaf::kQty:
        return std::string("qty ") + kOps[int(l.op)] + " " + RenderValue(l.literal);
      case JsonLeaf::kOk:
        return "ok";
      case JsonLeaf::kCompare:
        return l.path_text + " " + kOps[int(l.op)] + " " + RenderValue(l.literal);
      case JsonLeaf::kIn: {
        std::string out = l.path_text + " in [";
        for (size_t i = 0; i < l.list.size(); ++i) out += (i ? ", " : "") + RenderValue(l.list[i]);
        return out + "]";
      }
      case JsonLeaf::kLike:
        return l.path_text + " like '" + l.pattern + "'";
      case JsonLeaf::kArith:
        return l.path_text + " " + l.arith + " " + RenderValue(l.operand) + " " + kOps[int(l.op)] +
               " " + RenderValue(l.literal);
    }
    return "";
  }

 private:
  std::mt19937_64 rng_;
};

// The reference's view of a JSON number: exact in long double for every value generated.
bool RefNumber(const nlohmann::json& j, bool* is_int, long double* v) {
  if (j.is_number_integer()) {  // signed and unsigned
    *is_int = true;
    *v = j.is_number_unsigned() ? static_cast<long double>(j.get<uint64_t>())
                                : static_cast<long double>(j.get<int64_t>());
    return true;
  }
  if (j.is_number_float()) {
    *is_int = false;
    *v = j.get<double>();
    return true;
  }
  return false;
}

long double AsLongDouble(const Value& v) {
  if (auto* i = std::get_if<int64_t>(&v)) return static_cast<long double>(*i);
  return std::get<double>(v);
}

bool RefEqual(const nlohmann::json& j, const Value& lit) {
  bool is_int = false;
  long double x = 0;
  if (auto* b = std::get_if<bool>(&lit)) return j.is_boolean() && j.get<bool>() == *b;
  if (auto* s = std::get_if<std::string>(&lit)) return j.is_string() && j.get<std::string>() == *s;
  return RefNumber(j, &is_int, &x) && x == AsLongDouble(lit);
}

bool RefLeaf(const JsonLeaf& l, const nlohmann::json* doc, int64_t qty, bool ok) {
  if (l.kind == JsonLeaf::kQty) return HoldsValues(l.op, Value(qty), l.literal);
  if (l.kind == JsonLeaf::kOk) return ok;
  const nlohmann::json* j = doc;
  for (const PathStep& s : l.path) {
    if (j == nullptr) break;
    if (s.index >= 0) {
      j = j->is_array() && static_cast<size_t>(s.index) < j->size() ? &(*j)[s.index] : nullptr;
    } else {
      const auto it = j->is_object() ? j->find(s.key) : j->end();
      j = j->is_object() && it != j->end() ? &*it : nullptr;
    }
  }
  if (j == nullptr) return false;
  bool is_int = false;
  long double x = 0;
  switch (l.kind) {
    case JsonLeaf::kCompare:
      if (auto* b = std::get_if<bool>(&l.literal)) {
        return j->is_boolean() && Holds(l.op, j->get<bool>(), *b);
      }
      if (auto* s = std::get_if<std::string>(&l.literal)) {
        return j->is_string() && Holds(l.op, j->get<std::string>(), *s);
      }
      return RefNumber(*j, &is_int, &x) && Holds(l.op, x, AsLongDouble(l.literal));
    case JsonLeaf::kIn:
      for (const Value& item : l.list) {
        if (RefEqual(*j, item)) return true;
      }
      return false;
    case JsonLeaf::kLike:
      return j->is_string() && RefLike(j->get<std::string>(), l.pattern);
    case JsonLeaf::kArith: {
      if (!RefNumber(*j, &is_int, &x)) return false;
      const bool int_operand = std::holds_alternative<int64_t>(l.operand);
      const long double c = AsLongDouble(l.operand);
      long double r = 0;
      if (is_int && int_operand && l.arith != '/') {  // exact: |x * c| < 2^64 here
        r = l.arith == '+'   ? x + c
            : l.arith == '-' ? x - c
            : l.arith == '*'
                ? x * c
                : static_cast<long double>(static_cast<int64_t>(x) % std::get<int64_t>(l.operand));
      } else {
        if (l.arith == '%') return false;
        const double a = static_cast<double>(x), b = static_cast<double>(c);
        r = l.arith == '+' ? a + b : l.arith == '-' ? a - b : l.arith == '*' ? a * b : a / b;
      }
      return Holds(l.op, r, AsLongDouble(l.literal));
    }
    default:
      break;
  }
  return false;
}

bool RefJson(const JsonExpr& e, const nlohmann::json* doc, int64_t qty, bool ok) {
  switch (e.kind) {
    case JsonExpr::kAnd:
      for (const JsonExpr& kid : e.kids) {
        if (!RefJson(kid, doc, qty, ok)) return false;
      }
      return true;
    case JsonExpr::kOr:
      for (const JsonExpr& kid : e.kids) {
        if (RefJson(kid, doc, qty, ok)) return true;
      }
      return false;
    case JsonExpr::kNot:
      return !RefJson(e.kids[0], doc, qty, ok);
    case JsonExpr::kLeaf:
      break;
  }
  return RefLeaf(e.leaf, doc, qty, ok);
}

TEST(FilterJsonTest, RandomExpressionsMatchReference) {
  constexpr int64_t kRows = 2000;
  constexpr int kExpressions = 600;
  RandomJson gen(20250101);
  std::vector<std::string> docs(kRows);
  std::vector<int64_t> ids(kRows), qty(kRows);
  std::vector<uint8_t> ok(kRows);
  std::vector<nlohmann::json> dom(kRows);
  for (int64_t i = 0; i < kRows; ++i) {
    docs[i] = gen.Document();
    ids[i] = i;
    qty[i] = static_cast<int64_t>(gen.Below(7)) - 3;
    ok[i] = gen.Chance(0.5);
    dom[i] = nlohmann::json::parse(docs[i], nullptr, /*allow_exceptions=*/false);
  }
  Table table(kRows);
  table.AddInt64("id", ids);
  table.AddInt64("qty", qty);
  table.AddBool("ok", ok);
  table.AddVarchar("doc", docs, FieldType::kJson);
  const CollectionSchema schema = JsonSchema();
  int64_t matched = 0;
  for (int n = 0; n < kExpressions; ++n) {
    const JsonExpr e = gen.Make(3);
    const std::string text = RandomJson::Render(e);
    Result<Filter> f = Filter::Parse(text, schema);
    ASSERT_OK(f) << text;
    Bitset bits;
    ASSERT_OK(f->Evaluate(table, &bits)) << text;
    for (int64_t row = 0; row < kRows; ++row) {
      const nlohmann::json* doc = dom[row].is_discarded() ? nullptr : &dom[row];
      ASSERT_EQ(bits.test(row), RefJson(e, doc, qty[row], ok[row] != 0))
          << "row " << row << " (" << docs[row] << ") of: " << text;
    }
    matched += bits.count();
  }
  EXPECT_GT(matched, kRows * kExpressions / 20);
  EXPECT_LT(matched, kRows * kExpressions * 19 / 20);
}

}  // namespace
}  // namespace vlake::vector
