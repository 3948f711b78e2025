// ObjectStore: the vector database's view of an S3 bucket, through the client SDK. Large
// objects (segments, index files) are fetched into a data-plane region when the server offers
// the direct path (no copy through the HTTP body), else over plain HTTP; the caller gets one
// Blob either way.
//
// Thread-safe: the SDK client pools connections; every method may be called concurrently.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vlake/client.h"
#include "vlake/status.h"

namespace vlake::vectordb {

// Bytes of one object, kept alive by `owner` (a string or a data-plane region).
struct Blob {
  std::shared_ptr<const void> owner;
  const char* data = nullptr;
  size_t size = 0;
  bool direct = false;  // moved by the direct data path
  std::string_view view() const { return {data, size}; }
};

struct ObjectStoreOptions {
  client::ClientOptions client;
  std::string bucket = "vlake-vectordb";
  std::string prefix;  // every key starts with it ("" or "team/")
  // Objects at least this big are fetched into a region when the server serves direct GETs.
  uint64_t direct_min_bytes = 1 << 20;
};

// The object access the engine needs. Implementations: the S3 store below (client SDK) and,
// for crash and failure tests, an in-memory store and a fault-injecting wrapper
// (object_store_testing.h). A failed call may or may not have taken effect at the store (a
// PUT whose reply was lost): callers treat every failure that way.
class ObjectStore {
 public:
  // The S3 implementation: connects and creates the bucket when missing.
  static Result<std::unique_ptr<ObjectStore>> Open(const ObjectStoreOptions& options);

  virtual ~ObjectStore() = default;

  virtual Status Put(const std::string& key, std::string_view bytes) = 0;
  virtual Result<Blob> Get(const std::string& key) = 0;
  virtual Result<uint64_t> Size(const std::string& key) = 0;
  // Bytes [offset, offset + length) of the object over the HTTP body (small reads).
  virtual Result<std::string> GetRange(const std::string& key, uint64_t offset,
                                       uint64_t length) = 0;
  // Bytes [offset, offset + length) straight into CUDA device memory (client.h GetIntoDevice:
  // CUDA IPC on the storage node's host, else staged over the direct path or HTTP).
  virtual Result<client::GetResult> GetIntoDevice(const std::string& key, void* device_ptr,
                                                  uint64_t offset, uint64_t length) = 0;
  // Keys under prefix (relative to the store prefix), all pages, in key order.
  virtual Result<std::vector<std::string>> List(const std::string& prefix) = 0;
  // Immediate "directories" under prefix (common prefixes with delimiter '/').
  virtual Result<std::vector<std::string>> ListDirs(const std::string& prefix) = 0;
  virtual Status Delete(const std::string& key) = 0;  // NoSuchKey is success

  // List + Delete of each key; stops at the first failure (what was deleted stays deleted).
  Status DeleteAll(const std::string& prefix);
};

}  // namespace vlake::vectordb
