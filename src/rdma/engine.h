// The server side of the direct data path: an Engine turns an accepted x-amz-rdma-token into
// a Transfer that moves object bytes into (GET) or out of (PUT) the client's region.
//
// The S3 layer talks only to this interface; adding a transport (mlx5 DC for cuObject tokens,
// CUDA IPC) adds an Engine implementation and nothing else changes (../shared/style.md #5).
//
// Guarantees every Transfer gives:
// - it touches only [remote_addr, remote_addr + length) of the token's region, and checks
//   every offset against that length before touching anything;
// - once Flush() returned OK, every byte written is visible in the client's memory;
// - once the Transfer is destroyed (on success, error or cancellation), nothing it started is
//   still in flight: the region is never touched after the request ended.
// - `cancel` is polled between chunks; a non-OK result stops the transfer with that status.
//
// Thread-safety: an Engine is shared by all connection threads; a Transfer belongs to one
// request on one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "rdma/token.h"

namespace vlake::rdma {

using CancelCheck = std::function<Status()>;

class Transfer {
 public:
  virtual ~Transfer() = default;
  // Bytes of the region the token grants (the token's length).
  virtual uint64_t region_bytes() const = 0;
  // GET direction: copies `length` bytes of file `fd` from `file_offset` into the region at
  // `region_offset`. Pipelines disk reads with the transfer; may return before the bytes
  // are visible remotely (see Flush).
  virtual Status WriteFromFile(int fd, uint64_t file_offset, uint64_t region_offset,
                               uint64_t length) = 0;
  // PUT direction: copies region bytes [region_offset, region_offset + length) into `buf`.
  virtual Status ReadInto(uint64_t region_offset, char* buf, uint64_t length) = 0;
  // Waits until every write issued so far is complete in the client's memory.
  virtual Status Flush() = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string_view name() const = 0;
  // Whether this engine moves data for `token`; the S3 layer declines the others
  // (x-amz-rdma-reply: 501).
  virtual bool Serves(const Token& token) const = 0;
  // Connects to the token's region. `http_peer` is where the HTTP request carrying the token
  // came from ("127.0.0.1:54321", http::HttpRequest::peer): an engine that connects to the
  // client connects only to that peer (docs/security.md) and refuses a token naming anything
  // else with kInvalidRdmaToken before it opens an endpoint. kRdmaTransferFailed when the
  // client cannot be reached, kInvalidRdmaToken when the region is not usable (e.g. rkey
  // rejected).
  virtual Result<std::unique_ptr<Transfer>> Open(const Token& token, std::string_view http_peer,
                                                 CancelCheck cancel) = 0;
};

// One engine over several (e.g. UCX for host memory + CUDA IPC for GPU memory on this host):
// a token goes to the first engine that serves it. Takes ownership.
std::unique_ptr<Engine> CombineEngines(std::vector<std::unique_ptr<Engine>> engines);

}  // namespace vlake::rdma
