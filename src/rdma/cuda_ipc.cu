// CUDA implementation of cuda_ipc.h (compiled only when the build has CUDA).
//
// The server maps a client's exported allocation with cudaIpcOpenMemHandle and moves object
// bytes into it from pinned host buffers with cudaMemcpyAsync: the GPU's copy engine DMAs the
// payload once, the client's CPU never touches it. Mappings are shared by concurrent transfers
// of the same allocation (refcounted) and closed when the last one ends, so nothing stays
// mapped after a request: the token's region is never touched after the request ended.
#include <cuda.h>  // driver types for cuMemGetAddressRange (looked up at run time, not linked)
#include <cuda_runtime.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "common/encoding.h"
#include "rdma/cuda_ipc.h"

namespace vlake::rdma {
namespace {

Status Cuda(const char* what, cudaError_t err, Code code = Code::kInternal) {
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
      err == cudaErrorInitializationError) {
    cudaGetLastError();
    return Error(Code::kUnavailable,
                 std::string("no GPU: ") + what + ": " + cudaGetErrorString(err));
  }
  cudaGetLastError();  // clear non-sticky errors so later calls report their own
  return Error(code, std::string(what) + ": " + cudaGetErrorString(err));
}

#define CUDA_OR_RETURN(call, ...)                                     \
  do {                                                                \
    cudaError_t err_ = (call);                                        \
    if (err_ != cudaSuccess) return Cuda(#call, err_, ##__VA_ARGS__); \
  } while (0)

using GetAddressRangeFn = CUresult (*)(CUdeviceptr*, size_t*, CUdeviceptr);

// cuMemGetAddressRange through the runtime's driver entry point (the binary links only the
// static runtime, so it starts without a driver).
Result<std::pair<uint64_t, uint64_t>> AllocationRange(const void* ptr) {
  static GetAddressRangeFn fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &f, 12000, cudaEnableDefault,
                                         &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      f = nullptr;
    }
    return reinterpret_cast<GetAddressRangeFn>(f);
  }();
  if (fn == nullptr) return Error(Code::kUnavailable, "no GPU: cuMemGetAddressRange unavailable");
  CUdeviceptr base = 0;
  size_t size = 0;
  if (fn(&base, &size, reinterpret_cast<CUdeviceptr>(ptr)) != CUDA_SUCCESS) {
    return Error(Code::kInvalidArgument, "not inside a CUDA device allocation");
  }
  return std::make_pair(static_cast<uint64_t>(base), static_cast<uint64_t>(size));
}

std::array<uint8_t, 16> DeviceUuid(int device) {
  std::array<uint8_t, 16> id{};
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) == cudaSuccess) {
    std::memcpy(id.data(), prop.uuid.bytes, id.size());
  }
  return id;
}

}  // namespace

Result<CudaIpcToken> ExportCudaIpc(const void* device_ptr, uint64_t length, int64_t ttl_ms) {
  cudaPointerAttributes attr{};
  CUDA_OR_RETURN(cudaPointerGetAttributes(&attr, device_ptr), Code::kInvalidArgument);
  if (attr.type != cudaMemoryTypeDevice) {
    return Error(Code::kInvalidArgument, "CUDA IPC needs device memory from cudaMalloc");
  }
  VLAKE_ASSIGN_OR_RETURN(auto range, AllocationRange(device_ptr));
  uint64_t offset = reinterpret_cast<uint64_t>(device_ptr) - range.first;
  if (length > range.second - offset) {
    return Error(Code::kInvalidArgument, "the range leaves its CUDA allocation");
  }
  cudaIpcMemHandle_t handle{};
  CUDA_OR_RETURN(cudaIpcGetMemHandle(&handle, reinterpret_cast<void*>(range.first)),
                 Code::kInvalidArgument);
  CudaIpcToken t;
  t.host_id = HostBootId();
  t.device_uuid = DeviceUuid(attr.device);
  static_assert(sizeof(handle) == kCudaIpcHandleBytes);
  std::memcpy(t.ipc_handle.data(), &handle, sizeof handle);
  t.offset = offset;
  t.length = length;
  std::string nonce = RandomBytes(t.nonce.size());
  std::memcpy(t.nonce.data(), nonce.data(), t.nonce.size());
  t.expires_unix_ms = UnixMillis() + ttl_ms;
  return t;
}

namespace {

// Opened IPC mappings, shared by the transfers of one allocation.
class MappingTable {
 public:
  struct Mapping {
    char* base = nullptr;
    uint64_t size = 0;
    int device = 0;
    int refs = 0;
  };
  using Key = std::array<uint8_t, kCudaIpcHandleBytes>;

  Result<Mapping> Acquire(const Key& key, int device) {
    std::lock_guard lock(mu_);
    auto it = open_.find(key);
    if (it != open_.end()) {
      ++it->second.refs;
      return it->second;
    }
    CUDA_OR_RETURN(cudaSetDevice(device));
    cudaIpcMemHandle_t handle;
    std::memcpy(&handle, key.data(), sizeof handle);
    void* p = nullptr;
    CUDA_OR_RETURN(cudaIpcOpenMemHandle(&p, handle, cudaIpcMemLazyEnablePeerAccess),
                   Code::kInvalidRdmaToken);
    auto range = AllocationRange(p);
    if (!range.ok()) {
      cudaIpcCloseMemHandle(p);
      return range.error();
    }
    Mapping m{static_cast<char*>(p), range->second, device, 1};
    open_[key] = m;
    return m;
  }

  void Release(const Key& key) {
    std::lock_guard lock(mu_);
    auto it = open_.find(key);
    if (it == open_.end() || --it->second.refs > 0) return;
    cudaSetDevice(it->second.device);
    cudaIpcCloseMemHandle(it->second.base);
    open_.erase(it);
  }

 private:
  std::mutex mu_;
  std::map<Key, Mapping> open_;
};

// Two pinned staging buffers, a stream and two events; pooled by the engine because pinned
// allocation costs milliseconds.
struct Staging {
  ~Staging() {
    for (int i = 0; i < 2; ++i) {
      if (buf[i] != nullptr) cudaFreeHost(buf[i]);
      if (done[i] != nullptr) cudaEventDestroy(done[i]);
    }
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
  int device = 0;
  char* buf[2] = {nullptr, nullptr};
  cudaEvent_t done[2] = {nullptr, nullptr};
  cudaStream_t stream = nullptr;
};

class CudaIpcEngine;

class CudaIpcTransfer final : public Transfer {
 public:
  CudaIpcTransfer(CudaIpcEngine* engine, MappingTable::Key key, MappingTable::Mapping mapping,
                  const CudaIpcToken& token, std::unique_ptr<Staging> staging,
                  uint64_t staging_bytes, CancelCheck cancel)
      : engine_(engine),
        key_(key),
        mapping_(mapping),
        dst_(mapping.base + token.offset),
        length_(token.length),
        staging_(std::move(staging)),
        staging_bytes_(staging_bytes),
        cancel_(std::move(cancel)) {}
  ~CudaIpcTransfer() override;

  uint64_t region_bytes() const override { return length_; }

  Status WriteFromFile(int fd, uint64_t file_offset, uint64_t region_offset,
                       uint64_t length) override {
    if (region_offset > length_ || length > length_ - region_offset) {
      return Error(Code::kInvalidRdmaToken, "write outside the token's region");
    }
    CUDA_OR_RETURN(cudaSetDevice(mapping_.device));
    uint64_t done = 0;
    while (done < length) {
      if (cancel_) VLAKE_RETURN_IF_ERROR(cancel_());
      int b = next_;
      next_ ^= 1;
      // The buffer is refilled only once the copy that last read it has finished.
      CUDA_OR_RETURN(cudaEventSynchronize(staging_->done[b]), Code::kRdmaTransferFailed);
      uint64_t n = std::min(staging_bytes_, length - done);
      uint64_t got = 0;
      while (got < n) {
        ssize_t r = pread(fd, staging_->buf[b] + got, n - got,
                          static_cast<off_t>(file_offset + done + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return Error(Code::kIoError, "reading the object for a CUDA IPC transfer");
        got += static_cast<uint64_t>(r);
      }
      CUDA_OR_RETURN(cudaMemcpyAsync(dst_ + region_offset + done, staging_->buf[b], n,
                                     cudaMemcpyHostToDevice, staging_->stream),
                     Code::kRdmaTransferFailed);
      CUDA_OR_RETURN(cudaEventRecord(staging_->done[b], staging_->stream),
                     Code::kRdmaTransferFailed);
      done += n;
    }
    return Status::Ok();
  }

  Status ReadInto(uint64_t region_offset, char* buf, uint64_t length) override {
    if (region_offset > length_ || length > length_ - region_offset) {
      return Error(Code::kInvalidRdmaToken, "read outside the token's region");
    }
    CUDA_OR_RETURN(cudaSetDevice(mapping_.device));
    CUDA_OR_RETURN(cudaMemcpyAsync(buf, dst_ + region_offset, length, cudaMemcpyDeviceToHost,
                                   staging_->stream),
                   Code::kRdmaTransferFailed);
    CUDA_OR_RETURN(cudaStreamSynchronize(staging_->stream), Code::kRdmaTransferFailed);
    return Status::Ok();
  }

  Status Flush() override {
    CUDA_OR_RETURN(cudaStreamSynchronize(staging_->stream), Code::kRdmaTransferFailed);
    return Status::Ok();
  }

 private:
  CudaIpcEngine* engine_;
  MappingTable::Key key_;
  MappingTable::Mapping mapping_;
  char* dst_;
  uint64_t length_;
  std::unique_ptr<Staging> staging_;
  uint64_t staging_bytes_;
  CancelCheck cancel_;
  int next_ = 0;
};

class CudaIpcEngine final : public Engine {
 public:
  CudaIpcEngine(CudaIpcEngineOptions options, std::map<std::array<uint8_t, 16>, int> devices)
      : options_(options), host_id_(HostBootId()), devices_(std::move(devices)) {}

  std::string_view name() const override { return "cuda-ipc"; }

  bool Serves(const Token& token) const override {
    const auto* t = std::get_if<CudaIpcToken>(&token);
    return t != nullptr && t->host_id == host_id_ && devices_.count(t->device_uuid) > 0;
  }

  // The token proves the same host (boot id); no connection is made, so `http_peer` is unused.
  Result<std::unique_ptr<Transfer>> Open(const Token& token, std::string_view /*http_peer*/,
                                         CancelCheck cancel) override {
    if (!Serves(token)) return Error(Code::kRdmaNotSupported, "token variant not served");
    const auto& t = std::get<CudaIpcToken>(token);
    int device = devices_.at(t.device_uuid);
    VLAKE_ASSIGN_OR_RETURN(MappingTable::Mapping m, mappings_.Acquire(t.ipc_handle, device));
    if (t.offset > m.size || t.length > m.size - t.offset) {
      mappings_.Release(t.ipc_handle);
      return Error(Code::kInvalidRdmaToken, "the token's range leaves the exported allocation");
    }
    auto staging = TakeStaging(device);
    if (!staging.ok()) {
      mappings_.Release(t.ipc_handle);
      return staging.error();
    }
    return std::unique_ptr<Transfer>(new CudaIpcTransfer(
        this, t.ipc_handle, m, t, std::move(*staging), options_.staging_bytes, std::move(cancel)));
  }

  // Called by a transfer's destructor after its stream is idle.
  void Finish(const MappingTable::Key& key, std::unique_ptr<Staging> staging) {
    mappings_.Release(key);
    std::lock_guard lock(mu_);
    if (pool_.size() < 8) pool_.push_back(std::move(staging));
  }

 private:
  Result<std::unique_ptr<Staging>> TakeStaging(int device) {
    {
      std::lock_guard lock(mu_);
      for (auto it = pool_.begin(); it != pool_.end(); ++it) {
        if ((*it)->device == device) {
          std::unique_ptr<Staging> s = std::move(*it);
          pool_.erase(it);
          return Result<std::unique_ptr<Staging>>(std::move(s));
        }
      }
    }
    auto s = std::make_unique<Staging>();
    s->device = device;
    CUDA_OR_RETURN(cudaSetDevice(device));
    CUDA_OR_RETURN(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
    for (int i = 0; i < 2; ++i) {
      CUDA_OR_RETURN(cudaHostAlloc(reinterpret_cast<void**>(&s->buf[i]), options_.staging_bytes,
                                   cudaHostAllocDefault));
      CUDA_OR_RETURN(cudaEventCreateWithFlags(&s->done[i], cudaEventDisableTiming));
    }
    return Result<std::unique_ptr<Staging>>(std::move(s));
  }

  CudaIpcEngineOptions options_;
  std::array<uint8_t, 16> host_id_;
  std::map<std::array<uint8_t, 16>, int> devices_;  // uuid -> device index
  MappingTable mappings_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Staging>> pool_;
};

CudaIpcTransfer::~CudaIpcTransfer() {
  // Nothing may still be moving once the request is over (engine.h).
  cudaSetDevice(mapping_.device);
  cudaStreamSynchronize(staging_->stream);
  engine_->Finish(key_, std::move(staging_));
}

// Copies for staged GETs: a stream and an event per slot.
class CudaCopyTarget final : public DeviceCopyTarget {
 public:
  ~CudaCopyTarget() override {
    cudaSetDevice(device_);
    for (auto& s : slots_) {
      if (s.stream != nullptr) {
        cudaStreamSynchronize(s.stream);
        cudaStreamDestroy(s.stream);
      }
      if (s.done != nullptr) cudaEventDestroy(s.done);
    }
  }
  Status Init(char* dst, uint64_t size, int device, int slots) {
    dst_ = dst;
    size_ = size;
    device_ = device;
    slots_.resize(slots);
    CUDA_OR_RETURN(cudaSetDevice(device));
    for (auto& s : slots_) {
      CUDA_OR_RETURN(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
      CUDA_OR_RETURN(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
    }
    return Status::Ok();
  }
  uint64_t size() const override { return size_; }
  Status Pin(char* data, uint64_t size) override {
    CUDA_OR_RETURN(cudaHostRegister(data, size, cudaHostRegisterDefault));
    return Status::Ok();
  }
  void Unpin(char* data) override {
    if (cudaHostUnregister(data) != cudaSuccess) cudaGetLastError();
  }
  Status CopyAsync(int slot, const char* src, uint64_t dst_offset, uint64_t n) override {
    if (slot < 0 || slot >= static_cast<int>(slots_.size())) {
      return Error(Code::kInvalidArgument, "no such copy slot");
    }
    if (dst_offset > size_ || n > size_ - dst_offset) {
      return Error(Code::kInvalidArgument, "copy past the end of the device buffer");
    }
    CUDA_OR_RETURN(cudaSetDevice(device_));
    CUDA_OR_RETURN(
        cudaMemcpyAsync(dst_ + dst_offset, src, n, cudaMemcpyHostToDevice, slots_[slot].stream));
    CUDA_OR_RETURN(cudaEventRecord(slots_[slot].done, slots_[slot].stream));
    return Status::Ok();
  }
  Status Wait(int slot) override {
    if (slot < 0 || slot >= static_cast<int>(slots_.size())) {
      return Error(Code::kInvalidArgument, "no such copy slot");
    }
    CUDA_OR_RETURN(cudaEventSynchronize(slots_[slot].done));
    return Status::Ok();
  }

 private:
  struct Slot {
    cudaStream_t stream = nullptr;
    cudaEvent_t done = nullptr;
  };
  char* dst_ = nullptr;
  uint64_t size_ = 0;
  int device_ = 0;
  std::vector<Slot> slots_;
};

}  // namespace

Result<std::unique_ptr<Engine>> CreateCudaIpcEngine(const CudaIpcEngineOptions& options) {
  int count = 0;
  CUDA_OR_RETURN(cudaGetDeviceCount(&count), Code::kUnavailable);
  if (count == 0) return Error(Code::kUnavailable, "no GPU: no CUDA device found");
  std::map<std::array<uint8_t, 16>, int> devices;
  for (int i = 0; i < count; ++i) devices[DeviceUuid(i)] = i;
  if (options.staging_bytes == 0) return Error(Code::kInvalidArgument, "staging_bytes is 0");
  return std::unique_ptr<Engine>(new CudaIpcEngine(options, std::move(devices)));
}

Result<std::unique_ptr<DeviceCopyTarget>> DeviceCopyTarget::Create(void* device_ptr,
                                                                   uint64_t size_bytes, int slots) {
  if (slots <= 0) return Error(Code::kInvalidArgument, "slots must be positive");
  cudaPointerAttributes attr{};
  CUDA_OR_RETURN(cudaPointerGetAttributes(&attr, device_ptr), Code::kInvalidArgument);
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) {
    return Error(Code::kInvalidArgument, "the destination is not CUDA device memory");
  }
  auto target = std::make_unique<CudaCopyTarget>();
  VLAKE_RETURN_IF_ERROR(
      target->Init(static_cast<char*>(device_ptr), size_bytes, attr.device, slots));
  return std::unique_ptr<DeviceCopyTarget>(std::move(target));
}

}  // namespace vlake::rdma
