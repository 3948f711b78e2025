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

class ObjectStore {
 public:
  // Connects and creates the bucket when missing.
  static Result<std::unique_ptr<ObjectStore>> Open(const ObjectStoreOptions& options);

  Status Put(const std::string& key, std::string_view bytes);
  Result<Blob> Get(const std::string& key);
  Result<uint64_t> Size(const std::string& key);
  // Bytes [offset, offset + length) of the object over the HTTP body (small reads).
  Result<std::string> GetRange(const std::string& key, uint64_t offset, uint64_t length);
  // Bytes [offset, offset + length) straight into CUDA device memory (client.h GetIntoDevice:
  // CUDA IPC on the storage node's host, else staged over the direct path or HTTP).
  Result<client::GetResult> GetIntoDevice(const std::string& key, void* device_ptr, uint64_t offset,
                                          uint64_t length);
  // Keys under prefix (relative to the store prefix), all pages, in key order.
  Result<std::vector<std::string>> List(const std::string& prefix);
  // Immediate "directories" under prefix (common prefixes with delimiter '/').
  Result<std::vector<std::string>> ListDirs(const std::string& prefix);
  Status Delete(const std::string& key);  // NoSuchKey is success
  Status DeleteAll(const std::string& prefix);

  const ObjectStoreOptions& options() const { return options_; }
  bool direct_active() const { return client_->direct_active(); }

 private:
  ObjectStore(ObjectStoreOptions options, std::unique_ptr<client::Client> client)
      : options_(std::move(options)), client_(std::move(client)) {}
  std::string Full(const std::string& key) const { return options_.prefix + key; }

  ObjectStoreOptions options_;
  std::unique_ptr<client::Client> client_;
};

}  // namespace vlake::vectordb
