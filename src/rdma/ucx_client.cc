#include "rdma/ucx_client.h"

#include <cstring>

#include "common/encoding.h"
#include "rdma/ucx_common.h"
#include "rdma/ucx_worker.h"

namespace vlake::rdma {

Region::~Region() {
  if (memh_) ucp_mem_unmap(plane_->context_->get(), static_cast<ucp_mem_h>(memh_));
}

Result<std::unique_ptr<ClientPlane>> ClientPlane::Create(const ClientPlaneOptions& options) {
  std::unique_ptr<ClientPlane> plane(new ClientPlane());
  std::string tls = options.transports == "shm" ? "posix,sysv,cma,self" : options.transports;
  VLAKE_ASSIGN_OR_RETURN(plane->context_, UcxContext::Create(tls));
  VLAKE_ASSIGN_OR_RETURN(plane->worker_, WorkerThread::Start(plane->context_, "rdma-client"));
  return plane;
}

ClientPlane::~ClientPlane() { worker_.reset(); }

const std::string& ClientPlane::worker_address() const { return worker_->address(); }

Result<std::unique_ptr<Region>> ClientPlane::Allocate(uint64_t size_bytes) {
  return Map(nullptr, size_bytes, true);
}

Result<std::unique_ptr<Region>> ClientPlane::Register(void* data, uint64_t size_bytes) {
  if (!data) return Error(Code::kInvalidArgument, "cannot register a null region");
  return Map(data, size_bytes, false);
}

Result<std::unique_ptr<Region>> ClientPlane::Map(void* data, uint64_t size_bytes, bool allocate) {
  if (size_bytes == 0) return Error(Code::kInvalidArgument, "a region needs at least one byte");
  std::unique_ptr<Region> region(new Region());
  region->plane_ = this;
  ucp_mem_map_params_t params{};
  params.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
  params.address = data;
  params.length = size_bytes;
  if (allocate) {
    params.field_mask |= UCP_MEM_MAP_PARAM_FIELD_FLAGS;
    params.flags = UCP_MEM_MAP_ALLOCATE;
  }
  ucp_mem_h memh = nullptr;
  VLAKE_RETURN_IF_ERROR(UcsStatus("ucp_mem_map", ucp_mem_map(context_->get(), &params, &memh),
                                  Code::kInvalidArgument));
  region->memh_ = memh;
  region->size_ = size_bytes;
  region->allocated_ = allocate;
  if (allocate) {
    ucp_mem_attr_t attr{};
    attr.field_mask = UCP_MEM_ATTR_FIELD_ADDRESS;
    VLAKE_RETURN_IF_ERROR(UcsStatus("ucp_mem_query", ucp_mem_query(memh, &attr)));
    region->data_ = static_cast<char*>(attr.address);
  } else {
    region->data_ = static_cast<char*>(data);
  }
  void* rkey = nullptr;
  size_t rkey_len = 0;
  VLAKE_RETURN_IF_ERROR(
      UcsStatus("ucp_rkey_pack", ucp_rkey_pack(context_->get(), memh, &rkey, &rkey_len)));
  region->rkey_.assign(static_cast<const char*>(rkey), rkey_len);
  ucp_rkey_buffer_release(rkey);
  return region;
}

Result<std::string> ClientPlane::MakeToken(const Region& region, uint64_t offset, uint64_t length,
                                           int64_t ttl_ms) const {
  if (offset > region.size_ || length > region.size_ - offset) {
    return Error(Code::kInvalidArgument, "token range outside the region");
  }
  UcxToken t;
  t.memory = MemoryKind::kHost;
  t.ucx_allocated = region.allocated_;
  t.remote_addr = reinterpret_cast<uintptr_t>(region.data_) + offset;
  t.length = length;
  std::string nonce = RandomBytes(t.nonce.size());
  std::memcpy(t.nonce.data(), nonce.data(), t.nonce.size());
  t.expires_unix_ms = UnixMillis() + ttl_ms;
  t.worker_address = worker_->address();
  t.rkey = region.rkey_;
  return EncodeUcxToken(t);
}

}  // namespace vlake::rdma
