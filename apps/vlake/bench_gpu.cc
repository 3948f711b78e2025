// `vlake bench gpu`: the headline benchmark (docs/benchmarks.md#gpu). End-to-end index build
// time — fetch the segment from a vlake storage node on this machine + build — for IVF_PQ and
// for HNSW, on the CPU fed over HTTP (FAISS / hnswlib on every core) versus on the GPU fed over
// the direct path (CUDA IPC from the storage node, else staged), both through the index job
// pipeline the vector database runs (vectordb/index_build.h), with recall@10 of each built
// index searched on the CPU. Also: k-means throughput as a fraction of the cuBLAS GEMM rate,
// and the direct GET into GPU memory as a fraction of pinned cudaMemcpy bandwidth. The last
// line is one JSON object.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
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
fed over the direct path, for IVF_PQ and for HNSW (on the GPU: a CAGRA graph exported to HNSW),
with recall@10 of every built index searched on the CPU; k-means as a fraction of the cuBLAS
GEMM rate; the direct GET into GPU memory as a fraction of pinned host-to-device bandwidth.
The last line is one JSON object. bench/gpu.sh runs it against a fresh storage node.

  --ivfpq-rows N   (default 1000000)   --ivfpq-dim D  (default 768)
  --nlist N        (default 1024)      --pq-m M       (default 96; divides dim)
  --nprobe N       (default 32)
  --hnsw-rows N    (default 1000000)   --hnsw-dim D   (default 96)
  --hnsw-m M       HNSW M (default 32: base-layer degree 64 = the CAGRA graph degree)
  --ef-construction N (default 200)    --ef N  HNSW search ef (default 128)
  --queries N      (default 1000)
  --cpu-only       run only the CPU legs (no GPU needed; GPU fields are null)
)";

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Workload {
  std::string name;  // "ivfpq" / "hnsw"
  std::string spec;
  int64_t rows = 0;
  int dim = 0;
  SearchParams search;
};

struct Leg {
  double e2e_s = 0;  // fetch + decode/verify + train + add
  double recall = 0;
  vectordb::SegmentBuildReport report;
  bool ran = false;
};

json LegJson(const Leg& l) {
  if (!l.ran) return nullptr;
  const auto& r = l.report;
  return {{"e2e_s", l.e2e_s},           {"recall", l.recall},           {"fetch_s", r.fetch_s},
          {"decode_s", r.decode_s},     {"train_s", r.train_s},         {"add_s", r.add_s},
          {"fetch_path", r.fetch_path}, {"serialize_s", r.serialize_s}, {"upload_s", r.upload_s}};
}

Result<Leg> RunLeg(vectordb::ObjectStore* store, const Workload& w, const std::string& key,
                   vectordb::BuildDevice device, const std::vector<float>& queries, int64_t nq,
                   const std::vector<int64_t>& truth) {
  vectordb::SegmentIndexBuild b;
  b.segment_key = key;
  b.index_key = key + "." + std::string(vectordb::BuildDeviceName(device)) + ".vlix";
  b.vector_field = "vector";
  b.spec = w.spec;
  b.metric = Metric::kL2;
  b.metadata = "{}";
  b.device = device;
  Leg leg;
  VLAKE_ASSIGN_OR_RETURN(std::unique_ptr<VectorIndex> index,
                         vectordb::BuildSegmentIndexFile(store, b, &leg.report));
  const auto& r = leg.report;
  leg.e2e_s = r.fetch_s + r.decode_s + r.train_s + r.add_s;
  SearchResult res;
  VLAKE_RETURN_IF_ERROR(index->Search(queries.data(), nq, w.search, &res));
  leg.recall = RecallAtK(res.labels, w.search.k, truth, w.search.k, nq, w.search.k);
  leg.ran = true;
  ::sync();  // the index upload's dirty pages must not land in the next measurement
  return leg;
}

void PrintLeg(const char* who, const Leg& l) {
  if (!l.ran) return;
  const auto& r = l.report;
  std::printf(
      "  %-22s e2e %8.2f s  (fetch %.2f [%s], decode/verify %.2f, train %.2f, add %.2f)"
      "  recall@10 %.4f  | serialize %.2f, upload %.2f\n",
      who, l.e2e_s, r.fetch_s, r.fetch_path.c_str(), r.decode_s, r.train_s, r.add_s, l.recall,
      r.serialize_s, r.upload_s);
}

// Throughput of a transfer of `bytes` in `seconds`, GB/s.
double Gbps(uint64_t bytes, double seconds) { return seconds > 0 ? bytes / seconds / 1e9 : 0; }

}  // namespace

int RunBenchGpu(int argc, char** argv) {
  json opt = {
      {"ivfpq_rows", 1000000}, {"ivfpq_dim", 768}, {"nlist", 1024}, {"pq_m", 96}, {"nprobe", 32},
      {"hnsw_rows", 1000000},  {"hnsw_dim", 96},   {"hnsw_m", 32},  {"efc", 200}, {"ef", 128},
      {"queries", 1000}};
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
        {"--ivfpq-rows", "ivfpq_rows"}, {"--ivfpq-dim", "ivfpq_dim"},
        {"--nlist", "nlist"},           {"--pq-m", "pq_m"},
        {"--nprobe", "nprobe"},         {"--hnsw-rows", "hnsw_rows"},
        {"--hnsw-dim", "hnsw_dim"},     {"--hnsw-m", "hnsw_m"},
        {"--ef-construction", "efc"},   {"--ef", "ef"},
        {"--queries", "queries"}};
    auto n = ParseUint64(v);
    if (a == "--s3") {
      s3 = v;
    } else if (kNumeric.count(a) && n && *n > 0) {
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
  std::printf("# vlake bench gpu — device: %s (%s); CPU: %u threads, OpenBLAS core type %s\n",
              device_name.c_str(), gpu::CudaVersionNote().c_str(),
              std::thread::hardware_concurrency(), OpenBlasCoreTypeNote().c_str());

  const int64_t nq = opt["queries"];
  std::vector<Workload> workloads(2);
  workloads[0].name = "ivfpq";
  workloads[0].rows = opt["ivfpq_rows"];
  workloads[0].dim = static_cast<int>(opt["ivfpq_dim"].get<int64_t>());
  workloads[0].spec = "IVF_PQ:nlist=" + std::to_string(opt["nlist"].get<int64_t>()) +
                      ",m=" + std::to_string(opt["pq_m"].get<int64_t>()) + ",nbits=8";
  workloads[0].search.k = 10;
  workloads[0].search.nprobe = opt["nprobe"];
  workloads[1].name = "hnsw";
  workloads[1].rows = opt["hnsw_rows"];
  workloads[1].dim = static_cast<int>(opt["hnsw_dim"].get<int64_t>());
  workloads[1].spec = "HNSW:M=" + std::to_string(opt["hnsw_m"].get<int64_t>()) +
                      ",efConstruction=" + std::to_string(opt["efc"].get<int64_t>());
  workloads[1].search.k = 10;
  workloads[1].search.ef = opt["ef"];

  json result = {{"device", device_name}, {"cpu_threads", std::thread::hardware_concurrency()}};
  json details = json::object();
  for (const Workload& w : workloads) {
    ClusteredSpec spec;
    spec.rows = w.rows;
    spec.dim = w.dim;
    spec.clusters = 1024;
    spec.spread = 0.25f;
    spec.seed = 1234;
    double t0 = Now();
    std::vector<float> base = GenerateClustered(spec);
    std::vector<float> queries = GenerateQueries(spec, nq);
    std::vector<int64_t> truth =
        GroundTruth(Metric::kL2, base.data(), w.rows, w.dim, queries.data(), nq, 10);
    std::string key =
        "bench/" + w.name + "-" + std::to_string(w.rows) + "x" + std::to_string(w.dim) + ".vlsg";
    {
      RowBatch rows(
          {{"id", FieldType::kInt64, 0, true}, {"vector", FieldType::kFloatVector, w.dim}});
      rows.mutable_columns()[0].int64s.resize(w.rows);
      for (int64_t i = 0; i < w.rows; ++i) rows.mutable_columns()[0].int64s[i] = i;
      rows.mutable_columns()[1].floats = base;
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
    auto cpu = RunLeg(http_store->get(), w, key, vectordb::BuildDevice::kCpu, queries, nq, truth);
    if (!cpu.ok()) {
      std::fprintf(stderr, "vlake bench gpu: CPU %s: %s\n", w.name.c_str(),
                   cpu.status().ToString().c_str());
      return 1;
    }
    PrintLeg("CPU over HTTP", *cpu);
    Leg gpu_leg;
    if (gpu) {
      auto g = RunLeg(direct_store->get(), w, key, vectordb::BuildDevice::kGpu, queries, nq, truth);
      if (!g.ok()) {
        std::fprintf(stderr, "vlake bench gpu: GPU %s: %s\n", w.name.c_str(),
                     g.status().ToString().c_str());
        return 1;
      }
      gpu_leg = *g;
      PrintLeg("GPU over direct path", gpu_leg);
      std::printf("  speed-up %.1fx\n", cpu->e2e_s / gpu_leg.e2e_s);
    }
    details[w.name] = {{"rows", w.rows},
                       {"dim", w.dim},
                       {"spec", w.spec},
                       {"cpu_http", LegJson(*cpu)},
                       {"gpu_direct", LegJson(gpu_leg)}};
    const bool pq = w.name == "ivfpq";
    result[pq ? "ivfpq_cpu_http_s" : "hnsw_cpu_http_s"] = cpu->e2e_s;
    result[pq ? "recall_ivfpq_cpu" : "recall_hnsw"] = cpu->recall;
    result[pq ? "ivfpq_gpu_direct_s" : "cagra_gpu_direct_s"] =
        gpu_leg.ran ? json(gpu_leg.e2e_s) : json(nullptr);
    result[pq ? "recall_ivfpq_gpu" : "recall_cagra"] =
        gpu_leg.ran ? json(gpu_leg.recall) : json(nullptr);

    if (gpu && pq) {
      // k-means on the data in GPU memory, against the GEMM rate of the same shape.
      auto buf = gpu::DeviceBuffer::Allocate(base.size() * sizeof(float));
      json km = nullptr;
      if (buf.ok() && (*buf)->CopyFromHost(0, base.data(), base.size() * sizeof(float)).ok()) {
        gpu::KMeansParams kp;
        kp.k = static_cast<int>(opt["nlist"].get<int64_t>());
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

      // The segment object straight into GPU memory, against pinned cudaMemcpy.
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
          for (auto [path, label] : {std::pair{client::DevicePath::kAuto, "auto"},
                                     std::pair{client::DevicePath::kStaged, "staged"},
                                     std::pair{client::DevicePath::kHttpBody, "http_body"}}) {
            double best = 1e30;
            std::string used;
            for (int r = 0; r < 3; ++r) {
              client::DeviceGetOptions o;
              o.path = path;
              double t = Now();
              auto got = (*client)->GetIntoDevice("vlake-bench-gpu", key, (*dst)->data(), *size,
                                                  std::nullopt, o);
              double s = Now() - t;
              if (!got.ok()) {
                used = got.status().ToString();
                break;
              }
              used = got->path;
              best = std::min(best, s);
            }
            get[label] = {{"path", used}, {"gbps", best < 1e30 ? Gbps(*size, best) : 0.0}};
            std::printf("  GET %.2f GB into GPU memory, %-9s (%s): %.1f GB/s\n", *size / 1e9, label,
                        used.c_str(), best < 1e30 ? Gbps(*size, best) : 0.0);
          }
          get["h2d_pinned_gbps"] = *h2d / 1e9;
          std::printf("  pinned cudaMemcpy host->device: %.1f GB/s\n", *h2d / 1e9);
          result["gpu_get_fraction_of_h2d"] = get["auto"]["gbps"].get<double>() * 1e9 / *h2d;
        }
      }
      details["gpu_get"] = get;
    }
  }
  for (const char* k : {"kmeans_fraction_of_gemm", "gpu_get_fraction_of_h2d"}) {
    if (!result.contains(k)) result[k] = nullptr;
  }
  if (result["ivfpq_gpu_direct_s"].is_number() && result["cagra_gpu_direct_s"].is_number()) {
    result["speedup_ivfpq"] =
        result["ivfpq_cpu_http_s"].get<double>() / result["ivfpq_gpu_direct_s"].get<double>();
    result["speedup_cagra_vs_hnsw"] =
        result["hnsw_cpu_http_s"].get<double>() / result["cagra_gpu_direct_s"].get<double>();
  }
  result["details"] = details;
  std::printf("%s\n", result.dump().c_str());
  return 0;
}

}  // namespace vlake::app
