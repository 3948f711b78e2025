// `vlake bench index`: per index type, build and search through vlake's index adaptors (the
// index job's pipeline when --s3 is given: fetch, decode, train, add, serialize, upload) and
// through FAISS / hnswlib called directly with the same parameters, on the same arrays, in
// one process. Prints a table per data set and, last, one JSON line (docs/benchmarks.md).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "apps/vlake/bench_util.h"
#include "apps/vlake/commands.h"
#include "common/memory.h"
#include "vector/blas_env.h"
#include "vector/dataset_io.h"
#include "vector/index.h"
#include "vector/raw_baseline.h"
#include "vector/segment.h"
#include "vector/synthetic.h"
#include "vectordb/index_build.h"

namespace vlake::app {
namespace {

using json = nlohmann::json;
using namespace vlake::vector;

constexpr char kHelp[] = R"(Usage: vlake bench index [flags]

Builds and searches each index type through vlake and through FAISS / hnswlib called directly
(same parameters, same arrays, same process; OPENBLAS_CORETYPE set for both), and reports build
time per stage, recall@10 against exact ground truth, QPS at batch 1 and batch 1000, and peak
memory. The last line is one JSON object.

  --datasets LIST    comma list of: clustered-1m-128, clustered-200k-768, fashion-mnist,
                     or clustered-ROWS-DIM (e.g. clustered-100k-64)
                     (default clustered-1m-128,clustered-200k-768,fashion-mnist)
  --types LIST       FLAT,IVF_FLAT,IVF_SQ8,IVF_PQ,HNSW (default all)
  --nlist N          IVF lists (default 1024)         --nprobe N  (default 32)
  --pq-m M           IVF_PQ sub-quantizers; must divide dim (default: see below)
  --hnsw-m M         HNSW M (default 16)              --ef-construction N (default 200)
  --ef N             HNSW search ef (default 128)
  --queries N        queries for recall and batch QPS (default 1000)
  --batch1 N         queries timed one at a time (default 200)
  --s3 URL           also run the index job pipeline against this S3 endpoint (credentials
                     from VLAKE_ACCESS_KEY/AWS_ACCESS_KEY_ID ...): the segment is uploaded
                     once, then fetch/decode/train/add/serialize/upload are timed
  --fashion-dir DIR  default /usr/share/datasets/fashion-mnist
IVF_PQ m defaults to dim/4 capped at 64 (128 -> 32, 768 -> 64, 784 -> 56 since 784 = 56*14).
)";

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Dataset {
  std::string name;
  int64_t rows = 0;
  int dim = 0;
  std::vector<float> base;
  std::vector<float> queries;
  int64_t nq = 0;
};

Result<Dataset> LoadDataset(const std::string& name, int64_t nq, const std::string& fashion) {
  Dataset d;
  d.name = name;
  if (name == "fashion-mnist") {
    VLAKE_ASSIGN_OR_RETURN(VectorBatch base, ReadVectors(fashion + "/train-images-idx3-ubyte.gz"));
    VLAKE_ASSIGN_OR_RETURN(VectorBatch q, ReadVectors(fashion + "/t10k-images-idx3-ubyte.gz", nq));
    d.rows = base.rows;
    d.dim = base.dim;
    d.base = std::move(base.vectors);
    d.nq = q.rows;
    d.queries = std::move(q.vectors);
    return d;
  }
  if (!name.starts_with("clustered-")) {
    return Status(Code::kInvalidArgument, "unknown data set " + name);
  }
  std::string rest = name.substr(10);
  size_t dash = rest.find('-');
  if (dash == std::string::npos) return Status(Code::kInvalidArgument, "bad data set " + name);
  // ROWS: a count with an optional decimal suffix k (1e3) or m (1e6).
  std::string r = rest.substr(0, dash);
  int64_t scale = 1;
  if (!r.empty() && (r.back() == 'k' || r.back() == 'm')) {
    scale = r.back() == 'k' ? 1000 : 1000000;
    r.pop_back();
  }
  auto count = ParseUint64(r);
  int64_t n = count ? static_cast<int64_t>(*count) * scale : 0;
  auto dim = ParseUint64(rest.substr(dash + 1));
  if (n <= 0 || !dim || *dim == 0 || *dim > static_cast<uint64_t>(kMaxDim)) {
    return Status(Code::kInvalidArgument, "bad data set " + name);
  }
  ClusteredSpec spec;
  spec.rows = n;
  spec.dim = static_cast<int>(*dim);
  spec.clusters = 1024;
  spec.spread = 0.25f;
  spec.seed = 1234;
  d.rows = n;
  d.dim = spec.dim;
  d.base = GenerateClustered(spec);
  d.queries = GenerateQueries(spec, nq);
  d.nq = nq;
  return d;
}

struct Measure {
  double build_s = 0;
  double train_s = 0;
  double add_s = 0;
  double qps_batch = 0;
  double qps_1 = 0;
  double recall = 0;
};

using SearchFn = std::function<Status(const float*, int64_t, int64_t*, float*)>;

// One round: a batch search (all queries in one call) and batch-1 searches (one query per
// call, up to `batch1` queries or 3 s). Keeps the best QPS over rounds; recall from the batch.
Status TimeSearchRound(const Dataset& d, int64_t k, int64_t batch1,
                       const std::vector<int64_t>& truth, const SearchFn& search, Measure* m) {
  std::vector<int64_t> labels(d.nq * k);
  std::vector<float> dist(d.nq * k);
  double t0 = Now();
  VLAKE_RETURN_IF_ERROR(search(d.queries.data(), d.nq, labels.data(), dist.data()));
  m->qps_batch = std::max(m->qps_batch, d.nq / (Now() - t0));
  m->recall = RecallAtK(labels, k, truth, k, d.nq, k);
  int64_t n1 = 0;
  t0 = Now();
  while (n1 < std::min(batch1, d.nq) && (n1 < 5 || Now() - t0 < 3.0)) {
    VLAKE_RETURN_IF_ERROR(search(d.queries.data() + n1 * d.dim, 1, labels.data(), dist.data()));
    ++n1;
  }
  m->qps_1 = std::max(m->qps_1, n1 / (Now() - t0));
  return Status::Ok();
}

// vlake and the raw library measured alternately (warm-up, then 3 rounds each, interleaved),
// so drift on a shared VM hits both alike.
Status TimeSearches(const Dataset& d, int64_t k, int64_t batch1, const std::vector<int64_t>& truth,
                    const SearchFn& vlake_fn, Measure* vm, const SearchFn& raw_fn, Measure* rm) {
  std::vector<int64_t> labels(100 * k);
  std::vector<float> dist(100 * k);
  int64_t warm = std::min<int64_t>(d.nq, 100);
  VLAKE_RETURN_IF_ERROR(vlake_fn(d.queries.data(), warm, labels.data(), dist.data()));
  VLAKE_RETURN_IF_ERROR(raw_fn(d.queries.data(), warm, labels.data(), dist.data()));
  for (int round = 0; round < 3; ++round) {
    VLAKE_RETURN_IF_ERROR(TimeSearchRound(d, k, batch1, truth, vlake_fn, vm));
    VLAKE_RETURN_IF_ERROR(TimeSearchRound(d, k, batch1, truth, raw_fn, rm));
  }
  return Status::Ok();
}

std::string SpecFor(const std::string& type, int dim, const json& opt) {
  int64_t nlist = opt["nlist"];
  if (type == "FLAT") return "FLAT";
  if (type == "IVF_FLAT" || type == "IVF_SQ8") return type + ":nlist=" + std::to_string(nlist);
  if (type == "IVF_PQ") {
    int64_t m = opt["pq_m"];
    if (m <= 0) {
      m = std::min(64, dim / 4);
      while (m > 1 && dim % m != 0) --m;
    }
    return "IVF_PQ:nlist=" + std::to_string(nlist) + ",m=" + std::to_string(m) + ",nbits=8";
  }
  return "HNSW:M=" + std::to_string(opt["hnsw_m"].get<int64_t>()) +
         ",efConstruction=" + std::to_string(opt["efc"].get<int64_t>());
}

}  // namespace

int RunBenchIndex(int argc, char** argv) {
  json opt = {{"nlist", 1024}, {"nprobe", 32}, {"pq_m", 0}, {"hnsw_m", 16}, {"efc", 200},
              {"ef", 128}, {"queries", 1000}, {"batch1", 200}};
  std::string datasets = "clustered-1m-128,clustered-200k-768,fashion-mnist";
  std::string types = "FLAT,IVF_FLAT,IVF_SQ8,IVF_PQ,HNSW";
  std::string s3, fashion = "/usr/share/datasets/fashion-mnist";
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "vlake bench index: %s needs a value\n", a.c_str());
      return 2;
    }
    std::string v = argv[++i];
    auto num = [&](const char* key) {
      auto n = ParseUint64(v);
      if (!n) return false;
      opt[key] = static_cast<int64_t>(*n);
      return true;
    };
    bool ok = true;
    if (a == "--datasets") datasets = v;
    else if (a == "--types") types = v;
    else if (a == "--s3") s3 = v;
    else if (a == "--fashion-dir") fashion = v;
    else if (a == "--nlist") ok = num("nlist");
    else if (a == "--nprobe") ok = num("nprobe");
    else if (a == "--pq-m") ok = num("pq_m");
    else if (a == "--hnsw-m") ok = num("hnsw_m");
    else if (a == "--ef-construction") ok = num("efc");
    else if (a == "--ef") ok = num("ef");
    else if (a == "--queries") ok = num("queries");
    else if (a == "--batch1") ok = num("batch1");
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "vlake bench index: bad flag %s %s (see --help)\n", a.c_str(),
                   v.c_str());
      return 2;
    }
  }
  std::unique_ptr<vectordb::ObjectStore> store;
  if (!s3.empty()) {
    vectordb::ObjectStoreOptions so;
    so.client.endpoint = s3;
    EnvCredentials(&so.client.access_key, &so.client.secret_key);
    so.bucket = "vlake-bench-index";
    auto st = vectordb::ObjectStore::Open(so);
    if (!st.ok()) {
      std::fprintf(stderr, "vlake bench index: %s\n", st.status().ToString().c_str());
      return 1;
    }
    store = std::move(*st);
  }
  const int64_t k = 10;
  std::printf("# vlake bench index — OpenBLAS core type: %s; OMP_WAIT_POLICY=%s; %u threads\n",
              OpenBlasCoreTypeNote().c_str(),
              std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "(default)",
              std::thread::hardware_concurrency());
  json summary = json::object();
  for (const std::string& dname : [&] {
         std::vector<std::string> v;
         size_t s = 0;
         while (s <= datasets.size()) {
           size_t e = datasets.find(',', s);
           if (e == std::string::npos) e = datasets.size();
           if (e > s) v.push_back(datasets.substr(s, e - s));
           s = e + 1;
         }
         return v;
       }()) {
    double t0 = Now();
    auto loaded = LoadDataset(dname, opt["queries"], fashion);
    if (!loaded.ok()) {
      std::fprintf(stderr, "vlake bench index: %s\n", loaded.status().ToString().c_str());
      return 1;
    }
    Dataset& d = *loaded;
    double load_s = Now() - t0;
    t0 = Now();
    std::vector<int64_t> truth =
        GroundTruth(Metric::kL2, d.base.data(), d.rows, d.dim, d.queries.data(), d.nq, k);
    std::printf("\n## %s: %lld x %d, %lld queries (load %.1f s, exact ground truth %.1f s)\n",
                d.name.c_str(), static_cast<long long>(d.rows), d.dim,
                static_cast<long long>(d.nq), load_s, Now() - t0);
    std::string segment_key = "bench/" + d.name + ".vlsg";
    if (store) {
      RowBatch rows({{"id", FieldType::kInt64, 0, true}, {"vector", FieldType::kFloatVector, d.dim}});
      rows.mutable_columns()[0].int64s.resize(d.rows);
      for (int64_t i = 0; i < d.rows; ++i) rows.mutable_columns()[0].int64s[i] = i;
      rows.mutable_columns()[1].floats = d.base;
      (void)rows.Seal();
      if (Status st = store->Put(segment_key, rows.Encode(SegmentKind::kSealed)); !st.ok()) {
        std::fprintf(stderr, "vlake bench index: upload: %s\n", st.ToString().c_str());
        return 1;
      }
      // The storage node runs without fsync; its dirty pages would otherwise be written back
      // during whichever measurement comes next (seen: a 512 MiB FLAT add 1.2 s instead of
      // 0.24 s). Every timed phase starts with the page cache clean.
      ::sync();
    }
    std::printf("%-34s %9s %9s %9s %8s %10s %10s %9s %9s\n", "index", "who", "train_s",
                "add_s", "recall", "qps_b1000", "qps_b1", "peak_MiB", "job_s");
    json per_type = json::object();
    for (const std::string& type : {std::string("FLAT"), std::string("IVF_FLAT"),
                                    std::string("IVF_SQ8"), std::string("IVF_PQ"),
                                    std::string("HNSW")}) {
      if (("," + types + ",").find("," + type + ",") == std::string::npos) continue;
      std::string spec_str = SpecFor(type, d.dim, opt);
      IndexSpec spec = *IndexSpec::Parse(spec_str);
      int64_t knob = type == "HNSW" ? opt["ef"].get<int64_t>() : opt["nprobe"].get<int64_t>();
      // vlake: the job pipeline when a store is given, else the adaptor directly.
      Measure vm;
      vectordb::SegmentBuildReport report;
      std::unique_ptr<VectorIndex> index;
      ResetPeakRss();
      if (store) {
        vectordb::SegmentIndexBuild b{segment_key, "bench/" + d.name + "." + type + ".vlix",
                                      "vector", spec_str, Metric::kL2, "{}"};
        auto built = vectordb::BuildSegmentIndexFile(store.get(), b, &report);
        if (!built.ok()) {
          std::fprintf(stderr, "vlake bench index: %s\n", built.status().ToString().c_str());
          return 1;
        }
        index = std::move(*built);
      } else {
        index = std::move(MakeIndex(spec_str, d.dim, Metric::kL2)).value();
        double t = Now();
        (void)index->Train(d.base.data(), d.rows);
        report.train_s = Now() - t;
        t = Now();
        (void)index->Add(d.base.data(), d.rows);
        report.add_s = Now() - t;
      }
      vm.train_s = report.train_s;
      vm.add_s = report.add_s;
      vm.build_s = vm.train_s + vm.add_s;
      ::sync();  // the job's index upload, as above
      SearchParams sp;
      sp.k = k;
      sp.nprobe = type == "HNSW" ? 0 : knob;
      sp.ef = type == "HNSW" ? knob : 0;
      // Peak RSS of the vlake build (reset before it; includes the bench's own data arrays).
      int64_t vlake_peak = PeakRssBytes();
      // Raw library, same spec, same arrays; both indexes stay alive for the search rounds.
      Measure rm;
      RawTiming rt;
      auto raw = RawBuild(spec, Metric::kL2, d.dim, d.base.data(), d.rows, &rt);
      if (!raw.ok()) {
        std::fprintf(stderr, "vlake bench index: %s\n", raw.status().ToString().c_str());
        return 1;
      }
      rm.train_s = rt.train_s;
      rm.add_s = rt.add_s;
      rm.build_s = rt.train_s + rt.add_s;
      Status st = TimeSearches(
          d, k, opt["batch1"], truth,
          [&](const float* q, int64_t nq, int64_t* l, float* dist) {
            SearchResult r;
            VLAKE_RETURN_IF_ERROR(index->Search(q, nq, sp, &r));
            std::memcpy(l, r.labels.data(), r.labels.size() * 8);
            std::memcpy(dist, r.distances.data(), r.distances.size() * 4);
            return Status::Ok();
          },
          &vm,
          [&](const float* q, int64_t nq, int64_t* l, float* dist) {
            return (*raw)->Search(q, nq, k, knob, l, dist);
          },
          &rm);
      if (!st.ok()) {
        std::fprintf(stderr, "vlake bench index: %s\n", st.ToString().c_str());
        return 1;
      }
      index.reset();
      raw->reset();
      double job_s = report.fetch_s + report.decode_s + report.train_s + report.add_s +
                     report.serialize_s + report.upload_s;
      std::printf("%-34s %9s %9.2f %9.2f %8.4f %10.0f %10.0f %9.0f %9.2f\n", spec_str.c_str(),
                  "vlake", vm.train_s, vm.add_s, vm.recall, vm.qps_batch, vm.qps_1,
                  vlake_peak / 1048576.0, store ? job_s : 0.0);
      std::printf("%-34s %9s %9.2f %9.2f %8.4f %10.0f %10.0f\n", "", "raw", rm.train_s,
                  rm.add_s, rm.recall, rm.qps_batch, rm.qps_1);
      if (store) {
        std::printf("%-34s job stages: fetch %.2f s%s, decode %.3f, train %.2f, add %.2f, "
                    "serialize %.2f, upload %.2f (%.1f MiB index)\n",
                    "", report.fetch_s, report.fetched_direct ? " (direct)" : " (http)",
                    report.decode_s, report.train_s, report.add_s, report.serialize_s,
                    report.upload_s, report.index_bytes / 1048576.0);
      }
      std::fflush(stdout);
      per_type[type] = {{"spec", spec_str},
                        {"vlake_build_s", vm.build_s},
                        {"raw_build_s", rm.build_s},
                        {"vlake_qps", vm.qps_batch},
                        {"raw_qps", rm.qps_batch},
                        {"vlake_qps_batch1", vm.qps_1},
                        {"raw_qps_batch1", rm.qps_1},
                        {"recall_at_10", vm.recall},
                        {"raw_recall_at_10", rm.recall},
                        {"peak_rss_mib", vlake_peak / 1048576.0}};
      if (store) {
        per_type[type]["stages_s"] = {{"fetch", report.fetch_s},
                                      {"decode", report.decode_s},
                                      {"train", report.train_s},
                                      {"add", report.add_s},
                                      {"serialize", report.serialize_s},
                                      {"upload", report.upload_s}};
        per_type[type]["fetched_direct"] = report.fetched_direct;
      }
    }
    summary[d.name] = per_type;
  }
  std::printf("%s\n", summary.dump().c_str());
  return 0;
}

}  // namespace vlake::app
