// The index build pipeline of one segment, as a free function: fetch the segment object
// (direct data path when offered), decode, train, add, serialize, upload, timing each stage.
// On the GPU (BuildDevice::kGpu) only the header and directory are read on the host; the
// vector column is fetched straight into GPU memory (CUDA IPC from a storage node on this
// host, else staged over the direct path), its CRC32C verified there, and the index built
// by src/gpu into the CPU engine's format.
// Used by the engine's index jobs and by `vlake bench index`, so the benchmark measures the
// code path the database runs. Thread-safe (no shared state besides the store).
#pragma once

#include <memory>
#include <string>

#include "vector/index.h"
#include "vectordb/engine.h"
#include "vectordb/object_store.h"

namespace vlake::vectordb {

struct SegmentIndexBuild {
  std::string segment_key;   // object holding the sealed segment
  std::string index_key;     // object to write the index file to
  std::string vector_field;  // column to index
  std::string spec;          // vector::MakeIndex factory string
  vector::Metric metric = vector::Metric::kL2;
  std::string metadata;  // stored in the index file header
  BuildDevice device = BuildDevice::kCpu;
};

// Fills report (segment, rows, stage times, sizes) and returns the built index.
Result<std::unique_ptr<vector::VectorIndex>> BuildSegmentIndexFile(ObjectStore* store,
                                                                   const SegmentIndexBuild& build,
                                                                   SegmentBuildReport* report);

}  // namespace vlake::vectordb
