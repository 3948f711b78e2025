// The Milvus column wire (schema.FieldData) <-> vlake rows and results, and the key-value
// parameters of CreateIndex and Search. Every malformed input is an InvalidArgument naming the
// field or parameter, and nothing is written (the engine receives a complete, checked batch).
#pragma once

#include <google/protobuf/repeated_field.h>

#include <string>
#include <vector>

#include "common.pb.h"
#include "schema.pb.h"
#include "vector/index.h"
#include "vector/segment.h"
#include "vectordb/engine.h"
#include "vlake/status.h"

namespace vlake::milvus {

using KeyValues = google::protobuf::RepeatedPtrField<::milvus::proto::common::KeyValuePair>;
using FieldDatas = google::protobuf::RepeatedPtrField<::milvus::proto::schema::FieldData>;

// One row batch for VectorEngine::Insert / Upsert from a request's columns: every visible
// field of the schema except an auto_id primary key, each with num_rows values of its type;
// the dynamic field from the `$meta` column (`{}` per row when absent); the partition column
// filled with `partition`.
Result<vector::RowBatch> RowsFromFieldData(const vector::CollectionSchema& schema,
                                           const FieldDatas& columns, uint32_t num_rows,
                                           const std::string& partition);

// One result column: `values` (one per row, as the engine returns them) of field `field`.
::milvus::proto::schema::FieldData FieldDataOf(const vector::FieldSchema& field,
                                               const std::vector<vectordb::FieldValue>& values);
// The primary key column (Int64 or VarChar) of result rows, as the SDKs expect it first.
::milvus::proto::schema::FieldData PrimaryKeyData(const vector::FieldSchema& pk,
                                                  const std::vector<vectordb::FieldValue>& values);
// The same keys as schema.IDs (int_id or str_id by the key's type).
void SetIds(const vector::FieldSchema& pk, const std::vector<vectordb::FieldValue>& values,
            ::milvus::proto::schema::IDs* ids);
// The JSON object `document` reduced to `keys` (those it has): what a query that names
// dynamic keys gets back in `$meta`.
std::string PickKeys(std::string_view document, const std::vector<std::string>& keys);

// The value of `key` among the pairs, or "" when absent.
std::string Param(const KeyValues& params, const std::string& key);

// CreateIndex's extra_params (index_type, metric_type, params JSON, or the params' keys flat)
// as a vlake factory string, device and metric. AUTOINDEX = HNSW:M=16,efConstruction=200; the
// GPU_ types build on the GPU (BuildDevice::kGpu).
struct IndexChoice {
  std::string factory;
  vectordb::BuildDevice device = vectordb::BuildDevice::kCpu;
  std::optional<vector::Metric> metric;  // when metric_type was given
  std::string index_type;                // as the client named it
};
Result<IndexChoice> IndexFromParams(const KeyValues& params);

// Search's search_params: topk (or limit), offset, metric_type, params JSON (ef, nprobe,
// radius, range_filter) and the same keys flat.
struct SearchChoice {
  vector::SearchParams params;  // k = topk + offset
  int64_t topk = 10;
  int64_t offset = 0;
  std::optional<vector::Metric> metric;
  int round_decimal = -1;
};
Result<SearchChoice> SearchFromParams(const KeyValues& params);

// The query vectors of a serialized PlaceholderGroup: nq * dim floats.
Result<std::vector<float>> QueryVectors(const std::string& placeholder_group, int dim,
                                        int64_t* nq);

}  // namespace vlake::milvus
