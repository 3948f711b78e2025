// The client side of the direct data path: a UCX context and worker that stay passive while
// the storage node moves bytes into or out of registered regions, and the tokens that name
// those regions.
//
// Regions come two ways:
// - Allocate(n): UCX allocates the memory (shared memory where a shared-memory transport is
//   enabled). A co-located server maps it and copies straight in: one-sided, no client CPU.
// - Register(ptr, n): the caller's own memory. Over RDMA verbs the NIC reaches it directly;
//   over UCX's shared-memory and tcp transports UCX emulates the one-sided operations and the
//   client's progress thread performs the copy.
// A progress thread answers UCX wire-up and tcp traffic; it sleeps on the worker's event fd
// when there is nothing to do.
//
// Thread-safety: ClientPlane and Region methods may be called from any thread. A Region must
// not outlive its ClientPlane.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "rdma/token.h"

namespace vlake::rdma {

class WorkerThread;
class UcxContext;
class ClientPlane;

class Region {
 public:
  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  char* data() const { return data_; }
  uint64_t size() const { return size_; }
  // Whether UCX allocated the memory (Allocate) rather than the caller (Register).
  bool allocated() const { return allocated_; }

 private:
  friend class ClientPlane;
  Region() = default;
  ClientPlane* plane_ = nullptr;
  void* memh_ = nullptr;  // ucp_mem_h
  char* data_ = nullptr;
  uint64_t size_ = 0;
  bool allocated_ = false;
  std::string rkey_;  // packed
};

struct ClientPlaneOptions {
  // UCX_TLS for the client: "shm" (posix,sysv,cma), "tcp", a UCX list, or empty for UCX's
  // default (all transports found, or the UCX_TLS environment variable).
  std::string transports;
};

class ClientPlane {
 public:
  static Result<std::unique_ptr<ClientPlane>> Create(const ClientPlaneOptions& options);
  ~ClientPlane();
  ClientPlane(const ClientPlane&) = delete;
  ClientPlane& operator=(const ClientPlane&) = delete;

  Result<std::unique_ptr<Region>> Allocate(uint64_t size_bytes);
  Result<std::unique_ptr<Region>> Register(void* data, uint64_t size_bytes);

  // A vlake1 token for [offset, offset + length) of `region`, with a fresh nonce, valid for
  // `ttl_ms` (the server refuses expired tokens and any nonce it has seen).
  Result<std::string> MakeToken(const Region& region, uint64_t offset, uint64_t length,
                                int64_t ttl_ms = 60'000) const;

  const std::string& worker_address() const;

 private:
  friend class Region;
  ClientPlane() = default;
  Result<std::unique_ptr<Region>> Map(void* data, uint64_t size_bytes, bool allocate);

  std::shared_ptr<UcxContext> context_;
  std::unique_ptr<WorkerThread> worker_;
};

}  // namespace vlake::rdma
