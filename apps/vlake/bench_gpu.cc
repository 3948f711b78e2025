// `vlake bench gpu`: the headline benchmark (docs/benchmarks.md#gpu). End-to-end index build
// time — fetch the segment from a vlake storage node on this machine + build — for IVF_PQ and
// for HNSW, on the CPU fed over HTTP (FAISS / hnswlib on every core) versus on the GPU fed over
// the direct path (CUDA IPC from the storage node, else staged), both through the index job
// pipeline the vector database runs (vectordb/index_build.h).
//
// Equal recall: every built index is searched on the CPU (the GPU builds produce the CPU
// engine's formats) with its search parameter (IVF nprobe; HNSW ef, also for the CAGRA graph
// exported to HNSW) swept up a fixed ladder until recall@10 reaches the target (0.95), and the
// parameter, recall and QPS at that point are reported beside the recall at the default.
// Cold and warm: the GPU builds each workload twice in a row; the first (cold) pays for CUDA
// context creation, cuBLAS and kernel loading when it is the first GPU work of the process,
// the second (warm) is what a long-running database's index job sees.
// Also: k-means throughput as a fraction of the cuBLAS GEMM rate, and the direct GET into GPU
// memory as a fraction of pinned cudaMemcpy bandwidth, alone and with parallel streams. The
// last line is one JSON object.
#include <dlfcn.h>
#include <faiss/utils/distances.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "apps/vlake/bench_util.h"
#include "apps/vlake/commands.h"
#include "gpu/algorithms.h"
#include "gpu/device.h"
#include "gpu/device_memory.h"
#include "vector/blas_env.h"
#include "vector/segment.h"
#include "vector/synthetic.h"
#include "vectordb/index_build.h"
#include "vlake/client.h"

namespace vlake::app {
namespace {

using json = nlohmann::json;
using namespace vlake::vector;

constexpr char kHelp[] = R"(Usage: vlake bench gpu --s3 URL [flags]

End-to-end index builds from a vlake storage node on this machine (URL; credentials from
VLAKE_ACCESS_KEY / VLAKE_SECRET_KEY): CPU (FAISS / hnswlib, all cores) fed over HTTP versus GPU
fed over the direct path, for IVF_PQ and for HNSW (on the GPU: a CAGRA graph exported to HNSW).
Fetch and build are timed apart; the GPU builds each workload twice (cold, then warm). Every
built index is searched on the CPU with its search parameters swept up a ladder until
recall@10 reaches the target (HNSW: ef 16..1024; IVF_PQ: nprobe 8..512 with the PQ codes alone,
then with 2..128 x 10 candidates re-ranked by exact distance); the parameters, recall and QPS
there are reported with the recall at the defaults. Also k-means as a fraction of the cuBLAS GEMM
rate, and the direct GET into GPU memory (one stream and parallel streams) against pinned
host-to-device bandwidth. The last line is one JSON object. bench/gpu.sh runs it against a
fresh storage node.

  --ivfpq-rows N   (default 1000000)   --ivfpq-dim D  (default 768)
  --nlist N        (default 1024)      --pq-m M       (default 96; divides dim)
  --nprobe N       default nprobe (32; PQ codes alone, as the vector database serves)
  --hnsw-rows N    (default 1000000)   --hnsw-dim D   (default 96)
  --hnsw-m M       HNSW M (default 32: base-layer degree 64 = the CAGRA graph degree)
  --ef-construction N (default 200)    --ef N  default HNSW search ef (default 128)
  --queries N      (default 1000)
  --recall-target PERCENT  recall@10 the sweeps stop at (default 95)
  --get-streams N  concurrent GETs into GPU memory for the aggregate rate (default 8)
  --cpu-only       run only the CPU legs (no GPU needed; GPU fields are null)
)";

constexpr int64_t kK = 10;
constexpr int64_t kNprobeLadder[] = {8, 16, 32, 64, 128, 256, 512};
constexpr int64_t kEfLadder[] = {16, 32, 64, 128, 256, 512, 1024};
constexpr int64_t kRefineLadder[] = {1, 2, 4, 8, 16, 32, 64, 128};
constexpr double kMinGain = 0.005;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Throughput of a transfer of `bytes` in `seconds`, GB/s.
double Gbps(uint64_t bytes, double seconds) { return seconds > 0 ? bytes / seconds / 1e9 : 0; }

struct Workload {
  std::string name;  // "ivfpq" / "hnsw"
  std::string spec;
  int64_t rows = 0;
  int dim = 0;
  bool ivf = false;           // the swept parameter: nprobe (IVF) or ef (HNSW)
  int64_t default_param = 0;  // --nprobe / --ef
  int64_t nlist = 0;          // IVF: the ladder stops here
};

// The data a workload's searches need.
struct Data {
  std::vector<float> base;
  std::vector<float> queries;
  int64_t nq = 0;
  std::vector<int64_t> truth;  // nq x kK exact labels
};

// One build through the index job pipeline.
struct Leg {
  std::string timing;  // "cold" / "warm" / "once"
  bool includes_cuda_init = false;
  vectordb::SegmentBuildReport report;
  std::unique_ptr<VectorIndex> index;
  double build_s() const { return report.decode_s + report.train_s + report.add_s; }
  double e2e_s() const { return report.fetch_s + build_s(); }
};

json LegJson(const Leg* l) {
  if (l == nullptr) return nullptr;
  const auto& r = l->report;
  return {{"timing", l->timing},        {"includes_cuda_init", l->includes_cuda_init},
          {"e2e_s", l->e2e_s()},        {"fetch_s", r.fetch_s},
          {"build_s", l->build_s()},    {"decode_s", r.decode_s},
          {"train_s", r.train_s},       {"add_s", r.add_s},
          {"fetch_path", r.fetch_path}, {"serialize_s", r.serialize_s},
          {"upload_s", r.upload_s}};
}

Result<Leg> RunLeg(vectordb::ObjectStore* store, const Workload& w, const std::string& key,
                   vectordb::BuildDevice device, const std::string& timing) {
  vectordb::SegmentIndexBuild b;
  b.segment_key = key;
  b.index_key = key + "." + std::string(vectordb::BuildDeviceName(device)) + "." + timing + ".vlix";
  b.vector_field = "vector";
  b.spec = w.spec;
  b.metric = Metric::kL2;
  b.metadata = "{}";
  b.device = device;
  Leg leg;
  leg.timing = timing;
  VLAKE_ASSIGN_OR_RETURN(leg.index, vectordb::BuildSegmentIndexFile(store, b, &leg.report));
  ::sync();  // the index upload's dirty pages must not land in the next measurement
  return leg;
}

void PrintLeg(const char* who, const Leg& l) {
  const auto& r = l.report;
  std::printf(
      "  %-28s e2e %8.2f s = fetch %.2f [%s] + build %.2f (decode/verify %.2f, train %.2f, "
      "add %.2f)  | serialize %.2f, upload %.2f\n",
      who, l.e2e_s(), r.fetch_s, r.fetch_path.c_str(), l.build_s(), r.decode_s, r.train_s, r.add_s,
      r.serialize_s, r.upload_s);
}

// Keeps, per query, the k of `cand` (stride kc, -1 = empty) nearest to it by exact L2 on the
// raw rows: IVF_PQ refinement, as FAISS's IndexRefineFlat and cuVS's refine do.
void RefineExact(const Data& d, int dim, const std::vector<int64_t>& cand, int64_t kc,
                 std::vector<int64_t>* out) {
  out->assign(d.nq * kK, -1);
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t q = 0; q < d.nq; ++q) {
    std::vector<std::pair<float, int64_t>> scored;
    scored.reserve(kc);
    for (int64_t j = 0; j < kc; ++j) {
      const int64_t id = cand[q * kc + j];
      if (id < 0) continue;
      scored.push_back(
          {faiss::fvec_L2sqr(d.queries.data() + q * dim, d.base.data() + id * dim, dim), id});
    }
    const size_t keep = std::min<size_t>(kK, scored.size());
    std::partial_sort(scored.begin(), scored.begin() + keep, scored.end());
    for (size_t j = 0; j < keep; ++j) (*out)[q * kK + j] = scored[j].second;
  }
}

// One point of a sweep: the search parameter (nprobe / ef) and, for IVF_PQ, the refine ratio.
struct SweepPoint {
  int64_t param = 0;
  int64_t refine = 1;
  double recall = 0;
  double qps = 0;
};

// Recall@10 and QPS (all queries in one call, on every core; repeated for at least 0.25 s so a
// fast point is not one timer tick) of `index` at one point. refine > 1: refine x 10 PQ
// candidates re-ranked exactly, the re-ranking counted in the QPS.
Result<SweepPoint> Measure(const VectorIndex& index, const Workload& w, const Data& d,
                           int64_t param, int64_t refine) {
  SearchParams sp;
  sp.k = kK * refine;
  if (w.ivf) {
    sp.nprobe = param;
  } else {
    sp.ef = std::max(param, sp.k);
  }
  SearchResult res;
  std::vector<int64_t> refined;
  int runs = 0;
  const double t0 = Now();
  do {
    VLAKE_RETURN_IF_ERROR(index.Search(d.queries.data(), d.nq, sp, &res));
    if (refine > 1) RefineExact(d, index.dim(), res.labels, sp.k, &refined);
    ++runs;
  } while (runs < 5 && Now() - t0 < 0.25);
  const double seconds = Now() - t0;
  SweepPoint p;
  p.param = param;
  p.refine = refine;
  p.qps = seconds > 0 ? d.nq * runs / seconds : 0;
  p.recall = refine > 1 ? RecallAtK(refined, kK, d.truth, kK, d.nq, kK)
                        : RecallAtK(res.labels, sp.k, d.truth, kK, d.nq, kK);
  return p;
}

// The equal-recall sweep of one built index, up a fixed ladder until recall@10 >= target or
// the ladder ends; `reported` is the first point that reached it, else the best reached.
// HNSW (also the CAGRA graph exported to HNSW): ef up kEfLadder. IVF_PQ: nprobe up
// kNprobeLadder with the PQ codes alone, then again at each refine ratio of kRefineLadder;
// an nprobe run stops early once more lists gain less than kMinGain (the lists already hold
// the true neighbours; only exact re-ranking of more candidates can help then).
struct Sweep {
  std::vector<SweepPoint> points;
  SweepPoint reported;
  bool reached = false;
  SweepPoint at_default;  // --nprobe with the codes alone (what the database serves) / --ef
};

Result<Sweep> SweepIndex(const VectorIndex& index, const Workload& w, const Data& d,
                         double target) {
  Sweep s;
  auto measure = [&](int64_t param, int64_t refine) -> Result<SweepPoint> {
    VLAKE_ASSIGN_OR_RETURN(SweepPoint p, Measure(index, w, d, param, refine));
    s.points.push_back(p);
    if (param == w.default_param && refine == 1) s.at_default = p;
    if (s.points.size() == 1 || p.recall > s.reported.recall) s.reported = p;
    if (p.recall >= target && !s.reached) {
      s.reported = p;
      s.reached = true;
    }
    return p;
  };
  if (w.ivf) {
    std::vector<int64_t> nprobes;
    for (int64_t v : kNprobeLadder) {
      if (v < w.nlist) nprobes.push_back(v);
    }
    nprobes.push_back(w.nlist);
    for (int64_t refine : kRefineLadder) {
      double last = -1;
      for (int64_t nprobe : nprobes) {
        VLAKE_ASSIGN_OR_RETURN(SweepPoint p, measure(nprobe, refine));
        if (s.reached || p.recall < last + kMinGain) break;
        last = p.recall;
      }
      if (s.reached) break;
    }
  } else {
    for (int64_t ef : kEfLadder) {
      VLAKE_RETURN_IF_ERROR(measure(ef, 1).status());
      if (s.reached) break;
    }
  }
  if (s.at_default.param == 0) {
    VLAKE_ASSIGN_OR_RETURN(s.at_default, Measure(index, w, d, w.default_param, 1));
  }
  return s;
}

json SweepJson(const Workload& w, const Sweep& s) {
  json points = json::array();
  for (const SweepPoint& p : s.points) {
    json point = {{"value", p.param}, {"recall", p.recall}, {"qps", p.qps}};
    if (w.ivf) point["refine"] = p.refine;
    points.push_back(point);
  }
  json j = {{"param", w.ivf ? "nprobe" : "ef"},
            {"value", s.reported.param},
            {"reached_target", s.reached},
            {"recall", s.reported.recall},
            {"qps", s.reported.qps},
            {"default", w.default_param},
            {"recall_at_default", s.at_default.recall},
            {"qps_at_default", s.at_default.qps},
            {"sweep", points}};
  if (w.ivf) j["refine"] = s.reported.refine;
  return j;
}

std::string PointName(const Workload& w, const SweepPoint& p) {
  std::string name = (w.ivf ? "nprobe " : "ef ") + std::to_string(p.param);
  if (p.refine > 1) name += " refine x" + std::to_string(p.refine);
  return name;
}

void PrintSweep(const char* who, const Workload& w, const Sweep& s, double target) {
  std::printf("  %-28s recall@10 at", who);
  int64_t refine = 0;
  for (const SweepPoint& p : s.points) {
    if (p.refine != refine && w.ivf)
      std::printf(" | refine x%lld:", static_cast<long long>(p.refine));
    refine = p.refine;
    std::printf(" %s %lld: %.4f", w.ivf ? "nprobe" : "ef", static_cast<long long>(p.param),
                p.recall);
  }
  std::printf(
      "\n  %-28s -> %s %s: recall@10 %.4f, %.0f QPS (target %.2f); at the default %s: "
      "%.4f\n",
      "", s.reached ? "reached at" : "NOT reached; best at", PointName(w, s.reported).c_str(),
      s.reported.recall, s.reported.qps, target, PointName(w, s.at_default).c_str(),
      s.at_default.recall);
}

// One stream: the whole object into GPU memory by `path`, best of 3.
struct GetRate {
  std::string path;  // GetResult::path, or the error
  double gbps = 0;
};

// `streams` concurrent ranged GetIntoDevice calls, each into its own slice of dst, timed from
// the first start to the last finish; best of 3.
GetRate ParallelGet(client::Client* client, const std::string& key, char* dst, uint64_t size,
                    int streams, const client::DeviceGetOptions& o) {
  GetRate rate;
  const uint64_t slice =
      ((size + streams - 1) / streams + (1 << 20) - 1) & ~uint64_t{(1 << 20) - 1};
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    std::vector<Result<client::GetResult>> got(streams, Status(Code::kInternal, "not run"));
    std::vector<std::thread> threads;
    const double t = Now();
    for (int s = 0; s < streams; ++s) {
      const uint64_t off = slice * s;
      if (off >= size) {
        got[s] = client::GetResult{};
        continue;
      }
      const uint64_t len = std::min(slice, size - off);
      threads.emplace_back([&, s, off, len] {
        std::optional<client::ByteRange> range;  // one stream: the plain GET of the object
        if (streams > 1) range = client::ByteRange{off, len};
        got[s] = client->GetIntoDevice("vlake-bench-gpu", key, dst + off, len, range, o);
      });
    }
    for (auto& th : threads) th.join();
    const double seconds = Now() - t;
    for (const auto& g : got) {
      if (!g.ok()) {
        rate.path = g.status().ToString();
        return rate;
      }
      if (!g->path.empty()) rate.path = g->path;
    }
    best = std::min(best, seconds);
  }
  rate.gbps = Gbps(size, best);
  return rate;
}

// Which BLAS FAISS runs on, as the library says (OpenBLAS exports these; another BLAS does not).
std::string BlasNote() {
  using ConfigFn = char* (*)();
  using ThreadsFn = int (*)();
  auto config = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  auto threads = reinterpret_cast<ThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (config == nullptr) return "not OpenBLAS";
  std::string note = config();
  if (threads != nullptr) note += ", " + std::to_string(threads()) + " threads";
  return note;
}

}  // namespace

int RunBenchGpu(int argc, char** argv) {
  // Line-buffered: under a time limit (scripts/gpu-check.sh) a killed run keeps what it printed.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  json opt = {{"ivfpq_rows", 1000000},
              {"ivfpq_dim", 768},
              {"nlist", 1024},
              {"pq_m", 96},
              {"nprobe", 32},

              {"hnsw_rows", 1000000},
              {"hnsw_dim", 96},
              {"hnsw_m", 32},
              {"efc", 200},
              {"ef", 128},
              {"queries", 1000},
              {"recall_target", 95},
              {"get_streams", 8}};
  std::string s3;
  bool cpu_only = false;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (a == "--cpu-only") {
      cpu_only = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "vlake bench gpu: %s needs a value\n", a.c_str());
      return 2;
    }
    std::string v = argv[++i];
    static const std::map<std::string, std::string> kNumeric = {
        {"--ivfpq-rows", "ivfpq_rows"},
        {"--ivfpq-dim", "ivfpq_dim"},
        {"--nlist", "nlist"},
        {"--pq-m", "pq_m"},
        {"--nprobe", "nprobe"},

        {"--hnsw-rows", "hnsw_rows"},
        {"--hnsw-dim", "hnsw_dim"},
        {"--hnsw-m", "hnsw_m"},
        {"--ef-construction", "efc"},
        {"--ef", "ef"},
        {"--queries", "queries"},
        {"--recall-target", "recall_target"},
        {"--get-streams", "get_streams"}};
    auto n = ParseUint64(v);
    if (a == "--s3") {
      s3 = v;
    } else if (kNumeric.count(a) && n && *n > 0 && (a != "--recall-target" || *n <= 100) &&
               (a != "--get-streams" || *n <= 64)) {
      opt[kNumeric.at(a)] = static_cast<int64_t>(*n);
    } else {
      std::fprintf(stderr, "vlake bench gpu: bad flag %s %s (see --help)\n", a.c_str(), v.c_str());
      return 2;
    }
  }
  if (s3.empty()) {
    std::fprintf(stderr, "vlake bench gpu: --s3 URL is required\n\n%s", kHelp);
    return 2;
  }
  std::string device_name = "none";
  auto devices = gpu::ListDevices();
  if (devices.ok()) {
    device_name = devices->front().name;
  } else if (!cpu_only) {
    std::fprintf(stderr, "vlake bench gpu: %s (use --cpu-only for the CPU legs alone)\n",
                 devices.status().message().c_str());
    return 1;
  }
  const bool gpu = devices.ok() && !cpu_only;
  const double target = opt["recall_target"].get<int64_t>() / 100.0;

  // One store per feed: HTTP bodies for the CPU (the reference: CPU indexing fed over TCP),
  // the direct path (CUDA IPC / staged) for the GPU.
  auto open_store = [&](client::DirectMode mode) -> Result<std::unique_ptr<vectordb::ObjectStore>> {
    vectordb::ObjectStoreOptions so;
    so.client.endpoint = s3;
    so.client.direct = mode;
    EnvCredentials(&so.client.access_key, &so.client.secret_key);
    so.bucket = "vlake-bench-gpu";
    return vectordb::ObjectStore::Open(so);
  };
  auto http_store = open_store(client::DirectMode::kOff);
  auto direct_store = open_store(client::DirectMode::kAuto);
  if (!http_store.ok() || !direct_store.ok()) {
    std::fprintf(
        stderr, "vlake bench gpu: %s\n",
        (http_store.ok() ? direct_store.status() : http_store.status()).ToString().c_str());
    return 1;
  }
  // The CPU baseline must be the library at its best: every core for FAISS (OpenMP) and
  // hnswlib (OpenMP over rows/queries), OpenBLAS on the kernels of this CPU (main.cc sets
  // OPENBLAS_CORETYPE from CPUID before the libraries load, vector/blas_env.h).
  const unsigned cores = std::thread::hardware_concurrency();
  const int omp_threads = omp_get_max_threads();
  const std::string blas = BlasNote();
  std::printf(
      "# vlake bench gpu — device: %s (%s)\n# CPU: %u cores, %d OpenMP threads, OpenBLAS core "
      "type %s, BLAS %s\n",
      device_name.c_str(), gpu::CudaVersionNote().c_str(), cores, omp_threads,
      OpenBlasCoreTypeNote().c_str(), blas.c_str());
  if (omp_threads < static_cast<int>(cores)) {
    std::printf(
        "# warning: OpenMP uses %d of %u cores (OMP_NUM_THREADS?): the CPU legs are "
        "not at their best\n",
        omp_threads, cores);
  }

  const int64_t nq = opt["queries"];
  std::vector<Workload> workloads(2);
  Workload& pq = workloads[0];
  pq.name = "ivfpq";
  pq.rows = opt["ivfpq_rows"];
  pq.dim = static_cast<int>(opt["ivfpq_dim"].get<int64_t>());
  pq.nlist = opt["nlist"];
  pq.spec = "IVF_PQ:nlist=" + std::to_string(pq.nlist) +
            ",m=" + std::to_string(opt["pq_m"].get<int64_t>()) + ",nbits=8";
  pq.ivf = true;
  pq.default_param = opt["nprobe"];
  Workload& hnsw = workloads[1];
  hnsw.name = "hnsw";
  hnsw.rows = opt["hnsw_rows"];
  hnsw.dim = static_cast<int>(opt["hnsw_dim"].get<int64_t>());
  hnsw.spec = "HNSW:M=" + std::to_string(opt["hnsw_m"].get<int64_t>()) +
              ",efConstruction=" + std::to_string(opt["efc"].get<int64_t>());
  hnsw.default_param = opt["ef"];

  const char* ocore = std::getenv("OPENBLAS_CORETYPE");
  json result = {{"device", device_name},
                 {"cpu_threads", cores},
                 {"omp_threads", omp_threads},
                 {"openblas_coretype", ocore != nullptr ? json(ocore) : json(nullptr)},
                 {"blas", blas},
                 {"recall_target", target},
                 {"gpu_build_timing", "warm"}};
  json details = json::object();
  bool cuda_initialized = false;  // no GPU build has run in this process yet
  for (const Workload& w : workloads) {
    ClusteredSpec spec;
    spec.rows = w.rows;
    spec.dim = w.dim;
    spec.clusters = 1024;
    spec.spread = 0.25f;
    spec.seed = 1234;
    double t0 = Now();
    Data d;
    d.base = GenerateClustered(spec);
    d.queries = GenerateQueries(spec, nq);
    d.nq = nq;
    d.truth = GroundTruth(Metric::kL2, d.base.data(), w.rows, w.dim, d.queries.data(), nq, kK);
    std::string key =
        "bench/" + w.name + "-" + std::to_string(w.rows) + "x" + std::to_string(w.dim) + ".vlsg";
    {
      RowBatch rows(
          {{"id", FieldType::kInt64, 0, true}, {"vector", FieldType::kFloatVector, w.dim}});
      rows.mutable_columns()[0].int64s.resize(w.rows);
      for (int64_t i = 0; i < w.rows; ++i) rows.mutable_columns()[0].int64s[i] = i;
      rows.mutable_columns()[1].floats = d.base;
      (void)rows.Seal();
      if (Status st = (*direct_store)->Put(key, rows.Encode(SegmentKind::kSealed)); !st.ok()) {
        std::fprintf(stderr, "vlake bench gpu: upload: %s\n", st.ToString().c_str());
        return 1;
      }
      ::sync();
    }
    std::printf("\n## %s: %lld x %d clustered, %lld queries, %s (data + ground truth %.1f s)\n",
                w.name.c_str(), static_cast<long long>(w.rows), w.dim, static_cast<long long>(nq),
                w.spec.c_str(), Now() - t0);
    const bool is_pq = w.ivf;
    const std::string cpu_id = is_pq ? "ivfpq_cpu" : "hnsw";
    const std::string gpu_id = is_pq ? "ivfpq_gpu" : "cagra";
    const std::string param = is_pq ? "nprobe" : "ef";
    json search = json::object();
    auto report_sweep = [&](const std::string& id, const Sweep& s) {
      result["recall_" + id] = s.reported.recall;
      result["recall_" + id + "_at_default"] = s.at_default.recall;
      result[id + "_" + param + "_at_095"] = s.reached ? json(s.reported.param) : json(nullptr);
      if (is_pq) {
        result[id + "_refine_at_095"] = s.reached ? json(s.reported.refine) : json(nullptr);
      }
      result[id + "_search_qps"] = s.reported.qps;
      search[id] = SweepJson(w, s);
    };
    // Sweeps the index `leg` built, prints and records the result, and frees the index.
    auto sweep_and_report = [&](const char* who, const std::string& id, Leg* leg) {
      auto sweep = SweepIndex(*leg->index, w, d, target);
      leg->index.reset();
      if (!sweep.ok()) {
        std::fprintf(stderr, "vlake bench gpu: %s %s search: %s\n", who, w.name.c_str(),
                     sweep.status().ToString().c_str());
        return false;
      }
      PrintSweep((std::string("  search (") + who + "-built)").c_str(), w, *sweep, target);
      report_sweep(id, *sweep);
      return true;
    };

    // CPU over HTTP: built once (no device state to warm; the fetch reads the node's page
    // cache, as the GPU legs' does).
    auto cpu = RunLeg(http_store->get(), w, key, vectordb::BuildDevice::kCpu, "once");
    if (!cpu.ok()) {
      std::fprintf(stderr, "vlake bench gpu: CPU %s: %s\n", w.name.c_str(),
                   cpu.status().ToString().c_str());
      return 1;
    }
    PrintLeg("CPU over HTTP", *cpu);
    if (!sweep_and_report("CPU", cpu_id, &*cpu)) return 1;
    result[is_pq ? "ivfpq_cpu_http_s" : "hnsw_cpu_http_s"] = cpu->e2e_s();

    std::optional<Leg> cold, warm;
    if (gpu) {
      for (const char* timing : {"cold", "warm"}) {
        auto g = RunLeg(direct_store->get(), w, key, vectordb::BuildDevice::kGpu, timing);
        if (!g.ok()) {
          std::fprintf(stderr, "vlake bench gpu: GPU %s (%s): %s\n", w.name.c_str(), timing,
                       g.status().ToString().c_str());
          return 1;
        }
        g->includes_cuda_init = !cuda_initialized;
        cuda_initialized = true;
        PrintLeg((std::string("GPU over direct path, ") + timing).c_str(), *g);
        if (std::string(timing) == "cold") {
          g->index.reset();
          cold = std::move(*g);
        } else {
          warm = std::move(*g);
        }
      }
      std::printf("  speed-up %.1fx warm, %.1fx cold\n", cpu->e2e_s() / warm->e2e_s(),
                  cpu->e2e_s() / cold->e2e_s());
      if (!sweep_and_report("GPU", gpu_id, &*warm)) return 1;
    } else {
      result["recall_" + gpu_id] = nullptr;
      result["recall_" + gpu_id + "_at_default"] = nullptr;
      result[gpu_id + "_" + param + "_at_095"] = nullptr;
      if (is_pq) result[gpu_id + "_refine_at_095"] = nullptr;
      result[gpu_id + "_search_qps"] = nullptr;
      search[gpu_id] = nullptr;
    }
    const std::string gpu_key = is_pq ? "ivfpq_gpu_direct_s" : "cagra_gpu_direct_s";
    result[gpu_key] = warm ? json(warm->e2e_s()) : json(nullptr);
    result[is_pq ? "ivfpq_gpu_direct_cold_s" : "cagra_gpu_direct_cold_s"] =
        cold ? json(cold->e2e_s()) : json(nullptr);
    details[w.name] = {{"rows", w.rows},
                       {"dim", w.dim},
                       {"spec", w.spec},
                       {"cpu_http", LegJson(&*cpu)},
                       {"gpu_direct_cold", LegJson(cold ? &*cold : nullptr)},
                       {"gpu_direct_warm", LegJson(warm ? &*warm : nullptr)},
                       {"search", search}};

    if (gpu && is_pq) {
      // k-means on the data in GPU memory, against the GEMM rate of the same shape.
      auto buf = gpu::DeviceBuffer::Allocate(d.base.size() * sizeof(float));
      json km = nullptr;
      if (buf.ok() && (*buf)->CopyFromHost(0, d.base.data(), d.base.size() * sizeof(float)).ok()) {
        gpu::KMeansParams kp;
        kp.k = static_cast<int>(w.nlist);
        kp.max_iterations = 10;
        kp.tolerance = 0;  // run every iteration: a throughput measurement
        gpu::KMeansStats ks;
        gpu::MatrixView mv{static_cast<const float*>((*buf)->data()), w.rows, w.dim,
                           gpu::Memory::kDevice};
        auto fit = gpu::KMeansFit(kp, Metric::kL2, mv, &ks);
        auto gemm =
            gpu::MeasureGemmFlops(std::min<int64_t>(w.rows, kp.batch_rows), kp.k, w.dim, kp.math);
        if (fit.ok() && gemm.ok() && ks.seconds > 0) {
          double rate = ks.gemm_flops / ks.seconds;
          km = {{"kmeans_tflops", rate / 1e12},
                {"gemm_tflops", *gemm / 1e12},
                {"iterations", ks.iterations},
                {"seconds", ks.seconds}};
          result["kmeans_fraction_of_gemm"] = rate / *gemm;
          std::printf(
              "  k-means %d x %d iterations: %.1f TFLOP/s of distance GEMMs, cuBLAS "
              "GEMM %.1f TFLOP/s -> %.2f\n",
              kp.k, ks.iterations, rate / 1e12, *gemm / 1e12, rate / *gemm);
        } else {
          std::printf("  k-means: %s\n",
                      (fit.ok() ? gemm.status() : fit.status()).ToString().c_str());
        }
      }
      details["kmeans"] = km;

      // The segment object straight into GPU memory from the node's page cache, against pinned
      // cudaMemcpy: one stream by each path, then parallel streams.
      auto size = (*direct_store)->Size(key);
      auto h2d = gpu::MeasureH2dBandwidth(1ull << 30);
      json get = json::object();
      if (size.ok() && h2d.ok()) {
        auto dst = gpu::DeviceBuffer::Allocate(*size);
        auto client = client::Client::Create([&] {
          client::ClientOptions co;
          co.endpoint = s3;
          EnvCredentials(&co.access_key, &co.secret_key);
          return co;
        }());
        if (dst.ok() && client.ok()) {
          char* ptr = static_cast<char*>((*dst)->data());
          for (auto [path, label] : {std::pair{client::DevicePath::kAuto, "auto"},
                                     std::pair{client::DevicePath::kStaged, "staged"},
                                     std::pair{client::DevicePath::kHttpBody, "http_body"}}) {
            client::DeviceGetOptions o;
            o.path = path;
            GetRate r = ParallelGet(client->get(), key, ptr, *size, 1, o);
            get[label] = {{"path", r.path}, {"gbps", r.gbps}};
            std::printf("  GET %.2f GB into GPU memory, 1 stream, %-9s (%s): %.1f GB/s\n",
                        *size / 1e9, label, r.path.c_str(), r.gbps);
          }
          get["h2d_pinned_gbps"] = *h2d / 1e9;
          std::printf("  pinned cudaMemcpy host->device: %.1f GB/s\n", *h2d / 1e9);
          result["gpu_get_fraction_of_h2d"] = get["auto"]["gbps"].get<double>() * 1e9 / *h2d;
          // Aggregate: concurrent ranged GETs (CUDA IPC when served), and one staged GET with
          // as many fetchers; the better of the two is the node's rate into this GPU.
          const int streams = static_cast<int>(opt["get_streams"].get<int64_t>());
          client::DeviceGetOptions par;
          GetRate p = ParallelGet(client->get(), key, ptr, *size, streams, par);
          client::DeviceGetOptions fan;
          fan.path = client::DevicePath::kStaged;
          fan.staged.fetchers = streams;
          GetRate f = ParallelGet(client->get(), key, ptr, *size, 1, fan);
          get["parallel_auto"] = {{"streams", streams}, {"path", p.path}, {"gbps", p.gbps}};
          get["staged_fetchers"] = {{"fetchers", streams}, {"path", f.path}, {"gbps", f.gbps}};
          std::printf(
              "  GET into GPU memory, %d concurrent ranged GETs (%s): %.1f GB/s; one "
              "staged GET with %d fetchers (%s): %.1f GB/s\n",
              streams, p.path.c_str(), p.gbps, streams, f.path.c_str(), f.gbps);
          if (std::max(p.gbps, f.gbps) > 0) {
            result["gpu_get_aggregate_gbps"] = std::max(p.gbps, f.gbps);
          }
        }
      }
      details["gpu_get"] = get;
    }
  }
  for (const char* k :
       {"kmeans_fraction_of_gemm", "gpu_get_fraction_of_h2d", "gpu_get_aggregate_gbps"}) {
    if (!result.contains(k)) result[k] = nullptr;
  }
  if (result["ivfpq_gpu_direct_s"].is_number() && result["cagra_gpu_direct_s"].is_number()) {
    auto ratio = [&](const char* a, const char* b) {
      return result[a].get<double>() / result[b].get<double>();
    };
    result["speedup_ivfpq"] = ratio("ivfpq_cpu_http_s", "ivfpq_gpu_direct_s");
    result["speedup_cagra_vs_hnsw"] = ratio("hnsw_cpu_http_s", "cagra_gpu_direct_s");
    result["speedup_ivfpq_cold"] = ratio("ivfpq_cpu_http_s", "ivfpq_gpu_direct_cold_s");
    result["speedup_cagra_vs_hnsw_cold"] = ratio("hnsw_cpu_http_s", "cagra_gpu_direct_cold_s");
  }
  result["details"] = details;
  std::printf("%s\n", result.dump().c_str());
  return 0;
}

}  // namespace vlake::app
