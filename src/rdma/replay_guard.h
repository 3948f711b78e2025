// Remembers the nonces of accepted direct-path tokens until they expire, so a captured signed
// request cannot make the server touch a client's region a second time.
//
// Invariant: every nonce admitted and not yet expired is in `seen_`; `by_expiry_` holds the
// same entries ordered by expiry for purging. Memory is bounded by `max_entries`; when full,
// Admit fails with kUnavailable (SlowDown) rather than forgetting a live nonce.
//
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_set>

#include "common/status.h"

namespace vlake::rdma {

class ReplayGuard {
 public:
  // Tokens may live at most `max_ttl_ms` beyond now (a client clock ahead by the S3 skew
  // allowance still fits in the default).
  explicit ReplayGuard(size_t max_entries = 1 << 20, int64_t max_ttl_ms = 30 * 60 * 1000)
      : max_entries_(max_entries), max_ttl_ms_(max_ttl_ms) {}

  // Accepts a token's nonce once. kInvalidRdmaToken when expired, expiring too far ahead, or
  // seen before.
  Status Admit(const std::array<uint8_t, 16>& nonce, int64_t expires_unix_ms, int64_t now_ms);

  size_t size() const;

 private:
  void PurgeLocked(int64_t now_ms);

  const size_t max_entries_;
  const int64_t max_ttl_ms_;
  mutable std::mutex mu_;
  std::unordered_set<std::string> seen_;           // guarded by mu_
  std::multimap<int64_t, std::string> by_expiry_;  // guarded by mu_
};

}  // namespace vlake::rdma
