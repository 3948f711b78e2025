// Milvus schema.CollectionSchema <-> vlake's vector::CollectionSchema (src/vector/types.h).
//
// Served: an Int64 (given or autoID) or VarChar primary key, one FloatVector (dim 1..32768),
// Int8/16/32/64, Float, Double, Bool, VarChar (max_length), JSON, and the dynamic field
// (`$meta`, a JSON object per row). Every other type, a second vector field, nullable and
// partition-key fields are refused with InvalidArgument naming what is not supported
// (docs/milvus-compat.md), so nothing is created that cannot be served.
//
// Fields the Milvus API adds to the engine schema, which Milvus clients never see:
//   __vlake_rowid      the engine's int64 auto_id primary key, when the Milvus primary key is a
//                      VarChar (then the engine's key_field is that VarChar field);
//   __vlake_partition  the partition of each row (VarChar).
#pragma once

#include <string>
#include <string_view>

#include "schema.pb.h"
#include "vector/types.h"
#include "vlake/status.h"

namespace vlake::milvus {

inline constexpr std::string_view kRowIdField = "__vlake_rowid";
inline constexpr std::string_view kPartitionField = "__vlake_partition";
inline constexpr std::string_view kDynamicField = "$meta";
inline constexpr std::string_view kDefaultPartition = "_default";

// A stable, positive int64 id for a name (Milvus hands out int64 ids for collections and
// partitions; vlake's are named): FNV-1a, top bit cleared.
int64_t StableId(std::string_view name);

// The Milvus data type of a vlake field type.
::milvus::proto::schema::DataType WireType(vector::FieldType type);

// True for the fields above (and any name with their prefix, which users may not take).
bool IsHiddenField(std::string_view name);

// The field Milvus clients know as the primary key: the VarChar key field, else the engine's
// int64 primary key.
const vector::FieldSchema& MilvusPrimary(const vector::CollectionSchema& schema);
// True when the collection was made with a partition column (collections created before
// partitions were served have only _default).
bool HasPartitionColumn(const vector::CollectionSchema& schema);

// `name` is the request's collection_name (the schema's own name must be empty or equal).
Result<vector::CollectionSchema> FromMilvusSchema(const ::milvus::proto::schema::CollectionSchema& in,
                                                  const std::string& name);

// The schema as DescribeCollection answers it: the visible fields in order with field ids
// 100, 101, ..., dim and max_length as type_params; the dynamic field only as
// enable_dynamic_field (Milvus's DescribeCollection does not list `$meta` either).
::milvus::proto::schema::CollectionSchema ToMilvusSchema(const vector::CollectionSchema& in);

}  // namespace vlake::milvus
