#include "vector/filter.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <map>
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

  void AddInt64(const std::string& name, std::vector<int64_t> v) {
    cols_[name].type = FieldType::kInt64;
    cols_[name].ints = std::move(v);
  }
  void AddDouble(const std::string& name, std::vector<double> v) {
    cols_[name].type = FieldType::kDouble;
    cols_[name].doubles = std::move(v);
  }
  void AddBool(const std::string& name, std::vector<uint8_t> v) {
    cols_[name].type = FieldType::kBool;
    cols_[name].bools = std::move(v);
  }
  void AddVarchar(const std::string& name, const std::vector<std::string>& v) {
    Col& c = cols_[name];
    c.type = FieldType::kVarchar;
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

}  // namespace
}  // namespace vlake::vector
