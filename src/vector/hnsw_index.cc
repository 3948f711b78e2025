// HNSW on hnswlib 0.6.2 (header-only). hnswlib.h defines non-inline functions, so this is the
// only translation unit that includes it; the raw-library baseline for benchmarks lives here
// too (raw_baseline.h).
//
// hnswlib 0.6.2 keeps the search beam (ef_) in the index and has no filter hook, so searches
// do not call searchKnn: the upper-layer descent is done here (greedy like hnswlib's, but with
// a small beam on level 1: EntryForBase) and the base layer is searched with the library's own
// searchBaseLayerST at the request's ef (no shared state), or, with a filter, by the
// allowed-only beam search below.
//
// Graphs built elsewhere (IndexFromGraphParts: CAGRA) become the base layer of an hnswlib
// index whose upper layers are built here with hnswlib's insertion algorithm
// (BuildUpperLayers), as cuVS does for its HNSW export.
#include <hnswlib/hnswlib.h>
#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <random>
#include <stdexcept>

#include "common/fd.h"
#include "vector/index_impl.h"
#include "vector/index_parts.h"
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

// Greedy walk from `cur` over levels from_level down to to_level + 1 (to_level >= 0): at each
// level, move to the closest neighbour while that gets closer (hnswlib's searchKnn and addPoint
// descend this way).
tableint GreedyDescend(const Graph& g, const void* q, tableint cur, int from_level, int to_level) {
  float cur_d = g.fstdistfunc_(q, g.getDataByInternalId(cur), g.dist_func_param_);
  for (int level = from_level; level > to_level; --level) {
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

// Seed of the level draw of exported graphs (hnswlib's default random_seed). Fixed, so that
// exporting the same graph twice gives the same hierarchy and the same bytes.
constexpr uint64_t kExportLevelSeed = 100;

// hnswlib's level rule, floor(-ln(U) * mult) with mult = 1/ln(M), so a node reaches level >= l
// with probability M^-l. U = (53 random bits + 1) / 2^53 lies in (0, 1]: hnswlib's own
// uniform_real_distribution can return 0 (level -ln(0) = inf), and std::mt19937_64 with this
// mapping gives the same levels with every standard library.
int DrawLevel(std::mt19937_64& rng, double mult) {
  double u = static_cast<double>((rng() >> 11) + 1) * 0x1p-53;
  return static_cast<int>(-std::log(u) * mult);
}

// Gives the nodes of `g` (level 0 complete, every node on level 0 only) the upper layers of
// hnswlib's hierarchy: levels drawn by DrawLevel for rows 0..n-1 in order from
// std::mt19937_64(kExportLevelSeed); the nodes of level >= 1 are inserted by descending level
// (ties: ascending row) with addPoint's algorithm restricted to levels >= 1 (greedy descent
// from the entry point down to level + 1, then per level searchBaseLayer at efConstruction and
// mutuallyConnectNewElement, which selects and back-links with hnswlib's heuristic). The first
// node, of the top level, is the entry point. Level 0 is not read beyond the vectors and not
// written. With no node above level 0, entry point and maxlevel stay as they are. Single-threaded:
// the links depend on insertion order, and the export must be deterministic.
// hnswlib's addPoint can force a level (> 0), but it would also link the node on level 0
// among the upper nodes (most of its work, thrown away here) and would number nodes in
// insertion order, not by row.
void BuildUpperLayers(Graph& g) {
  const size_t n = g.cur_element_count;
  std::mt19937_64 rng(kExportLevelSeed);
  std::vector<std::pair<int, tableint>> upper;  // (level, node) for level >= 1; ~n/M entries
  for (size_t i = 0; i < n; ++i) {
    int level = DrawLevel(rng, g.mult_);
    if (level > 0) upper.emplace_back(level, static_cast<tableint>(i));
  }
  if (upper.empty()) return;
  std::sort(upper.begin(), upper.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  // Link lists exactly as addPoint allocates them (malloc'd, zeroed; ~HierarchicalNSW frees
  // those of nodes with element_levels_ > 0, so the level is set once the list exists).
  for (const auto& [level, id] : upper) {
    size_t bytes = g.size_links_per_element_ * level + 1;
    char* lists = static_cast<char*>(std::malloc(bytes));
    if (lists == nullptr) throw std::runtime_error("not enough memory for upper-level links");
    std::memset(lists, 0, bytes);
    g.linkLists_[id] = lists;
    g.element_levels_[id] = level;
  }
  g.enterpoint_node_ = upper[0].second;
  g.maxlevel_ = upper[0].first;
  for (size_t k = 1; k < upper.size(); ++k) {
    const auto [level, id] = upper[k];
    const void* x = g.getDataByInternalId(id);
    tableint cur = GreedyDescend(g, x, g.enterpoint_node_, g.maxlevel_, level);
    for (int l = level; l >= 1; --l) {
      auto top = g.searchBaseLayer(cur, x, l);
      cur = g.mutuallyConnectNewElement(x, id, top, l, /*isUpdate=*/false);
    }
  }
}

using DistId = std::pair<float, tableint>;
using TopQueue = std::priority_queue<DistId, std::vector<DistId>, Graph::CompareByFirst>;

// Beam search of width ef on `level` from `ep` (hnswlib's searchBaseLayer), keeping the ef
// closest nodes that `allowed` admits (all when null) while walking through every node: the
// beam is bounded by the ef closest *allowed* nodes seen, so a filter cannot starve the walk.
TopQueue SearchLayer(const Graph& g, tableint ep, const float* q, size_t ef, int level,
                     const Bitset* allowed) {
  hnswlib::VisitedList* vl = g.visited_list_pool_->getFreeVisitedList();
  hnswlib::vl_type* visited = vl->mass;
  hnswlib::vl_type tag = vl->curV;
  TopQueue top;                            // max-heap of allowed results
  std::priority_queue<DistId> candidates;  // max-heap on -distance
  auto is_allowed = [&](tableint id) {
    return allowed == nullptr || allowed->test(static_cast<int64_t>(g.getExternalLabel(id)));
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
    auto* list = reinterpret_cast<unsigned int*>(g.get_linklist_at_level(cur.second, level));
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

// Beam width on level 1 when a search looks for its base-layer entry (capped by the search's
// ef). The trade-off, measured: on exported CAGRA graphs of well-separated clusters (below),
// width 4 / 8 / 16 lose 0.7% / 0.1% / 0% of the queries; on indexes built by hnswlib, which
// do not need it, width 16 costs 4-5 us per query at dim 32 (+15% at ef 64).
constexpr size_t kLevel1Beam = 16;

// The base-layer entry of a search: greedy descent down to level 1 (as hnswlib's searchKnn),
// then the closest node of a beam search of width min(ef, kLevel1Beam) on level 1, where
// hnswlib descends greedily. On data of well-separated clusters whose base layer has no edges
// between clusters (CAGRA graphs exported by IndexFromGraphParts), the base-layer beam cannot
// leave the cluster it starts in, and a greedy level 1 ends in the wrong cluster for many
// queries (1M x 96, 1024 clusters, M = 32: 14% of queries, recall@10 0.86 at ef 128; with the
// beam none, recall 1.0). Indexes built by hnswlib have edges between clusters on level 0 and
// recover there.
tableint EntryForBase(const Graph& g, const float* q, size_t ef) {
  tableint ep = GreedyDescend(g, q, g.enterpoint_node_, g.maxlevel_, 1);
  if (g.maxlevel_ < 1) return ep;
  TopQueue top = SearchLayer(g, ep, q, std::min(ef, kLevel1Beam), 1, nullptr);
  while (top.size() > 1) top.pop();
  return top.top().second;
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
      tableint ep = EntryForBase(*graph_, q, ef);
      TopQueue top = params.allowed ? SearchLayer(*graph_, ep, q, ef, 0, params.allowed)
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

  // Installs an exported graph (IndexFromGraphParts) the way loadIndex would read one:
  // label = internal id = row; level-0 links = the graph row without its kNoNeighbor padding;
  // upper layers built by BuildUpperLayers (entry point = its top node, or `entry_point` with
  // maxlevel 0 when no level was drawn above 0).
  Status AdoptGraph(const GraphParts& parts, const float* vectors, uint32_t entry_point) {
    if (parts.rows == 0) return Status::Ok();
    std::vector<float> normalized;
    if (metric_ == Metric::kCosine) {
      normalized = NormalizedCopy(vectors, parts.rows, dim_);
      vectors = normalized.data();
    }
    try {
      auto g = std::make_unique<Graph>(space_.get(), parts.rows, spec_.Get("M", 16),
                                       spec_.Get("efConstruction", 200), /*random_seed=*/100);
      if (g->maxM0_ != static_cast<size_t>(parts.degree)) {
        return Status(Code::kInternal, "graph parts: hnswlib maxM0 " + std::to_string(g->maxM0_) +
                                           " != degree " + std::to_string(parts.degree));
      }
      g->label_lookup_.reserve(parts.rows);
      for (int64_t i = 0; i < parts.rows; ++i) {
        auto id = static_cast<tableint>(i);
        hnswlib::linklistsizeint* list = g->get_linklist0(id);
        // Zeroed first: the padding slots and the deleted-mark byte are saved verbatim.
        std::memset(list, 0, g->size_data_per_element_);
        auto* links = reinterpret_cast<tableint*>(list + 1);
        const uint32_t* row = parts.graph.data() + i * parts.degree;
        unsigned short count = 0;
        for (int j = 0; j < parts.degree; ++j) {
          if (row[j] != kNoNeighbor) links[count++] = row[j];
        }
        g->setListCount(list, count);
        std::memcpy(g->getDataByInternalId(id), vectors + i * dim_, sizeof(float) * dim_);
        g->setExternalLabel(id, static_cast<hnswlib::labeltype>(i));
        g->element_levels_[i] = 0;
        g->linkLists_[i] = nullptr;
        g->label_lookup_.emplace(static_cast<hnswlib::labeltype>(i), id);
      }
      g->cur_element_count = static_cast<size_t>(parts.rows);
      g->enterpoint_node_ = entry_point;
      g->maxlevel_ = 0;
      BuildUpperLayers(*g);
      graph_ = std::move(g);
    } catch (const std::exception& e) {
      return Status(Code::kInternal, std::string("hnsw from graph parts: ") + e.what());
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
      : metric_(metric),
        dim_(dim),
        space_(MakeSpace(metric, dim)),
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

Result<std::unique_ptr<VectorIndex>> HnswIndexFromGraphParts(IndexSpec spec,
                                                             const GraphParts& parts,
                                                             const float* vectors,
                                                             uint32_t entry_point) {
  auto index = std::make_unique<HnswIndex>(std::move(spec), parts.dim, parts.metric);
  VLAKE_RETURN_IF_ERROR(index->AdoptGraph(parts, vectors, entry_point));
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
