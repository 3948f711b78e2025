// Filter: the scalar filter expression language of the vector database, a superset of the
// usual forms of Milvus's boolean expressions, e.g.
//   price < 10 and color in ["red", "blue"] and not deleted
//   doc["tags"][0] == "new" and name like "ab%" and qty % 2 == 0
// The grammar, typing and comparison rules are documented in docs/filter.md.
//
// Parse() type-checks an expression against a collection schema once; Evaluate() then runs it
// over any ColumnSource (a sealed segment, the growing buffer) column at a time: each comparison
// scans its whole column into a Bitset and the boolean structure combines those bitsets, so the
// cost per row is a tight loop, not a tree walk. Json paths parse each row's document once per
// condition (filter_json.cc), and run last within an and/or, only on the rows still undecided.
//
// Thread-safety: a Filter is immutable after Parse(); Evaluate() is const and may run
// concurrently from many threads. Copies share the parsed tree.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vector/bitset.h"
#include "vector/types.h"
#include "vlake/status.h"

namespace vlake::vector {

// Limits that keep parsing bounded (and its recursion off the end of the stack) whatever a
// client sends.
inline constexpr size_t kMaxFilterBytes = 64 * 1024;
inline constexpr int kMaxFilterDepth = 64;  // nested '(' and 'not'
inline constexpr size_t kMaxFilterInItems = 65536;
inline constexpr int kMaxFilterPathDepth = 32;  // steps of one json path

namespace internal {
struct FilterNode;  // the parsed tree, defined in filter.cc
}  // namespace internal

class Filter {
 public:
  // The empty filter: matches every row.
  Filter() = default;

  // Parses and type-checks `expr` against `schema`: scalar fields and the primary key are
  // usable, json fields through paths, the float_vector field not at all; with a dynamic field,
  // names that are no field are its keys. An empty or whitespace-only expression is the empty
  // filter. Errors are InvalidArgument with a message that gives the byte offset and what was
  // expected, e.g. "filter: at 7: expected a value after '=='".
  static Result<Filter> Parse(std::string_view expr, const CollectionSchema& schema);

  // Sets *out to source.num_rows() bits, bit i set iff row i matches. Every referenced column
  // must be in `source` with the type it has in the schema given to Parse() and num_rows() rows:
  // the source's error (NotFound) or InvalidArgument otherwise.
  Status Evaluate(const ColumnSource& source, Bitset* out) const;

  const std::string& text() const { return text_; }  // as given to Parse()
  // Distinct fields the expression reads, in order of first use.
  const std::vector<std::string>& fields() const { return fields_; }
  bool empty() const { return root_ == nullptr; }

 private:
  std::string text_;
  std::vector<std::string> fields_;
  std::vector<FieldType> field_types_;                // parallel to fields_
  std::shared_ptr<const internal::FilterNode> root_;  // null: matches everything
};

}  // namespace vlake::vector
