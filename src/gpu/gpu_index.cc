#include "gpu/gpu_index.h"

#include <vector>

#include "gpu/device.h"
#include "gpu/device_memory.h"
#include "vector/index_parts.h"

namespace vlake::gpu {
namespace {

// The rows in host memory: data.data itself, or a copy into *copy when they are on the GPU.
Result<const float*> HostRows(const MatrixView& data, std::vector<float>* copy) {
  if (data.memory == Memory::kHost) return data.data;
  copy->resize(static_cast<size_t>(data.rows) * data.dim);
  VLAKE_RETURN_IF_ERROR(CopyDeviceToHost(data.data, copy->data(), copy->size() * sizeof(float)));
  return static_cast<const float*>(copy->data());
}

}  // namespace

Result<bool> GpuBuildable(std::string_view factory) {
  VLAKE_ASSIGN_OR_RETURN(vector::IndexSpec spec, vector::IndexSpec::Parse(factory));
  return spec.type == "IVF_FLAT" || spec.type == "IVF_PQ" || spec.type == "HNSW" ||
         spec.type == "FLAT";
}

Result<std::unique_ptr<vector::VectorIndex>> BuildIndexOnGpu(std::string_view factory,
                                                             vector::Metric metric,
                                                             const MatrixView& data,
                                                             BuildStats* stats) {
  VLAKE_ASSIGN_OR_RETURN(vector::IndexSpec spec, vector::IndexSpec::Parse(factory));
  // The canonical CPU index decides the parameters' ranges and defaults.
  VLAKE_ASSIGN_OR_RETURN(auto empty, vector::MakeIndex(spec.ToString(), data.dim, metric));
  const vector::IndexSpec& s = empty->spec();
  VLAKE_RETURN_IF_ERROR(ListDevices().status());
  if (data.rows < empty->min_training_rows()) {
    return Status(Code::kInvalidArgument, "too few rows to train " + s.type + " (" +
                                              std::to_string(data.rows) + " < " +
                                              std::to_string(empty->min_training_rows()) + ")");
  }
  BuildStats local;
  BuildStats* st = stats != nullptr ? stats : &local;
  if (s.type == "IVF_FLAT" || s.type == "IVF_PQ") {
    IvfBuildParams p;
    p.nlist = static_cast<int>(s.Get("nlist", 1024));
    if (s.type == "IVF_PQ") {
      p.pq_m = static_cast<int>(s.Get("m", 16));
      p.pq_nbits = static_cast<int>(s.Get("nbits", 8));
      if (p.pq_nbits != 8) {
        return Status(Code::kNotImplemented, "the GPU IVF_PQ builder makes 8-bit codes only");
      }
    }
    VLAKE_ASSIGN_OR_RETURN(vector::IvfParts parts, BuildIvf(p, metric, data, st));
    return vector::IndexFromIvfParts(parts);
  }
  if (s.type == "HNSW") {
    CagraBuildParams p;
    p.graph_degree = static_cast<int>(2 * s.Get("M", 16));
    p.intermediate_graph_degree = std::max(p.graph_degree * 2, 64);
    VLAKE_ASSIGN_OR_RETURN(vector::GraphParts graph, BuildCagra(p, metric, data, st));
    VLAKE_ASSIGN_OR_RETURN(uint32_t entry, GraphEntryPoint(metric, data));
    // hnswlib keeps the vectors beside the graph.
    std::vector<float> host;
    VLAKE_ASSIGN_OR_RETURN(const float* vectors, HostRows(data, &host));
    return vector::IndexFromGraphParts(graph, vectors, entry);
  }
  if (s.type == "FLAT") {
    std::vector<float> host;
    VLAKE_ASSIGN_OR_RETURN(const float* vectors, HostRows(data, &host));
    VLAKE_RETURN_IF_ERROR(empty->Add(vectors, data.rows));
    return empty;
  }
  return Status(Code::kNotImplemented, s.type + " has no GPU builder; build it with --device cpu");
}

}  // namespace vlake::gpu
