// algorithms.h without CUDA (the build found no nvcc): every entry point answers kUnavailable,
// so callers pick the CPU path on the same Status they get on a CUDA build without a GPU.
#include "gpu/algorithms.h"
#include "gpu/cagra_rules.h"

namespace vlake::gpu {
namespace {

Status NoGpu() { return Status(Code::kUnavailable, "no GPU: built without CUDA"); }

}  // namespace

Result<std::vector<float>> KMeansFit(const KMeansParams&, vector::Metric, const MatrixView&,
                                     KMeansStats*) {
  return NoGpu();
}

Status KMeansPredict(vector::Metric, const float*, int, const MatrixView&, MathMode, int32_t*) {
  return NoGpu();
}

Result<double> MeasureGemmFlops(int64_t, int64_t, int64_t, MathMode, int) { return NoGpu(); }

Status BruteForceKnn(vector::Metric, const MatrixView&, const MatrixView&, int, MathMode, int64_t*,
                     float*) {
  return NoGpu();
}

Result<vector::IvfParts> BuildIvf(const IvfBuildParams&, vector::Metric, const MatrixView&,
                                  BuildStats*) {
  return NoGpu();
}

Result<vector::GraphParts> BuildCagra(const CagraBuildParams&, vector::Metric, const MatrixView&,
                                      BuildStats*) {
  return NoGpu();
}

Result<uint32_t> GraphEntryPoint(vector::Metric, const MatrixView&) { return NoGpu(); }

Result<std::unique_ptr<DeviceIndex>> UploadFlat(vector::Metric, const MatrixView&) {
  return NoGpu();
}

Result<std::unique_ptr<DeviceIndex>> UploadIvf(const vector::IvfParts&, const MatrixView&) {
  return NoGpu();
}

Result<std::unique_ptr<DeviceIndex>> UploadCagra(const vector::GraphParts&, const MatrixView&) {
  return NoGpu();
}

Result<std::vector<uint32_t>> OptimizeCagraGraph(const uint32_t*, int64_t, int, int, BuildStats*) {
  return NoGpu();
}

}  // namespace vlake::gpu
