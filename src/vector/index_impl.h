// Private to src/vector: constructors of the concrete VectorIndex implementations and the
// engine tags of the index file format (docs/format/index.md).
#pragma once

#include <memory>
#include <string_view>

#include "vector/index.h"

namespace vlake::vector {

inline constexpr uint32_t kEngineFaiss = 0x53494146;    // "FAIS"
inline constexpr uint32_t kEngineHnswlib = 0x57534e48;  // "HNSW"

Result<std::unique_ptr<VectorIndex>> MakeFaissIndex(IndexSpec spec, int dim, Metric metric);
Result<std::unique_ptr<VectorIndex>> LoadFaissIndex(const IndexFileInfo& info,
                                                    std::string_view payload);
Result<std::unique_ptr<VectorIndex>> MakeHnswIndex(IndexSpec spec, int dim, Metric metric);
Result<std::unique_ptr<VectorIndex>> LoadHnswIndex(const IndexFileInfo& info,
                                                   std::string_view payload);

}  // namespace vlake::vector
