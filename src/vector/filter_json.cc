// Json paths of the filter language (docs/filter.md): `doc["a"][0] op value` and friends.
//
// Each row's document goes once through nlohmann's SAX parser, which validates all of it (a
// document that is not valid JSON matches nothing) without building a tree: a handler follows
// the path as the events go by and keeps only the value found there. The parser is iterative,
// so nesting depth costs heap, not stack, and it reports errors instead of throwing.
#include <algorithm>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "vector/filter_internal.h"

namespace vlake::vector::internal {

std::partial_ordering CompareNumber(const Number& a, const Literal& b) {
  if (const auto* i = std::get_if<int64_t>(&b)) {
    return a.is_int ? std::partial_ordering(a.i <=> Int128{*i}) : CompareExact(a.d, Int128{*i});
  }
  const double d = std::get<double>(b);
  return a.is_int ? CompareExact(a.i, d) : a.d <=> d;
}

bool ApplyArith(const Number& x, ArithOp op, const Literal& operand, Number* out) {
  const auto* c = std::get_if<int64_t>(&operand);
  if (x.is_int && c != nullptr && op != ArithOp::kDiv) {
    const Int128 y = *c;
    out->is_int = true;
    switch (op) {
      case ArithOp::kAdd:
        out->i = x.i + y;
        return true;
      case ArithOp::kSub:
        out->i = x.i - y;
        return true;
      case ArithOp::kMul:
        out->i = x.i * y;
        return true;
      case ArithOp::kMod:
        out->i = x.i % y;  // y != 0 (parser); truncated, like C++ and Milvus
        return true;
      case ArithOp::kDiv:
        break;
    }
    return false;
  }
  if (op == ArithOp::kMod) return false;  // x is a double
  const double a = x.is_int ? static_cast<double>(x.i) : x.d;
  const double b = c != nullptr ? static_cast<double>(*c) : std::get<double>(operand);
  out->is_int = false;
  switch (op) {
    case ArithOp::kAdd:
      out->d = a + b;
      return true;
    case ArithOp::kSub:
      out->d = a - b;
      return true;
    case ArithOp::kMul:
      out->d = a * b;
      return true;
    case ArithOp::kDiv:
      out->d = a / b;
      return true;
    case ArithOp::kMod:
      break;
  }
  return false;
}

namespace {

using Json = nlohmann::json;

// The value found at a path.
struct JsonValue {
  enum class Kind : uint8_t { kMissing, kNull, kBool, kNumber, kString, kContainer };
  Kind kind = Kind::kMissing;
  bool b = false;
  Number number;
  std::string s;
};

// Follows one path through the SAX events of a document. Depth counts the containers the
// parser is in; `on_` of them, the outermost ones, are on the path with the kind its steps
// need (an object for a key, an array for an index). A value starting at depth `on_` ==
// depth_ is on the path when its container selects it: the last key read was the step's key,
// or its element number is the step's index. For duplicate keys the last one wins, as in
// nlohmann's own DOM: every value met on the path clears what an earlier one found.
class PathFinder final : public nlohmann::json_sax<Json> {
 public:
  explicit PathFinder(const std::vector<JsonStep>& path) : path_(path), elements_(path.size(), 0) {}

  // The value at the path in `doc` into *out: kMissing when the path is not there or the
  // document is not valid JSON.
  void Find(std::string_view doc, JsonValue* out) {
    out_ = out;
    out->kind = JsonValue::Kind::kMissing;
    depth_ = 0;
    on_ = 0;
    key_matches_ = false;
    bool ok = false;
    try {
      ok = Json::sax_parse(doc.begin(), doc.end(), this, Json::input_format_t::json,
                           /*strict=*/true, /*ignore_comments=*/false);
    } catch (const Json::exception&) {  // not expected from the SAX parser; never let one out
      ok = false;
    }
    if (!ok) out->kind = JsonValue::Kind::kMissing;
  }

  bool null() override {
    if (Begin() == Where::kTarget) out_->kind = JsonValue::Kind::kNull;
    return true;
  }
  bool boolean(bool val) override {
    if (Begin() == Where::kTarget) {
      out_->kind = JsonValue::Kind::kBool;
      out_->b = val;
    }
    return true;
  }
  bool number_integer(number_integer_t val) override { return SetInt(val); }
  bool number_unsigned(number_unsigned_t val) override { return SetInt(val); }
  bool number_float(number_float_t val, const string_t& /*text*/) override {
    if (Begin() == Where::kTarget) {
      out_->kind = JsonValue::Kind::kNumber;
      out_->number = Number{false, 0, val};
    }
    return true;
  }
  bool string(string_t& val) override {
    if (Begin() == Where::kTarget) {
      out_->kind = JsonValue::Kind::kString;
      std::swap(out_->s, val);
    }
    return true;
  }
  bool binary(binary_t& /*val*/) override { return false; }  // not in JSON text
  bool start_object(std::size_t /*elements*/) override { return StartContainer(false); }
  bool key(string_t& val) override {
    // Keys come only inside objects, so depth_ >= 1, and on_ <= path_.size().
    if (on_ == depth_) key_matches_ = val == path_[depth_ - 1].key;
    return true;
  }
  bool end_object() override { return EndContainer(); }
  bool start_array(std::size_t /*elements*/) override { return StartContainer(true); }
  bool end_array() override { return EndContainer(); }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& /*ex*/) override {
    return false;  // stops the parse: the document is invalid
  }

 private:
  enum class Where : uint8_t { kOff, kOnPath, kTarget };

  // A value starts at depth_: off the path, on it short of the end, or the target.
  Where Begin() {
    if (on_ != depth_) return Where::kOff;  // inside a container off the path
    if (depth_ > 0) {
      const JsonStep& step = path_[depth_ - 1];
      const bool selected = step.index >= 0 ? elements_[depth_ - 1]++ == step.index : key_matches_;
      if (!selected) return Where::kOff;
    }
    out_->kind = JsonValue::Kind::kMissing;  // supersedes any earlier value on the path
    return depth_ == path_.size() ? Where::kTarget : Where::kOnPath;
  }

  template <typename T>
  bool SetInt(T val) {
    if (Begin() == Where::kTarget) {
      out_->kind = JsonValue::Kind::kNumber;
      out_->number = Number{true, Int128{val}, 0};
    }
    return true;
  }

  bool StartContainer(bool array) {
    const Where where = Begin();
    if (where == Where::kTarget) {
      out_->kind = JsonValue::Kind::kContainer;
    } else if (where == Where::kOnPath && (path_[depth_].index >= 0) == array) {
      elements_[depth_] = 0;  // follow it: the next step fits its kind
      key_matches_ = false;
      on_ = depth_ + 1;
    }
    ++depth_;
    return true;
  }

  bool EndContainer() {
    if (on_ == depth_) on_ = depth_ - 1;
    --depth_;
    return true;
  }

  const std::vector<JsonStep>& path_;
  std::vector<int64_t> elements_;  // per level on the path: array elements seen so far
  JsonValue* out_ = nullptr;
  size_t depth_ = 0;
  size_t on_ = 0;
  bool key_matches_ = false;
};

bool InSets(const FilterNode& node, const JsonValue& v) {
  switch (v.kind) {
    case JsonValue::Kind::kBool:
      return v.b ? node.has_true : node.has_false;
    case JsonValue::Kind::kString:
      return std::binary_search(node.string_set.begin(), node.string_set.end(), v.s);
    case JsonValue::Kind::kNumber:
      break;
    default:
      return false;
  }
  // Integral list items in int64's range are in int_set, the others in double_set.
  const Number& n = v.number;
  const auto& ints = node.int_set;
  const auto& doubles = node.double_set;
  if (n.is_int) {
    if (n.i >= std::numeric_limits<int64_t>::min() && n.i <= std::numeric_limits<int64_t>::max()) {
      return std::binary_search(ints.begin(), ints.end(), static_cast<int64_t>(n.i));
    }
    const auto d = static_cast<double>(n.i);  // in [2^63, 2^64]: may round
    return static_cast<Int128>(d) == n.i && std::binary_search(doubles.begin(), doubles.end(), d);
  }
  if (n.d >= -kTwoPow63 && n.d < kTwoPow63 && std::floor(n.d) == n.d) {
    return std::binary_search(ints.begin(), ints.end(), static_cast<int64_t>(n.d));
  }
  return std::binary_search(doubles.begin(), doubles.end(), n.d);
}

bool Test(const FilterNode& node, const JsonValue& v) {
  using K = JsonValue::Kind;
  switch (node.kind) {
    case FilterNode::Kind::kJsonCompare: {
      const Literal& lit = node.literal;
      if (const auto* b = std::get_if<bool>(&lit)) {
        return v.kind == K::kBool && Holds(node.op, v.b <=> *b);
      }
      if (const auto* s = std::get_if<std::string>(&lit)) {
        return v.kind == K::kString && Holds(node.op, std::string_view(v.s) <=> *s);
      }
      return v.kind == K::kNumber && Holds(node.op, CompareNumber(v.number, lit));
    }
    case FilterNode::Kind::kJsonIn:
      return InSets(node, v);
    case FilterNode::Kind::kJsonLike:
      return v.kind == K::kString && LikeMatch(node.like, v.s);
    case FilterNode::Kind::kJsonArith: {
      Number result;
      return v.kind == K::kNumber && ApplyArith(v.number, node.arith_op, node.operand, &result) &&
             Holds(node.op, CompareNumber(result, node.literal));
    }
    default:
      break;
  }
  return false;
}

}  // namespace

Bitset EvalJson(const FilterNode& node, const ColumnView& col, int64_t rows, const Bitset* only) {
  PathFinder finder(node.path);
  JsonValue value;
  return SelectOnly(rows, only, [&](int64_t i) {
    finder.Find(col.varchar(i), &value);
    return Test(node, value);
  });
}

}  // namespace vlake::vector::internal
