// Launchers of topk.cuh: row-wise top-k over a matrix and the merge of partial top-k lists,
// both one kernel (SelectRowsKernel) around BlockTopK.
#include "gpu/topk.cuh"

#include <algorithm>
#include <climits>

#include "gpu/internal.h"

namespace vlake::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kPerThread = 4;
// A row is split into slices only when each slice keeps at least this many columns: below it
// the second (merge) pass would cost about as much as the first.
constexpr int64_t kMinSliceCols = 16384;

struct SelectArgs {
  const float* values;
  int64_t ld;
  const float* col_add;
  const int64_t* labels;  // nullptr: label_offset + column
  int64_t labels_ld;
  int64_t label_offset;
  int64_t cols;
  int64_t slice_cols;  // columns per slice (gridDim.y slices per row)
  int k;
  SelectOrder order;
  float* out_distances;  // row r, slice s: out + r * out_ld + s * k
  int64_t* out_labels;
  int64_t out_ld;
  const float* row_add;
  bool clamp_at_zero;
};

// One block per (row, slice). Reads the slice in coalesced rounds of kThreads * kPerThread
// entries, keeps the best k in a BlockTopK, and writes them best first.
template <int K>
__global__ __launch_bounds__(kThreads) void SelectRowsKernel(SelectArgs a) {
  using Top = BlockTopK<K, kThreads, kPerThread>;
  __shared__ typename Top::Storage storage;
  const int64_t row = blockIdx.x;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * a.slice_cols;
  const int64_t end = min(a.cols, begin + a.slice_cols);
  const float* values = a.values + row * a.ld;
  const int64_t* labels = a.labels != nullptr ? a.labels + row * a.labels_ld : nullptr;

  Top top(storage, a.k);
  for (int64_t base = begin; base < end; base += Top::kPerRound) {
#pragma unroll
    for (int e = 0; e < kPerThread; ++e) {
      const int64_t c = base + e * kThreads + threadIdx.x;
      if (c < end && (labels == nullptr || labels[c] >= 0)) {
        float v = values[c];
        if (a.col_add != nullptr) v += a.col_add[c];
        top.Offer(TopKKey(v, a.order), static_cast<int32_t>(c - begin));
      }
    }
    top.Commit();
  }
  top.Finish();

  // Results are gathered into registers and written only after a barrier: the output may alias
  // this row's input (in-place merge), which other threads are still reading labels from.
  constexpr int kSlots = (K + kThreads - 1) / kThreads;
  float out_d[kSlots];
  int64_t out_l[kSlots];
#pragma unroll
  for (int s = 0; s < kSlots; ++s) {
    const int j = threadIdx.x + s * kThreads;
    out_d[s] = TopKEmptyValue(a.order);
    out_l[s] = -1;
    if (j < a.k && top.index(j) != kTopKNoIndex) {
      const int64_t c = begin + top.index(j);
      out_l[s] = labels != nullptr ? labels[c] : a.label_offset + c;
      float d = TopKValue(top.key(j), a.order);
      if (a.row_add != nullptr) d += a.row_add[row];
      if (a.clamp_at_zero) d = fmaxf(d, 0.0f);
      out_d[s] = d;
    }
  }
  __syncthreads();
  float* od = a.out_distances + row * a.out_ld + static_cast<int64_t>(blockIdx.y) * a.k;
  int64_t* ol = a.out_labels + row * a.out_ld + static_cast<int64_t>(blockIdx.y) * a.k;
#pragma unroll
  for (int s = 0; s < kSlots; ++s) {
    const int j = threadIdx.x + s * kThreads;
    if (j < a.k) {
      od[j] = out_d[s];
      ol[j] = out_l[s];
    }
  }
}

Status Launch(const SelectArgs& a, int64_t rows, int64_t slices, cudaStream_t stream) {
  return DispatchTopKCapacity(a.k, [&]<int K>() -> Status {
    dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(slices));
    SelectRowsKernel<K><<<grid, kThreads, 0, stream>>>(a);
    VLAKE_CUDA_RETURN(cudaGetLastError());
    return Status::Ok();
  });
}

}  // namespace

Status SelectTopK(const TopKInput& in, int k, SelectOrder order, const TopKOutput& out,
                  cudaStream_t stream) {
  if (k < 1 || k > kTopKMax) {
    return Status(Code::kInvalidArgument, "top-k: k must be in 1.." + std::to_string(kTopKMax));
  }
  if (in.rows < 0 || in.cols < 0 || in.cols > INT_MAX || in.ld < in.cols || out.ld < k ||
      in.rows > INT_MAX) {
    return Status(Code::kInvalidArgument, "top-k: bad shape");
  }
  if (in.rows == 0) return Status::Ok();
  if ((in.cols > 0 && in.values == nullptr) || out.distances == nullptr || out.labels == nullptr) {
    return Status(Code::kInvalidArgument, "top-k: null pointer");
  }

  // Enough blocks to fill the GPU: split long rows when there are too few rows.
  int64_t slices = 1;
  if (in.cols >= 2 * kMinSliceCols) {
    int device = 0, sms = 1;
    VLAKE_CUDA_RETURN(cudaGetDevice(&device));
    VLAKE_CUDA_RETURN(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    if (in.rows < 2ll * sms) {
      const int64_t want = CeilDiv(4ll * sms, in.rows);
      slices = std::clamp<int64_t>(std::min(want, in.cols / kMinSliceCols), 1, 65535);
    }
  }
  const int64_t slice_cols = slices == 1 ? std::max<int64_t>(in.cols, 1) : CeilDiv(in.cols, slices);
  slices = std::max<int64_t>(1, CeilDiv(in.cols, slice_cols));

  SelectArgs a{};
  a.values = in.values;
  a.ld = in.ld;
  a.col_add = in.col_add;
  a.labels = in.labels;
  a.labels_ld = in.labels_ld;
  a.label_offset = in.label_offset;
  a.cols = in.cols;
  a.slice_cols = slice_cols;
  a.k = k;
  a.order = order;
  if (slices == 1) {
    a.out_distances = out.distances;
    a.out_labels = out.labels;
    a.out_ld = out.ld;
    a.row_add = out.row_add;
    a.clamp_at_zero = out.clamp_at_zero;
    return Launch(a, in.rows, 1, stream);
  }

  // Pass 1: per-slice lists into scratch (ranked values, no row_add yet); pass 2: merge them.
  const int64_t partial_ld = slices * k;
  AsyncBuffer<float> part_d;
  AsyncBuffer<int64_t> part_l;
  VLAKE_RETURN_IF_ERROR(part_d.Allocate(static_cast<size_t>(in.rows * partial_ld), stream));
  VLAKE_RETURN_IF_ERROR(part_l.Allocate(static_cast<size_t>(in.rows * partial_ld), stream));
  a.out_distances = part_d.get();
  a.out_labels = part_l.get();
  a.out_ld = partial_ld;
  a.row_add = nullptr;
  a.clamp_at_zero = false;
  VLAKE_RETURN_IF_ERROR(Launch(a, in.rows, slices, stream));

  SelectArgs m{};
  m.values = part_d.get();
  m.ld = partial_ld;
  m.labels = part_l.get();
  m.labels_ld = partial_ld;
  m.cols = partial_ld;
  m.slice_cols = partial_ld;
  m.k = k;
  m.order = order;
  m.out_distances = out.distances;
  m.out_labels = out.labels;
  m.out_ld = out.ld;
  m.row_add = out.row_add;
  m.clamp_at_zero = out.clamp_at_zero;
  return Launch(m, in.rows, 1, stream);
}

Status MergeTopK(const float* distances, const int64_t* labels, int64_t rows, int64_t lists,
                 int in_k, int64_t ld, int k, SelectOrder order, const TopKOutput& out,
                 cudaStream_t stream) {
  if (labels == nullptr && rows > 0) {
    return Status(Code::kInvalidArgument, "top-k merge: null labels");
  }
  TopKInput in;
  in.values = distances;
  in.rows = rows;
  in.cols = lists * in_k;
  in.ld = ld;
  in.labels = labels;
  in.labels_ld = ld;
  return SelectTopK(in, k, order, out, stream);
}

}  // namespace vlake::gpu
