// Column scans of the filter language (filter.h): the evaluation of a parsed tree over the
// columns of a ColumnSource, a whole column per leaf, combined bitset by bitset. Json leaves are
// in filter_json.cc, like patterns in filter_like.cc.
#include <algorithm>
#include <bit>
#include <cmath>
#include <compare>
#include <functional>
#include <variant>

#include "vector/filter_internal.h"
#include "vlake/status.h"

namespace vlake::vector::internal {
namespace {

using Kind = FilterNode::Kind;

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
    return CompareExact(Int128{a.v}, b);
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

// Rows where ord(i), a three-way comparison with the literal, satisfies op.
template <typename Ord>
Bitset ScanOrdering(int64_t rows, CmpOp op, Ord ord) {
  switch (op) {
    case CmpOp::kEq:
      return Select(rows, [&](int64_t i) { return ord(i) == 0; });
    case CmpOp::kNe:
      return Select(rows, [&](int64_t i) { return ord(i) != 0; });
    case CmpOp::kLt:
      return Select(rows, [&](int64_t i) { return ord(i) < 0; });
    case CmpOp::kLe:
      return Select(rows, [&](int64_t i) { return ord(i) <= 0; });
    case CmpOp::kGt:
      return Select(rows, [&](int64_t i) { return ord(i) > 0; });
    case CmpOp::kGe:
      return Select(rows, [&](int64_t i) { return ord(i) >= 0; });
  }
  return Bitset(rows);
}

// `(column arith_op operand) op literal` over an int64 or double column, with the rules of
// internal::ApplyArith: exact integer arithmetic (in 128 bits, so nothing overflows) for an
// int64 column and an integer operand unless the operator is '/', else double arithmetic.
// The result compares with the literal by exact value.
Bitset EvalArith(const FilterNode& node, const ColumnView& col, int64_t rows) {
  const auto* rhs_int = std::get_if<int64_t>(&node.literal);
  const Int128 ri = rhs_int != nullptr ? *rhs_int : 0;
  const double rd = rhs_int != nullptr ? 0 : std::get<double>(node.literal);
  const auto* int_operand = std::get_if<int64_t>(&node.operand);
  if (col.type == FieldType::kInt64 && int_operand != nullptr && node.arith_op != ArithOp::kDiv) {
    const int64_t* v = col.int64s();
    const Int128 c = *int_operand;
    const auto scan = [&](auto f) {
      if (rhs_int != nullptr) {
        return ScanOrdering(rows, node.op, [&](int64_t i) { return f(Int128{v[i]}) <=> ri; });
      }
      return ScanOrdering(rows, node.op,
                          [&](int64_t i) { return CompareExact(f(Int128{v[i]}), rd); });
    };
    switch (node.arith_op) {
      case ArithOp::kAdd:
        return scan([c](Int128 x) { return x + c; });
      case ArithOp::kSub:
        return scan([c](Int128 x) { return x - c; });
      case ArithOp::kMul:
        return scan([c](Int128 x) { return x * c; });
      case ArithOp::kMod:
        return scan([c](Int128 x) { return x % c; });  // c != 0 (parser)
      case ArithOp::kDiv:
        break;
    }
    VLAKE_CHECK(false);
  }
  const double c =
      int_operand != nullptr ? static_cast<double>(*int_operand) : std::get<double>(node.operand);
  const auto scan = [&](auto x) {  // x(i): the row's value as a double
    const auto cmp = [&](auto f) {
      if (rhs_int != nullptr) {
        return ScanOrdering(rows, node.op, [&](int64_t i) { return CompareExact(f(x(i)), ri); });
      }
      return ScanOrdering(rows, node.op, [&](int64_t i) { return f(x(i)) <=> rd; });
    };
    switch (node.arith_op) {
      case ArithOp::kAdd:
        return cmp([c](double a) { return a + c; });
      case ArithOp::kSub:
        return cmp([c](double a) { return a - c; });
      case ArithOp::kMul:
        return cmp([c](double a) { return a * c; });
      case ArithOp::kDiv:
        return cmp([c](double a) { return a / c; });
      case ArithOp::kMod:
        break;  // integers only (parser)
    }
    VLAKE_CHECK(false);
    return Bitset(rows);
  };
  if (col.type == FieldType::kInt64) {
    const int64_t* v = col.int64s();
    return scan([v](int64_t i) { return static_cast<double>(v[i]); });
  }
  const double* v = col.doubles();
  return scan([v](int64_t i) { return v[i]; });
}

}  // namespace

// Evaluates `node` into one bit per row. With `only`, the answer need only be right for the
// rows set in it (the others may be anything), which lets the costly leaves skip rows: an
// `and` passes down the rows still in, an `or` those not yet in. Recursion depth is bounded by
// the parser's nesting limit.
Bitset Eval(const FilterNode& node, const std::vector<ColumnView>& cols, int64_t rows,
            const Bitset* only) {
  switch (node.kind) {
    case Kind::kConst:
      return Bitset(rows, node.value);
    case Kind::kAnd: {
      // The parser put the costly children last: they run only on the rows still in.
      Bitset out = Eval(*node.children[0], cols, rows, only);
      if (only != nullptr) out &= *only;  // now right everywhere: a mask for the rest
      for (size_t k = 1; k < node.children.size() && !out.none(); ++k) {
        const FilterNode& child = *node.children[k];
        out &= Eval(child, cols, rows, child.expensive ? &out : nullptr);
      }
      return out;
    }
    case Kind::kOr: {
      Bitset out = Eval(*node.children[0], cols, rows, only);
      for (size_t k = 1; k < node.children.size(); ++k) {
        const FilterNode& child = *node.children[k];
        if (!child.expensive) {
          if (only == nullptr && out.all()) break;
          out |= Eval(child, cols, rows, nullptr);
          continue;
        }
        Bitset open = out;  // the rows this child can still add
        open.Flip();
        if (only != nullptr) open &= *only;
        if (open.none()) break;
        out |= Eval(child, cols, rows, &open);
      }
      return out;
    }
    case Kind::kNot: {
      Bitset out = Eval(*node.children[0], cols, rows, only);
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
    case Kind::kLike: {
      const ColumnView& col = cols[node.column];
      return SelectOnly(rows, only,
                        [&](int64_t i) { return LikeMatch(node.like, col.varchar(i)); });
    }
    case Kind::kArith:
      return EvalArith(node, cols[node.column], rows);
    case Kind::kJsonCompare:
    case Kind::kJsonIn:
    case Kind::kJsonLike:
    case Kind::kJsonArith:
      return EvalJson(node, cols[node.column], rows, only);
  }
  VLAKE_CHECK(false);
  return Bitset(rows);
}

}  // namespace vlake::vector::internal
