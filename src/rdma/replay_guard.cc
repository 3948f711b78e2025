#include "rdma/replay_guard.h"

namespace vlake::rdma {

Status ReplayGuard::Admit(const std::array<uint8_t, 16>& nonce, int64_t expires_unix_ms,
                          int64_t now_ms) {
  if (expires_unix_ms <= now_ms) {
    return Error(Code::kInvalidRdmaToken, "x-amz-rdma-token has expired");
  }
  if (expires_unix_ms - now_ms > max_ttl_ms_) {
    return Error(Code::kInvalidRdmaToken, "x-amz-rdma-token expires too far in the future");
  }
  std::string key(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  std::lock_guard<std::mutex> lock(mu_);
  PurgeLocked(now_ms);
  if (seen_.count(key)) {
    return Error(Code::kInvalidRdmaToken, "x-amz-rdma-token was already used");
  }
  if (seen_.size() >= max_entries_) {
    return Error(Code::kUnavailable, "too many direct transfers in flight; retry later");
  }
  seen_.insert(key);
  by_expiry_.emplace(expires_unix_ms, std::move(key));
  return Status::Ok();
}

size_t ReplayGuard::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_.size();
}

void ReplayGuard::PurgeLocked(int64_t now_ms) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now_ms) {
    seen_.erase(by_expiry_.begin()->second);
    by_expiry_.erase(by_expiry_.begin());
  }
}

}  // namespace vlake::rdma
