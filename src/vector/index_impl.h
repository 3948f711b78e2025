// Private to src/vector: constructors of the concrete VectorIndex implementations and the
// engine tags of the index file format (docs/format/index.md).
#pragma once

#include <memory>
#include <string_view>

#include "vector/index.h"

namespace vlake::vector {

struct IvfParts;
struct GraphParts;

inline constexpr uint32_t kEngineFaiss = 0x53494146;    // "FAIS"
inline constexpr uint32_t kEngineHnswlib = 0x57534e48;  // "HNSW"

Result<std::unique_ptr<VectorIndex>> MakeFaissIndex(IndexSpec spec, int dim, Metric metric);
Result<std::unique_ptr<VectorIndex>> LoadFaissIndex(const IndexFileInfo& info,
                                                    std::string_view payload);
Result<std::unique_ptr<VectorIndex>> MakeHnswIndex(IndexSpec spec, int dim, Metric metric);
Result<std::unique_ptr<VectorIndex>> LoadHnswIndex(const IndexFileInfo& info,
                                                   std::string_view payload);

// The engine halves of IndexFromIvfParts / IndexFromGraphParts (index_parts.h): they assume
// validated parts and a canonical `spec` that matches them (index_parts.cc checks both), and
// return the same classes MakeFaissIndex / MakeHnswIndex do.
Result<std::unique_ptr<VectorIndex>> FaissIndexFromIvfParts(IndexSpec spec, const IvfParts& parts);
Result<std::unique_ptr<VectorIndex>> HnswIndexFromGraphParts(IndexSpec spec,
                                                             const GraphParts& parts,
                                                             const float* vectors,
                                                             uint32_t entry_point);

}  // namespace vlake::vector
