// Index builds on the GPU behind the CPU engine's factory strings: what `vlake index build
// --device gpu` runs. The GPU builds the same index a CPU build would name, and the result is
// a CPU-engine VectorIndex (FAISS IVF, hnswlib HNSW), so its index file serves from CPU-only
// nodes:
//   IVF_FLAT:nlist=N            -> GPU balanced k-means + list assignment (gpu::BuildIvf)
//   IVF_PQ:nlist=N,m=M,nbits=8  -> the same + residual PQ codebooks and codes
//   HNSW:M=m,efConstruction=e   -> a CAGRA graph of degree 2m (hnswlib's base-layer degree),
//                                  exported as a single-layer HNSW (gpu::BuildCagra)
//   FLAT                        -> nothing to build (copied into a CPU FLAT index)
// IVF_SQ8 has no GPU builder (kNotImplemented: build it with --device cpu).
//
// Thread-safe (each call uses its own stream and handles).
#pragma once

#include <memory>
#include <string_view>

#include "gpu/algorithms.h"
#include "vector/index.h"

namespace vlake::gpu {

// Whether `factory` names an index this module builds on the GPU (parses the string).
Result<bool> GpuBuildable(std::string_view factory);

// Builds `factory` over `data` (host or device memory) on the GPU. kUnavailable "no GPU: ..."
// without one. stats (optional) gets the stage times.
Result<std::unique_ptr<vector::VectorIndex>> BuildIndexOnGpu(std::string_view factory,
                                                             vector::Metric metric,
                                                             const MatrixView& data,
                                                             BuildStats* stats = nullptr);

}  // namespace vlake::gpu
