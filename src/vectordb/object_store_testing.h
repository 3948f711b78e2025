// Object stores for crash and failure tests of the vector database (in the spirit of leveldb's
// in-memory and fault-injecting Env): MemoryObjectStore keeps objects in a map that outlives
// an engine (a "restart" opens a new engine over the same map), FaultInjectingObjectStore
// wraps any store and fails the calls a FaultPlan picks.
//
// Thread-safety: every class here is safe to use from many threads at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "vectordb/object_store.h"

namespace vlake::vectordb {

class MemoryObjectStore final : public ObjectStore {
 public:
  Status Put(const std::string& key, std::string_view bytes) override;
  Result<Blob> Get(const std::string& key) override;
  Result<uint64_t> Size(const std::string& key) override;
  Result<std::string> GetRange(const std::string& key, uint64_t offset, uint64_t length) override;
  Result<client::GetResult> GetIntoDevice(const std::string& key, void* device_ptr,
                                          uint64_t offset, uint64_t length) override;
  Result<std::vector<std::string>> List(const std::string& prefix) override;
  Result<std::vector<std::string>> ListDirs(const std::string& prefix) override;
  Status Delete(const std::string& key) override;

  std::map<std::string, std::string> Snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const std::string>> objects_;
};

// The kinds of call a plan counts and fails. Size and GetRange count as kGet, ListDirs as
// kList.
enum class FaultOp : unsigned { kPut = 1, kGet = 2, kDelete = 4, kList = 8 };
inline constexpr unsigned kAllFaultOps = 15;

// What a failed PUT or DELETE did at the store: nothing (the request was lost), or all of it
// (the reply was lost). Both answer Unavailable to the caller.
enum class FaultEffect { kRequestLost, kReplyLost };

class FaultPlan {
 public:
  // From now on, the n-th call (0-based) of a kind in `ops` fails, and only that one.
  void FailNth(int64_t n, unsigned ops, FaultEffect effect);
  // Every call fails while down (the store went away); Heal ends it and any FailNth.
  void Down();
  void Heal();
  // Calls of a kind in `ops` seen since the last FailNth / Heal / ResetCount.
  int64_t calls() const;
  void ResetCount(unsigned ops = kAllFaultOps);
  int64_t injected() const;  // failures injected so far

  // For the wrapper: whether this call fails, and if it does, whether it still takes effect.
  bool Decide(FaultOp op, bool* take_effect);

 private:
  mutable std::mutex mu_;
  unsigned ops_ = kAllFaultOps;
  int64_t seen_ = 0;
  int64_t fail_at_ = -1;
  FaultEffect effect_ = FaultEffect::kRequestLost;
  bool down_ = false;
  int64_t injected_ = 0;
};

class FaultInjectingObjectStore final : public ObjectStore {
 public:
  FaultInjectingObjectStore(std::shared_ptr<ObjectStore> base, std::shared_ptr<FaultPlan> plan)
      : base_(std::move(base)), plan_(std::move(plan)) {}

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
  std::shared_ptr<ObjectStore> base_;
  std::shared_ptr<FaultPlan> plan_;
};

}  // namespace vlake::vectordb
