#include "vector/filter.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <compare>
#include <functional>
#include <utility>
#include <variant>

namespace vlake::vector {
namespace internal {

enum class CmpOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };

// A literal as written; the parser turns it into the column's own type before evaluation.
using Literal = std::variant<bool, int64_t, double, std::string>;

// One node of the parsed tree. Leaves name columns by index into Filter::fields_. Parsing
// resolves every type question, so a leaf's literal or set already has its column's C++ type
// (int64_t, double or std::string) and evaluation cannot fail.
struct FilterNode {
  enum class Kind : uint8_t {
    kConst,          // value
    kAnd,            // children, two or more
    kOr,             // children, two or more
    kNot,            // children[0]
    kBoolField,      // column is set
    kCompare,        // column op literal
    kCompareFields,  // column op column2; int64 vs double always has the int64 as column
    kIn,             // column's value is in the set of its type (sorted, unique, no NaN)
  };
  Kind kind = Kind::kConst;
  bool value = false;
  std::vector<std::unique_ptr<FilterNode>> children;
  int column = -1;
  int column2 = -1;
  CmpOp op = CmpOp::kEq;
  Literal literal;
  std::vector<int64_t> int_set;
  std::vector<double> double_set;
  std::vector<std::string> string_set;
};

}  // namespace internal

namespace {

// The type a filter compares a column as: the narrow integers as int64, float32 as double
// (their columns hold int64 and double values).
FieldType Canonical(FieldType t) {
  switch (StorageOf(t)) {
    case Storage::kInt64: return FieldType::kInt64;
    case Storage::kDouble: return FieldType::kDouble;
    default: return t;
  }
}

using internal::CmpOp;
using internal::FilterNode;
using internal::Literal;
using NodePtr = std::unique_ptr<FilterNode>;
using Kind = FilterNode::Kind;

constexpr double kTwoPow63 = 0x1p63;  // the first double above every int64

// ---------------------------------------------------------------------------------------------
// Evaluation

// Calls pred(i) for every row and collects the answers 64 at a time, so the predicate loop has
// no data-dependent branch (one per row mispredicts at middling selectivity: 2-3x slower).
// Bitset has no word-level write, so matches are then set bit by bit.
template <typename Pred>
Bitset Select(int64_t rows, Pred pred) {
  Bitset out(rows);
  for (int64_t base = 0; base < rows; base += 64) {
    const int64_t n = std::min<int64_t>(64, rows - base);
    uint64_t word = 0;
    for (int64_t j = 0; j < n; ++j) word |= uint64_t{pred(base + j)} << j;
    for (; word != 0; word &= word - 1) out.set(base + std::countr_zero(word));
  }
  return out;
}

// Rows where lhs(i) op rhs(i). The operators are the built-in ones (IEEE for doubles: NaN
// satisfies only !=), except for ExactInt below.
template <typename L, typename R>
Bitset Scan(int64_t rows, CmpOp op, L lhs, R rhs) {
  switch (op) {
    case CmpOp::kEq:
      return Select(rows, [&](int64_t i) { return lhs(i) == rhs(i); });
    case CmpOp::kNe:
      return Select(rows, [&](int64_t i) { return lhs(i) != rhs(i); });
    case CmpOp::kLt:
      return Select(rows, [&](int64_t i) { return lhs(i) < rhs(i); });
    case CmpOp::kLe:
      return Select(rows, [&](int64_t i) { return lhs(i) <= rhs(i); });
    case CmpOp::kGt:
      return Select(rows, [&](int64_t i) { return lhs(i) > rhs(i); });
    case CmpOp::kGe:
      return Select(rows, [&](int64_t i) { return lhs(i) >= rhs(i); });
  }
  return Bitset(rows);
}

// An int64 that compares with a double by exact value: converting either side would round
// (2^53 + 1 is no double; 2.5 is no int64).
struct ExactInt {
  int64_t v;

  friend std::partial_ordering operator<=>(ExactInt a, double b) {
    if (std::isnan(b)) return std::partial_ordering::unordered;
    if (b >= kTwoPow63) return std::partial_ordering::less;
    if (b < -kTwoPow63) return std::partial_ordering::greater;
    const double whole = std::trunc(b);  // in [-2^63, 2^63): fits
    const int64_t w = static_cast<int64_t>(whole);
    if (a.v != w) return a.v <=> w;
    return 0.0 <=> (b - whole);  // equal integer parts: b's fraction decides
  }
  friend bool operator==(ExactInt a, double b) { return (a <=> b) == 0; }
};

Bitset EvalCompare(const FilterNode& node, const ColumnView& col, int64_t rows) {
  switch (col.type) {
    case FieldType::kInt64: {
      const int64_t* v = col.int64s();
      const int64_t x = std::get<int64_t>(node.literal);
      return Scan(
          rows, node.op, [v](int64_t i) { return v[i]; }, [x](int64_t) { return x; });
    }
    case FieldType::kDouble: {
      const double* v = col.doubles();
      const double x = std::get<double>(node.literal);
      return Scan(
          rows, node.op, [v](int64_t i) { return v[i]; }, [x](int64_t) { return x; });
    }
    case FieldType::kVarchar: {
      const std::string_view x = std::get<std::string>(node.literal);
      return Scan(
          rows, node.op, [&col](int64_t i) { return col.varchar(i); }, [x](int64_t) { return x; });
    }
    default:
      break;  // bool comparisons become kBoolField at parse time
  }
  VLAKE_CHECK(false);
  return Bitset(rows);
}

Bitset EvalCompareFields(CmpOp op, const ColumnView& a, const ColumnView& b, int64_t rows) {
  if (a.type == FieldType::kInt64 && b.type == FieldType::kDouble) {
    const int64_t* x = a.int64s();
    const double* y = b.doubles();
    return Scan(
        rows, op, [x](int64_t i) { return ExactInt{x[i]}; }, [y](int64_t i) { return y[i]; });
  }
  VLAKE_CHECK(a.type == b.type);
  switch (a.type) {
    case FieldType::kInt64: {
      const int64_t *x = a.int64s(), *y = b.int64s();
      return Scan(
          rows, op, [x](int64_t i) { return x[i]; }, [y](int64_t i) { return y[i]; });
    }
    case FieldType::kDouble: {
      const double *x = a.doubles(), *y = b.doubles();
      return Scan(
          rows, op, [x](int64_t i) { return x[i]; }, [y](int64_t i) { return y[i]; });
    }
    case FieldType::kBool: {
      const uint8_t *x = a.bools(), *y = b.bools();
      return Scan(
          rows, op, [x](int64_t i) { return x[i] != 0; }, [y](int64_t i) { return y[i] != 0; });
    }
    case FieldType::kVarchar:
      return Scan(
          rows, op, [&a](int64_t i) { return a.varchar(i); },
          [&b](int64_t i) { return b.varchar(i); });
    default:
      break;
  }
  VLAKE_CHECK(false);
  return Bitset(rows);
}

Bitset EvalIn(const FilterNode& node, const ColumnView& col, int64_t rows) {
  switch (col.type) {
    case FieldType::kInt64: {
      const int64_t* v = col.int64s();
      const auto& set = node.int_set;
      return Select(rows,
                    [&](int64_t i) { return std::binary_search(set.begin(), set.end(), v[i]); });
    }
    case FieldType::kDouble: {
      // binary_search would call NaN "equivalent" to the first element: NaN is in no set.
      const double* v = col.doubles();
      const auto& set = node.double_set;
      return Select(rows, [&](int64_t i) {
        return !std::isnan(v[i]) && std::binary_search(set.begin(), set.end(), v[i]);
      });
    }
    case FieldType::kVarchar: {
      const auto& set = node.string_set;
      return Select(rows, [&](int64_t i) {
        return std::binary_search(set.begin(), set.end(), col.varchar(i), std::less<>());
      });
    }
    default:
      break;  // bool membership becomes kBoolField/kConst at parse time
  }
  VLAKE_CHECK(false);
  return Bitset(rows);
}

// Recursion depth is bounded by the parser's nesting limit.
Bitset Eval(const FilterNode& node, const std::vector<ColumnView>& cols, int64_t rows) {
  switch (node.kind) {
    case Kind::kConst:
      return Bitset(rows, node.value);
    case Kind::kAnd: {
      Bitset out = Eval(*node.children[0], cols, rows);
      for (size_t k = 1; k < node.children.size() && !out.none(); ++k) {
        out &= Eval(*node.children[k], cols, rows);
      }
      return out;
    }
    case Kind::kOr: {
      Bitset out = Eval(*node.children[0], cols, rows);
      for (size_t k = 1; k < node.children.size() && !out.all(); ++k) {
        out |= Eval(*node.children[k], cols, rows);
      }
      return out;
    }
    case Kind::kNot: {
      Bitset out = Eval(*node.children[0], cols, rows);
      out.Flip();
      return out;
    }
    case Kind::kBoolField: {
      const uint8_t* v = cols[node.column].bools();
      return Select(rows, [v](int64_t i) { return v[i] != 0; });
    }
    case Kind::kCompare:
      return EvalCompare(node, cols[node.column], rows);
    case Kind::kCompareFields:
      return EvalCompareFields(node.op, cols[node.column], cols[node.column2], rows);
    case Kind::kIn:
      return EvalIn(node, cols[node.column], rows);
  }
  VLAKE_CHECK(false);
  return Bitset(rows);
}

// ---------------------------------------------------------------------------------------------
// Lexing

enum class Tok : uint8_t {
  kEnd,
  kIdent,
  kInt,
  kFloat,
  kString,
  kTrue,
  kFalse,
  kAnd,
  kOr,
  kNot,
  kIn,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kCmp,
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t pos = 0;         // byte offset in the expression
  std::string_view raw;   // the token as written, for messages
  CmpOp op = CmpOp::kEq;  // kCmp
  Literal value;          // kInt, kFloat, kString (decoded), kTrue, kFalse
};

Status ErrorAt(size_t pos, std::string what) {
  return Status(Code::kInvalidArgument, "filter: at " + std::to_string(pos) + ": " + what);
}

bool IsSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }

bool KeywordIs(std::string_view word, std::string_view keyword) {
  return word.size() == keyword.size() &&
         std::equal(word.begin(), word.end(), keyword.begin(),
                    [](char a, char k) { return (a | 0x20) == k; });  // k is lowercase
}

Tok KeywordOrIdent(std::string_view word) {
  static constexpr std::pair<std::string_view, Tok> kKeywords[] = {
      {"and", Tok::kAnd}, {"or", Tok::kOr},     {"not", Tok::kNot},
      {"in", Tok::kIn},   {"true", Tok::kTrue}, {"false", Tok::kFalse}};
  for (const auto& [keyword, tok] : kKeywords) {
    if (KeywordIs(word, keyword)) return tok;
  }
  return Tok::kIdent;
}

// Quotes a piece of the input for a message, cut short so a huge token cannot blow it up.
std::string Quote(std::string_view raw) {
  constexpr size_t kMaxShown = 32;
  return raw.size() <= kMaxShown ? "'" + std::string(raw) + "'"
                                 : "'" + std::string(raw.substr(0, kMaxShown)) + "...'";
}

// [sign] (digits [. digits*] | . digits) [(e|E) [sign] digits]; an integer when it has neither
// '.' nor an exponent. Called at a sign or digit that starts_number() accepted.
Status LexNumber(std::string_view s, size_t* p, Token* t) {
  const size_t start = *p;
  size_t q = start;
  auto digits = [&] {
    const size_t from = q;
    while (q < s.size() && IsDigit(s[q])) ++q;
    return q - from;
  };
  if (s[q] == '+' || s[q] == '-') ++q;
  bool is_float = false;
  digits();  // the caller saw a digit here or after the '.'
  if (q < s.size() && s[q] == '.') {
    ++q;
    digits();
    is_float = true;
  }
  if (q < s.size() && (s[q] == 'e' || s[q] == 'E')) {
    ++q;
    if (q < s.size() && (s[q] == '+' || s[q] == '-')) ++q;
    if (digits() == 0) return ErrorAt(q, "expected exponent digits");
    is_float = true;
  }
  if (q < s.size() && (IsIdentChar(s[q]) || s[q] == '.')) {
    while (q < s.size() && (IsIdentChar(s[q]) || s[q] == '.')) ++q;
    return ErrorAt(start, "malformed number " + Quote(s.substr(start, q - start)));
  }
  t->raw = s.substr(start, q - start);
  // from_chars takes '-' but not '+'.
  const char* first = s.data() + start + (s[start] == '+' ? 1 : 0);
  const char* last = s.data() + q;
  if (is_float) {
    double d = 0;
    auto [end, ec] = std::from_chars(first, last, d);
    if (ec != std::errc() || end != last) {
      return ErrorAt(start, "number " + Quote(t->raw) + " is out of the range of a double");
    }
    t->kind = Tok::kFloat;
    t->value = d;
  } else {
    int64_t i = 0;
    auto [end, ec] = std::from_chars(first, last, i);
    if (ec != std::errc() || end != last) {
      return ErrorAt(start, "integer " + Quote(t->raw) + " does not fit in int64");
    }
    t->kind = Tok::kInt;
    t->value = i;
  }
  *p = q;
  return Status::Ok();
}

Status LexString(std::string_view s, size_t* p, Token* t) {
  const size_t start = *p;
  const char quote = s[start];
  std::string text;
  size_t q = start + 1;
  for (;;) {
    if (q >= s.size()) return ErrorAt(start, "unterminated string");
    const char c = s[q];
    if (c == quote) break;
    if (c != '\\') {
      text.push_back(c);
      ++q;
      continue;
    }
    if (q + 1 >= s.size()) return ErrorAt(start, "unterminated string");
    static constexpr std::string_view kEscapes = "\"'\\nt", kDecoded = "\"'\\\n\t";
    const size_t k = kEscapes.find(s[q + 1]);
    if (k == std::string_view::npos) {
      return ErrorAt(q,
                     "unknown escape " + Quote(s.substr(q, 2)) + " (use \\\" \\' \\\\ \\n or \\t)");
    }
    text.push_back(kDecoded[k]);
    q += 2;
  }
  t->kind = Tok::kString;
  t->raw = s.substr(start, q + 1 - start);
  t->value = std::move(text);
  *p = q + 1;
  return Status::Ok();
}

// Operators and punctuation; longest first, so "<=" is not read as "<" then "=".
struct Punct {
  std::string_view text;
  Tok kind;
  CmpOp op = CmpOp::kEq;
};
constexpr Punct kPuncts[] = {
    {"==", Tok::kCmp, CmpOp::kEq},
    {"!=", Tok::kCmp, CmpOp::kNe},
    {"<>", Tok::kCmp, CmpOp::kNe},
    {"<=", Tok::kCmp, CmpOp::kLe},
    {">=", Tok::kCmp, CmpOp::kGe},
    {"&&", Tok::kAnd},
    {"||", Tok::kOr},
    {"=", Tok::kCmp, CmpOp::kEq},
    {"<", Tok::kCmp, CmpOp::kLt},
    {">", Tok::kCmp, CmpOp::kGt},
    {"!", Tok::kNot},
    {"(", Tok::kLParen},
    {")", Tok::kRParen},
    {"[", Tok::kLBracket},
    {"]", Tok::kRBracket},
    {",", Tok::kComma},
};

// Splits the whole expression into tokens, ending with one kEnd.
Result<std::vector<Token>> Lex(std::string_view s) {
  const auto starts_number = [&](size_t i) {
    return i < s.size() &&
           (IsDigit(s[i]) || (s[i] == '.' && i + 1 < s.size() && IsDigit(s[i + 1])));
  };
  std::vector<Token> tokens;
  size_t p = 0;
  for (;;) {
    while (p < s.size() && IsSpace(s[p])) ++p;
    Token t;
    t.pos = p;
    if (p == s.size()) {
      tokens.push_back(std::move(t));
      return tokens;
    }
    const char c = s[p];
    if (IsIdentStart(c)) {
      size_t q = p;
      while (q < s.size() && IsIdentChar(s[q])) ++q;
      t.raw = s.substr(p, q - p);
      t.kind = KeywordOrIdent(t.raw);
      if (t.kind == Tok::kTrue || t.kind == Tok::kFalse) t.value = t.kind == Tok::kTrue;
      p = q;
    } else if (starts_number(p) || ((c == '-' || c == '+') && starts_number(p + 1))) {
      VLAKE_RETURN_IF_ERROR(LexNumber(s, &p, &t));
    } else if (c == '"' || c == '\'') {
      VLAKE_RETURN_IF_ERROR(LexString(s, &p, &t));
    } else {
      const auto* punct = std::find_if(std::begin(kPuncts), std::end(kPuncts), [&](const Punct& x) {
        return s.substr(p).starts_with(x.text);
      });
      if (punct == std::end(kPuncts)) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x20 && byte < 0x7f) {
          return ErrorAt(p, "unexpected character " + Quote(s.substr(p, 1)));
        }
        static constexpr char kHex[] = "0123456789abcdef";
        return ErrorAt(p, std::string("unexpected byte 0x") + kHex[byte >> 4] + kHex[byte & 15]);
      }
      t.kind = punct->kind;
      t.op = punct->op;
      t.raw = punct->text;
      p += t.raw.size();
    }
    tokens.push_back(std::move(t));
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing and type checking

NodePtr MakeConst(bool value) {
  auto n = std::make_unique<FilterNode>();
  n->kind = Kind::kConst;
  n->value = value;
  return n;
}

NodePtr MakeNot(NodePtr child) {
  auto n = std::make_unique<FilterNode>();
  n->kind = Kind::kNot;
  n->children.push_back(std::move(child));
  return n;
}

NodePtr MakeBoolField(int column) {
  auto n = std::make_unique<FilterNode>();
  n->kind = Kind::kBoolField;
  n->column = column;
  return n;
}

NodePtr MakeCompare(int column, CmpOp op, Literal literal) {
  auto n = std::make_unique<FilterNode>();
  n->kind = Kind::kCompare;
  n->column = column;
  n->op = op;
  n->literal = std::move(literal);
  return n;
}

// `a op b` == `b Mirror(op) a`.
CmpOp Mirror(CmpOp op) {
  switch (op) {
    case CmpOp::kLt:
      return CmpOp::kGt;
    case CmpOp::kLe:
      return CmpOp::kGe;
    case CmpOp::kGt:
      return CmpOp::kLt;
    case CmpOp::kGe:
      return CmpOp::kLe;
    default:
      return op;
  }
}

// `int64 column op d` as an int64 comparison or a constant; an int64 column never holds a
// fraction, so x < 2.5 is x <= 2 and x == 2.5 is false.
NodePtr IntColumnVsDouble(int column, CmpOp op, double d) {
  if (d >= kTwoPow63 || d < -kTwoPow63) {  // beyond every int64, infinities included
    const bool above = d > 0;
    switch (op) {
      case CmpOp::kEq:
        return MakeConst(false);
      case CmpOp::kNe:
        return MakeConst(true);
      case CmpOp::kLt:
      case CmpOp::kLe:
        return MakeConst(above);
      case CmpOp::kGt:
      case CmpOp::kGe:
        return MakeConst(!above);
    }
  }
  const double floor = std::floor(d);
  if (floor == d) return MakeCompare(column, op, static_cast<int64_t>(d));
  switch (op) {
    case CmpOp::kEq:
      return MakeConst(false);
    case CmpOp::kNe:
      return MakeConst(true);
    case CmpOp::kLt:
    case CmpOp::kLe:
      return MakeCompare(column, CmpOp::kLe, static_cast<int64_t>(floor));
    case CmpOp::kGt:
    case CmpOp::kGe:
      return MakeCompare(column, CmpOp::kGe, static_cast<int64_t>(floor) + 1);
  }
  return MakeConst(false);
}

// `double column op i` as a double comparison or a constant. Above 2^53 not every int64 is a
// double: then i lies strictly between two adjacent doubles lo < i < hi, and x < i is x <= lo.
// The rewrites keep IEEE answers for NaN (false, or true for !=).
NodePtr DoubleColumnVsInt(int column, CmpOp op, int64_t i) {
  const double d = static_cast<double>(i);
  const bool too_big = d >= kTwoPow63;  // i rounded up to 2^63, which no int64 reaches
  if (!too_big && static_cast<int64_t>(d) == i) return MakeCompare(column, op, d);
  const bool rounded_up = too_big || static_cast<int64_t>(d) > i;
  const double lo = rounded_up ? std::nextafter(d, -INFINITY) : d;
  const double hi = rounded_up ? d : std::nextafter(d, INFINITY);
  switch (op) {
    case CmpOp::kEq:
      return MakeConst(false);
    case CmpOp::kNe:
      return MakeConst(true);
    case CmpOp::kLt:
    case CmpOp::kLe:
      return MakeCompare(column, CmpOp::kLe, lo);
    case CmpOp::kGt:
    case CmpOp::kGe:
      return MakeCompare(column, CmpOp::kGe, hi);
  }
  return MakeConst(false);
}

std::string_view LiteralKind(const Literal& v) {
  switch (v.index()) {
    case 0:
      return "a bool";
    case 1:
    case 2:
      return "a number";
    default:
      return "a string";
  }
}

bool IsLiteral(Tok kind) {
  return kind == Tok::kInt || kind == Tok::kFloat || kind == Tok::kString || kind == Tok::kTrue ||
         kind == Tok::kFalse;
}

// One side of a comparison.
struct Operand {
  size_t pos = 0;
  int column = -1;  // >= 0: a field; else `value`
  Literal value;
};

// Recursive descent over the token list, one function per grammar rule (docs/filter.md).
// Fields are resolved against the schema as they are met and numbered in order of first use.
class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const CollectionSchema& schema,
         std::vector<std::string>* fields, std::vector<FieldType>* types)
      : tokens_(tokens), schema_(schema), fields_(fields), types_(types) {}

  Result<NodePtr> ParseAll() {
    VLAKE_ASSIGN_OR_RETURN(NodePtr root, ParseOr(0));
    if (Peek().kind != Tok::kEnd) {
      return ErrorAt(Peek().pos, "expected 'and', 'or' or the end, found " + Describe(Peek()));
    }
    return root;
  }

 private:
  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(next_ + ahead, tokens_.size() - 1)];  // sticks at kEnd
  }
  const Token& Next() {
    const Token& t = Peek();
    if (next_ + 1 < tokens_.size()) ++next_;
    return t;
  }
  static std::string Describe(const Token& t) {
    return t.kind == Tok::kEnd ? "the end of the expression" : Quote(t.raw);
  }
  std::string FieldDesc(int column) const {
    return std::string(FieldTypeName((*types_)[column])) + " field '" + (*fields_)[column] + "'";
  }

  // `depth` counts the enclosing '(' and 'not'.
  Result<NodePtr> ParseOr(int depth) { return ParseChain(depth, Tok::kOr, Kind::kOr); }
  Result<NodePtr> ParseAnd(int depth) { return ParseChain(depth, Tok::kAnd, Kind::kAnd); }

  // child (op child)* as one flat n-ary node, so long chains cost no recursion.
  Result<NodePtr> ParseChain(int depth, Tok op, Kind kind) {
    auto node = std::make_unique<FilterNode>();
    node->kind = kind;
    for (;;) {
      VLAKE_ASSIGN_OR_RETURN(NodePtr child,
                             kind == Kind::kOr ? ParseAnd(depth) : ParseUnary(depth));
      node->children.push_back(std::move(child));
      if (Peek().kind != op) break;
      Next();
    }
    if (node->children.size() == 1) return std::move(node->children[0]);
    return node;
  }

  Status CheckDepth(const Token& t, int depth) const {
    if (depth < kMaxFilterDepth) return Status::Ok();
    return ErrorAt(t.pos, "nesting deeper than " + std::to_string(kMaxFilterDepth) +
                              " levels of '(' and 'not'");
  }

  Result<NodePtr> ParseUnary(int depth) {
    if (Peek().kind != Tok::kNot) return ParsePrimary(depth);
    VLAKE_RETURN_IF_ERROR(CheckDepth(Next(), depth));
    VLAKE_ASSIGN_OR_RETURN(NodePtr child, ParseUnary(depth + 1));
    return MakeNot(std::move(child));
  }

  Result<NodePtr> ParsePrimary(int depth) {
    const Token& t = Peek();
    const Tok after = Peek(1).kind;
    if (t.kind == Tok::kLParen) {
      VLAKE_RETURN_IF_ERROR(CheckDepth(Next(), depth));
      VLAKE_ASSIGN_OR_RETURN(NodePtr inner, ParseOr(depth + 1));
      if (Peek().kind != Tok::kRParen) {
        return ErrorAt(Peek().pos, "expected ')' to close the '(' at " + std::to_string(t.pos) +
                                       ", found " + Describe(Peek()));
      }
      Next();
      return inner;
    }
    if ((t.kind == Tok::kIdent || IsLiteral(t.kind)) && after == Tok::kCmp) {
      return ParseComparison();
    }
    if (t.kind == Tok::kIdent) {
      if (after == Tok::kIn || (after == Tok::kNot && Peek(2).kind == Tok::kIn)) {
        return ParseMembership();
      }
      VLAKE_ASSIGN_OR_RETURN(int column, ResolveField(Next()));
      if ((*types_)[column] != FieldType::kBool) {
        return ErrorAt(
            t.pos, FieldDesc(column) + " is not a condition by itself: compare it with a value");
      }
      return MakeBoolField(column);
    }
    if (t.kind == Tok::kTrue || t.kind == Tok::kFalse) return MakeConst(Next().kind == Tok::kTrue);
    if (IsLiteral(t.kind)) {
      return ErrorAt(Peek(1).pos, "expected a comparison operator after " + Quote(t.raw) +
                                      ", found " + Describe(Peek(1)));
    }
    return ErrorAt(t.pos, "expected a field, a value, 'not' or '(', found " + Describe(t));
  }

  Result<int> ResolveField(const Token& t) {
    const FieldSchema* f = schema_.Find(t.raw);
    if (f == nullptr) return ErrorAt(t.pos, "unknown field " + Quote(t.raw));
    if (f->type == FieldType::kFloatVector) {
      return ErrorAt(t.pos, "vector field " + Quote(t.raw) + " cannot be used in a filter");
    }
    if (f->type == FieldType::kJson) {
      return ErrorAt(t.pos, "json field " + Quote(t.raw) + " cannot be used in a filter yet");
    }
    const auto it = std::find(fields_->begin(), fields_->end(), f->name);
    if (it != fields_->end()) return static_cast<int>(it - fields_->begin());
    fields_->push_back(f->name);
    types_->push_back(Canonical(f->type));
    return static_cast<int>(fields_->size() - 1);
  }

  Result<Operand> ParseOperand() {
    const Token& t = Next();
    Operand o;
    o.pos = t.pos;
    if (t.kind == Tok::kIdent) {
      VLAKE_ASSIGN_OR_RETURN(o.column, ResolveField(t));
    } else {
      o.value = t.value;
    }
    return o;
  }

  Result<NodePtr> ParseComparison() {
    VLAKE_ASSIGN_OR_RETURN(Operand lhs, ParseOperand());
    const Token& op_token = Next();
    if (Peek().kind != Tok::kIdent && !IsLiteral(Peek().kind)) {
      return ErrorAt(Peek().pos, "expected a value after " + Quote(op_token.raw) + ", found " +
                                     Describe(Peek()));
    }
    VLAKE_ASSIGN_OR_RETURN(Operand rhs, ParseOperand());
    CmpOp op = op_token.op;
    if (lhs.column < 0 && rhs.column < 0) {
      return ErrorAt(lhs.pos, "a comparison needs a field on at least one side");
    }
    if (lhs.column < 0) {
      std::swap(lhs, rhs);
      op = Mirror(op);
    }
    if (rhs.column >= 0) return CompareFields(lhs, op, rhs, op_token);
    return CompareLiteral(lhs.column, op, rhs, op_token);
  }

  Status CheckBoolOp(int column, CmpOp op, const Token& op_token) const {
    if (op == CmpOp::kEq || op == CmpOp::kNe) return Status::Ok();
    return ErrorAt(op_token.pos, "operator " + Quote(op_token.raw) + " does not apply to " +
                                     FieldDesc(column) + " (use == or !=)");
  }

  Result<NodePtr> CompareLiteral(int column, CmpOp op, const Operand& lit, const Token& op_token) {
    const Literal& v = lit.value;
    switch ((*types_)[column]) {
      case FieldType::kInt64:
        if (auto* i = std::get_if<int64_t>(&v)) return MakeCompare(column, op, *i);
        if (auto* d = std::get_if<double>(&v)) return IntColumnVsDouble(column, op, *d);
        break;
      case FieldType::kDouble:
        if (auto* d = std::get_if<double>(&v)) return MakeCompare(column, op, *d);
        if (auto* i = std::get_if<int64_t>(&v)) return DoubleColumnVsInt(column, op, *i);
        break;
      case FieldType::kVarchar:
        if (std::holds_alternative<std::string>(v)) return MakeCompare(column, op, v);
        break;
      case FieldType::kBool:
        if (auto* b = std::get_if<bool>(&v)) {
          VLAKE_RETURN_IF_ERROR(CheckBoolOp(column, op, op_token));
          NodePtr n = MakeBoolField(column);
          return *b == (op == CmpOp::kEq) ? std::move(n) : MakeNot(std::move(n));
        }
        break;
      default:
        break;
    }
    return ErrorAt(lit.pos,
                   "cannot compare " + FieldDesc(column) + " with " + std::string(LiteralKind(v)));
  }

  Result<NodePtr> CompareFields(Operand a, CmpOp op, Operand b, const Token& op_token) {
    FieldType ta = (*types_)[a.column], tb = (*types_)[b.column];
    if (ta == FieldType::kDouble && tb == FieldType::kInt64) {  // int64 goes left (ExactInt)
      std::swap(a, b);
      std::swap(ta, tb);
      op = Mirror(op);
    }
    if (ta != tb && !(ta == FieldType::kInt64 && tb == FieldType::kDouble)) {
      return ErrorAt(a.pos,
                     "cannot compare " + FieldDesc(a.column) + " with " + FieldDesc(b.column));
    }
    if (ta == FieldType::kBool) VLAKE_RETURN_IF_ERROR(CheckBoolOp(a.column, op, op_token));
    auto n = std::make_unique<FilterNode>();
    n->kind = Kind::kCompareFields;
    n->column = a.column;
    n->column2 = b.column;
    n->op = op;
    return n;
  }

  // field ["not"] "in" "[" [literal ("," literal)*] "]". Items that no value of the column can
  // equal (2.5 for an int64, 2^53 + 1 for a double) are dropped.
  Result<NodePtr> ParseMembership() {
    VLAKE_ASSIGN_OR_RETURN(int column, ResolveField(Next()));
    const bool negated = Next().kind == Tok::kNot;
    if (negated) Next();  // "in"
    if (Peek().kind != Tok::kLBracket) {
      return ErrorAt(Peek().pos, "expected '[' after 'in', found " + Describe(Peek()));
    }
    Next();
    auto n = std::make_unique<FilterNode>();
    n->kind = Kind::kIn;
    n->column = column;
    const FieldType type = (*types_)[column];
    bool has_true = false, has_false = false;
    size_t items = 0;
    bool closed = Peek().kind == Tok::kRBracket;
    if (closed) Next();
    while (!closed) {
      const Token& t = Next();
      if (!IsLiteral(t.kind)) {
        return ErrorAt(t.pos, "expected a value in the 'in' list, found " + Describe(t));
      }
      if (++items > kMaxFilterInItems) {
        return ErrorAt(t.pos,
                       "'in' list longer than " + std::to_string(kMaxFilterInItems) + " items");
      }
      const Literal& v = t.value;
      const auto* i = std::get_if<int64_t>(&v);
      const auto* d = std::get_if<double>(&v);
      if (type == FieldType::kInt64 && i != nullptr) {
        n->int_set.push_back(*i);
      } else if (type == FieldType::kInt64 && d != nullptr) {
        if (*d >= -kTwoPow63 && *d < kTwoPow63 && std::floor(*d) == *d) {
          n->int_set.push_back(static_cast<int64_t>(*d));
        }
      } else if (type == FieldType::kDouble && d != nullptr) {
        n->double_set.push_back(*d);
      } else if (type == FieldType::kDouble && i != nullptr) {
        const double as_double = static_cast<double>(*i);
        if (as_double < kTwoPow63 && static_cast<int64_t>(as_double) == *i) {
          n->double_set.push_back(as_double);
        }
      } else if (type == FieldType::kVarchar && std::holds_alternative<std::string>(v)) {
        n->string_set.push_back(std::get<std::string>(v));
      } else if (type == FieldType::kBool && std::holds_alternative<bool>(v)) {
        (std::get<bool>(v) ? has_true : has_false) = true;
      } else {
        return ErrorAt(
            t.pos, "cannot compare " + FieldDesc(column) + " with " + std::string(LiteralKind(v)));
      }
      const Token& sep = Next();
      closed = sep.kind == Tok::kRBracket;
      if (!closed && sep.kind != Tok::kComma) {
        return ErrorAt(sep.pos, "expected ',' or ']' in the 'in' list, found " + Describe(sep));
      }
    }
    NodePtr result;
    if (type == FieldType::kBool) {
      result = has_true && has_false ? MakeConst(true)
               : has_true            ? MakeBoolField(column)
               : has_false           ? MakeNot(MakeBoolField(column))
                                     : MakeConst(false);
    } else {
      auto sort_unique = [](auto& set) {
        std::sort(set.begin(), set.end());
        set.erase(std::unique(set.begin(), set.end()), set.end());
      };
      sort_unique(n->int_set);
      sort_unique(n->double_set);
      sort_unique(n->string_set);
      result = std::move(n);
    }
    return negated ? MakeNot(std::move(result)) : std::move(result);
  }

  const std::vector<Token>& tokens_;
  const CollectionSchema& schema_;
  std::vector<std::string>* fields_;
  std::vector<FieldType>* types_;
  size_t next_ = 0;
};

}  // namespace

Result<Filter> Filter::Parse(std::string_view expr, const CollectionSchema& schema) {
  if (expr.size() > kMaxFilterBytes) {
    return Status(Code::kInvalidArgument, "filter: expression is " + std::to_string(expr.size()) +
                                              " bytes, more than the limit of " +
                                              std::to_string(kMaxFilterBytes));
  }
  VLAKE_ASSIGN_OR_RETURN(std::vector<Token> tokens, Lex(expr));
  Filter filter;
  filter.text_ = std::string(expr);
  if (tokens.size() == 1) return filter;  // only kEnd: matches everything
  Parser parser(tokens, schema, &filter.fields_, &filter.field_types_);
  VLAKE_ASSIGN_OR_RETURN(NodePtr root, parser.ParseAll());
  filter.root_ = std::move(root);
  return filter;
}

Status Filter::Evaluate(const ColumnSource& source, Bitset* out) const {
  VLAKE_CHECK(out != nullptr);
  const int64_t rows = source.num_rows();
  if (root_ == nullptr) {
    *out = Bitset(rows, true);
    return Status::Ok();
  }
  // Fetch and check every column once, so the evaluation itself cannot fail.
  std::vector<ColumnView> cols;
  cols.reserve(fields_.size());
  for (size_t k = 0; k < fields_.size(); ++k) {
    Result<ColumnView> col = source.Column(fields_[k]);
    if (!col.ok()) {
      return Status(col.error().code(),
                    "filter: column '" + fields_[k] + "': " + col.error().message());
    }
    const FieldType want = field_types_[k];
    if (Canonical(col->type) != want || col->rows != rows) {
      return Status(Code::kInvalidArgument, "filter: column '" + fields_[k] + "' is " +
                                                std::string(FieldTypeName(col->type)) + " with " +
                                                std::to_string(col->rows) + " rows, want " +
                                                std::string(FieldTypeName(want)) + " with " +
                                                std::to_string(rows));
    }
    if (rows > 0 && (want == FieldType::kVarchar ? col->offsets : col->data) == nullptr) {
      return Status(Code::kInvalidArgument, "filter: column '" + fields_[k] + "' has no data");
    }
    cols.push_back(*col);
    cols.back().type = want;
  }
  *out = Eval(*root_, cols, rows);
  return Status::Ok();
}

}  // namespace vlake::vector
