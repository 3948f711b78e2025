// HNSW on hnswlib 0.6.2 (header-only). hnswlib.h defines non-inline functions, so this is the
// only translation unit that includes it; the raw-library baseline for benchmarks lives here
// too (raw_baseline.h).
//
// hnswlib 0.6.2 keeps the search beam (ef_) in the index and has no filter hook, so searches
// do not call searchKnn: the upper-layer descent is repeated here and the base layer is
// searched with the library's own searchBaseLayerST at the request's ef (no shared state), or,
// with a filter, by the allowed-only beam search below.
#include <hnswlib/hnswlib.h>
#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <queue>

#include "common/fd.h"
#include "vector/index_impl.h"
#include "vector/raw_baseline.h"

namespace vlake::vector {
namespace {

using Graph = hnswlib::HierarchicalNSW<float>;
using hnswlib::tableint;

std::unique_ptr<hnswlib::SpaceInterface<float>> MakeSpace(Metric metric, int dim) {
  if (metric == Metric::kL2) return std::make_unique<hnswlib::L2Space>(dim);
  return std::make_unique<hnswlib::InnerProductSpace>(dim);
}

// hnswlib's inner-product "distance" is 1 - ip; vlake reports the inner product itself.
float ToVlakeDistance(Metric metric, float d) { return metric == Metric::kL2 ? d : 1.0f - d; }

// hnswlib serializes only to a path; a memfd gives it one without touching the disk.
class MemFile {
 public:
  MemFile() : fd_(memfd_create("vlake-hnsw", MFD_CLOEXEC)) {}
  ~MemFile() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }
  Status Write(std::string_view bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = pwrite(fd_, bytes.data() + done, bytes.size() - done, done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Status(Code::kIoError, "memfd write failed");
      done += n;
    }
    return Status::Ok();
  }
  Result<std::string> ReadAll() {
    off_t size = lseek(fd_, 0, SEEK_END);
    if (size < 0) return Status(Code::kIoError, "memfd seek failed");
    std::string out(size, '\0');
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = pread(fd_, out.data() + done, out.size() - done, done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Status(Code::kIoError, "memfd read failed");
      done += n;
    }
    return out;
  }

 private:
  int fd_;
};

// Runs one(q) for every query: inline for a single query (no thread hand-off), else over
// OpenMP threads.
template <typename Fn>
void ForEachQuery(int64_t nq, const Fn& one) {
  if (nq == 1) {
    one(0);
    return;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t qi = 0; qi < nq; ++qi) one(qi);
}

// Empties a max-heap of (distance, id) into best-first slots, mapping ids to labels.
template <typename Queue, typename LabelOf>
void DrainToBestFirst(Queue& top, Metric metric, int64_t* labels, float* distances,
                   const LabelOf& label_of) {
  for (int64_t slot = static_cast<int64_t>(top.size()) - 1; slot >= 0; --slot) {
    labels[slot] = static_cast<int64_t>(label_of(top.top().second));
    distances[slot] = ToVlakeDistance(metric, top.top().first);
    top.pop();
  }
}

// Greedy descent through the upper layers (as hnswlib's searchKnn does).
tableint Descend(const Graph& g, const float* q) {
  tableint cur = g.enterpoint_node_;
  float cur_d = g.fstdistfunc_(q, g.getDataByInternalId(cur), g.dist_func_param_);
  for (int level = g.maxlevel_; level > 0; --level) {
    bool changed = true;
    while (changed) {
      changed = false;
      auto* list = reinterpret_cast<unsigned int*>(g.get_linklist(cur, level));
      int n = g.getListCount(list);
      auto* cands = reinterpret_cast<tableint*>(list + 1);
      for (int i = 0; i < n; ++i) {
        float d = g.fstdistfunc_(q, g.getDataByInternalId(cands[i]), g.dist_func_param_);
        if (d < cur_d) {
          cur_d = d;
          cur = cands[i];
          changed = true;
        }
      }
    }
  }
  return cur;
}

using DistId = std::pair<float, tableint>;
using TopQueue = std::priority_queue<DistId, std::vector<DistId>, Graph::CompareByFirst>;

// Base-layer beam search that walks through every node but only keeps allowed ones: the beam
// is bounded by the ef closest *allowed* nodes seen, so a filter cannot starve the walk.
TopQueue SearchBaseFiltered(const Graph& g, tableint ep, const float* q,
                                               size_t ef, const Bitset& allowed) {
  hnswlib::VisitedList* vl = g.visited_list_pool_->getFreeVisitedList();
  hnswlib::vl_type* visited = vl->mass;
  hnswlib::vl_type tag = vl->curV;
  TopQueue top;                            // max-heap of allowed results
  std::priority_queue<DistId> candidates;  // max-heap on -distance
  auto is_allowed = [&](tableint id) {
    return allowed.test(static_cast<int64_t>(g.getExternalLabel(id)));
  };
  float d = g.fstdistfunc_(q, g.getDataByInternalId(ep), g.dist_func_param_);
  float bound = std::numeric_limits<float>::max();
  if (is_allowed(ep)) {
    top.emplace(d, ep);
    bound = d;
  }
  candidates.emplace(-d, ep);
  visited[ep] = tag;
  while (!candidates.empty()) {
    DistId cur = candidates.top();
    if (-cur.first > bound && top.size() >= ef) break;
    candidates.pop();
    auto* list = reinterpret_cast<unsigned int*>(g.get_linklist0(cur.second));
    int n = g.getListCount(list);
    auto* nbrs = reinterpret_cast<tableint*>(list + 1);
    for (int i = 0; i < n; ++i) {
      tableint id = nbrs[i];
      if (visited[id] == tag) continue;
      visited[id] = tag;
      float dist = g.fstdistfunc_(q, g.getDataByInternalId(id), g.dist_func_param_);
      if (top.size() < ef || dist < bound) {
        candidates.emplace(-dist, id);
        if (is_allowed(id)) {
          top.emplace(dist, id);
          if (top.size() > ef) top.pop();
          bound = top.top().first;
        }
      }
    }
  }
  g.visited_list_pool_->releaseVisitedList(vl);
  return top;
}

class HnswIndex final : public VectorIndex {
 public:
  HnswIndex(IndexSpec spec, int dim, Metric metric)
      : VectorIndex(std::move(spec), dim, metric), space_(MakeSpace(metric, dim)) {}

  int64_t size() const override {
    return graph_ ? static_cast<int64_t>(graph_->cur_element_count) : 0;
  }
  bool needs_training() const override { return false; }
  Status Train(const float*, int64_t) override { return Status::Ok(); }

  Status Add(const float* x, int64_t n) override {
    if (n == 0) return Status::Ok();
    std::vector<float> normalized;
    if (metric_ == Metric::kCosine) {
      normalized = NormalizedCopy(x, n, dim_);
      x = normalized.data();
    }
    int64_t base = size();
    try {
      if (!graph_) {
        graph_ = std::make_unique<Graph>(space_.get(), n, spec_.Get("M", 16),
                                         spec_.Get("efConstruction", 200), /*random_seed=*/100);
      } else if (static_cast<size_t>(base + n) > graph_->max_elements_) {
        graph_->resizeIndex(std::max<size_t>(base + n, graph_->max_elements_ * 2));
      }
    } catch (const std::exception& e) {
      return Status(Code::kInternal, std::string("hnsw: ") + e.what());
    }
    std::atomic<bool> failed{false};
    // The first point creates the entry point; the rest go in parallel (hnswlib locks per node).
    int64_t start = 0;
    if (base == 0) {
      graph_->addPoint(x, 0);
      start = 1;
    }
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t i = start; i < n; ++i) {
      try {
        graph_->addPoint(x + i * dim_, static_cast<size_t>(base + i));
      } catch (...) {
        failed = true;
      }
    }
    if (failed) return Status(Code::kInternal, "hnsw: addPoint failed");
    return Status::Ok();
  }

  Status Search(const float* queries, int64_t nq, const SearchParams& params,
                SearchResult* out) const override {
    out->Resize(nq, params.k);
    if (nq == 0 || size() == 0) return Status::Ok();
    std::vector<float> normalized;
    if (metric_ == Metric::kCosine) {
      normalized = NormalizedCopy(queries, nq, dim_);
      queries = normalized.data();
    }
    size_t ef = static_cast<size_t>(std::max<int64_t>(params.ef > 0 ? params.ef : 64, params.k));
    auto one = [&](int64_t qi) {
      const float* q = queries + qi * dim_;
      tableint ep = Descend(*graph_, q);
      TopQueue top =
          params.allowed ? SearchBaseFiltered(*graph_, ep, q, ef, *params.allowed)
                         : graph_->searchBaseLayerST<false>(ep, q, ef);
      while (top.size() > static_cast<size_t>(params.k)) top.pop();
      DrainToBestFirst(top, metric_, out->labels.data() + qi * params.k,
                    out->distances.data() + qi * params.k,
                    [&](tableint id) { return graph_->getExternalLabel(id); });
    };
    ForEachQuery(nq, one);
    ApplyRange(metric_, params, out);
    return Status::Ok();
  }

  Result<std::string> SerializePayload() const override {
    if (!graph_) return std::string();
    MemFile f;
    if (!f.ok()) return Status(Code::kIoError, "memfd_create failed");
    try {
      graph_->saveIndex(f.path());
    } catch (const std::exception& e) {
      return Status(Code::kInternal, std::string("hnsw save: ") + e.what());
    }
    return f.ReadAll();
  }

  Status LoadPayload(std::string_view payload) {
    if (payload.empty()) return Status::Ok();
    MemFile f;
    if (!f.ok()) return Status(Code::kIoError, "memfd_create failed");
    VLAKE_RETURN_IF_ERROR(f.Write(payload));
    try {
      graph_ = std::make_unique<Graph>(space_.get(), f.path());
    } catch (const std::exception& e) {
      return Status(Code::kCorruption, std::string("index file: hnsw payload: ") + e.what());
    }
    return Status::Ok();
  }

  int64_t memory_bytes() const override {
    if (!graph_) return 0;
    return static_cast<int64_t>(graph_->max_elements_ * graph_->size_data_per_element_ +
                                graph_->cur_element_count * graph_->size_links_per_element_ / 2);
  }

 private:
  std::unique_ptr<hnswlib::SpaceInterface<float>> space_;  // outlives graph_ (declared first)
  std::unique_ptr<Graph> graph_;
};

// hnswlib used the way its own bindings use it: one index, setEf, searchKnn per query.
class RawHnsw final : public RawIndex {
 public:
  RawHnsw(Metric metric, int dim, int64_t n, int64_t M, int64_t efc)
      : metric_(metric), dim_(dim), space_(MakeSpace(metric, dim)),
        graph_(space_.get(), n, M, efc, 100) {}

  void Add(const float* x, int64_t n) {
    graph_.addPoint(x, 0);
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t i = 1; i < n; ++i) graph_.addPoint(x + i * dim_, static_cast<size_t>(i));
  }

  Status Search(const float* q, int64_t nq, int64_t k, int64_t ef, int64_t* labels,
                float* distances) override {
    graph_.setEf(static_cast<size_t>(std::max(ef, k)));
    auto one = [&](int64_t qi) {
      auto top = graph_.searchKnn(q + qi * dim_, k);
      DrainToBestFirst(top, metric_, labels + qi * k, distances + qi * k,
                    [](size_t label) { return label; });
    };
    ForEachQuery(nq, one);
    return Status::Ok();
  }

 private:
  Metric metric_;
  int dim_;
  std::unique_ptr<hnswlib::SpaceInterface<float>> space_;
  Graph graph_;
};

}  // namespace

Result<std::unique_ptr<VectorIndex>> MakeHnswIndex(IndexSpec spec, int dim, Metric metric) {
  return std::unique_ptr<VectorIndex>(new HnswIndex(std::move(spec), dim, metric));
}

Result<std::unique_ptr<VectorIndex>> LoadHnswIndex(const IndexFileInfo& info,
                                                   std::string_view payload) {
  auto index = std::make_unique<HnswIndex>(info.spec, info.dim, info.metric);
  VLAKE_RETURN_IF_ERROR(index->LoadPayload(payload));
  return std::unique_ptr<VectorIndex>(std::move(index));
}

Result<std::unique_ptr<RawIndex>> RawHnswBuild(const IndexSpec& spec, Metric metric, int dim,
                                               const float* x, int64_t n, RawTiming* timing) {
  auto t0 = std::chrono::steady_clock::now();
  try {
    auto raw = std::make_unique<RawHnsw>(metric, dim, n, spec.Get("M", 16),
                                         spec.Get("efConstruction", 200));
    raw->Add(x, n);
    timing->add_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return std::unique_ptr<RawIndex>(std::move(raw));
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string("raw hnswlib: ") + e.what());
  }
}

}  // namespace vlake::vector
