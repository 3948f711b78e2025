#include "vector/filter.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <compare>
#include <functional>
#include <utility>
#include <variant>

#include "vector/filter_internal.h"

namespace vlake::vector {
namespace {

// The type a filter compares a column as: the narrow integers as int64, float32 as double
// (their columns hold int64 and double values).
FieldType Canonical(FieldType t) {
  switch (StorageOf(t)) {
    case Storage::kInt64:
      return FieldType::kInt64;
    case Storage::kDouble:
      return FieldType::kDouble;
    default:
      return t;
  }
}

using internal::ArithOp;
using internal::CmpOp;
using internal::FilterNode;
using internal::JsonStep;
using internal::kTwoPow63;
using internal::Literal;
using NodePtr = std::unique_ptr<FilterNode>;
using Kind = FilterNode::Kind;

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
  kLike,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kComma,
  kCmp,
  kArith,  // + - * / %
  kPow,    // **, which is not supported
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t pos = 0;                 // byte offset in the expression
  std::string_view raw;           // the token as written (a view of the expression)
  CmpOp op = CmpOp::kEq;          // kCmp
  ArithOp arith = ArithOp::kAdd;  // kArith
  Literal value;                  // kInt, kFloat, kString (decoded), kTrue, kFalse
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
      {"and", Tok::kAnd},   {"or", Tok::kOr},     {"not", Tok::kNot},    {"in", Tok::kIn},
      {"like", Tok::kLike}, {"true", Tok::kTrue}, {"false", Tok::kFalse}};
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
    // \% and \_ are for like patterns (a literal % or _, see CompileLike); elsewhere they are
    // just the character.
    static constexpr std::string_view kEscapes = "\"'\\nt%_", kDecoded = "\"'\\\n\t%_";
    const size_t k = kEscapes.find(s[q + 1]);
    if (k == std::string_view::npos) {
      return ErrorAt(q, "unknown escape " + Quote(s.substr(q, 2)) +
                            " (use \\\" \\' \\\\ \\n \\t, or \\% \\_ in like patterns)");
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
  ArithOp arith = ArithOp::kAdd;
};
constexpr Punct kPuncts[] = {
    {"==", Tok::kCmp, CmpOp::kEq},
    {"!=", Tok::kCmp, CmpOp::kNe},
    {"<>", Tok::kCmp, CmpOp::kNe},
    {"<=", Tok::kCmp, CmpOp::kLe},
    {">=", Tok::kCmp, CmpOp::kGe},
    {"&&", Tok::kAnd},
    {"||", Tok::kOr},
    {"**", Tok::kPow},
    {"=", Tok::kCmp, CmpOp::kEq},
    {"<", Tok::kCmp, CmpOp::kLt},
    {">", Tok::kCmp, CmpOp::kGt},
    {"!", Tok::kNot},
    {"(", Tok::kLParen},
    {")", Tok::kRParen},
    {"[", Tok::kLBracket},
    {"]", Tok::kRBracket},
    {",", Tok::kComma},
    {"+", Tok::kArith, CmpOp::kEq, ArithOp::kAdd},
    {"-", Tok::kArith, CmpOp::kEq, ArithOp::kSub},
    {"*", Tok::kArith, CmpOp::kEq, ArithOp::kMul},
    {"/", Tok::kArith, CmpOp::kEq, ArithOp::kDiv},
    {"%", Tok::kArith, CmpOp::kEq, ArithOp::kMod},
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
    // "$meta": a dynamic field may have a name that starts with '$'.
    if (IsIdentStart(c) || (c == '$' && p + 1 < s.size() && IsIdentStart(s[p + 1]))) {
      size_t q = p + 1;
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
      t.arith = punct->arith;
      t.raw = s.substr(p, punct->text.size());  // a view of the source, as for every token
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
  n->expensive = child->expensive;
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

bool IsNumber(const Literal& v) {
  return std::holds_alternative<int64_t>(v) || std::holds_alternative<double>(v);
}

// `qty + 1`, `qty*2`, `qty -1` (the sign of the number is the operator), `qty ** 2` (refused).
bool IsArithStart(const Token& t) {
  return t.kind == Tok::kArith || t.kind == Tok::kPow ||
         ((t.kind == Tok::kInt || t.kind == Tok::kFloat) && (t.raw[0] == '+' || t.raw[0] == '-'));
}

// The expression text from the start of `first` to the end of `last`.
std::string_view Span(const Token& first, const Token& last) {
  return {first.raw.data(),
          static_cast<size_t>(last.raw.data() + last.raw.size() - first.raw.data())};
}

// A side of a comparison, or what `in` and `like` test: a field or a json path, either with at
// most one arithmetic operation, or (comparisons only) a literal.
struct Term {
  size_t pos = 0;
  int column = -1;  // >= 0: a field, a json field when `json`; else the literal `value`
  Literal value;
  bool json = false;
  std::vector<JsonStep> path;  // json only; empty: the whole document, usable in no condition
  std::string_view text;       // as written, arithmetic included, for messages
  bool has_arith = false;
  ArithOp arith_op = ArithOp::kAdd;
  Literal operand;  // int64_t or double
};

Term LiteralTerm(const Token& t) {
  Term term;
  term.pos = t.pos;
  term.value = t.value;
  term.text = t.raw;
  return term;
}

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
  // Names the schema's type: "int16 field 'n'", though the filter reads it as int64.
  // `v` rounded to the nearest float32 (infinite beyond its range).
  static double AsFloat32(double v) { return static_cast<double>(static_cast<float>(v)); }

  std::string FieldDesc(int column) const {
    return std::string(FieldTypeName(declared_[column])) + " field '" + (*fields_)[column] + "'";
  }
  std::string TermDesc(const Term& t) const {
    if (t.has_arith) return Quote(t.text);
    if (t.json && !t.path.empty()) return "json path " + Quote(t.text);
    return FieldDesc(t.column);
  }
  Status NeedsPath(const Term& t) const {
    const std::string& name = (*fields_)[t.column];
    return ErrorAt(t.pos,
                   "json field " + Quote(name) + " needs a path, such as " + name + "[\"key\"]");
  }

  // `depth` counts the enclosing '(' and 'not'.
  Result<NodePtr> ParseOr(int depth) { return ParseChain(depth, Tok::kOr, Kind::kOr); }
  Result<NodePtr> ParseAnd(int depth) { return ParseChain(depth, Tok::kAnd, Kind::kAnd); }

  // child (op child)* as one flat n-ary node, so long chains cost no recursion. The costly
  // children (json paths, like) go last: evaluation then runs them on fewer rows.
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
    std::stable_partition(node->children.begin(), node->children.end(),
                          [](const NodePtr& child) { return !child->expensive; });
    node->expensive = node->children.back()->expensive;
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
    if (t.kind == Tok::kIdent) {
      VLAKE_ASSIGN_OR_RETURN(Term term, ParseTerm());
      return ParseAfterTerm(std::move(term));
    }
    if (IsLiteral(t.kind) && Peek(1).kind == Tok::kCmp) return ParseComparison(LiteralTerm(Next()));
    if (t.kind == Tok::kTrue || t.kind == Tok::kFalse) return MakeConst(Next().kind == Tok::kTrue);
    if (IsLiteral(t.kind)) {
      return ErrorAt(Peek(1).pos, "expected a comparison operator after " + Quote(t.raw) +
                                      ", found " + Describe(Peek(1)));
    }
    return ErrorAt(t.pos, "expected a field, a value, 'not' or '(', found " + Describe(t));
  }

  int AddColumn(const FieldSchema& f) {
    const auto it = std::find(fields_->begin(), fields_->end(), f.name);
    if (it != fields_->end()) return static_cast<int>(it - fields_->begin());
    fields_->push_back(f.name);
    types_->push_back(Canonical(f.type));
    declared_.push_back(f.type);
    return static_cast<int>(fields_->size() - 1);
  }

  // field ("[" (string | index) "]")* [arith_op number], at an identifier. With a dynamic
  // field in the schema, a name that is no field is its key: `color` is `$meta["color"]`.
  Result<Term> ParseTerm() {
    const Token& first = Next();
    if (Peek().kind == Tok::kLParen) {
      return ErrorAt(first.pos, "function " + Quote(first.raw) +
                                    " is not supported: this filter language has no calls");
    }
    if (KeywordIs(first.raw, "exists") && Peek().kind == Tok::kIdent) {
      return ErrorAt(first.pos, "'exists' is not supported");
    }
    Term term;
    term.pos = first.pos;
    const FieldSchema* f = schema_.Find(first.raw);
    const FieldSchema* dynamic = schema_.dynamic_field();
    if (f == nullptr && dynamic != nullptr && first.raw[0] != '$') {
      term.column = AddColumn(*dynamic);
      term.json = true;
      term.path.push_back({std::string(first.raw)});
    } else {
      if (f == nullptr) return ErrorAt(first.pos, "unknown field " + Quote(first.raw));
      if (f->type == FieldType::kFloatVector) {
        return ErrorAt(first.pos,
                       "vector field " + Quote(first.raw) + " cannot be used in a filter");
      }
      term.column = AddColumn(*f);
      term.json = f->type == FieldType::kJson;
    }
    const Token* last = &first;
    while (Peek().kind == Tok::kLBracket) {
      const Token& open = Next();
      if (!term.json) {
        return ErrorAt(open.pos, "only json fields have paths, not " + FieldDesc(term.column));
      }
      if (term.path.size() >= static_cast<size_t>(kMaxFilterPathDepth)) {
        return ErrorAt(open.pos,
                       "json path deeper than " + std::to_string(kMaxFilterPathDepth) + " steps");
      }
      const Token& step = Next();
      JsonStep s;
      if (step.kind == Tok::kString) {
        s.key = std::get<std::string>(step.value);
      } else if (step.kind == Tok::kInt && std::get<int64_t>(step.value) >= 0) {
        s.index = std::get<int64_t>(step.value);
      } else {
        return ErrorAt(step.pos,
                       "expected a key (a string) or an array index (an integer >= 0) "
                       "after '[', found " +
                           Describe(step));
      }
      const Token& close = Next();
      if (close.kind != Tok::kRBracket) {
        return ErrorAt(close.pos,
                       "expected ']' after the json path step, found " + Describe(close));
      }
      term.path.push_back(std::move(s));
      last = &close;
    }
    term.text = Span(first, *last);
    if (IsArithStart(Peek())) VLAKE_RETURN_IF_ERROR(ParseArith(&term, first));
    return term;
  }

  // The arithmetic after a field or path: one operator and a number, typed here so that
  // evaluation cannot fail.
  Status ParseArith(Term* term, const Token& first) {
    const Token& op_token = Next();
    if (op_token.kind == Tok::kPow) return ErrorAt(op_token.pos, "operator '**' is not supported");
    const Token* number = &op_token;  // `qty -1`: the number's sign is the operator
    ArithOp op = ArithOp::kAdd;
    std::string_view op_text = op_token.raw.substr(0, 1);
    if (op_token.kind == Tok::kArith) {
      op = op_token.arith;
      op_text = op_token.raw;
      number = &Next();
      if (number->kind != Tok::kInt && number->kind != Tok::kFloat) {
        return ErrorAt(number->pos, "expected a number after " + Quote(op_text) + ", found " +
                                        Describe(*number));
      }
    }
    if (term->json && term->path.empty()) return NeedsPath(*term);
    const FieldType type = (*types_)[term->column];
    if (!term->json && type != FieldType::kInt64 && type != FieldType::kDouble) {
      return ErrorAt(op_token.pos, "operator " + Quote(op_text) + " does not apply to " +
                                       FieldDesc(term->column) + " (only to numbers)");
    }
    const Literal& v = number->value;
    const auto* i = std::get_if<int64_t>(&v);
    const bool zero = i != nullptr ? *i == 0 : std::get<double>(v) == 0;
    if (zero && (op == ArithOp::kDiv || op == ArithOp::kMod)) {
      return ErrorAt(number->pos, "division by zero");
    }
    if (op == ArithOp::kMod && i == nullptr) {
      return ErrorAt(number->pos, "operator '%' needs an integer, found " + Quote(number->raw));
    }
    if (op == ArithOp::kMod && !term->json && type == FieldType::kDouble) {
      return ErrorAt(op_token.pos, "operator '%' needs integers, not " + FieldDesc(term->column));
    }
    term->has_arith = true;
    term->arith_op = op;
    term->operand = v;
    term->text = Span(first, *number);
    if (IsArithStart(Peek())) {
      return ErrorAt(Peek().pos, "only one arithmetic operator is supported, found " +
                                     Describe(Peek()) + " after " + Quote(term->text));
    }
    return Status::Ok();
  }

  // What follows a field or path: a comparison, `in`, `like`, or nothing (a bool field).
  Result<NodePtr> ParseAfterTerm(Term term) {
    const Token& next = Peek();
    if (next.kind == Tok::kCmp) return ParseComparison(std::move(term));
    if (term.has_arith) {
      return ErrorAt(next.pos, "expected a comparison operator after " + Quote(term.text) +
                                   ", found " + Describe(next));
    }
    if (next.kind == Tok::kIn || (next.kind == Tok::kNot && Peek(1).kind == Tok::kIn)) {
      return ParseMembership(std::move(term));
    }
    if (next.kind == Tok::kNot && Peek(1).kind == Tok::kLike) {
      return ErrorAt(next.pos, "'not like' is not supported: write not (x like '...')");
    }
    if (next.kind == Tok::kLike) return ParseLike(std::move(term));
    if (next.kind == Tok::kIdent && KeywordIs(next.raw, "is")) {
      return ErrorAt(next.pos, "'is null' and 'is not null' are not supported");
    }
    if (term.json) {
      if (term.path.empty()) return NeedsPath(term);
      return ErrorAt(term.pos,
                     TermDesc(term) + " is not a condition by itself: compare it with a value");
    }
    if ((*types_)[term.column] != FieldType::kBool) {
      return ErrorAt(term.pos, FieldDesc(term.column) +
                                   " is not a condition by itself: compare it with a value");
    }
    return MakeBoolField(term.column);
  }

  Result<NodePtr> ParseComparison(Term lhs) {
    const Token& op_token = Next();
    if (Peek().kind != Tok::kIdent && !IsLiteral(Peek().kind)) {
      return ErrorAt(Peek().pos, "expected a value after " + Quote(op_token.raw) + ", found " +
                                     Describe(Peek()));
    }
    Term rhs;
    if (Peek().kind == Tok::kIdent) {
      VLAKE_ASSIGN_OR_RETURN(rhs, ParseTerm());
    } else {
      rhs = LiteralTerm(Next());
    }
    CmpOp op = op_token.op;
    if (lhs.column < 0 && rhs.column < 0) {
      return ErrorAt(lhs.pos, "a comparison needs a field on at least one side");
    }
    if (lhs.column < 0) {
      std::swap(lhs, rhs);
      op = Mirror(op);
    }
    if (rhs.column >= 0) return CompareTerms(lhs, op, rhs, op_token);
    return CompareWithLiteral(std::move(lhs), op, rhs, op_token);
  }

  Status CheckBoolOp(const std::string& what, CmpOp op, const Token& op_token) const {
    if (op == CmpOp::kEq || op == CmpOp::kNe) return Status::Ok();
    return ErrorAt(op_token.pos, "operator " + Quote(op_token.raw) + " does not apply to " + what +
                                     " (use == or !=)");
  }

  Result<NodePtr> CompareWithLiteral(Term lhs, CmpOp op, const Term& lit, const Token& op_token) {
    if (lhs.json && lhs.path.empty()) return NeedsPath(lhs);
    const Literal& v = lit.value;
    if (lhs.has_arith) {
      if (!IsNumber(v)) {
        return ErrorAt(lit.pos,
                       "cannot compare " + TermDesc(lhs) + " with " + std::string(LiteralKind(v)));
      }
      auto n = std::make_unique<FilterNode>();
      n->kind = lhs.json ? Kind::kJsonArith : Kind::kArith;
      n->expensive = lhs.json;
      n->column = lhs.column;
      n->path = std::move(lhs.path);
      n->arith_op = lhs.arith_op;
      n->operand = lhs.operand;
      n->op = op;
      n->literal = v;
      return n;
    }
    if (lhs.json) {
      if (std::holds_alternative<bool>(v)) {
        VLAKE_RETURN_IF_ERROR(CheckBoolOp("a bool", op, op_token));
      }
      auto n = std::make_unique<FilterNode>();
      n->kind = Kind::kJsonCompare;
      n->expensive = true;
      n->column = lhs.column;
      n->path = std::move(lhs.path);
      n->op = op;
      n->literal = v;
      return n;
    }
    return CompareLiteral(lhs.column, op, lit, op_token);
  }

  Result<NodePtr> CompareLiteral(int column, CmpOp op, const Term& lit, const Token& op_token) {
    const Literal& v = lit.value;
    switch ((*types_)[column]) {
      case FieldType::kInt64:
        if (auto* i = std::get_if<int64_t>(&v)) return MakeCompare(column, op, *i);
        if (auto* d = std::get_if<double>(&v)) return IntColumnVsDouble(column, op, *d);
        break;
      case FieldType::kDouble:
        if (declared_[column] == FieldType::kFloat) {
          // As Milvus: a float32 field compares with the literal as a float32.
          if (auto* d = std::get_if<double>(&v)) return MakeCompare(column, op, AsFloat32(*d));
          if (auto* i = std::get_if<int64_t>(&v)) {
            return MakeCompare(column, op, AsFloat32(static_cast<double>(*i)));
          }
          break;
        }
        if (auto* d = std::get_if<double>(&v)) return MakeCompare(column, op, *d);
        if (auto* i = std::get_if<int64_t>(&v)) return DoubleColumnVsInt(column, op, *i);
        break;
      case FieldType::kVarchar:
        if (std::holds_alternative<std::string>(v)) return MakeCompare(column, op, v);
        break;
      case FieldType::kBool:
        if (auto* b = std::get_if<bool>(&v)) {
          VLAKE_RETURN_IF_ERROR(CheckBoolOp(FieldDesc(column), op, op_token));
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

  Result<NodePtr> CompareTerms(Term a, CmpOp op, Term b, const Token& op_token) {
    if (a.has_arith || b.has_arith) {
      const Term& other = a.has_arith ? b : a;
      return ErrorAt(
          other.pos,
          "an arithmetic comparison needs a number on the other side, found " + TermDesc(other));
    }
    for (const Term* t : {&a, &b}) {
      if (t->json && t->path.empty()) return NeedsPath(*t);
    }
    if (a.json || b.json) {
      return ErrorAt(a.pos, "cannot compare " + TermDesc(a) + " with " + TermDesc(b) +
                                ": json paths compare with values only");
    }
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
    if (ta == FieldType::kBool) {
      VLAKE_RETURN_IF_ERROR(CheckBoolOp(FieldDesc(a.column), op, op_token));
    }
    auto n = std::make_unique<FilterNode>();
    n->kind = Kind::kCompareFields;
    n->column = a.column;
    n->column2 = b.column;
    n->op = op;
    return n;
  }

  // term ["not"] "in" "[" [literal ("," literal)*] "]". Items that no value of the column can
  // equal (2.5 for an int64, 2^53 + 1 for a double) are dropped. A json path takes items of
  // every kind: its documents decide the type row by row.
  Result<NodePtr> ParseMembership(Term term) {
    const int column = term.column;
    const bool negated = Next().kind == Tok::kNot;
    if (negated) Next();  // "in"
    if (term.json && term.path.empty()) return NeedsPath(term);
    if (Peek().kind != Tok::kLBracket) {
      return ErrorAt(Peek().pos, "expected '[' after 'in', found " + Describe(Peek()));
    }
    Next();
    auto n = std::make_unique<FilterNode>();
    n->kind = term.json ? Kind::kJsonIn : Kind::kIn;
    n->expensive = term.json;
    n->column = column;
    n->path = std::move(term.path);
    const FieldType type = (*types_)[column];
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
      const bool integral =
          d != nullptr && *d >= -kTwoPow63 && *d < kTwoPow63 && std::floor(*d) == *d;
      if (term.json) {
        if (i != nullptr) {
          n->int_set.push_back(*i);
        } else if (integral) {
          n->int_set.push_back(static_cast<int64_t>(*d));
        } else if (d != nullptr) {
          n->double_set.push_back(*d);
        } else if (const auto* s = std::get_if<std::string>(&v)) {
          n->string_set.push_back(*s);
        } else {
          (std::get<bool>(v) ? n->has_true : n->has_false) = true;
        }
      } else if (type == FieldType::kInt64 && i != nullptr) {
        n->int_set.push_back(*i);
      } else if (type == FieldType::kInt64 && d != nullptr) {
        if (integral) n->int_set.push_back(static_cast<int64_t>(*d));
      } else if (type == FieldType::kDouble && declared_[column] == FieldType::kFloat &&
                 (d != nullptr || i != nullptr)) {
        n->double_set.push_back(AsFloat32(d != nullptr ? *d : static_cast<double>(*i)));
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
        (std::get<bool>(v) ? n->has_true : n->has_false) = true;
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
    if (!term.json && type == FieldType::kBool) {
      result = n->has_true && n->has_false ? MakeConst(true)
               : n->has_true               ? MakeBoolField(column)
               : n->has_false              ? MakeNot(MakeBoolField(column))
                                           : MakeConst(false);
    } else {
      auto sort_unique = [](auto& set) {
        std::sort(set.begin(), set.end());
        set.erase(std::unique(set.begin(), set.end()), set.end());
      };
      sort_unique(n->int_set);
      sort_unique(n->double_set);
      sort_unique(n->string_set);
      const bool empty = n->int_set.empty() && n->double_set.empty() && n->string_set.empty() &&
                         !n->has_true && !n->has_false;
      result = empty ? MakeConst(false) : std::move(n);
    }
    return negated ? MakeNot(std::move(result)) : std::move(result);
  }

  // term "like" string, on a varchar field or a json path.
  Result<NodePtr> ParseLike(Term term) {
    const Token& like_token = Next();
    if (term.json && term.path.empty()) return NeedsPath(term);
    if (!term.json && (*types_)[term.column] != FieldType::kVarchar) {
      return ErrorAt(like_token.pos, "operator 'like' does not apply to " + FieldDesc(term.column) +
                                         " (only to varchar fields and json paths)");
    }
    const Token& pattern = Next();
    if (pattern.kind != Tok::kString) {
      return ErrorAt(pattern.pos, "expected a pattern string after " + Quote(like_token.raw) +
                                      ", found " + Describe(pattern));
    }
    internal::LikePattern like = internal::CompileLike(pattern.raw);
    if (!term.json) {
      if (like.MatchesEverything()) return MakeConst(true);
      std::string literal;
      if (like.IsLiteral(&literal)) return MakeCompare(term.column, CmpOp::kEq, std::move(literal));
    }
    auto n = std::make_unique<FilterNode>();
    n->kind = term.json ? Kind::kJsonLike : Kind::kLike;
    n->expensive = true;
    n->column = term.column;
    n->path = std::move(term.path);
    n->like = std::move(like);
    return n;
  }

  const std::vector<Token>& tokens_;
  const CollectionSchema& schema_;
  std::vector<std::string>* fields_;
  std::vector<FieldType>* types_;
  std::vector<FieldType> declared_;  // parallel to *fields_: the schema's types, for messages
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
    const bool bytes = StorageOf(want) == Storage::kBytes;  // varchar, json
    if (rows > 0 && (bytes ? col->offsets : col->data) == nullptr) {
      return Status(Code::kInvalidArgument, "filter: column '" + fields_[k] + "' has no data");
    }
    cols.push_back(*col);
    cols.back().type = want;
  }
  *out = internal::Eval(*root_, cols, rows, nullptr);
  return Status::Ok();
}

}  // namespace vlake::vector
