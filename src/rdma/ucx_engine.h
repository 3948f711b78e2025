// The UCX data-plane engine of the storage node: serves vlake1 (UCX) tokens.
//
// Workers: `workers` UCX workers, each owned by its own progress thread (ucx_worker.h). The
// HTTP server runs one thread per connection, and a UCX worker per connection would redo
// endpoint wireup on every new connection; instead a client worker is always served by the
// same data-plane worker (hash of its address), which keeps that client's endpoint and
// unpacked rkeys cached (bounded, least recently used out first).
//
// Two ways to move bytes, chosen per region by what the transport offers:
// - mapped: the transport maps the client's region into this process (UCX shared-memory
//   transports, ucp_rkey_ptr). The connection thread then reads the object file straight
//   into the client's memory (pread, in `chunk_bytes` pieces spread over a small copy pool)
//   and reads PUT payloads out of it with kernel-checked copies; one copy, no bounce buffer,
//   no client CPU. UCX does not bounds-check rkey_ptr, so
//   the engine first checks that the whole [addr, addr+length) lies inside one shared-memory
//   mapping (/proc/self/maps), and uses copies that fail with EFAULT instead of SIGBUS if a
//   client shrinks its segment.
// - posted: one-sided ucp_put_nbx / ucp_get_nbx (RDMA verbs where a NIC exists, UCX tcp
//   here): the object is cut into `chunk_bytes` pieces, each read from disk into one of
//   `chunks_in_flight` bounce buffers and posted while the next is read; a flush before the
//   reply. Endpoints use UCP_ERR_HANDLING_MODE_PEER where the transport supports it so a
//   vanished client fails the transfer instead of hanging it.
// Cancellation and stalls: waits poll `cancel` every 50 ms and give up after `stall_timeout_ms`
// without progress; giving up force-closes the endpoint, which completes every outstanding
// operation before the Transfer returns.
//
// Thread-safety: the Engine may be used from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "rdma/engine.h"

namespace vlake::rdma {

struct UcxEngineOptions {
  // UCX_TLS value for the server context; empty keeps UCX's default (all transports found).
  std::string transports;
  int workers = 2;                        // data-plane threads; 1-2 saturate loopback here
  uint64_t chunk_bytes = 4 << 20;         // unit of cancellation checks and of posted ops
  int chunks_in_flight = 4;               // posted path: bounce buffers per transfer
  size_t max_endpoints_per_worker = 256;  // cached client endpoints per worker
  size_t max_rkeys_per_endpoint = 16;     // cached unpacked rkeys per client endpoint
  // Mapped (shared-memory) regions an endpoint's cached rkeys may keep attached here. A
  // client cannot tell the server it freed a region, so without this bound every freed
  // segment stays attached (and allocated) until its rkey ages out: seen 3.6 GiB of freed
  // 512 MiB segments kept alive. The newest rkey is always kept.
  uint64_t max_mapped_bytes_per_endpoint = 1ull << 30;
  int64_t stall_timeout_ms = 30'000;      // a transfer without progress this long fails
  int64_t connect_timeout_ms = 5'000;     // wire-up with a new client worker
  // Helper threads for large mapped copies (the calling thread works too); 0: one fewer
  // than the cores, so one transfer can use every core while the client stays passive.
  int copy_threads = 0;
};

Result<std::unique_ptr<Engine>> CreateUcxEngine(const UcxEngineOptions& options);

}  // namespace vlake::rdma
