// vlake client SDK: S3 operations against any S3 endpoint, plus the direct data path of a
// vlake storage node (object bytes moved by the server into or out of registered memory).
//
//   vlake::client::ClientOptions opt;
//   opt.endpoint = "http://127.0.0.1:9000";
//   opt.access_key = "..."; opt.secret_key = "...";
//   auto client = vlake::client::Client::Create(opt).value();
//   auto region = client->AllocateRegion(256 << 20).value();    // register once, reuse
//   auto got = client->GetInto("bucket", "key", *region);        // bytes land in region->data()
//   client->PutFrom("bucket", "copy", *region, got->bytes);
//
// GPU memory (a CUDA build on a machine with a GPU; elsewhere kUnavailable "no GPU: ..."):
//   client->GetIntoDevice("bucket", "key", device_ptr, bytes);   // cudaMalloc'd memory
// moves the bytes by CUDA IPC when the storage node is on this host (its copy engine writes
// the client's GPU memory; no client CPU), else staged: the direct path fills pinned host
// buffers while earlier chunks are already being copied to the GPU.
//
// Direct requests fall back to the HTTP body by themselves when the server declines the token
// (x-amz-rdma-reply: 501) or ignores it (a store without the direct path), unless
// DirectMode::kRequire is set. A PUT is never trusted as direct without x-amz-rdma-reply: 200:
// a store that ignored the token stored an empty body, which the fallback then overwrites.
//
// Thread-safety: a Client and its Regions may be used from many threads at once; each call
// takes a pooled keep-alive connection. A Region must not outlive its Client.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vlake/status.h"

namespace vlake::client {

enum class DirectMode {
  kOff,      // always the HTTP body
  kAuto,     // direct when the server serves it, else the HTTP body (remembered per client)
  kRequire,  // direct or fail (kRdmaNotSupported)
};

struct ClientOptions {
  // http://HOST[:PORT] or https://HOST[:PORT] (default ports 80 and 443).
  std::string endpoint = "http://127.0.0.1:9000";
  // HTTPS: PEM file of the certificates to trust (a private CA's, or the server's own; any
  // certificate in it is an anchor). Empty: the system's store (/etc/ssl/certs). The server's
  // certificate chain and its host name (DNS name or IP address, as in the endpoint) are
  // verified unless tls_verify is false, which leaves the connection open to impersonation:
  // only for tests and debugging.
  std::string ca_file;
  bool tls_verify = true;
  std::string access_key;
  std::string secret_key;
  std::string region = "us-east-1";
  int max_connections = 16;  // pooled keep-alive connections
  int timeout_ms = 120'000;  // per socket operation
  DirectMode direct = DirectMode::kAuto;
  // UCX transports of the client's data plane: "shm", "tcp", a UCX_TLS list, or empty for
  // UCX's default (everything it finds).
  std::string direct_transports;
  // GetInto/PutFrom above this size use `parallel_streams` concurrent ranged GETs / parts.
  uint64_t parallel_threshold_bytes = 64ull << 20;
  int parallel_streams = 4;
  uint64_t part_size_bytes = 64ull << 20;  // multipart part size (5 MiB .. 5 GiB)
  // Send x-amz-checksum-crc32c with uploads so the server verifies what it stored.
  bool checksum_uploads = true;
};

struct ByteRange {
  uint64_t offset = 0;
  std::optional<uint64_t> length;  // to the end when absent
};

struct ObjectInfo {
  uint64_t size = 0;
  std::string etag;  // without quotes
  std::string last_modified;
  std::string content_type;
  std::map<std::string, std::string> metadata;  // x-amz-meta-* without the prefix
};

struct ListEntry {
  std::string key;
  uint64_t size = 0;
  std::string etag;
  std::string last_modified;
};

struct ListPage {
  std::vector<ListEntry> objects;
  std::vector<std::string> common_prefixes;
  std::string next_continuation_token;  // empty when this was the last page
};

struct PutResult {
  std::string etag;  // without quotes
  uint64_t bytes = 0;
  bool direct = false;  // the payload moved by the direct path
};

struct GetResult {
  uint64_t bytes = 0;
  uint64_t object_size = 0;
  std::string etag;
  bool direct = false;
  int requests = 0;  // HTTP requests used (parallel ranges count each)
  // How the bytes moved: "http" (body), "direct" (data plane into a region), "cuda-ipc"
  // (storage node -> GPU memory), "staged-direct" / "staged-http" (via host staging buffers).
  std::string path;
};

struct CompletedPart {
  int part_number = 0;
  std::string etag;
};

// Memory registered with the client's data plane. Obtain from Client::AllocateRegion (memory
// the data plane allocates: shared memory a co-located server writes directly, no client CPU)
// or Client::RegisterRegion (your memory; over RDMA NICs equally direct, over UCX shared
// memory or tcp the client's progress thread copies).
class Region {
 public:
  virtual ~Region() = default;
  virtual char* data() const = 0;
  virtual uint64_t size() const = 0;
};

// Where a staged GET delivers bytes: memory the data plane cannot write directly (GPU memory,
// or anything else that takes asynchronous copies). The SDK fills host staging buffers (slots)
// and hands each filled chunk to CopyAsync; a slot's buffer is refilled only after Wait(slot)
// returned, so the copy of one chunk overlaps the arrival of the next.
// Thread-safety: called from several fetch threads, each slot from one thread at a time.
class StagedSink {
 public:
  virtual ~StagedSink() = default;
  virtual uint64_t size() const = 0;  // destination bytes
  // Called for each staging buffer before first use and after last use (a GPU sink pins it
  // so copies are DMA). A failing Attach is not an error: copies then run synchronously.
  virtual Status AttachStaging(char* data, uint64_t size_bytes) = 0;
  virtual void DetachStaging(char* data) = 0;
  // Starts copying n bytes from src into destination offset dst_offset.
  virtual Status CopyAsync(int slot, const char* src, uint64_t dst_offset, uint64_t n) = 0;
  // Returns once the copies issued on `slot` are complete.
  virtual Status Wait(int slot) = 0;
};

// A StagedSink writing [device_ptr, device_ptr + size_bytes) of CUDA device memory.
// kUnavailable "no GPU: ..." without CUDA or a GPU; kInvalidArgument if not device memory.
Result<std::unique_ptr<StagedSink>> MakeCudaSink(void* device_ptr, uint64_t size_bytes, int slots);

struct StagedGetOptions {
  uint64_t chunk_bytes = 8ull << 20;  // bytes per ranged GET and per copy
  int fetchers = 2;                   // concurrent ranged GETs (threads)
  int buffers_per_fetcher = 2;        // staging slots per fetcher; 2 = double buffering
  // Baseline: one GET whose HTTP body is staged and copied (no direct path).
  bool http_body = false;
};

enum class DevicePath : uint8_t {
  kAuto,      // CUDA IPC when the server serves it, else staged over the direct path or HTTP
  kCudaIpc,   // CUDA IPC or fail (kRdmaNotSupported when declined)
  kStaged,    // staged chunks over the direct path (HTTP bodies when the server has none)
  kHttpBody,  // one GET, HTTP body staged through host memory (the baseline)
};

struct DeviceGetOptions {
  DevicePath path = DevicePath::kAuto;
  StagedGetOptions staged;
  int64_t ipc_token_ttl_ms = 60'000;
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> Create(const ClientOptions& options);
  virtual ~Client() = default;

  // Buckets.
  virtual Status CreateBucket(std::string_view bucket) = 0;
  virtual Status DeleteBucket(std::string_view bucket) = 0;
  virtual Result<std::vector<std::string>> ListBuckets() = 0;

  // Objects over the HTTP body.
  virtual Result<ObjectInfo> Head(std::string_view bucket, std::string_view key) = 0;
  virtual Result<std::string> Get(std::string_view bucket, std::string_view key,
                                  std::optional<ByteRange> range = std::nullopt) = 0;
  // Streams the object to `sink` (called in order); returns the object info.
  virtual Result<ObjectInfo> GetToSink(std::string_view bucket, std::string_view key,
                                       const std::function<Status(const char*, size_t)>& sink,
                                       std::optional<ByteRange> range = std::nullopt) = 0;
  virtual Result<PutResult> Put(std::string_view bucket, std::string_view key,
                                std::string_view data) = 0;
  virtual Status Delete(std::string_view bucket, std::string_view key) = 0;
  virtual Result<ListPage> List(std::string_view bucket, std::string_view prefix = "",
                                std::string_view delimiter = "",
                                std::string_view continuation_token = "", int max_keys = 1000) = 0;

  // Multipart.
  virtual Result<std::string> CreateMultipartUpload(std::string_view bucket,
                                                    std::string_view key) = 0;
  virtual Result<PutResult> UploadPart(std::string_view bucket, std::string_view key,
                                       std::string_view upload_id, int part_number,
                                       std::string_view data) = 0;
  virtual Result<PutResult> CompleteMultipartUpload(std::string_view bucket, std::string_view key,
                                                    std::string_view upload_id,
                                                    const std::vector<CompletedPart>& parts) = 0;
  virtual Status AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                      std::string_view upload_id) = 0;

  // Direct data path.
  virtual Result<std::unique_ptr<Region>> AllocateRegion(uint64_t size_bytes) = 0;
  virtual Result<std::unique_ptr<Region>> RegisterRegion(void* data, uint64_t size_bytes) = 0;
  // Fetches the object (or `range` of it) into region bytes from `region_offset`. Objects
  // above parallel_threshold_bytes are fetched as parallel_streams ranged transfers pinned to
  // one ETag (If-Match). kInvalidRdmaToken when the region is too small.
  virtual Result<GetResult> GetInto(std::string_view bucket, std::string_view key,
                                    const Region& region,
                                    std::optional<ByteRange> range = std::nullopt,
                                    uint64_t region_offset = 0) = 0;
  // Stores region bytes [region_offset, region_offset + length) as the object; above
  // parallel_threshold_bytes as a multipart upload whose parts go direct in parallel.
  virtual Result<PutResult> PutFrom(std::string_view bucket, std::string_view key,
                                    const Region& region, uint64_t length,
                                    uint64_t region_offset = 0) = 0;
  // One part, direct from region bytes.
  virtual Result<PutResult> UploadPartFrom(std::string_view bucket, std::string_view key,
                                           std::string_view upload_id, int part_number,
                                           const Region& region, uint64_t length,
                                           uint64_t region_offset = 0) = 0;

  // Fetches the object (or `range`) into `sink` from destination offset 0, staged through
  // host buffers registered with the data plane (see StagedGetOptions). All ranged GETs are
  // pinned to one ETag. kInvalidArgument when the sink is smaller than the bytes.
  virtual Result<GetResult> GetIntoSink(std::string_view bucket, std::string_view key,
                                        StagedSink& sink,
                                        std::optional<ByteRange> range = std::nullopt,
                                        const StagedGetOptions& options = {}) = 0;
  // Fetches the object (or `range`) into CUDA device memory [device_ptr, +size_bytes) of this
  // process (cudaMalloc). The result's `path` says how the bytes moved.
  virtual Result<GetResult> GetIntoDevice(std::string_view bucket, std::string_view key,
                                          void* device_ptr, uint64_t size_bytes,
                                          std::optional<ByteRange> range = std::nullopt,
                                          const DeviceGetOptions& options = {}) = 0;

  // Whether the server has served a direct request of this client (false until one ran, or
  // after the server declined).
  virtual bool direct_active() const = 0;
};

}  // namespace vlake::client
