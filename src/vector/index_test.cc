#include "vector/index.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/testing.h"
#include "vector/blas_env.h"
#include "vector/synthetic.h"

namespace vlake::vector {
namespace {

const bool kBlasReady = (EnsureOpenBlasCoreType(), true);

struct Case {
  const char* factory;
  SearchParams params;  // k, nprobe, ef
  double min_recall;    // recall@10 floor on the seeded clustered data below
};

struct Data {
  ClusteredSpec spec{.rows = 20000, .dim = 32, .clusters = 64, .spread = 0.15f, .seed = 7};
  std::vector<float> base = GenerateClustered(spec);
  int64_t nq = 200;
  std::vector<float> queries = GenerateQueries(spec, nq);
};

const Data& TestData() {
  static const Data* d = new Data();
  return *d;
}

std::vector<Case> Cases() {
  auto p = [](int64_t nprobe, int64_t ef) {
    SearchParams s;
    s.k = 10;
    s.nprobe = nprobe;
    s.ef = ef;
    return s;
  };
  return {
      {"FLAT", p(0, 0), 1.0},
      {"IVF_FLAT:nlist=64", p(64, 0), 1.0},  // every list probed: exact
      {"IVF_FLAT:nlist=64", p(8, 0), 0.80},
      {"IVF_SQ8:nlist=64", p(64, 0), 0.90},
      {"IVF_PQ:nlist=64,m=16,nbits=8", p(64, 0), 0.50},  // no refine: codes only
      {"HNSW:M=16,efConstruction=100", p(0, 128), 0.95},
  };
}

class IndexRecall : public ::testing::TestWithParam<Metric> {};

TEST_P(IndexRecall, MeetsFloorsAgainstExactGroundTruth) {
  const Metric metric = GetParam();
  const Data& d = TestData();
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.factory);
    ASSERT_OK_AND_ASSIGN(auto index, MakeIndex(c.factory, d.spec.dim, metric));
    ASSERT_OK(index->Train(d.base.data(), d.spec.rows));
    ASSERT_OK(index->Add(d.base.data(), d.spec.rows));
    EXPECT_EQ(index->size(), d.spec.rows);
    SearchResult r;
    ASSERT_OK(index->Search(d.queries.data(), d.nq, c.params, &r));
    // Tie-aware: the exact cases (floor 1.0) must not depend on how another CPU orders rows
    // at a near-tie with the 10th neighbour.
    double recall = TieAwareRecallAtK(metric, d.base.data(), d.spec.rows, d.spec.dim,
                                      d.queries.data(), d.nq, r.labels, r.k, 10);
    EXPECT_GE(recall, c.min_recall) << MetricName(metric) << " nprobe=" << c.params.nprobe;
    // Results come best first.
    for (int64_t q = 0; q < d.nq; ++q) {
      for (int64_t i = 1; i < r.k && r.labels[q * r.k + i] >= 0; ++i) {
        float a = r.distances[q * r.k + i - 1], b = r.distances[q * r.k + i];
        if (LargerIsCloser(metric)) {
          ASSERT_GE(a, b - 1e-4f);
        } else {
          ASSERT_LE(a, b + 1e-4f);
        }
      }
    }
    // A serialized and reloaded index answers identically.
    ASSERT_OK_AND_ASSIGN(std::string file, SerializeIndexFile(*index, "{\"segment\":\"s1\"}"));
    IndexFileInfo info;
    ASSERT_OK_AND_ASSIGN(auto loaded, LoadIndexFile(file, &info));
    EXPECT_EQ(info.metadata, "{\"segment\":\"s1\"}");
    EXPECT_EQ(info.rows, d.spec.rows);
    EXPECT_EQ(info.spec.ToString(), index->spec().ToString());
    SearchResult r2;
    ASSERT_OK(loaded->Search(d.queries.data(), d.nq, c.params, &r2));
    EXPECT_EQ(r.labels, r2.labels);
  }
}

INSTANTIATE_TEST_SUITE_P(AllMetrics, IndexRecall,
                         ::testing::Values(Metric::kL2, Metric::kIP, Metric::kCosine),
                         [](const auto& p) { return std::string(MetricName(p.param)); });

// The recall used above: a row tied with the k-th neighbour counts, a farther one or a
// duplicate does not.
TEST(TieAwareRecall, CountsTiesNotDuplicatesOrFartherRows) {
  // Base rows on a line: 0, 1, 1 (a tie), 3.
  const std::vector<float> base = {0, 1, 1, 3};
  const std::vector<float> query = {0};
  auto recall = [&](std::vector<int64_t> found) {
    return TieAwareRecallAtK(Metric::kL2, base.data(), 4, 1, query.data(), 1, found, 2, 2);
  };
  EXPECT_EQ(recall({0, 1}), 1.0);
  EXPECT_EQ(recall({0, 2}), 1.0);  // the other row of the tie
  EXPECT_EQ(recall({0, 3}), 0.5);  // farther than the 2nd neighbour
  EXPECT_EQ(recall({0, 0}), 0.5);  // a duplicate counts once
  EXPECT_EQ(recall({-1, 1}), 0.5);
  // Inner product: larger is closer.
  EXPECT_EQ(TieAwareRecallAtK(Metric::kIP, base.data(), 4, 1, std::vector<float>{1}.data(), 1,
                              {3, 2}, 2, 2),
            1.0);
}

// Filtered search is checked against brute force over the allowed rows only.
TEST(IndexFilter, MatchesBruteForceOverAllowedRows) {
  const Data& d = TestData();
  Bitset allowed(d.spec.rows);
  for (int64_t i = 0; i < d.spec.rows; ++i) {
    if ((i * 2654435761u) % 10 < 3) allowed.set(i);  // ~30% pass, scattered
  }
  SearchParams bf;
  bf.k = 10;
  bf.allowed = &allowed;
  SearchResult truth;
  ASSERT_OK(BruteForceSearch(Metric::kL2, d.base.data(), d.spec.rows, d.spec.dim,
                             d.queries.data(), d.nq, bf, &truth));
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.factory);
    ASSERT_OK_AND_ASSIGN(auto index, MakeIndex(c.factory, d.spec.dim, Metric::kL2));
    ASSERT_OK(index->Train(d.base.data(), d.spec.rows));
    ASSERT_OK(index->Add(d.base.data(), d.spec.rows));
    SearchParams p = c.params;
    p.allowed = &allowed;
    SearchResult r;
    ASSERT_OK(index->Search(d.queries.data(), d.nq, p, &r));
    for (int64_t label : r.labels) {
      if (label >= 0) {
        ASSERT_TRUE(allowed.test(label)) << label;
      }
    }
    EXPECT_GE(RecallAtK(r.labels, r.k, truth.labels, truth.k, d.nq, 10), c.min_recall * 0.95);
  }
}

TEST(IndexRange, KeepsOnlyResultsInsideTheRadius) {
  const Data& d = TestData();
  ASSERT_OK_AND_ASSIGN(auto index, MakeIndex("FLAT", d.spec.dim, Metric::kL2));
  ASSERT_OK(index->Add(d.base.data(), d.spec.rows));
  SearchParams p;
  p.k = 100;
  SearchResult all;
  ASSERT_OK(index->Search(d.queries.data(), 5, p, &all));
  float radius = all.distances[50];  // the 51st distance of query 0
  p.radius = radius;
  SearchResult in;
  ASSERT_OK(index->Search(d.queries.data(), 5, p, &in));
  int64_t kept = 0;
  for (int64_t i = 0; i < p.k; ++i) {
    if (in.labels[i] >= 0) {
      ++kept;
      EXPECT_LT(in.distances[i], radius);
    }
  }
  EXPECT_EQ(kept, 50);
}

TEST(IndexSpec, ParsesAndRejects) {
  ASSERT_OK_AND_ASSIGN(IndexSpec s, IndexSpec::Parse("ivf_pq:nlist=256,m=8"));
  EXPECT_EQ(s.ToString(), "IVF_PQ:m=8,nbits=8,nlist=256");
  EXPECT_CODE(IndexSpec::Parse("ANNOY").status(), Code::kInvalidArgument);
  EXPECT_CODE(IndexSpec::Parse("HNSW:M=abc").status(), Code::kInvalidArgument);
  EXPECT_CODE(IndexSpec::Parse("HNSW:nlist=4").status(), Code::kInvalidArgument);
  EXPECT_CODE(IndexSpec::Parse("IVF_FLAT:nlist=0").status(), Code::kInvalidArgument);
  EXPECT_CODE(MakeIndex("IVF_PQ:m=7", 32, Metric::kL2).status(), Code::kInvalidArgument);
  EXPECT_CODE(MakeIndex("FLAT", 0, Metric::kL2).status(), Code::kInvalidArgument);
}

TEST(IndexFile, CorruptionIsDetected) {
  const Data& d = TestData();
  ASSERT_OK_AND_ASSIGN(auto index, MakeIndex("IVF_FLAT:nlist=16", d.spec.dim, Metric::kL2));
  ASSERT_OK(index->Train(d.base.data(), 2000));
  ASSERT_OK(index->Add(d.base.data(), 2000));
  ASSERT_OK_AND_ASSIGN(std::string file, SerializeIndexFile(*index, "meta"));
  for (size_t at : {size_t{0}, size_t{10}, size_t{60}, file.size() / 2, file.size() - 1}) {
    std::string bad = file;
    bad[at] ^= 1;
    EXPECT_CODE(LoadIndexFile(bad).status(), Code::kCorruption) << at;
  }
  for (size_t len : {size_t{0}, size_t{20}, file.size() - 1}) {
    EXPECT_CODE(LoadIndexFile(file.substr(0, len)).status(), Code::kCorruption) << len;
  }
}

TEST(IndexTrain, TooFewVectorsIsAClearError) {
  const Data& d = TestData();
  ASSERT_OK_AND_ASSIGN(auto index, MakeIndex("IVF_FLAT:nlist=1024", d.spec.dim, Metric::kL2));
  EXPECT_CODE(index->Train(d.base.data(), 100), Code::kInvalidArgument);
}

TEST(BlasEnv, DetectsACoreTypeOnX86) {
  // Every machine vlake targets has at least AVX2; the variable is set by the re-exec above.
  EXPECT_FALSE(DetectOpenBlasCoreType().empty());
  EXPECT_NE(std::getenv("OPENBLAS_CORETYPE"), nullptr);
}

}  // namespace
}  // namespace vlake::vector
