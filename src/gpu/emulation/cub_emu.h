// cub::DeviceRadixSort::SortPairs for the CPU emulation (cuda_emu.h): the same contract (a
// size query with d_temp_storage == nullptr, then a stable sort of the pairs by the key bits
// [begin_bit, end_bit) into the output arrays), done on the host with the inputs checked to be
// device memory. emu_transform.py substitutes this header for <cub/device/device_radix_sort.cuh>.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <vector>

#include "gpu/emulation/emu_runtime.h"

namespace cub {

struct DeviceRadixSort {
  template <class K, class V, class N>
  static cudaError_t SortPairs(void* temp, size_t& temp_bytes, const K* keys_in, K* keys_out,
                               const V* values_in, V* values_out, N items, int begin_bit = 0,
                               int end_bit = sizeof(K) * 8, cudaStream_t = nullptr) {
    static_assert(std::is_unsigned_v<K>, "the emulation sorts unsigned keys only");
    const size_t n = static_cast<size_t>(items);
    // Some temporary storage, as cub asks for: the caller must allocate and pass it.
    const size_t need = n * (sizeof(K) + sizeof(V)) + 256;
    if (temp == nullptr) {
      temp_bytes = need;
      return cudaSuccess;
    }
    if (temp_bytes < need) {
      EmuViolation("cub::DeviceRadixSort::SortPairs: %zu bytes of temporary storage, %zu asked",
                   temp_bytes, need);
      return cudaErrorInvalidValue;
    }
    if (begin_bit < 0 || end_bit > static_cast<int>(sizeof(K) * 8) || begin_bit >= end_bit) {
      return cudaErrorInvalidValue;
    }
    if (n == 0) return cudaSuccess;
    for (const auto& [p, bytes, what] :
         {std::tuple<const void*, size_t, const char*>{temp, temp_bytes, "temp"},
          {keys_in, n * sizeof(K), "keys_in"}, {keys_out, n * sizeof(K), "keys_out"},
          {values_in, n * sizeof(V), "values_in"}, {values_out, n * sizeof(V), "values_out"}}) {
      bool whole = false;
      if (EmuSpaceOf(p, bytes, &whole) != EmuSpace::kDevice || !whole) {
        EmuViolation("cub::DeviceRadixSort::SortPairs: %s is not inside one device allocation",
                     what);
        return cudaErrorInvalidValue;
      }
    }
    EmuDeviceScope open;
    const int width = end_bit - begin_bit;
    const K mask = width >= static_cast<int>(sizeof(K) * 8) ? ~K{0}
                                                             : static_cast<K>((K{1} << width) - 1);
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return ((keys_in[a] >> begin_bit) & mask) < ((keys_in[b] >> begin_bit) & mask);
    });
    std::vector<K> k(n);
    std::vector<V> v(n);
    for (size_t i = 0; i < n; ++i) {
      k[i] = keys_in[order[i]];
      v[i] = values_in[order[i]];
    }
    std::copy(k.begin(), k.end(), keys_out);
    std::copy(v.begin(), v.end(), values_out);
    return cudaSuccess;
  }
};

}  // namespace cub
