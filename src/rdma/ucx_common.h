// Shared pieces of the UCX client and server: status conversion and context creation.
//
// Thread-safety: UcxContext is created once and then only read (ucp_mem_map and friends are
// safe on a context created with shared-worker MT support).
#pragma once

#include <ucp/api/ucp.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace vlake::rdma {

// Converts a UCX status once, at the boundary (../shared/style.md #2).
Status UcsStatus(std::string_view context, ucs_status_t status,
                 Code code = Code::kRdmaTransferFailed);

// `transports` is a UCX_TLS value ("tcp", "shm", "posix,sysv,tcp", ...); empty keeps UCX's
// own default (every transport it finds, or the UCX_TLS environment variable).
class UcxContext {
 public:
  static Result<std::shared_ptr<UcxContext>> Create(const std::string& transports);
  ~UcxContext();
  UcxContext(const UcxContext&) = delete;
  UcxContext& operator=(const UcxContext&) = delete;
  ucp_context_h get() const { return context_; }

 private:
  UcxContext() = default;
  ucp_context_h context_ = nullptr;
};

// Creates a worker with wakeup support, single-threaded (owned by one thread).
Result<ucp_worker_h> CreateWorker(ucp_context_h context);

}  // namespace vlake::rdma
