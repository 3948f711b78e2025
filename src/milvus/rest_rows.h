// REST v2's JSON rows <-> Milvus columns (schema.FieldData), as Milvus's RESTful API shapes
// them: one JSON object per row; Int64 as strings unless the client allows numbers
// (`Accept-Type-Allow-Int64: true`); JSON fields as JSON values; the dynamic field's keys
// flattened into the row on the way out and gathered into `$meta` on the way in.
#pragma once

#include <google/protobuf/repeated_field.h>

#include <nlohmann/json.hpp>
#include <string>

#include "schema.pb.h"
#include "vlake/status.h"

namespace vlake::milvus {

using RestFieldDatas = google::protobuf::RepeatedPtrField<::milvus::proto::schema::FieldData>;

// The columns of `rows` (a non-empty array of objects) for a collection with `schema` (as
// DescribeCollection answers it): every field (an autoID primary key may be left out), and
// the keys the schema lacks into `$meta` when the dynamic field is on. InvalidArgument naming
// the row and field otherwise.
Status ColumnsFromRows(const ::milvus::proto::schema::CollectionSchema& schema,
                       const nlohmann::json& rows, RestFieldDatas* out);

// Rows [begin, end) of result columns, appended to *out; `scores` (when given) as key
// `score_key`.
void RowsFromColumns(const RestFieldDatas& columns, int64_t begin, int64_t end, bool int64_numbers,
                     const google::protobuf::RepeatedField<float>* scores, const char* score_key,
                     nlohmann::json* out);
// How many rows a result column holds.
int64_t RowsOf(const ::milvus::proto::schema::FieldData& column);

// A filter literal for `v` (a JSON number or string) as the expression language reads it.
std::string FilterLiteral(const nlohmann::json& v);

}  // namespace vlake::milvus
