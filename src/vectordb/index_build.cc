#include "vectordb/index_build.h"

#include <chrono>

#include "vector/segment.h"

namespace vlake::vectordb {
namespace {

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Result<std::unique_ptr<vector::VectorIndex>> BuildSegmentIndexFile(
    ObjectStore* store, const SegmentIndexBuild& build, SegmentBuildReport* report) {
  auto t0 = std::chrono::steady_clock::now();
  VLAKE_ASSIGN_OR_RETURN(Blob blob, store->Get(build.segment_key));
  report->fetch_s = Since(t0);
  report->segment_bytes = static_cast<int64_t>(blob.size);
  report->fetched_direct = blob.direct;

  t0 = std::chrono::steady_clock::now();
  VLAKE_ASSIGN_OR_RETURN(auto seg, vector::Segment::Decode(blob.owner, blob.data, blob.size));
  VLAKE_ASSIGN_OR_RETURN(vector::ColumnView vecs, seg->Column(build.vector_field));
  if (vecs.type != vector::FieldType::kFloatVector) {
    return Status(Code::kInvalidArgument, build.vector_field + " is not a vector column");
  }
  report->rows = vecs.rows;
  report->decode_s = Since(t0);

  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<vector::VectorIndex> index,
                         vector::MakeIndex(build.spec, vecs.dim, build.metric));
  t0 = std::chrono::steady_clock::now();
  VLAKE_RETURN_IF_ERROR(index->Train(vecs.floats(), vecs.rows));
  report->train_s = Since(t0);
  t0 = std::chrono::steady_clock::now();
  VLAKE_RETURN_IF_ERROR(index->Add(vecs.floats(), vecs.rows));
  report->add_s = Since(t0);

  t0 = std::chrono::steady_clock::now();
  VLAKE_ASSIGN_OR_RETURN(std::string file, vector::SerializeIndexFile(*index, build.metadata));
  report->serialize_s = Since(t0);
  report->index_bytes = static_cast<int64_t>(file.size());

  t0 = std::chrono::steady_clock::now();
  VLAKE_RETURN_IF_ERROR(store->Put(build.index_key, file));
  report->upload_s = Since(t0);
  return index;
}

}  // namespace vlake::vectordb
