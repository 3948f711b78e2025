#include "vectordb/object_store.h"

#include <sys/mman.h>
#include <unistd.h>

namespace vlake::vectordb {
namespace {

// The bucket through the client SDK.
class S3ObjectStore final : public ObjectStore {
 public:
  S3ObjectStore(ObjectStoreOptions options, std::unique_ptr<client::Client> client)
      : options_(std::move(options)), client_(std::move(client)) {}

  Status Put(const std::string& key, std::string_view bytes) override;
  Result<Blob> Get(const std::string& key) override;
  Result<uint64_t> Size(const std::string& key) override;
  Result<std::string> GetRange(const std::string& key, uint64_t offset, uint64_t length) override;
  Result<client::GetResult> GetIntoDevice(const std::string& key, void* device_ptr,
                                          uint64_t offset, uint64_t length) override;
  Result<std::vector<std::string>> List(const std::string& prefix) override;
  Result<std::vector<std::string>> ListDirs(const std::string& prefix) override;
  Status Delete(const std::string& key) override;

 private:
  std::string Full(const std::string& key) const { return options_.prefix + key; }

  ObjectStoreOptions options_;
  std::unique_ptr<client::Client> client_;
};

}  // namespace

Result<std::unique_ptr<ObjectStore>> ObjectStore::Open(const ObjectStoreOptions& options) {
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<client::Client> c, client::Client::Create(options.client));
  Status st = c->CreateBucket(options.bucket);
  if (!st.ok() && st.code() != Code::kBucketAlreadyOwnedByYou &&
      st.code() != Code::kBucketAlreadyExists) {
    return Status(st.code(), "vectordb bucket " + options.bucket + ": " + st.message());
  }
  return std::unique_ptr<ObjectStore>(new S3ObjectStore(options, std::move(c)));
}

Status ObjectStore::DeleteAll(const std::string& prefix) {
  VLAKE_ASSIGN_OR_RETURN(std::vector<std::string> keys, List(prefix));
  for (const std::string& k : keys) VLAKE_RETURN_IF_ERROR(Delete(k));
  return Status::Ok();
}

Status S3ObjectStore::Put(const std::string& key, std::string_view bytes) {
  return client_->Put(options_.bucket, Full(key), bytes).status();
}

Result<Blob> S3ObjectStore::Get(const std::string& key) {
  Blob blob;
  if (options_.client.direct != client::DirectMode::kOff) {
    VLAKE_ASSIGN_OR_RETURN(client::ObjectInfo info, client_->Head(options_.bucket, Full(key)));
    if (info.size >= options_.direct_min_bytes) {
      Result<std::unique_ptr<client::Region>> region = client_->AllocateRegion(info.size);
      if (region.ok()) {
        VLAKE_ASSIGN_OR_RETURN(client::GetResult got,
                               client_->GetInto(options_.bucket, Full(key), **region));
        if (got.bytes != info.size) {
          return Status(Code::kConditionalRequestConflict,
                        "object " + key + " changed while it was read");
        }
        std::shared_ptr<client::Region> owner(std::move(*region));
        // The server filled shared pages this process has not mapped in yet; fault them in as
        // one batch here (part of the fetch) instead of one fault per page in whoever reads
        // first (measured: +1.3 s on a 512 MiB segment). Best effort: older kernels lack it.
        const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
        uintptr_t begin = reinterpret_cast<uintptr_t>(owner->data()) & ~(page - 1);
        uintptr_t end = reinterpret_cast<uintptr_t>(owner->data()) + got.bytes;
        (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ);
        blob.data = owner->data();
        blob.size = got.bytes;
        blob.direct = got.direct;
        blob.owner = std::move(owner);
        return blob;
      }
      // No data plane here (e.g. UCX missing): fall through to the HTTP body.
    }
  }
  VLAKE_ASSIGN_OR_RETURN(std::string bytes, client_->Get(options_.bucket, Full(key)));
  auto owner = std::make_shared<std::string>(std::move(bytes));
  blob.data = owner->data();
  blob.size = owner->size();
  blob.owner = std::move(owner);
  return blob;
}

Result<uint64_t> S3ObjectStore::Size(const std::string& key) {
  VLAKE_ASSIGN_OR_RETURN(client::ObjectInfo info, client_->Head(options_.bucket, Full(key)));
  return info.size;
}

Result<std::string> S3ObjectStore::GetRange(const std::string& key, uint64_t offset,
                                          uint64_t length) {
  return client_->Get(options_.bucket, Full(key), client::ByteRange{offset, length});
}

Result<client::GetResult> S3ObjectStore::GetIntoDevice(const std::string& key, void* device_ptr,
                                                     uint64_t offset, uint64_t length) {
  client::DeviceGetOptions o;
  if (options_.client.direct == client::DirectMode::kOff) o.path = client::DevicePath::kHttpBody;
  VLAKE_ASSIGN_OR_RETURN(client::GetResult got,
                         client_->GetIntoDevice(options_.bucket, Full(key), device_ptr, length,
                                                client::ByteRange{offset, length}, o));
  if (got.bytes != length) {
    return Status(Code::kConditionalRequestConflict,
                  "object " + key + " changed while it was read");
  }
  return got;
}

Result<std::vector<std::string>> S3ObjectStore::List(const std::string& prefix) {
  std::vector<std::string> keys;
  std::string token;
  do {
    VLAKE_ASSIGN_OR_RETURN(client::ListPage page,
                           client_->List(options_.bucket, Full(prefix), "", token));
    for (const client::ListEntry& e : page.objects)
      keys.push_back(e.key.substr(options_.prefix.size()));
    token = page.next_continuation_token;
  } while (!token.empty());
  return keys;
}

Result<std::vector<std::string>> S3ObjectStore::ListDirs(const std::string& prefix) {
  std::vector<std::string> dirs;
  std::string token;
  do {
    VLAKE_ASSIGN_OR_RETURN(client::ListPage page,
                           client_->List(options_.bucket, Full(prefix), "/", token));
    for (const std::string& p : page.common_prefixes) {
      dirs.push_back(p.substr(options_.prefix.size()));
    }
    token = page.next_continuation_token;
  } while (!token.empty());
  return dirs;
}

Status S3ObjectStore::Delete(const std::string& key) {
  Status st = client_->Delete(options_.bucket, Full(key));
  return st.code() == Code::kNoSuchKey ? Status::Ok() : st;
}

}  // namespace vlake::vectordb
