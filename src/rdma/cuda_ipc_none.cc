// cuda_ipc.h for builds without CUDA: every entry point says so.
#include "rdma/cuda_ipc.h"

namespace vlake::rdma {
namespace {
Status NoCuda() { return Error(Code::kUnavailable, "no GPU: built without CUDA"); }
}  // namespace

Result<CudaIpcToken> ExportCudaIpc(const void*, uint64_t, int64_t) { return NoCuda(); }
Result<std::unique_ptr<Engine>> CreateCudaIpcEngine(const CudaIpcEngineOptions&) {
  return NoCuda();
}
Result<std::unique_ptr<DeviceCopyTarget>> DeviceCopyTarget::Create(void*, uint64_t, int) {
  return NoCuda();
}

}  // namespace vlake::rdma
