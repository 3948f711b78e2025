#include "vector/index.h"

#include <cmath>
#include <cstring>

#include <faiss/impl/IDSelector.h>
#include <faiss/utils/distances.h>

#include "common/hash.h"
#include "vector/le.h"
#include "vector/index_impl.h"

namespace vlake::vector {
namespace {

constexpr char kIndexMagic[4] = {'V', 'L', 'I', 'X'};
constexpr uint32_t kIndexFormatVersion = 1;
constexpr size_t kIndexHeaderFixed = 48;

using le::Append;
using le::Get;

Status Corrupt(const std::string& what) {
  return Status(Code::kCorruption, "index file: " + what);
}

struct Header {
  IndexFileInfo info;
  uint32_t engine = 0;
  std::string_view payload;
};

Result<Header> ParseHeader(std::string_view f) {
  if (f.size() < kIndexHeaderFixed + 4) return Corrupt("truncated");
  if (std::memcmp(f.data(), kIndexMagic, 4) != 0) return Corrupt("bad magic (not a vlake index)");
  uint32_t crc = Get<uint32_t>(f.data() + f.size() - 4);
  if (crc != Crc32cUpdate(0, f.data(), f.size() - 4)) return Corrupt("checksum mismatch");
  const char* p = f.data();
  uint32_t version = Get<uint32_t>(p + 4);
  if (version != kIndexFormatVersion) {
    return Corrupt("unsupported version " + std::to_string(version));
  }
  Header h;
  uint32_t metric = Get<uint32_t>(p + 8);
  if (metric > 2) return Corrupt("bad metric");
  h.info.metric = static_cast<Metric>(metric);
  uint32_t dim = Get<uint32_t>(p + 12);
  if (dim < 1 || dim > static_cast<uint32_t>(kMaxDim)) return Corrupt("bad dim");
  h.info.dim = static_cast<int>(dim);
  h.info.rows = static_cast<int64_t>(Get<uint64_t>(p + 16));
  h.engine = Get<uint32_t>(p + 24);
  uint32_t spec_len = Get<uint32_t>(p + 28);
  uint32_t meta_len = Get<uint32_t>(p + 32);
  uint64_t payload_len = Get<uint64_t>(p + 40);
  uint64_t body = f.size() - 4 - kIndexHeaderFixed;
  if (uint64_t{spec_len} + meta_len > body || payload_len != body - spec_len - meta_len) {
    return Corrupt("section sizes do not add up");
  }
  std::string_view spec = f.substr(kIndexHeaderFixed, spec_len);
  VLAKE_ASSIGN_OR_RETURN(h.info.spec, IndexSpec::Parse(spec));
  h.info.metadata = std::string(f.substr(kIndexHeaderFixed + spec_len, meta_len));
  h.payload = f.substr(kIndexHeaderFixed + spec_len + meta_len, payload_len);
  return h;
}

}  // namespace

Result<IndexSpec> IndexSpec::Parse(std::string_view factory) {
  IndexSpec spec;
  size_t colon = factory.find(':');
  spec.type = std::string(factory.substr(0, colon));
  for (char& c : spec.type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (spec.type == "IVFFLAT") spec.type = "IVF_FLAT";
  if (spec.type != "FLAT" && spec.type != "IVF_FLAT" && spec.type != "IVF_SQ8" &&
      spec.type != "IVF_PQ" && spec.type != "HNSW") {
    return Status(Code::kInvalidArgument,
                  "unknown index type '" + spec.type +
                      "' (want FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ or HNSW)");
  }
  std::string_view rest = colon == std::string_view::npos ? "" : factory.substr(colon + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view kv = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Status(Code::kInvalidArgument, "index parameter '" + std::string(kv) +
                                                "' is not key=value");
    }
    std::string key(kv.substr(0, eq));
    std::string value(kv.substr(eq + 1));
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || errno != 0) {
      return Status(Code::kInvalidArgument, "index parameter " + key + "='" + value +
                                                "' is not an integer");
    }
    spec.params[key] = v;
  }
  // Defaults, and the allowed keys per type.
  auto allow = [&](std::initializer_list<std::pair<const char*, int64_t>> keys) -> Status {
    for (const auto& [k, v] : spec.params) {
      bool known = false;
      for (const auto& [name, def] : keys) known |= k == name;
      if (!known) {
        return Status(Code::kInvalidArgument,
                      "index type " + spec.type + " has no parameter '" + k + "'");
      }
    }
    for (const auto& [name, def] : keys) spec.params.emplace(name, def);
    return Status::Ok();
  };
  Status st;
  if (spec.type == "FLAT") st = allow({});
  if (spec.type == "IVF_FLAT" || spec.type == "IVF_SQ8") st = allow({{"nlist", 128}});
  if (spec.type == "IVF_PQ") st = allow({{"nlist", 128}, {"m", 8}, {"nbits", 8}});
  if (spec.type == "HNSW") st = allow({{"M", 16}, {"efConstruction", 200}});
  VLAKE_RETURN_IF_ERROR(st);
  auto range = [&](const char* key, int64_t lo, int64_t hi) -> Status {
    int64_t v = spec.params.at(key);
    if (v < lo || v > hi) {
      return Status(Code::kInvalidArgument, spec.type + " " + key + "=" + std::to_string(v) +
                                                " is out of range " + std::to_string(lo) +
                                                ".." + std::to_string(hi));
    }
    return Status::Ok();
  };
  if (spec.params.count("nlist")) VLAKE_RETURN_IF_ERROR(range("nlist", 1, 1 << 20));
  if (spec.params.count("m")) VLAKE_RETURN_IF_ERROR(range("m", 1, kMaxDim));
  if (spec.params.count("nbits")) VLAKE_RETURN_IF_ERROR(range("nbits", 1, 16));
  if (spec.params.count("M")) VLAKE_RETURN_IF_ERROR(range("M", 2, 2048));
  if (spec.params.count("efConstruction")) {
    VLAKE_RETURN_IF_ERROR(range("efConstruction", 1, 1 << 20));
  }
  return spec;
}

std::string IndexSpec::ToString() const {
  std::string s = type;
  char sep = ':';
  for (const auto& [k, v] : params) {
    s += sep + k + "=" + std::to_string(v);
    sep = ',';
  }
  return s;
}

int64_t IndexSpec::Get(const std::string& key, int64_t fallback) const {
  auto it = params.find(key);
  return it == params.end() ? fallback : it->second;
}

void SearchResult::Resize(int64_t queries, int64_t topk) {
  nq = queries;
  k = topk;
  labels.assign(queries * topk, -1);
  distances.assign(queries * topk, 0.0f);
}

std::vector<float> NormalizedCopy(const float* x, int64_t n, int dim) {
  std::vector<float> out(x, x + n * dim);
  for (int64_t i = 0; i < n; ++i) {
    float* row = out.data() + i * dim;
    double s = 0;
    for (int j = 0; j < dim; ++j) s += double(row[j]) * row[j];
    if (s > 0) {
      float inv = static_cast<float>(1.0 / std::sqrt(s));
      for (int j = 0; j < dim; ++j) row[j] *= inv;
    }
  }
  return out;
}

bool AllFinite(const float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(x[i])) return false;
  }
  return true;
}

void ApplyRange(Metric metric, const SearchParams& params, SearchResult* r) {
  if (!params.radius && !params.range_filter) return;
  bool larger = LargerIsCloser(metric);
  for (int64_t q = 0; q < r->nq; ++q) {
    int64_t* l = r->labels.data() + q * r->k;
    float* d = r->distances.data() + q * r->k;
    int64_t w = 0;
    for (int64_t i = 0; i < r->k; ++i) {
      if (l[i] < 0) continue;
      bool keep = true;
      if (params.radius) keep &= larger ? d[i] > *params.radius : d[i] < *params.radius;
      if (params.range_filter) {
        keep &= larger ? d[i] <= *params.range_filter : d[i] >= *params.range_filter;
      }
      if (keep) {
        l[w] = l[i];
        d[w] = d[i];
        ++w;
      }
    }
    for (; w < r->k; ++w) {
      l[w] = -1;
      d[w] = 0;
    }
  }
}

Status BruteForceSearch(Metric metric, const float* base, int64_t n, int dim,
                        const float* queries, int64_t nq, const SearchParams& params,
                        SearchResult* out) {
  out->Resize(nq, params.k);
  if (n == 0 || nq == 0) return Status::Ok();
  std::vector<float> normalized;
  if (metric == Metric::kCosine) {
    normalized = NormalizedCopy(queries, nq, dim);
    queries = normalized.data();
  }
  std::unique_ptr<faiss::IDSelectorBitmap> sel;
  if (params.allowed != nullptr) {
    sel = std::make_unique<faiss::IDSelectorBitmap>(n, params.allowed->bytes());
  }
  try {
    if (metric == Metric::kL2) {
      faiss::knn_L2sqr(queries, base, dim, nq, n, params.k, out->distances.data(),
                       out->labels.data(), nullptr, sel.get());
    } else {
      faiss::knn_inner_product(queries, base, dim, nq, n, params.k, out->distances.data(),
                               out->labels.data(), sel.get());
    }
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string("brute-force search: ") + e.what());
  }
  ApplyRange(metric, params, out);
  return Status::Ok();
}

Result<std::unique_ptr<VectorIndex>> MakeIndex(std::string_view factory, int dim, Metric metric) {
  if (dim < 1 || dim > kMaxDim) {
    return Status(Code::kInvalidArgument, "dim " + std::to_string(dim) + " out of range");
  }
  VLAKE_ASSIGN_OR_RETURN(IndexSpec spec, IndexSpec::Parse(factory));
  if (spec.type == "HNSW") return MakeHnswIndex(std::move(spec), dim, metric);
  return MakeFaissIndex(std::move(spec), dim, metric);
}

Result<std::string> SerializeIndexFile(const VectorIndex& index, std::string_view metadata) {
  VLAKE_ASSIGN_OR_RETURN(std::string payload, index.SerializePayload());
  std::string spec = index.spec().ToString();
  std::string out;
  out.reserve(kIndexHeaderFixed + spec.size() + metadata.size() + payload.size() + 4);
  out.append(kIndexMagic, 4);
  Append<uint32_t>(&out, kIndexFormatVersion);
  Append<uint32_t>(&out, static_cast<uint32_t>(index.metric()));
  Append<uint32_t>(&out, static_cast<uint32_t>(index.dim()));
  Append<uint64_t>(&out, static_cast<uint64_t>(index.size()));
  Append<uint32_t>(&out, index.spec().type == "HNSW" ? kEngineHnswlib : kEngineFaiss);
  Append<uint32_t>(&out, static_cast<uint32_t>(spec.size()));
  Append<uint32_t>(&out, static_cast<uint32_t>(metadata.size()));
  Append<uint32_t>(&out, 0);  // reserved
  Append<uint64_t>(&out, payload.size());
  out += spec;
  out += metadata;
  out += payload;
  Append<uint32_t>(&out, Crc32cUpdate(0, out.data(), out.size()));
  return out;
}

Result<IndexFileInfo> ReadIndexFileInfo(std::string_view file) {
  VLAKE_ASSIGN_OR_RETURN(Header h, ParseHeader(file));
  return h.info;
}

Result<std::unique_ptr<VectorIndex>> LoadIndexFile(std::string_view file, IndexFileInfo* info) {
  VLAKE_ASSIGN_OR_RETURN(Header h, ParseHeader(file));
  if (info != nullptr) *info = h.info;
  Result<std::unique_ptr<VectorIndex>> index =
      h.engine == kEngineHnswlib ? LoadHnswIndex(h.info, h.payload)
      : h.engine == kEngineFaiss ? LoadFaissIndex(h.info, h.payload)
                                 : Status(Code::kCorruption, "index file: unknown engine");
  VLAKE_RETURN_IF_ERROR(index.status());
  if ((*index)->size() != h.info.rows) return Corrupt("row count does not match the payload");
  return index;
}

}  // namespace vlake::vector
