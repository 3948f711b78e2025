#include "vectordb/object_store_testing.h"

namespace vlake::vectordb {
namespace {

Status Injected(const char* op, const std::string& key) {
  return Status(Code::kUnavailable, std::string("injected fault: ") + op + " " + key);
}

}  // namespace

Status MemoryObjectStore::Put(const std::string& key, std::string_view bytes) {
  auto copy = std::make_shared<const std::string>(bytes);
  std::lock_guard<std::mutex> l(mu_);
  objects_[key] = std::move(copy);
  return Status::Ok();
}

Result<Blob> MemoryObjectStore::Get(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return Status(Code::kNoSuchKey, "no object " + key);
  Blob b;
  b.owner = it->second;
  b.data = it->second->data();
  b.size = it->second->size();
  return b;
}

Result<uint64_t> MemoryObjectStore::Size(const std::string& key) {
  VLAKE_ASSIGN_OR_RETURN(Blob b, Get(key));
  return static_cast<uint64_t>(b.size);
}

Result<std::string> MemoryObjectStore::GetRange(const std::string& key, uint64_t offset,
                                                uint64_t length) {
  VLAKE_ASSIGN_OR_RETURN(Blob b, Get(key));
  if (offset > b.size) return Status(Code::kInvalidRange, "range past the end of " + key);
  return std::string(b.view().substr(offset, length));
}

Result<client::GetResult> MemoryObjectStore::GetIntoDevice(const std::string&, void*, uint64_t,
                                                           uint64_t) {
  return Status(Code::kNotImplemented, "no GPU memory in the in-memory store");
}

Result<std::vector<std::string>> MemoryObjectStore::List(const std::string& prefix) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> keys;
  for (auto it = objects_.lower_bound(prefix);
       it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    keys.push_back(it->first);
  }
  return keys;
}

Result<std::vector<std::string>> MemoryObjectStore::ListDirs(const std::string& prefix) {
  VLAKE_ASSIGN_OR_RETURN(std::vector<std::string> keys, List(prefix));
  std::vector<std::string> dirs;
  for (const std::string& k : keys) {
    size_t slash = k.find('/', prefix.size());
    if (slash == std::string::npos) continue;
    std::string dir = k.substr(0, slash + 1);
    if (dirs.empty() || dirs.back() != dir) dirs.push_back(dir);
  }
  return dirs;
}

Status MemoryObjectStore::Delete(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  objects_.erase(key);
  return Status::Ok();
}

std::map<std::string, std::string> MemoryObjectStore::Snapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : objects_) out[k] = *v;
  return out;
}

void FaultPlan::FailNth(int64_t n, unsigned ops, FaultEffect effect) {
  std::lock_guard<std::mutex> l(mu_);
  ops_ = ops;
  seen_ = 0;
  fail_at_ = n;
  effect_ = effect;
}

void FaultPlan::Down() {
  std::lock_guard<std::mutex> l(mu_);
  down_ = true;
}

void FaultPlan::Heal() {
  std::lock_guard<std::mutex> l(mu_);
  down_ = false;
  fail_at_ = -1;
  seen_ = 0;
  ops_ = kAllFaultOps;
}

int64_t FaultPlan::calls() const {
  std::lock_guard<std::mutex> l(mu_);
  return seen_;
}

void FaultPlan::ResetCount(unsigned ops) {
  std::lock_guard<std::mutex> l(mu_);
  ops_ = ops;
  seen_ = 0;
}

int64_t FaultPlan::injected() const {
  std::lock_guard<std::mutex> l(mu_);
  return injected_;
}

bool FaultPlan::Decide(FaultOp op, bool* take_effect) {
  std::lock_guard<std::mutex> l(mu_);
  *take_effect = false;
  if (down_) {
    ++injected_;
    return true;
  }
  if ((ops_ & static_cast<unsigned>(op)) == 0) return false;
  if (seen_++ != fail_at_) return false;
  ++injected_;
  *take_effect = effect_ == FaultEffect::kReplyLost;
  return true;
}

Status FaultInjectingObjectStore::Put(const std::string& key, std::string_view bytes) {
  bool effect;
  if (plan_->Decide(FaultOp::kPut, &effect)) {
    if (effect) (void)base_->Put(key, bytes);
    return Injected("PUT", key);
  }
  return base_->Put(key, bytes);
}

Result<Blob> FaultInjectingObjectStore::Get(const std::string& key) {
  bool effect;
  if (plan_->Decide(FaultOp::kGet, &effect)) return Injected("GET", key);
  return base_->Get(key);
}

Result<uint64_t> FaultInjectingObjectStore::Size(const std::string& key) {
  bool effect;
  if (plan_->Decide(FaultOp::kGet, &effect)) return Injected("HEAD", key);
  return base_->Size(key);
}

Result<std::string> FaultInjectingObjectStore::GetRange(const std::string& key, uint64_t offset,
                                                        uint64_t length) {
  bool effect;
  if (plan_->Decide(FaultOp::kGet, &effect)) return Injected("GET", key);
  return base_->GetRange(key, offset, length);
}

Result<client::GetResult> FaultInjectingObjectStore::GetIntoDevice(const std::string& key,
                                                                   void* device_ptr,
                                                                   uint64_t offset,
                                                                   uint64_t length) {
  bool effect;
  if (plan_->Decide(FaultOp::kGet, &effect)) return Injected("GET", key);
  return base_->GetIntoDevice(key, device_ptr, offset, length);
}

Result<std::vector<std::string>> FaultInjectingObjectStore::List(const std::string& prefix) {
  bool effect;
  if (plan_->Decide(FaultOp::kList, &effect)) return Injected("LIST", prefix);
  return base_->List(prefix);
}

Result<std::vector<std::string>> FaultInjectingObjectStore::ListDirs(const std::string& prefix) {
  bool effect;
  if (plan_->Decide(FaultOp::kList, &effect)) return Injected("LIST", prefix);
  return base_->ListDirs(prefix);
}

Status FaultInjectingObjectStore::Delete(const std::string& key) {
  bool effect;
  if (plan_->Decide(FaultOp::kDelete, &effect)) {
    if (effect) (void)base_->Delete(key);
    return Injected("DELETE", key);
  }
  return base_->Delete(key);
}

}  // namespace vlake::vectordb
