// Little-endian fixed-width field access for the on-disk formats of this module (segments,
// index files). x86-64 and aarch64 are little-endian; the static_assert keeps it honest.
#pragma once

#include <bit>
#include <cstring>
#include <string>

namespace vlake::vector::le {

static_assert(std::endian::native == std::endian::little, "vlake formats are little-endian");

template <typename T>
void Append(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
void Put(std::string* out, size_t at, T v) {
  std::memcpy(out->data() + at, &v, sizeof v);
}
template <typename T>
T Get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace vlake::vector::le
