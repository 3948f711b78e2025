// The top-k kernels of src/gpu (topk.cuh) run through the CPU EMULATION of the CUDA execution
// model in cuda_emu.h, against a sorted reference. The rest of the kernels (k-means, brute
// force, IVF build and search) are checked by algorithms_test.cc, which gpu_emu_test compiles
// at small sizes (VLAKE_GPU_EMULATION) into the same binary.
//
// This tests the kernels' LOGIC only. It is NOT a GPU run: threads are fibers run one at a time
// (no real parallelism, so no races or memory-ordering bugs can show), cuBLAS is replaced by a
// host loop (stubs.cc), and nothing is timed.
#include "gpu/emulation/cuda_emu.h"  // first: defines the CUDA keywords for topk.cuh

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <random>
#include <tuple>
#include <vector>

#include "gpu/topk.cuh"

namespace vlake::gpu {
namespace {

// ---- SelectTopK / MergeTopK against a sorted reference (ties by column, NaN last, empty
// slots -1 / +-FLT_MAX, per-column and per-row additions, shared and per-entry labels, the
// sliced path for long rows, and an in-place merge of two copies of the output).

int failures = 0;
void Check(bool ok, const char* what, int a, int b) {
  if (!ok && failures++ < 20) std::printf("FAIL %s %d %d\n", what, a, b);
}

void RunTopKCase(std::mt19937_64& rng, int64_t rows, int64_t cols, int k, SelectOrder order,
                 bool use_col_add, int label_mode, bool ties, bool nans, bool inplace_merge) {
  int64_t ld = cols + (rng() % 3);
  std::vector<float> v(rows * ld), col_add(cols), row_add(rows);
  std::vector<int64_t> labels(label_mode == 2 ? rows * ld : cols);
  std::uniform_real_distribution<float> u(-10, 10);
  for (auto& x : v) x = ties ? float(int(u(rng))) : u(rng);
  if (nans && !v.empty())
    for (int i = 0; i < 5; ++i) v[rng() % v.size()] = NAN;
  for (auto& x : col_add) x = u(rng);
  for (auto& x : row_add) x = u(rng);
  for (size_t i = 0; i < labels.size(); ++i)
    labels[i] = (rng() % 7 == 0 && label_mode == 2) ? -1 : int64_t(i) * 3 + 1;
  TopKInput in;
  in.values = v.data();
  in.rows = rows;
  in.cols = cols;
  in.ld = ld;
  in.col_add = use_col_add ? col_add.data() : nullptr;
  if (label_mode == 1) {
    in.labels = labels.data();
    in.labels_ld = 0;
  }
  if (label_mode == 2) {
    in.labels = labels.data();
    in.labels_ld = ld;
  }
  in.label_offset = 100;
  std::vector<float> od(rows * (k + 2));
  std::vector<int64_t> ol(rows * (k + 2));
  TopKOutput out;
  out.distances = od.data();
  out.labels = ol.data();
  out.ld = k + 2;
  out.row_add = row_add.data();
  out.clamp_at_zero = (rng() % 2) == 0;
  // expected
  std::vector<float> ed(rows * k);
  std::vector<int64_t> el(rows * k);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<std::tuple<float, int64_t, int64_t>> e;
    for (int64_t c = 0; c < cols; ++c) {
      int64_t lab = label_mode == 0 ? 100 + c : label_mode == 1 ? labels[c] : labels[r * ld + c];
      if (label_mode == 2 && lab < 0) continue;
      float x = v[r * ld + c];
      if (use_col_add) x += col_add[c];
      float key = order == SelectOrder::kLargest ? -x : x;
      if (std::isnan(key)) key = INFINITY;
      e.emplace_back(key, c, lab);
    }
    std::sort(e.begin(), e.end(), [](auto& a, auto& b) {
      return std::get<0>(a) < std::get<0>(b) ||
             (std::get<0>(a) == std::get<0>(b) && std::get<1>(a) < std::get<1>(b));
    });
    for (int j = 0; j < k; ++j) {
      if (j < (int)e.size()) {
        float d = order == SelectOrder::kLargest ? -std::get<0>(e[j]) : std::get<0>(e[j]);
        d += row_add[r];
        if (out.clamp_at_zero) d = std::fmax(d, 0.0f);
        ed[r * k + j] = d;
        el[r * k + j] = std::get<2>(e[j]);
      } else {
        ed[r * k + j] = order == SelectOrder::kLargest ? -FLT_MAX : FLT_MAX;
        el[r * k + j] = -1;
      }
    }
  }
  Status st = SelectTopK(in, k, order, out, nullptr);
  Check(st.ok(), "status", 0, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < k; ++j) {
      bool ok = ol[r * (k + 2) + j] == el[r * k + j] &&
                (od[r * (k + 2) + j] == ed[r * k + j] ||
                 (std::isnan(od[r * (k + 2) + j]) && std::isnan(ed[r * k + j])) ||
                 (std::isinf(ed[r * k + j]) && std::isinf(od[r * (k + 2) + j])));
      Check(ok, "entry", int(r), j);
      if (!ok && failures < 5)
        std::printf("  got %ld %g want %ld %g (rows %ld cols %ld k %d order %d lm %d)\n",
                    (long)ol[r * (k + 2) + j], od[r * (k + 2) + j], (long)el[r * k + j],
                    ed[r * k + j], (long)rows, (long)cols, k, (int)order, label_mode);
    }
  if (inplace_merge) {
    // Merge two copies of the output in place: [A | A] -> top-k of the concatenation.
    int64_t mld = 2 * k;
    std::vector<float> md(rows * mld);
    std::vector<int64_t> ml(rows * mld);
    for (int64_t r = 0; r < rows; ++r)
      for (int j = 0; j < k; ++j) {
        md[r * mld + j] = md[r * mld + k + j] = od[r * (k + 2) + j];
        ml[r * mld + j] = ml[r * mld + k + j] = ol[r * (k + 2) + j];
      }
    TopKOutput mo;
    mo.distances = md.data();
    mo.labels = ml.data();
    mo.ld = mld;
    Status s2 = MergeTopK(md.data(), ml.data(), rows, 2, k, mld, k, order, mo, nullptr);
    Check(s2.ok(), "merge status", 0, 0);
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<std::tuple<float, int64_t, int64_t>> e;
      for (int p = 0; p < 2 * k; ++p) {
        int j = p % k;
        if (ol[r * (k + 2) + j] < 0) continue;
        float key = order == SelectOrder::kLargest ? -od[r * (k + 2) + j] : od[r * (k + 2) + j];
        if (std::isnan(key)) key = INFINITY;
        e.emplace_back(key, p, ol[r * (k + 2) + j]);
      }
      std::sort(e.begin(), e.end(), [](auto& a, auto& b) {
        return std::get<0>(a) < std::get<0>(b) ||
               (std::get<0>(a) == std::get<0>(b) && std::get<1>(a) < std::get<1>(b));
      });
      std::vector<int64_t> want;
      for (auto& t : e)
        if ((int)want.size() < k) want.push_back(std::get<2>(t));
      while ((int)want.size() < k) want.push_back(-1);
      for (int j = 0; j < k; ++j) Check(ml[r * mld + j] == want[j], "merge", int(r), j);
    }
  }
}

TEST(TopK, SelectAndMergeMatchTheSortedReference) {
  failures = 0;
  std::mt19937_64 rng(7);
  int cases = 0;
  for (int k : {1, 5, 10, 32, 33, 100, 256, 700, 1024}) {
    for (int64_t cols : {int64_t(0), int64_t(1), int64_t(7), int64_t(1000), int64_t(5000)}) {
      SelectOrder order = (rng() % 2) ? SelectOrder::kLargest : SelectOrder::kSmallest;
      RunTopKCase(rng, 1 + rng() % 3, cols, k, order, rng() % 2, rng() % 3, rng() % 2,
                  rng() % 4 == 0, rng() % 2);
      ++cases;
    }
  }
  // sliced path: cols >= 32768, rows < 2 * sms
  for (int k : {10, 1024}) {
    RunTopKCase(rng, 2, 40000, k, SelectOrder::kSmallest, true, 0, false, false, false);
    RunTopKCase(rng, 1, 70000, k, SelectOrder::kLargest, false, 2, true, false, false);
    cases += 2;
  }
  EXPECT_EQ(failures, 0) << "in " << cases << " cases (first failures printed above)";
}

}  // namespace
}  // namespace vlake::gpu
