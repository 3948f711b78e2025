// The host side of kernel_math.h: the arithmetic the GPU kernels share with host code. Runs
// everywhere (no GPU, no CUDA needed); label unit.
#include "gpu/kernel_math.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "common/testing.h"
#include "vector/reference_build.h"

namespace vlake::gpu::math {
namespace {

TEST(KernelMath, DistancesAndDot) {
  const float a[] = {1, 2, 3, -1};
  const float b[] = {0, 2, 5, 1};
  EXPECT_EQ(SquaredL2(a, b, 4), 1.0f + 0.0f + 4.0f + 4.0f);
  EXPECT_EQ(Dot(a, b, 4), 0.0f + 4.0f + 15.0f - 1.0f);
  EXPECT_EQ(SquaredL2(a, b, 0), 0.0f);
}

TEST(KernelMath, PairLessIsTotalOnValueThenLabel) {
  EXPECT_TRUE(PairLess(1.0f, 9, 2.0f, 0));
  EXPECT_FALSE(PairLess(2.0f, 0, 1.0f, 9));
  EXPECT_TRUE(PairLess(1.0f, 3, 1.0f, 4));
  EXPECT_FALSE(PairLess(1.0f, 4, 1.0f, 4));
  EXPECT_TRUE(PairLess(-0.0f, 1, 0.0f, 2));  // -0 == 0: the label decides
}

TEST(KernelMath, ArgMinTiesGoToTheSmallerIndexAndNanNeverWins) {
  const float v[] = {3, 1, 2, 1};
  EXPECT_EQ(ArgMin(v, 4), 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float w[] = {nan, 5, nan, 4};
  EXPECT_EQ(ArgMin(w, 4), 3);
  const float all_nan[] = {nan, nan};
  EXPECT_EQ(ArgMin(all_nan, 2), 0);
  const float one[] = {7};
  EXPECT_EQ(ArgMin(one, 1), 0);
}

TEST(KernelMath, PqEncodePicksTheNearestEntryTiesToTheSmaller) {
  // 4 entries of dsub 2.
  const float book[] = {0, 0, 1, 1, 1, 1, -3, 4};
  const float sub1[] = {0.9f, 1.2f};
  EXPECT_EQ(PqEncodeSubvector(sub1, book, 4, 2), 1);  // entries 1 and 2 tie: the smaller wins
  const float sub2[] = {-2.0f, 3.0f};
  EXPECT_EQ(PqEncodeSubvector(sub2, book, 4, 2), 3);
  const float sub0[] = {0.1f, -0.2f};
  EXPECT_EQ(PqEncodeSubvector(sub0, book, 4, 2), 0);
}

TEST(KernelMath, PqEncodeMatchesBruteForceOnRandomCodebooks) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  const int ksub = 256, dsub = 5;
  std::vector<float> book(ksub * dsub);
  for (float& x : book) x = u(rng);
  for (int trial = 0; trial < 200; ++trial) {
    float sub[dsub];
    for (float& x : sub) x = u(rng);
    std::vector<float> d(ksub);
    for (int c = 0; c < ksub; ++c) d[c] = SquaredL2(sub, book.data() + c * dsub, dsub);
    EXPECT_EQ(PqEncodeSubvector(sub, book.data(), ksub, dsub), ArgMin(d.data(), ksub));
  }
}

// With small integers every sum is exact, so the table route must equal the direct distance to
// the reconstructed vector exactly.
TEST(KernelMath, LutDistanceEqualsDistanceToTheReconstruction) {
  std::mt19937_64 rng(5);
  auto small = [&] { return static_cast<float>(static_cast<int>(rng() % 7) - 3); };
  const int m = 4, dsub = 3, ksub = 256, dim = m * dsub;
  std::vector<float> books(m * ksub * dsub), q(dim), centroid(dim);
  for (float& x : books) x = small();
  for (float& x : q) x = small();
  for (float& x : centroid) x = small();
  std::vector<float> residual_q(dim);
  for (int j = 0; j < dim; ++j) residual_q[j] = q[j] - centroid[j];
  std::vector<float> lut_l2(m * ksub), lut_ip(m * ksub);
  for (int j = 0; j < m; ++j) {
    for (int c = 0; c < ksub; ++c) {
      const float* e = books.data() + (j * ksub + c) * dsub;
      lut_l2[j * ksub + c] = PqLutEntry(DistanceKind::kL2, residual_q.data() + j * dsub, e, dsub);
      lut_ip[j * ksub + c] = PqLutEntry(DistanceKind::kInnerProduct, q.data() + j * dsub, e, dsub);
    }
  }
  for (int trial = 0; trial < 50; ++trial) {
    uint8_t code[m];
    for (uint8_t& c : code) c = static_cast<uint8_t>(rng() % ksub);
    std::vector<float> x(dim);  // centroid + decoded residual
    for (int j = 0; j < m; ++j) {
      for (int t = 0; t < dsub; ++t) {
        x[j * dsub + t] = centroid[j * dsub + t] + books[(j * ksub + code[j]) * dsub + t];
      }
    }
    EXPECT_EQ(PqDistance(lut_l2.data(), code, m, ksub), SquaredL2(q.data(), x.data(), dim));
    EXPECT_EQ(PqDistance(lut_ip.data(), code, m, ksub) + Dot(q.data(), centroid.data(), dim),
              Dot(q.data(), x.data(), dim));
  }
}

TEST(KernelMath, L2FromDotClampsAtZero) {
  EXPECT_EQ(L2FromDot(2.0f, 3.0f, 1.0f), 3.0f);
  EXPECT_EQ(L2FromDot(1.0f, 1.0f, 1.0000001f), 0.0f);
}

TEST(KernelMath, ReseedScalesAlternateWithOppositeSigns) {
  const float up = 1.0f + 1.0f / 1024, down = 1.0f - 1.0f / 1024;
  EXPECT_EQ(ReseedScale(0, ReseedSide::kNewCluster), up);
  EXPECT_EQ(ReseedScale(0, ReseedSide::kSourceCluster), down);
  EXPECT_EQ(ReseedScale(1, ReseedSide::kNewCluster), down);
  EXPECT_EQ(ReseedScale(1, ReseedSide::kSourceCluster), up);
  EXPECT_EQ(ReseedScale(6, ReseedSide::kNewCluster), up);
  // The float product equals the double product rounded (the reference computes in double).
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(-100, 100);
  for (int i = 0; i < 1000; ++i) {
    float v = u(rng);
    EXPECT_EQ(v * ReseedScale(i, ReseedSide::kNewCluster),
              static_cast<float>(v * (i % 2 == 0 ? 1 + 1.0 / 1024 : 1 - 1.0 / 1024)));
  }
}

TEST(KernelMath, PlanReseedsFollowsTheRule) {
  // n = 100, k = 5, threshold 0.5 * 100 / 5 = 10: clusters 1 (size 2) and 3 (size 0) are small.
  std::vector<int64_t> sizes = {40, 2, 30, 0, 28};
  std::vector<Reseed> plan = PlanReseeds(sizes, 10.0);
  ASSERT_EQ(plan.size(), 2u);
  // c = 1: largest is 0 (40) -> size[1] = 20, size[0] = 20.
  EXPECT_EQ(plan[0].cluster, 1);
  EXPECT_EQ(plan[0].source, 0);
  // c = 3: sizes {20, 20, 30, 0, 28}: largest is 2 -> size[3] = 15, size[2] = 15.
  EXPECT_EQ(plan[1].cluster, 3);
  EXPECT_EQ(plan[1].source, 2);
}

TEST(KernelMath, PlanReseedsUsesCurrentSizesAndTiesToTheSmallerIndex) {
  // threshold 10. c = 0 (size 5): largest is 1 (12; tie with 2 -> smaller index) -> size[0] = 6,
  // size[1] = 6. c = 1 is now below the bar (6): largest is 2 (12) -> size[1] = 6, size[2] = 6.
  // c = 2 (6): largest is 0, 1 or 2 at 6... every size is 6 -> largest = 0 -> size[2] = 3,
  // size[0] = 3.
  std::vector<Reseed> plan = PlanReseeds({5, 12, 12}, 10.0);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].cluster, 0);
  EXPECT_EQ(plan[0].source, 1);
  EXPECT_EQ(plan[1].cluster, 1);
  EXPECT_EQ(plan[1].source, 2);
  EXPECT_EQ(plan[2].cluster, 2);
  EXPECT_EQ(plan[2].source, 0);
}

TEST(KernelMath, PlanReseedsSkipsTheLargestItselfAndNothingWhenBalanced) {
  // Every cluster below the bar: cluster 0 is the largest when its turn comes.
  std::vector<Reseed> plan = PlanReseeds({3, 1}, 100.0);
  ASSERT_EQ(plan.size(), 1u);  // c = 0 skipped (largest), c = 1 from 0
  EXPECT_EQ(plan[0].cluster, 1);
  EXPECT_EQ(plan[0].source, 0);
  EXPECT_TRUE(PlanReseeds({10, 10, 10}, 5.0).empty());
}

TEST(KernelMath, ApplyReseedsCopiesAndPerturbsInOrder) {
  const int dim = 3;
  std::vector<float> c = {1, 2, 4, /*1*/ 9, 9, 9, /*2*/ 8, 8, 8};
  // Cluster 1 from 0, then cluster 2 from 0 again (sees the perturbed centroid 0).
  ApplyReseeds({{1, 0}, {2, 0}}, c.data(), dim);
  const float up = 1.0f + 1.0f / 1024, down = 1.0f - 1.0f / 1024;
  EXPECT_EQ(c[3], 1 * up);
  EXPECT_EQ(c[4], 2 * down);
  EXPECT_EQ(c[5], 4 * up);
  const float c0[] = {1 * down, 2 * up, 4 * down};
  EXPECT_EQ(c[6], c0[0] * up);
  EXPECT_EQ(c[7], c0[1] * down);
  EXPECT_EQ(c[8], c0[2] * up);
  EXPECT_EQ(c[0], c0[0] * down);
  EXPECT_EQ(c[1], c0[1] * up);
  EXPECT_EQ(c[2], c0[2] * down);
}

TEST(KernelMath, SampleDistinctIsTheReferenceDraw) {
  for (auto [n, m, seed] : std::vector<std::tuple<int64_t, int64_t, uint64_t>>{
           {1, 1, 0}, {10, 3, 1}, {10, 10, 2}, {1000, 999, 3}, {100000, 257, 1234}}) {
    std::vector<int64_t> s = SampleDistinct(n, m, seed);
    EXPECT_EQ(s, vector::ReferenceDrawDistinct(n, m, seed)) << n << " " << m;
    std::set<int64_t> distinct(s.begin(), s.end());
    EXPECT_EQ(distinct.size(), s.size());
    EXPECT_GE(*distinct.begin(), 0);
    EXPECT_LT(*distinct.rbegin(), n);
  }
  EXPECT_EQ(SampleDistinct(5, 9, 1).size(), 5u);  // count clamps to n
  EXPECT_TRUE(SampleDistinct(5, 0, 1).empty());
  EXPECT_TRUE(SampleDistinct(0, 3, 1).empty());
  EXPECT_NE(SampleDistinct(1000, 10, 1), SampleDistinct(1000, 10, 2));
}

}  // namespace
}  // namespace vlake::gpu::math
