// Milvus partitions on a vlake collection: the partition list lives in the collection's
// properties (VectorEngine::SetProperty, key "milvus.partitions", a JSON array of
// {"name", "id", "created_ms"}); every row carries its partition in the hidden column
// __vlake_partition (schema_map.h), so restricting a search, query or delete to partitions is
// one more filter term. `_default` always exists and cannot be dropped. Collections created
// before partitions were served have no partition column: only `_default`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vector/types.h"
#include "vectordb/engine.h"
#include "vlake/status.h"

namespace vlake::milvus {

inline constexpr size_t kMaxPartitions = 1024;  // Milvus's default rootCoord.maxPartitionNum

struct PartitionInfo {
  std::string name;
  int64_t id = 0;
  uint64_t created_ms = 0;
};

// `_default` first, then the others in creation order.
Result<std::vector<PartitionInfo>> ListPartitions(vectordb::VectorEngine* engine,
                                                  const std::string& collection);
// Ok when every name exists (an empty name means `_default`); NotFound
// "partition not found[partition=...]" otherwise.
Status CheckPartitions(vectordb::VectorEngine* engine, const std::string& collection,
                       const std::vector<std::string>& names);
// Adds a partition (an existing name succeeds, as in Milvus); InvalidArgument for a bad name,
// for a collection without a partition column, or past kMaxPartitions.
Status CreatePartition(vectordb::VectorEngine* engine, const vector::CollectionSchema& schema,
                       const std::string& partition);
// Deletes the partition's rows, then its name (and its rows again, for inserts that raced the
// first delete). Dropping `_default` is refused; a missing partition succeeds.
Status DropPartition(vectordb::VectorEngine* engine, const vector::CollectionSchema& schema,
                     const std::string& partition);

// `expr` restricted to `partitions` (none: the whole collection): the filter to evaluate.
// `expr` is checked on its own first, so no text in it can reach past the restriction.
Result<std::string> WithPartitions(const vector::CollectionSchema& schema, const std::string& expr,
                           const std::vector<std::string>& partitions);

}  // namespace vlake::milvus
