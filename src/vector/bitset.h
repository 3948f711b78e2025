// Bitset: a fixed-size set of row numbers, used for filter results (bit set = row passes) and
// tombstones. Words are little-endian uint64, so bytes() is the LSB-first byte bitmap that
// FAISS's IDSelectorBitmap reads. Not thread-safe for writes; concurrent reads are fine.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

namespace vlake::vector {

class Bitset {
 public:
  Bitset() = default;
  explicit Bitset(int64_t size, bool value = false)
      : size_(size), words_((size + 63) / 64, value ? ~uint64_t{0} : 0) {
    TrimTail();
  }

  int64_t size() const { return size_; }
  bool test(int64_t i) const { return (words_[i >> 6] >> (i & 63)) & 1; }
  void set(int64_t i) { words_[i >> 6] |= uint64_t{1} << (i & 63); }
  void reset(int64_t i) { words_[i >> 6] &= ~(uint64_t{1} << (i & 63)); }
  void assign(int64_t i, bool v) { v ? set(i) : reset(i); }

  int64_t count() const {
    int64_t n = 0;
    for (uint64_t w : words_) n += std::popcount(w);
    return n;
  }
  bool all() const { return count() == size_; }
  bool none() const {
    for (uint64_t w : words_)
      if (w) return false;
    return true;
  }

  Bitset& operator&=(const Bitset& o) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] &= o.words_[i];
    return *this;
  }
  Bitset& operator|=(const Bitset& o) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] |= o.words_[i];
    return *this;
  }
  // Subtract: clears every bit set in o.
  Bitset& AndNot(const Bitset& o) {
    for (size_t i = 0; i < words_.size(); ++i) words_[i] &= ~o.words_[i];
    return *this;
  }
  void Flip() {
    for (uint64_t& w : words_) w = ~w;
    TrimTail();
  }

  const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(words_.data()); }
  const std::vector<uint64_t>& words() const { return words_; }

 private:
  void TrimTail() {
    if (size_ % 64 != 0 && !words_.empty()) words_.back() &= (uint64_t{1} << (size_ % 64)) - 1;
  }

  int64_t size_ = 0;
  std::vector<uint64_t> words_;  // invariant: bits at positions >= size_ are zero
};

}  // namespace vlake::vector
