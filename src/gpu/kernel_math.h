// The small pieces of arithmetic that the GPU kernels and host code must agree on bit for bit:
// distances of one pair of short vectors, the nearest entry of a PQ codebook, a PQ look-up-table
// entry, the (distance, label) order every top-k of src/gpu ranks by, the seeded row draws and
// the balanced re-seeding rule of k-means.
//
// Plain C++ (no CUDA header): with nvcc the VLAKE_HD functions are compiled for host and device,
// with g++ for the host only, so kernel_math_test.cc checks the host side of exactly the code the
// kernels run. Sums use fmaf on both sides (one FFMA on the GPU, std::fma on the host), so host
// and device results are identical, not merely close: a PQ code computed on the host equals the
// one a kernel computes for the same inputs.
//
// Thread-safety: pure functions.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

#ifdef __CUDACC__
#define VLAKE_HD __host__ __device__
#else
#define VLAKE_HD
#endif

namespace vlake::gpu::math {

// How two vectors are compared. kInnerProduct ranks larger first; kL2 is the squared distance.
enum class DistanceKind : uint8_t { kL2, kInnerProduct };

// sum_i (a_i - b_i)^2, accumulated left to right with fused multiply-adds.
VLAKE_HD inline float SquaredL2(const float* a, const float* b, int n) {
  float acc = 0.0f;
  for (int i = 0; i < n; ++i) {
    float d = a[i] - b[i];
    acc = fmaf(d, d, acc);
  }
  return acc;
}

// sum_i a_i * b_i, accumulated left to right with fused multiply-adds.
VLAKE_HD inline float Dot(const float* a, const float* b, int n) {
  float acc = 0.0f;
  for (int i = 0; i < n; ++i) acc = fmaf(a[i], b[i], acc);
  return acc;
}

// The one order of every top-k in src/gpu: by value, then by label (smaller first). Making it
// total is what keeps results identical whichever thread finds an entry first, and lets a merge
// of partial lists equal a single selection over all entries.
VLAKE_HD inline bool PairLess(float a, int64_t la, float b, int64_t lb) {
  return a < b || (a == b && la < lb);
}

// Index of the smallest of v[0..n); ties go to the smaller index; NaN never wins unless every
// value is NaN (then 0). n >= 1.
VLAKE_HD inline int ArgMin(const float* v, int n) {
  int best = 0;
  float best_v = v[0];
  for (int i = 1; i < n; ++i) {
    // A NaN v[i] fails both tests; a NaN best_v is replaced by the first non-NaN value.
    if (v[i] < best_v || (best_v != best_v && v[i] == v[i])) {
      best = i;
      best_v = v[i];
    }
  }
  return best;
}

// PQ encoding of one sub-vector: the entry of `codebook` (ksub x dsub, row-major) nearest to
// `sub` in squared L2, ties to the smaller entry (FAISS's ProductQuantizer does the same). This
// is the code byte of one sub-quantizer when `sub` is a slice of a residual (index_parts.h).
VLAKE_HD inline int PqEncodeSubvector(const float* sub, const float* codebook, int ksub, int dsub) {
  int best = 0;
  float best_d = SquaredL2(sub, codebook, dsub);
  for (int c = 1; c < ksub; ++c) {
    float d = SquaredL2(sub, codebook + static_cast<int64_t>(c) * dsub, dsub);
    if (d < best_d) {
      best = c;
      best_d = d;
    }
  }
  return best;
}

// One entry of an IVF_PQ search look-up table: for kL2, ||rq_j - e||^2 where rq_j is slice j of
// the residual query (query - list centroid) and e a codebook entry of sub-quantizer j; for
// kInnerProduct, q_j . e (the list's q . centroid is added once per list, not per entry).
// The PQ distance of a code is then the sum over j of lut[j][code_j] (PqDistance).
VLAKE_HD inline float PqLutEntry(DistanceKind kind, const float* query_slice, const float* entry,
                                 int dsub) {
  return kind == DistanceKind::kL2 ? SquaredL2(query_slice, entry, dsub)
                                   : Dot(query_slice, entry, dsub);
}

// Sum of lut[j * ksub + code[j]] over the m sub-quantizers, left to right.
VLAKE_HD inline float PqDistance(const float* lut, const uint8_t* code, int m, int ksub) {
  float acc = 0.0f;
  for (int j = 0; j < m; ++j) acc += lut[j * ksub + code[j]];
  return acc;
}

// ||x||^2 + ||y||^2 - 2 x.y, the L2 distance from a GEMM's dot product; clamped at 0 because
// the cancellation can leave a tiny negative value for (near-)identical vectors.
VLAKE_HD inline float L2FromDot(float x_norm, float y_norm, float dot) {
  float d = x_norm + y_norm - 2.0f * dot;
  return d > 0.0f ? d : 0.0f;
}

// ---- Balanced k-means re-seeding (vector/reference_build.h, ReferenceKMeans step 2c) ----
//
// After an iteration's update (means, then unit scaling for IP/COSINE), with size[] the row
// counts of that iteration's assignment, for c = 0..k-1 in order: if size[c] < threshold
// (balance_min_fraction * n / k; the current size[c], which earlier steps may have changed),
// let L be the cluster with the largest size[] (smallest index on ties); unless L == c (every
// cluster below the bar), coordinate j of c's centroid becomes centroid_L[j] * (1 + s_j / 1024)
// and L's own becomes centroid_L[j] * (1 - s_j / 1024), with s_j = +1 for even j and -1 for odd
// j; then size[c] = size[L] / 2 (integer division) and size[L] -= size[c]. Re-seeds are applied
// in plan order, so a cluster split twice passes on its already-perturbed centroid. Runs after
// every update, the last one included, so no returned centroid is a dead one.

enum class ReseedSide : uint8_t { kNewCluster, kSourceCluster };

// The factor coordinate j is multiplied by: 1 +- 2^-10, exact in float. The float product
// v * factor equals the reference's product in double rounded to float (the exact product has
// at most 35 significant bits, so double holds it exactly), hence bit-identical centroids.
VLAKE_HD inline float ReseedScale(int j, ReseedSide side) {
  constexpr float kUp = 1.0f + 1.0f / 1024.0f;
  constexpr float kDown = 1.0f - 1.0f / 1024.0f;
  bool up = (j % 2 == 0) == (side == ReseedSide::kNewCluster);
  return up ? kUp : kDown;
}

struct Reseed {
  int32_t cluster;  // the small cluster that gets a new centroid
  int32_t source;   // the largest cluster at the time of the pick
};

// The re-seeds for cluster sizes `sizes` (k entries) under the rule above.
inline std::vector<Reseed> PlanReseeds(std::vector<int64_t> sizes, double threshold) {
  std::vector<Reseed> plan;
  const int k = static_cast<int>(sizes.size());
  for (int c = 0; c < k; ++c) {
    if (static_cast<double>(sizes[c]) >= threshold) continue;
    int32_t largest = 0;
    for (int i = 1; i < k; ++i) {
      if (sizes[i] > sizes[largest]) largest = i;
    }
    if (largest == c) continue;
    plan.push_back({c, largest});
    sizes[c] = sizes[largest] / 2;
    sizes[largest] -= sizes[c];
  }
  return plan;
}

// Applies `plan` to row-major k x dim centroids in order (the host twin of the GPU kernel:
// coordinates are independent, so the kernel walks the plan per coordinate).
inline void ApplyReseeds(const std::vector<Reseed>& plan, float* centroids, int dim) {
  for (const Reseed& r : plan) {
    float* dst = centroids + static_cast<int64_t>(r.cluster) * dim;
    float* src = centroids + static_cast<int64_t>(r.source) * dim;
    for (int j = 0; j < dim; ++j) {
      float base = src[j];
      dst[j] = base * ReseedScale(j, ReseedSide::kNewCluster);
      src[j] = base * ReseedScale(j, ReseedSide::kSourceCluster);
    }
  }
}

// ---- Seeded draws ----

// `count` distinct values of 0..n-1 drawn uniformly, in draw order: a partial Fisher-Yates
// shuffle of the identity permutation (kept sparse in a hash map, so memory is O(count)) with
// std::mt19937_64(seed), where step i swaps position i with position i + rng() % (n - i).
// (The modulo bias is below (n / 2^64), irrelevant for row counts.) count <= n.
//
// This is vector/reference_build.cc's DrawDistinct, without the O(n) permutation array.
// k-means kRandomSample init takes centroid c = training row SampleDistinct(n, k, seed)[c];
// training subsamples are SampleDistinct(...) sorted ascending (see kmeans.cu and ivf.cu for
// the seeds).
inline std::vector<int64_t> SampleDistinct(int64_t n, int64_t count, uint64_t seed) {
  std::vector<int64_t> out;
  if (count <= 0 || n <= 0) return out;
  if (count > n) count = n;
  out.reserve(static_cast<size_t>(count));
  // std::mt19937_64 is defined by the standard bit for bit; std::uniform_int_distribution is
  // not (it differs between standard libraries), hence the explicit modulo.
  std::mt19937_64 rng(seed);
  std::unordered_map<int64_t, int64_t> moved;  // position -> value, where value != position
  moved.reserve(static_cast<size_t>(count) * 2);
  auto at = [&moved](int64_t pos) {
    auto it = moved.find(pos);
    return it == moved.end() ? pos : it->second;
  };
  for (int64_t i = 0; i < count; ++i) {
    int64_t j = i + static_cast<int64_t>(rng() % static_cast<uint64_t>(n - i));
    int64_t vi = at(i), vj = at(j);
    moved[j] = vi;  // position i is never read again
    out.push_back(vj);
  }
  return out;
}

}  // namespace vlake::gpu::math
