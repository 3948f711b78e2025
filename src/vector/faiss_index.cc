// FLAT, IVF_FLAT, IVF_SQ8 and IVF_PQ on FAISS 1.7.3. COSINE indexes are inner-product indexes
// over unit-normalized vectors.
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>

#include <cstring>

#include "vector/index_impl.h"
#include "vector/index_parts.h"
#include "vector/raw_baseline.h"
#include <chrono>

namespace vlake::vector {
namespace {

faiss::MetricType FaissMetric(Metric m) {
  return m == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

// The FAISS factory string for a vlake spec; raw-library benchmarks use the same string.
std::string FaissFactory(const IndexSpec& spec) {
  if (spec.type == "FLAT") return "Flat";
  std::string ivf = "IVF" + std::to_string(spec.Get("nlist", 128));
  if (spec.type == "IVF_FLAT") return ivf + ",Flat";
  if (spec.type == "IVF_SQ8") return ivf + ",SQ8";
  // "np": no polysemous training (a slow simulated annealing of code order that only helps
  // Hamming-distance filtering, which vlake does not use; Milvus skips it too).
  return ivf + ",PQ" + std::to_string(spec.Get("m", 8)) + "x" +
         std::to_string(spec.Get("nbits", 8)) + "np";
}

Status FaissError(std::string_view what, const std::exception& e) {
  return Status(Code::kInternal, std::string(what) + ": " + e.what());
}

class FaissIndex final : public VectorIndex {
 public:
  FaissIndex(IndexSpec spec, int dim, Metric metric, std::unique_ptr<faiss::Index> index)
      : VectorIndex(std::move(spec), dim, metric), index_(std::move(index)) {}

  int64_t size() const override { return index_->ntotal; }
  bool needs_training() const override { return !index_->is_trained; }
  int64_t min_training_rows() const override {
    if (spec_.type == "FLAT") return 0;
    int64_t rows = spec_.Get("nlist", 128);
    if (spec_.type == "IVF_PQ") rows = std::max(rows, int64_t{1} << spec_.Get("nbits", 8));
    return rows;
  }

  Status Train(const float* x, int64_t n) override {
    if (index_->is_trained) return Status::Ok();
    auto* ivf = dynamic_cast<faiss::IndexIVF*>(index_.get());
    if (ivf != nullptr && n < static_cast<int64_t>(ivf->nlist)) {
      return Status(Code::kInvalidArgument, "IVF training needs at least nlist=" +
                                                std::to_string(ivf->nlist) + " vectors, got " +
                                                std::to_string(n));
    }
    if (spec_.type == "IVF_PQ") {
      int64_t nbits = spec_.Get("nbits", 8);
      if (n < (int64_t{1} << nbits)) {
        return Status(Code::kInvalidArgument, "IVF_PQ training needs at least 2^nbits=" +
                                                  std::to_string(int64_t{1} << nbits) +
                                                  " vectors, got " + std::to_string(n));
      }
    }
    try {
      Prepared p(this, x, n);
      index_->train(n, p.data);
    } catch (const std::exception& e) {
      return FaissError("train", e);
    }
    return Status::Ok();
  }

  Status Add(const float* x, int64_t n) override {
    if (!index_->is_trained) return Status(Code::kInvalidArgument, "add before train");
    try {
      Prepared p(this, x, n);
      index_->add(n, p.data);
    } catch (const std::exception& e) {
      return FaissError("add", e);
    }
    return Status::Ok();
  }

  Status Search(const float* queries, int64_t nq, const SearchParams& params,
                SearchResult* out) const override {
    out->Resize(nq, params.k);
    if (nq == 0 || index_->ntotal == 0) return Status::Ok();
    std::unique_ptr<faiss::IDSelectorBitmap> sel;
    if (params.allowed != nullptr) {
      sel = std::make_unique<faiss::IDSelectorBitmap>(index_->ntotal, params.allowed->bytes());
    }
    try {
      Prepared p(this, queries, nq);
      if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index_.get())) {
        faiss::SearchParametersIVF sp;
        sp.nprobe = params.nprobe > 0 ? params.nprobe : std::min<size_t>(ivf->nlist, 16);
        sp.sel = sel.get();
        ivf->search(nq, p.data, params.k, out->distances.data(), out->labels.data(), &sp);
      } else {
        faiss::SearchParameters sp;
        sp.sel = sel.get();
        index_->search(nq, p.data, params.k, out->distances.data(), out->labels.data(),
                       sel ? &sp : nullptr);
      }
    } catch (const std::exception& e) {
      return FaissError("search", e);
    }
    ApplyRange(metric_, params, out);
    return Status::Ok();
  }

  Result<std::string> SerializePayload() const override {
    try {
      faiss::VectorIOWriter w;
      faiss::write_index(index_.get(), &w);
      return std::string(reinterpret_cast<const char*>(w.data.data()), w.data.size());
    } catch (const std::exception& e) {
      return FaissError("serialize", e);
    }
  }

  int64_t memory_bytes() const override {
    int64_t bytes = 0;
    if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index_.get())) {
      bytes += static_cast<int64_t>(ivf->invlists->compute_ntotal() *
                                    (ivf->code_size + sizeof(faiss::Index::idx_t)));
      bytes += static_cast<int64_t>(ivf->nlist) * dim_ * 4;
    } else if (auto* flat = dynamic_cast<const faiss::IndexFlatCodes*>(index_.get())) {
      bytes += static_cast<int64_t>(flat->codes.size());
    }
    return bytes;
  }

 private:
  // The vectors FAISS sees: the caller's, or unit-normalized copies for COSINE.
  struct Prepared {
    Prepared(const FaissIndex* self, const float* x, int64_t n) : data(x) {
      if (self->metric_ == Metric::kCosine) {
        copy = NormalizedCopy(x, n, self->dim_);
        data = copy.data();
      }
    }
    const float* data;
    std::vector<float> copy;
  };

  std::unique_ptr<faiss::Index> index_;
};

}  // namespace

Result<std::unique_ptr<VectorIndex>> MakeFaissIndex(IndexSpec spec, int dim, Metric metric) {
  if (spec.type == "IVF_PQ") {
    int64_t m = spec.Get("m", 8);
    if (dim % m != 0) {
      return Status(Code::kInvalidArgument, "IVF_PQ m=" + std::to_string(m) +
                                                " must divide dim=" + std::to_string(dim));
    }
  }
  try {
    std::unique_ptr<faiss::Index> index(
        faiss::index_factory(dim, FaissFactory(spec).c_str(), FaissMetric(metric)));
    return std::unique_ptr<VectorIndex>(
        new FaissIndex(std::move(spec), dim, metric, std::move(index)));
  } catch (const std::exception& e) {
    return Status(Code::kInvalidArgument, std::string("index: ") + e.what());
  }
}

// Builds the index exactly as MakeFaissIndex would (same factory string, so the same classes
// and flags: by_residual, no polysemous training), then sets what IndexIVF*::train would have
// learned and fills the inverted lists directly, as IndexIVF::add would have.
Result<std::unique_ptr<VectorIndex>> FaissIndexFromIvfParts(IndexSpec spec, const IvfParts& parts) {
  try {
    std::unique_ptr<faiss::Index> index(
        faiss::index_factory(parts.dim, FaissFactory(spec).c_str(), FaissMetric(parts.metric)));
    auto* ivf = dynamic_cast<faiss::IndexIVF*>(index.get());
    if (ivf == nullptr || ivf->nlist != static_cast<size_t>(parts.nlist)) {
      return Status(Code::kInternal, "ivf parts: " + spec.ToString() + " is not an IVF index");
    }
    // The coarse quantizer is an IndexFlatL2 (L2) or IndexFlatIP (IP, COSINE): add() stores
    // the centroids verbatim, in list order.
    ivf->quantizer->add(parts.nlist, parts.centroids.data());
    auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(ivf);
    if (parts.is_pq()) {
      // ProductQuantizer::centroids is laid out (M, ksub, dsub), the layout of pq_codebooks.
      if (ivfpq == nullptr || !ivfpq->by_residual ||
          ivfpq->pq.M != static_cast<size_t>(parts.pq_m) ||
          ivfpq->pq.centroids.size() != parts.pq_codebooks.size() ||
          ivfpq->code_size != static_cast<size_t>(parts.pq_m)) {
        return Status(Code::kInternal, "ivf parts: FAISS " + FaissFactory(spec) +
                                           " does not have the shape of the parts");
      }
      ivfpq->pq.centroids = parts.pq_codebooks;
    } else if (ivf->code_size != sizeof(float) * static_cast<size_t>(parts.dim)) {
      return Status(Code::kInternal, "ivf parts: unexpected IVF_FLAT code size");
    }
    ivf->is_trained = true;
    // IndexIVFPQ::train ends with this (and read_index redoes it): the L2 term tables.
    if (ivfpq != nullptr) ivfpq->precompute_table();
    for (int l = 0; l < parts.nlist; ++l) {
      size_t n = parts.list_ids[l].size();
      if (n == 0) continue;
      // IVF_FLAT codes are the raw float bytes of each vector.
      const uint8_t* codes = parts.is_pq()
                                 ? parts.list_codes[l].data()
                                 : reinterpret_cast<const uint8_t*>(parts.list_vectors[l].data());
      static_assert(sizeof(faiss::Index::idx_t) == sizeof(int64_t));
      ivf->invlists->add_entries(l, n, parts.list_ids[l].data(), codes);
    }
    ivf->ntotal = parts.rows();
    int dim = parts.dim;
    return std::unique_ptr<VectorIndex>(
        new FaissIndex(std::move(spec), dim, parts.metric, std::move(index)));
  } catch (const std::exception& e) {
    return FaissError("index from ivf parts", e);
  }
}

Result<std::unique_ptr<VectorIndex>> LoadFaissIndex(const IndexFileInfo& info,
                                                    std::string_view payload) {
  try {
    faiss::VectorIOReader r;
    r.data.assign(payload.begin(), payload.end());
    std::unique_ptr<faiss::Index> index(faiss::read_index(&r));
    if (index->d != info.dim || index->metric_type != FaissMetric(info.metric)) {
      return Status(Code::kCorruption, "index file: payload does not match its header");
    }
    return std::unique_ptr<VectorIndex>(
        new FaissIndex(info.spec, info.dim, info.metric, std::move(index)));
  } catch (const std::exception& e) {
    return Status(Code::kCorruption, std::string("index file: FAISS payload: ") + e.what());
  }
}

std::string FaissFactoryString(const IndexSpec& spec) { return FaissFactory(spec); }

namespace {

class RawFaiss final : public RawIndex {
 public:
  explicit RawFaiss(std::unique_ptr<faiss::Index> index) : index_(std::move(index)) {}
  Status Search(const float* q, int64_t nq, int64_t k, int64_t nprobe, int64_t* labels,
                float* distances) override {
    try {
      if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index_.get())) {
        faiss::SearchParametersIVF sp;
        sp.nprobe = nprobe > 0 ? nprobe : std::min<size_t>(ivf->nlist, 16);
        ivf->search(nq, q, k, distances, labels, &sp);
      } else {
        index_->search(nq, q, k, distances, labels);
      }
    } catch (const std::exception& e) {
      return FaissError("raw search", e);
    }
    return Status::Ok();
  }

 private:
  std::unique_ptr<faiss::Index> index_;
};

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Result<std::unique_ptr<RawIndex>> RawBuild(const IndexSpec& spec, Metric metric, int dim,
                                           const float* x, int64_t n, RawTiming* timing) {
  if (spec.type == "HNSW") return RawHnswBuild(spec, metric, dim, x, n, timing);
  try {
    std::unique_ptr<faiss::Index> index(
        faiss::index_factory(dim, FaissFactory(spec).c_str(), FaissMetric(metric)));
    auto t0 = std::chrono::steady_clock::now();
    index->train(n, x);
    timing->train_s = SecondsSince(t0);
    t0 = std::chrono::steady_clock::now();
    index->add(n, x);
    timing->add_s = SecondsSince(t0);
    return std::unique_ptr<RawIndex>(new RawFaiss(std::move(index)));
  } catch (const std::exception& e) {
    return FaissError("raw faiss", e);
  }
}

}  // namespace vlake::vector
