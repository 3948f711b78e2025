#include "vectordb/index_build.h"

#include <algorithm>
#include <chrono>

#include "gpu/device_memory.h"
#include "gpu/gpu_index.h"
#include "vector/segment.h"

namespace vlake::vectordb {
namespace {

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Serializes and uploads a built index, timing both.
Status Upload(ObjectStore* store, const SegmentIndexBuild& build, const vector::VectorIndex& index,
              SegmentBuildReport* report) {
  auto t0 = std::chrono::steady_clock::now();
  VLAKE_ASSIGN_OR_RETURN(std::string file, vector::SerializeIndexFile(index, build.metadata));
  report->serialize_s = Since(t0);
  report->index_bytes = static_cast<int64_t>(file.size());
  t0 = std::chrono::steady_clock::now();
  VLAKE_RETURN_IF_ERROR(store->Put(build.index_key, file));
  report->upload_s = Since(t0);
  return Status::Ok();
}

// The GPU path: header + directory on the host, the vector column into GPU memory.
Result<std::unique_ptr<vector::VectorIndex>> BuildOnGpu(ObjectStore* store,
                                                        const SegmentIndexBuild& build,
                                                        SegmentBuildReport* report) {
  report->device = BuildDevice::kGpu;
  auto t0 = std::chrono::steady_clock::now();
  VLAKE_ASSIGN_OR_RETURN(uint64_t size, store->Size(build.segment_key));
  constexpr uint64_t kFirstRead = 64 << 10;  // header + a directory of any usual schema
  VLAKE_ASSIGN_OR_RETURN(std::string head,
                         store->GetRange(build.segment_key, 0, std::min(size, kFirstRead)));
  VLAKE_ASSIGN_OR_RETURN(uint64_t head_bytes, vector::SegmentHeadBytes(head.data(), head.size()));
  if (head_bytes > head.size() && head_bytes <= size) {
    VLAKE_ASSIGN_OR_RETURN(head, store->GetRange(build.segment_key, 0, head_bytes));
  }
  VLAKE_ASSIGN_OR_RETURN(vector::SegmentLayout layout,
                         vector::ParseSegmentLayout(head.data(), head.size(), size));
  VLAKE_ASSIGN_OR_RETURN(vector::ColumnExtent col, layout.Find(build.vector_field));
  if (col.field.type != vector::FieldType::kFloatVector) {
    return Status(Code::kInvalidArgument, build.vector_field + " is not a vector column");
  }
  VLAKE_ASSIGN_OR_RETURN(auto vectors, gpu::DeviceBuffer::Allocate(col.data_bytes));
  VLAKE_ASSIGN_OR_RETURN(
      client::GetResult got,
      store->GetIntoDevice(build.segment_key, vectors->data(), col.data_offset, col.data_bytes));
  report->fetch_s = Since(t0);
  report->segment_bytes = static_cast<int64_t>(col.data_bytes);
  report->fetched_direct = got.direct;
  report->fetch_path = got.path;

  // "Decode" on the GPU path is verifying the column where it landed.
  t0 = std::chrono::steady_clock::now();
  VLAKE_ASSIGN_OR_RETURN(uint32_t crc, gpu::Crc32cOnDevice(vectors->data(), col.data_bytes));
  if (crc != col.crc32c) {
    return Status(Code::kCorruption, "segment " + build.segment_key + ": column '" +
                                         build.vector_field + "' checksum mismatch on the GPU");
  }
  report->rows = static_cast<int64_t>(layout.rows);
  report->decode_s = Since(t0);

  gpu::MatrixView data{static_cast<const float*>(vectors->data()),
                       static_cast<int64_t>(layout.rows), col.field.dim, gpu::Memory::kDevice};
  gpu::BuildStats stats;
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<vector::VectorIndex> index,
                         gpu::BuildIndexOnGpu(build.spec, build.metric, data, &stats));
  report->train_s = stats.train_seconds + stats.graph_seconds;
  report->add_s = stats.add_seconds + stats.optimize_seconds;
  vectors.reset();  // the GPU memory is not needed for serializing
  VLAKE_RETURN_IF_ERROR(Upload(store, build, *index, report));
  return index;
}

}  // namespace

Result<std::unique_ptr<vector::VectorIndex>> BuildSegmentIndexFile(ObjectStore* store,
                                                                   const SegmentIndexBuild& build,
                                                                   SegmentBuildReport* report) {
  if (build.device == BuildDevice::kGpu) return BuildOnGpu(store, build, report);
  auto t0 = std::chrono::steady_clock::now();
  VLAKE_ASSIGN_OR_RETURN(Blob blob, store->Get(build.segment_key));
  report->fetch_s = Since(t0);
  report->segment_bytes = static_cast<int64_t>(blob.size);
  report->fetched_direct = blob.direct;
  report->fetch_path = blob.direct ? "direct" : "http";

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

  VLAKE_RETURN_IF_ERROR(Upload(store, build, *index, report));
  return index;
}

}  // namespace vlake::vectordb
