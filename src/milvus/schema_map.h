// Milvus schema.CollectionSchema <-> vlake's vector::CollectionSchema (src/vector/types.h).
// vlake stores an Int64 primary key (auto_id or given), one FloatVector (dim 1..32768), and
// Int64 / Double / Bool / VarChar scalars; every other Milvus type, a second vector field, a
// VarChar primary key and the dynamic field are refused with InvalidArgument naming what is
// not supported (docs/milvus-compat.md), so nothing is created that cannot be served.
#pragma once

#include <string>

#include "schema.pb.h"
#include "vector/types.h"
#include "vlake/status.h"

namespace vlake::milvus {

// `name` is the request's collection_name (the schema's own name must be empty or equal).
Result<vector::CollectionSchema> FromMilvusSchema(const ::milvus::proto::schema::CollectionSchema& in,
                                                  const std::string& name);

// The schema as DescribeCollection answers it: field ids 100, 101, ... in field order, dim
// and max_length as type_params.
::milvus::proto::schema::CollectionSchema ToMilvusSchema(const vector::CollectionSchema& in);

}  // namespace vlake::milvus
