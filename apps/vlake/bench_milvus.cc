// `vlake bench milvus`: the Milvus API over the wire against the same engine called in-process,
// on the same data with the same parameters, in one run (docs/benchmarks.md#milvus): insert
// throughput, index build, search QPS at batch 1 with many concurrent clients and at batch
// 100, recall, and inserts per second from many concurrent small-batch clients with and
// without group commit. The wire side is a small C++ gRPC client of vlake's own (so the
// numbers carry no JavaScript costs) and, with --sdk-cmd, the official Node SDK. Prints a
// table, then one JSON line.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <algorithm>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "apps/vlake/bench_util.h"
#include "apps/vlake/commands.h"
#include "common/encoding.h"
#include "milvus.grpc.pb.h"
#include "milvus/data_map.h"
#include "milvus/grpc_front.h"  // kMaxMessageBytes
#include "vector/synthetic.h"
#include "vectordb/engine.h"
#include "vectordb/object_store.h"

namespace vlake::app {
namespace {

using json = nlohmann::json;
namespace pm = ::milvus::proto::milvus;
namespace pc = ::milvus::proto::common;
namespace ps = ::milvus::proto::schema;

constexpr char kHelp[] = R"(Usage: vlake bench milvus --address HOST:PORT --s3 URL [flags]

Drives vlake's Milvus API (--address, the vector port of `vlake serve`) and the same engine
in-process (over the same storage node, --s3, bucket vlake-bench-inproc*) with the same data
and parameters: inserts, then per index type the build and search QPS at batch 1 and at
--batch, with --clients concurrent clients, and recall@10; then --clients concurrent clients
inserting --small-batch rows at a time, in-process with group commit off and on, and over the
wire. Credentials from VLAKE_ACCESS_KEY / VLAKE_SECRET_KEY. bench/milvus.sh runs it.

  --rows N            rows of clustered data (default 1000000)     --dim N (default 128)
  --types LIST        HNSW,IVF_FLAT (default both)
  --clients N         concurrent search / small-insert clients (default 16)
  --batch N           queries per request for the batch run (default 100)
  --insert-batch N    rows per insert request (default 1000)
  --seconds S         each QPS run lasts this long (default 10)
  --hnsw-m N --ef-construction N --ef N      HNSW (default 16, 200, 64)
  --nlist N --nprobe N                       IVF_FLAT (default 1024, 32)
  --small-batch N     rows per small insert (default 10)
  --server-pid PID    the server's pid: its CPU time per query is reported too
  --sdk-cmd CMD       also run the Node SDK driver: CMD ADDRESS COLLECTION QUERIES_FILE DIM
                      CLIENTS BATCH SECONDS PARAMS_JSON, which prints one JSON line
                      (bench/milvus_sdk_bench.mjs)
)";

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Config {
  std::string address, s3, access_key, secret_key, sdk_cmd;
  int server_pid = 0;  // `vlake serve`, for its CPU time per query
  int64_t rows = 1000000, insert_batch = 1000, batch = 100, small_batch = 10;
  int dim = 128, clients = 16;
  double seconds = 10;
  std::vector<std::string> types = {"HNSW", "IVF_FLAT"};
  int hnsw_m = 16, ef_construction = 200, ef = 64, nlist = 1024, nprobe = 32;
};

// What both sides are asked: CreateIndex's and Search's Milvus parameters.
struct IndexCase {
  std::string type;
  json build;   // CreateIndex params
  json search;  // Search params
};

// Whatever serves the Milvus calls: the wire (gRPC) or the engine in-process.
class Side {
 public:
  virtual ~Side() = default;
  virtual Status Create(const std::string& name, int dim) = 0;
  virtual Status Insert(const std::string& name, const int64_t* ids, const float* vecs, int64_t n,
                        int dim) = 0;
  virtual Status BuildIndex(const std::string& name, const IndexCase& c) = 0;
  virtual Status DropIndex(const std::string& name) = 0;
  // Top-k labels for nq queries (nq * k, -1 padded).
  virtual Status Search(const std::string& name, const float* q, int64_t nq, int dim, int k,
                        const IndexCase& c, std::vector<int64_t>* labels) = 0;
  virtual Status Drop(const std::string& name) = 0;
};

void Kv(google::protobuf::RepeatedPtrField<pc::KeyValuePair>* out, const std::string& k,
        const std::string& v) {
  auto* kv = out->Add();
  kv->set_key(k);
  kv->set_value(v);
}

Status FromReply(const grpc::Status& st, const pc::Status& s) {
  if (!st.ok()) return Status(Code::kUnavailable, "gRPC: " + st.error_message());
  if (s.code() != 0 || s.error_code() != pc::Success) {
    return Status(Code::kInternal, "Milvus code " + std::to_string(s.code()) + ": " + s.reason());
  }
  return Status::Ok();
}

// vlake's own Milvus client: one channel per instance (the bench gives each thread its own).
class Wire : public Side {
 public:
  Wire(const std::string& address, const std::string& ak, const std::string& sk)
      : token_(Base64Encode(ak + ":" + sk)) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(milvus::kMaxMessageBytes);
    args.SetMaxSendMessageSize(milvus::kMaxMessageBytes);
    args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection of its own
    stub_ = pm::MilvusService::NewStub(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }

  Status Create(const std::string& name, int dim) override {
    ps::CollectionSchema schema;
    schema.set_name(name);
    auto* id = schema.add_fields();
    id->set_name("id");
    id->set_data_type(ps::Int64);
    id->set_is_primary_key(true);
    auto* vec = schema.add_fields();
    vec->set_name("vec");
    vec->set_data_type(ps::FloatVector);
    Kv(vec->mutable_type_params(), "dim", std::to_string(dim));
    pm::CreateCollectionRequest req;
    req.set_collection_name(name);
    req.set_schema(schema.SerializeAsString());
    pc::Status resp;
    grpc::ClientContext ctx;
    Prepare(&ctx);
    return FromReply(stub_->CreateCollection(&ctx, req, &resp), resp);
  }

  Status Insert(const std::string& name, const int64_t* ids, const float* vecs, int64_t n,
                int dim) override {
    pm::InsertRequest req;
    req.set_collection_name(name);
    req.set_num_rows(static_cast<uint32_t>(n));
    auto* id = req.add_fields_data();
    id->set_field_name("id");
    id->set_type(ps::Int64);
    id->mutable_scalars()->mutable_long_data()->mutable_data()->Add(ids, ids + n);
    auto* vec = req.add_fields_data();
    vec->set_field_name("vec");
    vec->set_type(ps::FloatVector);
    vec->mutable_vectors()->set_dim(dim);
    vec->mutable_vectors()->mutable_float_vector()->mutable_data()->Add(vecs, vecs + n * dim);
    pm::MutationResult resp;
    grpc::ClientContext ctx;
    Prepare(&ctx);
    return FromReply(stub_->Insert(&ctx, req, &resp), resp.status());
  }

  Status BuildIndex(const std::string& name, const IndexCase& c) override {
    pm::FlushRequest freq;
    freq.add_collection_names(name);
    pm::FlushResponse fresp;
    {
      grpc::ClientContext ctx;
      Prepare(&ctx);
      VLAKE_RETURN_IF_ERROR(FromReply(stub_->Flush(&ctx, freq, &fresp), fresp.status()));
    }
    pm::CreateIndexRequest req;
    req.set_collection_name(name);
    req.set_field_name("vec");
    Kv(req.mutable_extra_params(), "index_type", c.type);
    Kv(req.mutable_extra_params(), "metric_type", "L2");
    Kv(req.mutable_extra_params(), "params", c.build.dump());
    pc::Status resp;
    {
      grpc::ClientContext ctx;
      Prepare(&ctx);
      VLAKE_RETURN_IF_ERROR(FromReply(stub_->CreateIndex(&ctx, req, &resp), resp));
    }
    for (;;) {  // as the SDKs wait: DescribeIndex until Finished
      pm::DescribeIndexRequest dreq;
      dreq.set_collection_name(name);
      pm::DescribeIndexResponse dresp;
      grpc::ClientContext ctx;
      Prepare(&ctx);
      VLAKE_RETURN_IF_ERROR(FromReply(stub_->DescribeIndex(&ctx, dreq, &dresp), dresp.status()));
      if (dresp.index_descriptions_size() > 0) {
        const auto& d = dresp.index_descriptions(0);
        if (d.state() == pc::Finished) break;
        if (d.state() == pc::Failed) return Status(Code::kInternal, d.index_state_fail_reason());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    pm::LoadCollectionRequest lreq;
    lreq.set_collection_name(name);
    grpc::ClientContext ctx;
    Prepare(&ctx);
    return FromReply(stub_->LoadCollection(&ctx, lreq, &resp), resp);
  }

  Status DropIndex(const std::string& name) override {
    pm::DropIndexRequest req;
    req.set_collection_name(name);
    pc::Status resp;
    grpc::ClientContext ctx;
    Prepare(&ctx);
    return FromReply(stub_->DropIndex(&ctx, req, &resp), resp);
  }

  Status Search(const std::string& name, const float* q, int64_t nq, int dim, int k,
                const IndexCase& c, std::vector<int64_t>* labels) override {
    pc::PlaceholderGroup group;
    auto* p = group.add_placeholders();
    p->set_tag("$0");
    p->set_type(pc::FloatVector);
    for (int64_t i = 0; i < nq; ++i) {
      p->add_values(std::string(reinterpret_cast<const char*>(q + i * dim), dim * sizeof(float)));
    }
    pm::SearchRequest req;
    req.set_collection_name(name);
    req.set_placeholder_group(group.SerializeAsString());
    req.set_dsl_type(pc::BoolExprV1);
    req.set_nq(nq);
    Kv(req.mutable_search_params(), "topk", std::to_string(k));
    Kv(req.mutable_search_params(), "metric_type", "L2");
    Kv(req.mutable_search_params(), "anns_field", "vec");
    Kv(req.mutable_search_params(), "params", c.search.dump());
    pm::SearchResults resp;
    grpc::ClientContext ctx;
    Prepare(&ctx);
    VLAKE_RETURN_IF_ERROR(FromReply(stub_->Search(&ctx, req, &resp), resp.status()));
    if (labels != nullptr) {
      labels->assign(nq * k, -1);
      const auto& r = resp.results();
      int64_t at = 0;
      for (int64_t qi = 0; qi < r.topks_size() && qi < nq; ++qi) {
        for (int64_t j = 0; j < r.topks(static_cast<int>(qi)); ++j, ++at) {
          if (j < k) (*labels)[qi * k + j] = r.ids().int_id().data(static_cast<int>(at));
        }
      }
    }
    return Status::Ok();
  }

  Status Drop(const std::string& name) override {
    pm::DropCollectionRequest req;
    req.set_collection_name(name);
    pc::Status resp;
    grpc::ClientContext ctx;
    Prepare(&ctx);
    return FromReply(stub_->DropCollection(&ctx, req, &resp), resp);
  }

 private:
  void Prepare(grpc::ClientContext* ctx) const {
    ctx->AddMetadata("authorization", token_);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::hours(2));
  }
  std::string token_;
  std::unique_ptr<pm::MilvusService::Stub> stub_;
};

// The same engine, called directly, with the Milvus parameters mapped as the API maps them.
class InProcess : public Side {
 public:
  explicit InProcess(vectordb::VectorEngine* engine) : engine_(engine) {}

  Status Create(const std::string& name, int dim) override {
    vector::CollectionSchema s;
    s.name = name;
    s.fields = {vector::FieldSchema{"id", vector::FieldType::kInt64, 0, true, false},
                vector::FieldSchema{"vec", vector::FieldType::kFloatVector, dim}};
    return engine_->CreateCollection(s);
  }

  Status Insert(const std::string& name, const int64_t* ids, const float* vecs, int64_t n,
                int dim) override {
    vector::RowBatch rows({vector::FieldSchema{"id", vector::FieldType::kInt64, 0, true, false},
                           vector::FieldSchema{"vec", vector::FieldType::kFloatVector, dim}});
    rows.Find("id")->int64s.assign(ids, ids + n);
    rows.Find("vec")->floats.assign(vecs, vecs + n * dim);
    VLAKE_RETURN_IF_ERROR(rows.Seal());
    return engine_->Insert(name, std::move(rows)).status();
  }

  Status BuildIndex(const std::string& name, const IndexCase& c) override {
    google::protobuf::RepeatedPtrField<pc::KeyValuePair> params;
    Kv(&params, "index_type", c.type);
    Kv(&params, "params", c.build.dump());
    VLAKE_ASSIGN_OR_RETURN(milvus::IndexChoice choice, milvus::IndexFromParams(params));
    VLAKE_ASSIGN_OR_RETURN(std::string job, engine_->BuildIndex(name, choice.factory, choice.device));
    VLAKE_ASSIGN_OR_RETURN(vectordb::Job done, engine_->WaitJob(job, 4 * 3600 * 1000));
    if (done.state != vectordb::Job::State::kDone) return Status(Code::kInternal, done.error);
    return engine_->Load(name);
  }

  Status DropIndex(const std::string& name) override { return engine_->DropIndex(name); }

  Status Search(const std::string& name, const float* q, int64_t nq, int dim, int k,
                const IndexCase& c, std::vector<int64_t>* labels) override {
    google::protobuf::RepeatedPtrField<pc::KeyValuePair> params;
    Kv(&params, "topk", std::to_string(k));
    Kv(&params, "params", c.search.dump());
    VLAKE_ASSIGN_OR_RETURN(milvus::SearchChoice choice, milvus::SearchFromParams(params));
    vectordb::SearchRequest req;
    req.vectors.assign(q, q + nq * dim);
    req.nq = nq;
    req.params = choice.params;
    VLAKE_ASSIGN_OR_RETURN(vectordb::SearchResponse r, engine_->Search(name, req));
    if (labels != nullptr) {
      labels->assign(nq * k, -1);
      for (int64_t qi = 0; qi < nq; ++qi) {
        for (size_t j = 0; j < r.hits[qi].size() && j < static_cast<size_t>(k); ++j) {
          (*labels)[qi * k + j] = r.hits[qi][j].id;
        }
      }
    }
    return Status::Ok();
  }

  Status Drop(const std::string& name) override { return engine_->DropCollection(name); }

 private:
  vectordb::VectorEngine* engine_;
};

// `clients` threads, each with its own Side from `make`, calling `op` until `seconds` pass;
// returns calls per second. The first error stops the run.
Result<double> Concurrent(int clients, double seconds, const std::function<std::unique_ptr<Side>()>& make,
                          const std::function<Status(Side&, int, int64_t)>& op) {
  std::vector<std::unique_ptr<Side>> sides;
  for (int c = 0; c < clients; ++c) sides.push_back(make());
  std::atomic<int64_t> calls{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  Status first = Status::Ok();
  std::vector<std::thread> threads;
  const double t0 = Now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int64_t i = 0; !stop; ++i) {
        Status st = op(*sides[c], c, i);
        if (!st.ok()) {
          std::lock_guard<std::mutex> l(mu);
          if (first.ok()) first = st;
          stop = true;
          return;
        }
        ++calls;
        if (Now() - t0 >= seconds) stop = true;
      }
    });
  }
  for (auto& t : threads) t.join();
  VLAKE_RETURN_IF_ERROR(first);
  return static_cast<double>(calls.load()) / (Now() - t0);
}

Result<std::unique_ptr<vectordb::VectorEngine>> OpenEngine(const Config& cfg, const std::string& bucket,
                                                           bool group_commit) {
  vectordb::ObjectStoreOptions so;
  so.client.endpoint = cfg.s3;
  so.client.access_key = cfg.access_key;
  so.client.secret_key = cfg.secret_key;
  so.bucket = bucket;
  VLAKE_ASSIGN_OR_RETURN(auto store, vectordb::ObjectStore::Open(so));
  vectordb::EngineOptions eo;
  eo.group_commit = group_commit;
  return vectordb::VectorEngine::Open(std::move(store), eo);
}

int Fail(const Status& st) {
  std::fprintf(stderr, "bench milvus: %s\n", st.ToString().c_str());
  return 1;
}

}  // namespace

int RunBenchMilvus(int argc, char** argv) {
  Config cfg;
  EnvCredentials(&cfg.access_key, &cfg.secret_key);
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench milvus: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    auto num = [&]() -> int64_t {
      const std::string v = val();
      std::optional<uint64_t> n = ParseSize(v);
      if (!n || *n == 0) {
        std::fprintf(stderr, "bench milvus: bad number for %s: %s\n", a.c_str(), v.c_str());
        std::exit(2);
      }
      return static_cast<int64_t>(*n);
    };
    if (a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--address") {
      cfg.address = val();
    } else if (a == "--s3") {
      cfg.s3 = val();
    } else if (a == "--server-pid") {
      cfg.server_pid = static_cast<int>(num());
    } else if (a == "--sdk-cmd") {
      cfg.sdk_cmd = val();
    } else if (a == "--rows") {
      cfg.rows = num();
    } else if (a == "--dim") {
      cfg.dim = static_cast<int>(num());
    } else if (a == "--clients") {
      cfg.clients = static_cast<int>(num());
    } else if (a == "--batch") {
      cfg.batch = num();
    } else if (a == "--insert-batch") {
      cfg.insert_batch = num();
    } else if (a == "--small-batch") {
      cfg.small_batch = num();
    } else if (a == "--seconds") {
      cfg.seconds = static_cast<double>(num());
    } else if (a == "--hnsw-m") {
      cfg.hnsw_m = static_cast<int>(num());
    } else if (a == "--ef-construction") {
      cfg.ef_construction = static_cast<int>(num());
    } else if (a == "--ef") {
      cfg.ef = static_cast<int>(num());
    } else if (a == "--nlist") {
      cfg.nlist = static_cast<int>(num());
    } else if (a == "--nprobe") {
      cfg.nprobe = static_cast<int>(num());
    } else if (a == "--types") {
      cfg.types.clear();
      std::string list = val();
      for (size_t at = 0; at <= list.size();) {
        size_t comma = list.find(',', at);
        if (comma == std::string::npos) comma = list.size();
        if (comma > at) cfg.types.push_back(list.substr(at, comma - at));
        at = comma + 1;
      }
    } else {
      std::fprintf(stderr, "bench milvus: unknown flag %s\n\n%s", a.c_str(), kHelp);
      return 2;
    }
  }
  if (cfg.address.empty() || cfg.s3.empty()) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  const int dim = cfg.dim, k = 10;
  vector::ClusteredSpec spec;
  spec.rows = cfg.rows;
  spec.dim = dim;
  spec.clusters = 1024;
  spec.spread = 0.25f;
  spec.seed = 1234;
  std::printf("generating %lld x %d clustered rows\n", static_cast<long long>(cfg.rows), dim);
  const std::vector<float> base = vector::GenerateClustered(spec);
  constexpr int64_t kQueries = 1000, kRecallQueries = 200;
  const std::vector<float> queries = vector::GenerateQueries(spec, kQueries);
  const std::vector<int64_t> truth = vector::GroundTruth(vector::Metric::kL2, base.data(), cfg.rows,
                                                         dim, queries.data(), kRecallQueries, k);
  std::vector<int64_t> ids(cfg.rows);
  for (int64_t i = 0; i < cfg.rows; ++i) ids[i] = i;
  const std::string queries_file = "/tmp/vlake-bench-milvus-queries-" + std::to_string(getpid());
  {
    std::ofstream out(queries_file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(queries.data()),
              static_cast<std::streamsize>(queries.size() * sizeof(float)));
  }

  Result<std::unique_ptr<vectordb::VectorEngine>> engine = OpenEngine(cfg, "vlake-bench-inproc", true);
  if (!engine.ok()) return Fail(engine.status());
  auto make_wire = [&]() -> std::unique_ptr<Side> {
    return std::make_unique<Wire>(cfg.address, cfg.access_key, cfg.secret_key);
  };
  auto make_local = [&]() -> std::unique_ptr<Side> { return std::make_unique<InProcess>(engine->get()); };

  json result = {{"bench", "milvus"}, {"rows", cfg.rows}, {"dim", dim}, {"clients", cfg.clients},
                 {"batch", cfg.batch}, {"insert_batch", cfg.insert_batch}, {"seconds", cfg.seconds},
                 {"cpus", std::thread::hardware_concurrency()}};
  const std::string coll = "bench_" + std::to_string(getpid());
  std::vector<IndexCase> cases;
  for (const std::string& t : cfg.types) {
    if (t == "HNSW") {
      cases.push_back({t, {{"M", cfg.hnsw_m}, {"efConstruction", cfg.ef_construction}}, {{"ef", cfg.ef}}});
    } else if (t == "IVF_FLAT") {
      cases.push_back({t, {{"nlist", cfg.nlist}}, {{"nprobe", cfg.nprobe}}});
    } else {
      return Fail(Status(Code::kInvalidArgument, "--types takes HNSW and IVF_FLAT"));
    }
  }
  // Both sides hold the same collection; stages alternate between them, and every QPS case
  // runs kRounds times in alternating order (median reported, min and max kept).
  constexpr int kRounds = 3;
  std::unique_ptr<Side> wire = make_wire(), local = make_local();
  const std::vector<std::pair<const char*, Side*>> both = {{"wire", wire.get()}, {"inprocess", local.get()}};
  json sides = {{"wire", json::object()}, {"inprocess", json::object()}};
  for (auto [which, side] : both) {
    Status st = side->Create(coll, dim);
    if (!st.ok()) return Fail(st);
    const double t0 = Now();
    for (int64_t at = 0; at < cfg.rows; at += cfg.insert_batch) {
      const int64_t n = std::min(cfg.insert_batch, cfg.rows - at);
      st = side->Insert(coll, ids.data() + at, base.data() + at * dim, n, dim);
      if (!st.ok()) return Fail(st);
    }
    sides[which]["insert_rows_per_s"] = static_cast<double>(cfg.rows) / (Now() - t0);
    std::printf("%-9s insert %10.0f rows/s\n", which, sides[which]["insert_rows_per_s"].get<double>());
  }
  auto stats = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return json{{"min", v.front()}, {"median", v[v.size() / 2]}, {"max", v.back()}};
  };
  for (const IndexCase& c : cases) {
    for (auto [which, side] : both) {
      json m = json::object();
      const double t0 = Now();
      Status st = side->BuildIndex(coll, c);
      if (!st.ok()) return Fail(st);
      m["build_s"] = Now() - t0;
      std::vector<int64_t> labels;
      st = side->Search(coll, queries.data(), kRecallQueries, dim, k, c, &labels);
      if (!st.ok()) return Fail(st);
      m["recall_at_10"] = vector::RecallAtK(labels, k, truth, k, kRecallQueries, k);
      sides[which][c.type] = m;
    }
    for (int64_t nq : {int64_t{1}, cfg.batch}) {
      std::map<std::string, std::vector<double>> runs, client_us, server_us;
      for (int round = 0; round < kRounds; ++round) {
        for (int j = 0; j < 2; ++j) {
          const auto [which, side] = both[(round + j) % 2];
          const double self0 = CpuSecondsOfSelf(), server0 = CpuSecondsOfPid(cfg.server_pid);
          auto make = std::strcmp(which, "wire") == 0 ? std::function<std::unique_ptr<Side>()>(make_wire)
                                                      : std::function<std::unique_ptr<Side>()>(make_local);
          Result<double> calls = Concurrent(cfg.clients, cfg.seconds, make, [&](Side& s, int client, int64_t i) {
            const int64_t first = (client * 7919 + i * nq) % (kQueries - nq + 1);
            return s.Search(coll, queries.data() + first * dim, nq, dim, k, c, nullptr);
          });
          if (!calls.ok()) return Fail(calls.status());
          const double queries_run = *calls * static_cast<double>(nq) * cfg.seconds;
          runs[which].push_back(*calls * static_cast<double>(nq));
          // CPU per query: this process (the client, or the engine in-process) and the server.
          client_us[which].push_back((CpuSecondsOfSelf() - self0) / queries_run * 1e6);
          server_us[which].push_back((CpuSecondsOfPid(cfg.server_pid) - server0) / queries_run * 1e6);
        }
      }
      for (auto [which, side] : both) {
        const std::string key = nq == 1 ? "qps_batch1" : "qps_batch";
        json st = stats(runs[which]);
        sides[which][c.type][key] = st["median"];
        sides[which][c.type][key + "_runs"] = st;
        const bool wire_side = std::strcmp(which, "wire") == 0;
        sides[which][c.type][key + (wire_side ? "_client_cpu_us_per_query" : "_cpu_us_per_query")] =
            stats(client_us[which])["median"];
        if (wire_side && cfg.server_pid > 0) {
          sides[which][c.type][key + "_server_cpu_us_per_query"] = stats(server_us[which])["median"];
        }
      }
    }
    if (!cfg.sdk_cmd.empty()) {
      const std::string cmd = cfg.sdk_cmd + " " + cfg.address + " " + coll + " " + queries_file +
                              " " + std::to_string(dim) + " " + std::to_string(cfg.clients) + " " +
                              std::to_string(cfg.batch) + " " + std::to_string(static_cast<int>(cfg.seconds)) +
                              " '" + c.search.dump() + "'";
      std::string out;
      if (FILE* p = popen(cmd.c_str(), "r")) {
        char buf[4096];
        while (std::fgets(buf, sizeof buf, p)) out = buf;  // the last line
        pclose(p);
      }
      json sdk = json::parse(out, nullptr, false);
      sides["wire"][c.type]["node_sdk"] = sdk.is_discarded() ? json("failed: " + out) : sdk;
    }
    for (auto [which, side] : both) {
      const json& m = sides[which][c.type];
      std::printf("%-9s %-8s build %7.1f s  recall@10 %.3f  qps batch1 %9.0f  batch%lld %9.0f (medians of %d)\n",
                  which, c.type.c_str(), m["build_s"].get<double>(), m["recall_at_10"].get<double>(),
                  m["qps_batch1"].get<double>(), static_cast<long long>(cfg.batch),
                  m["qps_batch"].get<double>(), kRounds);
      Status st = side->DropIndex(coll);
      if (!st.ok()) return Fail(st);
    }
  }
  for (auto [which, side] : both) {
    Status st = side->Drop(coll);
    if (!st.ok()) return Fail(st);
  }

  // Many clients, small batches: rows acknowledged per second.
  json small = json::object();
  auto small_run = [&](const char* label, const std::function<std::unique_ptr<Side>()>& make) -> Status {
    const std::string name = coll + "_small";
    VLAKE_RETURN_IF_ERROR(make()->Create(name, dim));
    std::atomic<int64_t> next{0};
    Result<double> calls = Concurrent(cfg.clients, cfg.seconds, make, [&](Side& s, int, int64_t) {
      const int64_t at = next.fetch_add(cfg.small_batch) % (cfg.rows - cfg.small_batch + 1);
      return s.Insert(name, ids.data() + at, base.data() + at * dim, cfg.small_batch, dim);
    });
    VLAKE_RETURN_IF_ERROR(calls.status());
    small[label] = *calls * static_cast<double>(cfg.small_batch);
    std::printf("small inserts (%d clients x %lld rows) %-22s %10.0f rows/s\n", cfg.clients,
                static_cast<long long>(cfg.small_batch), label, small[label].get<double>());
    return make()->Drop(name);
  };
  Result<std::unique_ptr<vectordb::VectorEngine>> no_group = OpenEngine(cfg, "vlake-bench-inproc-nogc", false);
  if (!no_group.ok()) return Fail(no_group.status());
  Status st = small_run("inprocess_no_group_commit",
                        [&]() -> std::unique_ptr<Side> { return std::make_unique<InProcess>(no_group->get()); });
  if (st.ok()) st = small_run("inprocess_group_commit", make_local);
  if (st.ok()) st = small_run("wire_group_commit", make_wire);
  if (!st.ok()) return Fail(st);
  std::remove(queries_file.c_str());

  json ratios = json::object();
  const json& w = sides["wire"];
  const json& l = sides["inprocess"];
  ratios["insert"] = w["insert_rows_per_s"].get<double>() / l["insert_rows_per_s"].get<double>();
  for (const IndexCase& c : cases) {
    ratios[c.type + "_batch1"] = w[c.type]["qps_batch1"].get<double>() / l[c.type]["qps_batch1"].get<double>();
    ratios[c.type + "_batch"] = w[c.type]["qps_batch"].get<double>() / l[c.type]["qps_batch"].get<double>();
    if (cfg.server_pid > 0) {
      // The engine's CPU per query in-process over the server's per query over the wire: what
      // the API costs the server, without the client's share of this machine's CPUs.
      for (const char* key : {"qps_batch1", "qps_batch"}) {
        ratios[c.type + (std::strcmp(key, "qps_batch1") == 0 ? "_batch1" : "_batch") + "_server_cpu_efficiency"] =
            l[c.type][std::string(key) + "_cpu_us_per_query"].get<double>() /
            w[c.type][std::string(key) + "_server_cpu_us_per_query"].get<double>();
      }
    }
  }
  ratios["group_commit_gain"] = small["inprocess_group_commit"].get<double>() /
                                small["inprocess_no_group_commit"].get<double>();
  result["wire"] = w;
  result["inprocess"] = l;
  result["small_inserts_rows_per_s"] = small;
  result["ratios_wire_over_inprocess"] = ratios;
  std::printf("ratios (wire / in-process):");
  for (auto& [key, v] : ratios.items()) std::printf(" %s %.2f", key.c_str(), v.get<double>());
  std::printf("\n%s\n", result.dump().c_str());
  return 0;
}

}  // namespace vlake::app
