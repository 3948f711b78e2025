// Internals of the filter language (filter.h), shared by filter.cc (lexing, parsing, column
// scans), filter_json.cc (json paths) and filter_like.cc (like patterns). Not a public API.
#pragma once

#include <bit>
#include <cmath>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "vector/bitset.h"
#include "vector/types.h"

namespace vlake::vector::internal {

// Every integer a filter computes fits: json integers are in [-2^63, 2^64), literals in int64,
// so a sum, difference, product or remainder of two of them stays below 2^127 in magnitude.
__extension__ using Int128 = __int128;

enum class CmpOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe };
enum class ArithOp : uint8_t { kAdd, kSub, kMul, kDiv, kMod };

// A literal as written; the parser turns it into the column's own type before evaluation.
using Literal = std::variant<bool, int64_t, double, std::string>;

inline constexpr double kTwoPow63 = 0x1p63;  // the first double above every int64

// Whether `r`, the three-way comparison of a and b, satisfies `a op b`. Unordered (a NaN)
// satisfies only !=, as IEEE comparisons do.
inline bool Holds(CmpOp op, std::partial_ordering r) {
  switch (op) {
    case CmpOp::kEq:
      return r == 0;
    case CmpOp::kNe:
      return r != 0;
    case CmpOp::kLt:
      return r < 0;
    case CmpOp::kLe:
      return r <= 0;
    case CmpOp::kGt:
      return r > 0;
    case CmpOp::kGe:
      return r >= 0;
  }
  return false;
}

// a <=> b by exact value: converting either side would round (2^53 + 1 is no double; 2.5 is
// no integer).
inline std::partial_ordering CompareExact(Int128 a, double b) {
  if (std::isnan(b)) return std::partial_ordering::unordered;
  if (b >= 0x1p127) return std::partial_ordering::less;
  if (b < -0x1p127) return std::partial_ordering::greater;
  const double whole = std::trunc(b);  // in [-2^127, 2^127): fits
  const auto w = static_cast<Int128>(whole);
  if (a != w) return a < w ? std::partial_ordering::less : std::partial_ordering::greater;
  return 0.0 <=> (b - whole);  // equal integer parts: b's fraction decides
}
inline std::partial_ordering CompareExact(double a, Int128 b) { return 0 <=> CompareExact(b, a); }

// A number as a json document or a numeric column holds it: an integer, kept exactly, or a
// double.
struct Number {
  bool is_int = true;
  Int128 i = 0;
  double d = 0;
};

// a <=> b exactly; b is an int64_t or a double.
std::partial_ordering CompareNumber(const Number& a, const Literal& b);

// x op operand (an int64_t or a double) into *out: exact integer arithmetic when both are
// integers and op is not '/', else double arithmetic. False when there is no result: '%' of a
// double. The parser rules out a zero divisor.
bool ApplyArith(const Number& x, ArithOp op, const Literal& operand, Number* out);

// A compiled `like` pattern. The text and the pattern are both read as sequences of units: a
// well-formed UTF-8 sequence, or else one byte. '%' matches any run of units, '_' exactly one,
// anything else itself.
struct LikePattern {
  struct Part {
    std::string literal;   // bytes to match, unless any_one
    bool any_one = false;  // '_'
  };
  // The parts between two '%'s; never empty when the pattern has a '%'.
  struct Piece {
    std::vector<Part> parts;
    size_t units = 0;  // units it matches: those of the literals plus one per '_'
  };
  std::vector<Piece> pieces;
  bool has_any = false;     // some '%': else pieces is one piece that must match the whole text
  bool open_start = false;  // begins with '%'
  bool open_end = false;    // ends with '%'

  bool MatchesEverything() const { return has_any && pieces.empty(); }
  // The pattern has no wildcard: it matches just *literal.
  bool IsLiteral(std::string* literal) const;
};

// Compiles the string literal `quoted`, quotes included, as written in the expression (so
// that \% and \_ can be told from % and _). The lexer has already checked its escapes.
LikePattern CompileLike(std::string_view quoted);
// Linear in the text for patterns without '_' (each piece is found with memmem); a piece with
// '_' is tried at each unit of the text, so O(text * piece) at worst. Never backtracks over a
// '%': each piece is matched at its leftmost place.
bool LikeMatch(const LikePattern& pattern, std::string_view text);

// One step of a json path: an object key, or an array index when index >= 0.
struct JsonStep {
  std::string key;
  int64_t index = -1;
};

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
    kLike,           // varchar column matches `like`
    kArith,          // (column arith_op operand) op literal; an int64 or double column
    // The value at `path` in column's json document (none: no match):
    kJsonCompare,  // ... op literal, of the literal's kind
    kJsonIn,       // ... is in int_set (integral numbers), double_set (others), string_set,
                   //     or is true (has_true) or false (has_false)
    kJsonLike,     // ... is a string that matches `like`
    kJsonArith,    // ... is a number and (value arith_op operand) op literal
  };
  Kind kind = Kind::kConst;
  bool value = false;
  // Reads json documents or matches patterns somewhere below: costly per row, so and/or
  // evaluate such children last and only on the rows they can still change.
  bool expensive = false;
  std::vector<std::unique_ptr<FilterNode>> children;
  int column = -1;
  int column2 = -1;
  CmpOp op = CmpOp::kEq;
  Literal literal;
  std::vector<int64_t> int_set;
  std::vector<double> double_set;
  std::vector<std::string> string_set;
  bool has_true = false, has_false = false;
  std::vector<JsonStep> path;
  ArithOp arith_op = ArithOp::kAdd;
  Literal operand;  // int64_t or double
  LikePattern like;
};

// Rows where pred(i), one bit per row. With `only`, just the rows set in it are tested and
// the others are false (callers pass rows whose answer cannot change the result).
template <typename Pred>
Bitset SelectOnly(int64_t rows, const Bitset* only, Pred pred) {
  Bitset out(rows);
  if (only == nullptr) {
    for (int64_t i = 0; i < rows; ++i) {
      if (pred(i)) out.set(i);
    }
    return out;
  }
  const std::vector<uint64_t>& words = only->words();
  for (size_t w = 0; w < words.size(); ++w) {
    for (uint64_t bits = words[w]; bits != 0; bits &= bits - 1) {
      const int64_t i = static_cast<int64_t>(w * 64) + std::countr_zero(bits);
      if (pred(i)) out.set(i);
    }
  }
  return out;
}

// Evaluates `node` into one bit per row of `cols` (indexed like Filter::fields()). With `only`,
// the answer need only be right for the rows set in it.
Bitset Eval(const FilterNode& node, const std::vector<ColumnView>& cols, int64_t rows,
            const Bitset* only);

// A kJson* node over its json column (StorageOf == kBytes), only on the rows in `only` if set.
// Each row's document is parsed once; one that is not valid JSON matches nothing.
Bitset EvalJson(const FilterNode& node, const ColumnView& col, int64_t rows, const Bitset* only);

}  // namespace vlake::vector::internal
