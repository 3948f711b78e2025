// Failure and crash tests of the vector database engine over a fault-injecting object store:
// every object-store call that a workload makes (PUT, GET, DELETE, LIST, in turn; a PUT or
// DELETE either lost or applied with its reply lost) fails once, the workload goes on as a
// client would, then the engine "crashes" (is dropped without a flush) and reopens from the
// store. Every acknowledged insert and delete must be there, nothing deleted may come back, no
// row may appear twice, and after one more successful flush the store holds nothing that the
// manifest does not name.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/testing.h"
#include "vectordb/collection.h"
#include "vectordb/engine.h"
#include "vectordb/object_store_testing.h"

namespace vlake::vectordb {
namespace {

using vector::CollectionSchema;
using vector::FieldSchema;
using vector::FieldType;
using vector::RowBatch;

constexpr int kDim = 4;

CollectionSchema Schema(const std::string& name) {
  CollectionSchema s;
  s.name = name;
  s.fields = {FieldSchema{"id", FieldType::kInt64, 0, true, false},
              FieldSchema{"v", FieldType::kFloatVector, kDim, false, false}};
  return s;
}

// The vector of row `id`: its values identify the row exactly.
std::vector<float> VectorOf(int64_t id) {
  std::vector<float> v(kDim);
  for (int j = 0; j < kDim; ++j) v[j] = static_cast<float>(id * 10 + j);
  return v;
}

RowBatch Rows(int64_t first, int64_t count) {
  RowBatch b(Schema("x").fields);
  for (int64_t id = first; id < first + count; ++id) {
    b.mutable_columns()[0].int64s.push_back(id);
    std::vector<float> v = VectorOf(id);
    b.mutable_columns()[1].floats.insert(b.mutable_columns()[1].floats.end(), v.begin(), v.end());
  }
  EXPECT_OK(b.Seal());
  return b;
}

// What clients were told: acknowledged rows must be there, acknowledged deletes must hold;
// rows of an unacknowledged write may or may not be.
struct Model {
  std::set<int64_t> alive;      // acknowledged insert, no delete attempted
  std::set<int64_t> deleted;    // acknowledged delete
  std::set<int64_t> uncertain;  // an unacknowledged insert or delete touched it
  bool d_dropped = false;       // the drop of collection d was acknowledged
};

struct World {
  std::shared_ptr<MemoryObjectStore> mem = std::make_shared<MemoryObjectStore>();
  std::shared_ptr<FaultPlan> plan = std::make_shared<FaultPlan>();
  std::unique_ptr<VectorEngine> engine;
  // The sweeps turn the background flusher off: its retries would otherwise repair (or
  // reorder) what a fault did before the simulated crash, hiding bugs by timing.
  bool background_flush = true;

  Status Open() {
    engine.reset();
    EngineOptions options;
    options.background_flush = background_flush;
    Result<std::unique_ptr<VectorEngine>> e =
        VectorEngine::Open(std::make_unique<FaultInjectingObjectStore>(mem, plan), options);
    if (!e.ok()) return e.status();
    engine = std::move(*e);
    return Status::Ok();
  }
  void Crash() { engine.reset(); }  // no flush: what kill -9 leaves (acknowledged = in WAL)
};

void Insert(World& w, Model& m, const std::string& c, int64_t first, int64_t count) {
  Result<InsertResult> r = w.engine->Insert(c, Rows(first, count));
  for (int64_t id = first; id < first + count; ++id) {
    if (r.ok() && !m.uncertain.count(id)) {
      m.alive.insert(id);
    } else {
      m.uncertain.insert(id);
    }
  }
}

void Delete(World& w, Model& m, const std::string& c, const std::vector<int64_t>& ids) {
  Result<int64_t> r = w.engine->Delete(c, ids, "");
  for (int64_t id : ids) {
    m.alive.erase(id);
    if (r.ok()) {
      m.deleted.insert(id);
      m.uncertain.erase(id);
    } else if (!m.deleted.count(id)) {
      m.uncertain.insert(id);
    }
  }
}

// The workload: every multi-step write of the engine once (create, insert, delete, flush
// splitting a buffer into segments, tombstones, compaction, index build and upload, a flush
// that indexes its new segment, drop).
void Workload(World& w, Model& m) {
  CollectionOptions co;
  co.segment_max_rows = 40;
  if (!w.engine->CreateCollection(Schema("c"), co).ok()) return;  // nothing acknowledged
  Insert(w, m, "c", 0, 50);
  Delete(w, m, "c", {3, 7});
  (void)w.engine->Flush("c");
  Insert(w, m, "c", 50, 40);
  Delete(w, m, "c", {45, 52});
  (void)w.engine->Flush("c");
  Delete(w, m, "c", {10, 11, 12, 13, 14, 15, 16, 17, 18, 19});
  (void)w.engine->Compact("c", 0.2);
  Result<std::string> job = w.engine->BuildIndex("c", "IVF_FLAT:nlist=4");
  if (job.ok()) (void)w.engine->WaitJob(*job, 60'000);
  Insert(w, m, "c", 90, 30);
  (void)w.engine->Flush("c");  // queues a job that indexes the new segment
  // Jobs run one at a time in queue order: waiting for this one waits for that one too, so
  // every object-store call happens before the workload returns.
  Result<std::string> again = w.engine->BuildIndex("c", "IVF_FLAT:nlist=4");
  if (again.ok()) (void)w.engine->WaitJob(*again, 60'000);
  if (w.engine->CreateCollection(Schema("d"), co).ok()) {
    Result<InsertResult> r = w.engine->Insert("d", Rows(1000, 10));
    (void)r;
    m.d_dropped = w.engine->DropCollection("d").ok();
  }
}

// Checks what a reopened engine holds against the model.
void Verify(World& w, const Model& m, const std::string& context) {
  SCOPED_TRACE(context);
  Result<std::vector<std::string>> names = w.engine->ListCollections();
  ASSERT_OK(names);
  if (std::find(names->begin(), names->end(), "c") == names->end()) {
    // The create was never acknowledged, so nothing can have been.
    EXPECT_TRUE(m.alive.empty() && m.deleted.empty());
    return;
  }
  QueryRequest q;
  for (int64_t id = 0; id < 120; ++id) q.ids.push_back(id);
  q.output_fields = {"v"};
  ASSERT_OK_AND_ASSIGN(QueryResponse got, w.engine->Query("c", q));
  std::map<int64_t, int> seen;
  for (size_t i = 0; i < got.ids.size(); ++i) {
    int64_t id = got.ids[i];
    EXPECT_EQ(++seen[id], 1) << "row " << id << " appears twice";
    EXPECT_FALSE(m.deleted.count(id)) << "deleted row " << id << " came back";
    EXPECT_EQ(std::get<std::vector<float>>(got.rows[i][0]), VectorOf(id)) << "row " << id;
  }
  for (int64_t id : m.alive) EXPECT_TRUE(seen.count(id)) << "acknowledged row " << id << " lost";
  ASSERT_OK_AND_ASSIGN(CollectionInfo info, w.engine->Describe("c"));
  EXPECT_EQ(info.rows, static_cast<int64_t>(seen.size()));
  // Search finds exactly the live rows too (FLAT or IVF with every list probed).
  SearchRequest sr;
  sr.vectors = VectorOf(5);
  sr.nq = 1;
  sr.params.k = 200;
  sr.params.nprobe = 4;
  ASSERT_OK_AND_ASSIGN(SearchResponse hits, w.engine->Search("c", sr));
  std::set<int64_t> found;
  for (const Hit& h : hits.hits[0]) EXPECT_TRUE(found.insert(h.id).second) << h.id << " twice";
  EXPECT_EQ(found.size(), seen.size());
}

// After a successful flush and a reopen, every object under a collection is named by its
// manifest or is a WAL record past its checkpoint; a prefix without a manifest (a dropped
// collection) holds nothing. `d_dropped`: the drop of d was acknowledged.
void VerifyNoGarbage(World& w, bool d_dropped) {
  std::map<std::string, std::string> objects = w.mem->Snapshot();
  for (const std::string prefix : {"c/", "d/"}) {
    auto manifest = objects.find(prefix + "manifest.json");
    if (manifest == objects.end()) {
      for (const auto& [key, _] : objects) {
        EXPECT_NE(key.rfind(prefix, 0), 0u) << key << " left by a dropped collection";
      }
      continue;
    }
    if (prefix == "d/") {
      EXPECT_FALSE(d_dropped) << "an acknowledged drop came undone";
    }
    nlohmann::json j = nlohmann::json::parse(manifest->second);
    std::set<std::string> named = {prefix + "manifest.json"};
    for (const auto& s : j["segments"]) {
      named.insert(prefix + "segments/" + s["id"].get<std::string>() + ".vlsg");
      if (s.contains("deleted_key")) named.insert(prefix + s["deleted_key"].get<std::string>());
      if (s.contains("index_key")) named.insert(prefix + s["index_key"].get<std::string>());
    }
    const uint64_t checkpoint = j["wal_checkpoint"].get<uint64_t>();
    const std::string wal = prefix + "wal/";
    for (const auto& [key, _] : objects) {
      if (key.rfind(prefix, 0) != 0 || named.count(key)) continue;
      if (key.rfind(wal, 0) == 0 && std::stoull(key.substr(wal.size())) > checkpoint) continue;
      ADD_FAILURE() << "object " << key << " is named by no manifest";
    }
  }
}

void RunWithFault(int64_t n, unsigned ops, FaultEffect effect, int64_t* injected) {
  World w;
  w.background_flush = false;
  Model m;
  ASSERT_OK(w.Open());
  w.plan->FailNth(n, ops, effect);
  Workload(w, m);
  *injected = w.plan->injected();
  w.plan->Heal();
  w.Crash();
  const std::string ctx = "fault at call " + std::to_string(n) + " of ops mask " +
                          std::to_string(ops) +
                          (effect == FaultEffect::kReplyLost ? " (reply lost)" : " (request lost)");
  ASSERT_OK(w.Open()) << ctx;
  Verify(w, m, ctx + ", reopened");
  // The engine goes on: a flush succeeds and leaves no garbage; the state survives again.
  Result<std::vector<std::string>> names = w.engine->ListCollections();
  if (names.ok() && !names->empty()) {
    ASSERT_OK(w.engine->Flush("c")) << ctx;
  }
  w.Crash();
  ASSERT_OK(w.Open()) << ctx;
  Verify(w, m, ctx + ", flushed and reopened");
  VerifyNoGarbage(w, m.d_dropped);
}

int64_t CountCalls(unsigned ops) {
  World w;
  w.background_flush = false;
  Model m;
  EXPECT_OK(w.Open());
  w.plan->ResetCount(ops);
  Workload(w, m);
  return w.plan->calls();
}

struct Sweep {
  const char* name;
  unsigned ops;
  FaultEffect effect;
};

class EngineFaultSweep : public ::testing::TestWithParam<Sweep> {};

TEST_P(EngineFaultSweep, EveryCallFailsInTurnNothingAcknowledgedIsLost) {
  const Sweep& s = GetParam();
  const int64_t calls = CountCalls(s.ops);
  ASSERT_GT(calls, 0);
  int64_t failed = 0;
  for (int64_t n = 0; n < calls; ++n) {
    int64_t injected = 0;
    RunWithFault(n, s.ops, s.effect, &injected);
    failed += injected;
    if (::testing::Test::HasFatalFailure()) return;
  }
  std::printf("  %s: %lld calls, %lld failures injected\n", s.name,
              static_cast<long long>(calls), static_cast<long long>(failed));
  // Every call is made by the workload itself (no background flusher; index jobs are
  // waited for), so every run meets its fault.
  EXPECT_EQ(failed, calls);
}

INSTANTIATE_TEST_SUITE_P(
    Calls, EngineFaultSweep,
    ::testing::Values(Sweep{"put_lost", static_cast<unsigned>(FaultOp::kPut),
                            FaultEffect::kRequestLost},
                      Sweep{"put_reply_lost", static_cast<unsigned>(FaultOp::kPut),
                            FaultEffect::kReplyLost},
                      Sweep{"get", static_cast<unsigned>(FaultOp::kGet), FaultEffect::kRequestLost},
                      Sweep{"delete_lost", static_cast<unsigned>(FaultOp::kDelete),
                            FaultEffect::kRequestLost},
                      Sweep{"delete_reply_lost", static_cast<unsigned>(FaultOp::kDelete),
                            FaultEffect::kReplyLost},
                      Sweep{"list", static_cast<unsigned>(FaultOp::kList),
                            FaultEffect::kRequestLost}),
    [](const ::testing::TestParamInfo<Sweep>& p) { return std::string(p.param.name); });

// Regression (issue 11): a flush whose segment PUT failed left its rows in a sealing buffer;
// the next successful flush moved the checkpoint past their WAL records and deleted them, so a
// restart lost acknowledged rows.
TEST(EngineFault, FailedSealThenSuccessfulFlushKeepsRows) {
  World w;
  Model m;
  ASSERT_OK(w.Open());
  ASSERT_OK(w.engine->CreateCollection(Schema("c")));
  Insert(w, m, "c", 0, 30);
  w.plan->FailNth(0, static_cast<unsigned>(FaultOp::kPut), FaultEffect::kRequestLost);
  EXPECT_CODE(w.engine->Flush("c"), Code::kUnavailable);
  w.plan->Heal();
  Insert(w, m, "c", 30, 30);
  ASSERT_OK(w.engine->Flush("c"));
  ASSERT_OK_AND_ASSIGN(CollectionInfo info, w.engine->Describe("c"));
  EXPECT_EQ(info.growing_rows, 0) << "the failed seal was not retried";
  EXPECT_EQ(info.rows, 60);
  w.Crash();
  ASSERT_OK(w.Open());
  EXPECT_EQ(m.alive.size(), 60u);
  Verify(w, m, "after restart");
}

// A segment sealed by a flush whose manifest write failed must not reach the store's manifest
// through another writer (an index build) while its rows are still WAL records past the
// checkpoint: a restart would then hold them twice.
TEST(EngineFault, ManifestOfAnotherWriterNeverNamesUncommittedSegments) {
  World w;
  Model m;
  ASSERT_OK(w.Open());
  ASSERT_OK(w.engine->CreateCollection(Schema("c")));
  Insert(w, m, "c", 0, 30);
  ASSERT_OK(w.engine->Flush("c"));
  Insert(w, m, "c", 30, 30);
  // Puts of this flush: the segment, then the manifest (fails).
  w.plan->FailNth(1, static_cast<unsigned>(FaultOp::kPut), FaultEffect::kRequestLost);
  EXPECT_FALSE(w.engine->Flush("c").ok());
  w.plan->Heal();
  ASSERT_OK_AND_ASSIGN(std::string job, w.engine->BuildIndex("c", "FLAT"));
  (void)w.engine->WaitJob(job, 60'000);
  w.Crash();
  ASSERT_OK(w.Open());
  Verify(w, m, "after restart");
}

// The store goes away: writes fail (unacknowledged), flushes fail, Release answers instead of
// hanging; when it comes back the background flusher retries on its own and nothing is lost.
TEST(EngineFault, StoreDownThenBackRetriesInTheBackground) {
  World w;
  Model m;
  ASSERT_OK(w.Open());
  ASSERT_OK(w.engine->CreateCollection(Schema("c")));
  Insert(w, m, "c", 0, 30);
  w.plan->Down();
  Insert(w, m, "c", 30, 10);
  EXPECT_FALSE(m.uncertain.empty());
  EXPECT_CODE(w.engine->Flush("c"), Code::kUnavailable);
  EXPECT_CODE(w.engine->Release("c"), Code::kUnavailable);
  // Long enough for the background flusher to retry (100 ms backoff) and fail at least once.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const std::string metrics = w.engine->metrics().Render();
  const std::string name = "vlake_vectordb_background_flush_failures_total ";
  size_t at = metrics.find("\n" + name);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GT(std::stoll(metrics.substr(at + 1 + name.size())), 0) << metrics;
  w.plan->Heal();
  // The failed flush is retried after its backoff without anyone asking.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int64_t growing = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    ASSERT_OK_AND_ASSIGN(CollectionInfo info, w.engine->Describe("c"));
    growing = info.growing_rows;
    if (growing == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(growing, 0) << "the background flusher did not retry";
  ASSERT_OK(w.engine->Release("c"));
  ASSERT_OK(w.engine->Load("c"));
  w.Crash();
  ASSERT_OK(w.Open());
  Verify(w, m, "after restart");
}

// Open itself meets every fault in turn: it fails cleanly or opens the right state.
TEST(EngineFault, OpenWithEveryCallFailingInTurn) {
  World w;
  Model m;
  ASSERT_OK(w.Open());
  Workload(w, m);
  w.Crash();
  w.plan->ResetCount();
  ASSERT_OK(w.Open());
  const int64_t calls = w.plan->calls();
  w.Crash();
  ASSERT_GT(calls, 0);
  for (int64_t n = 0; n < calls; ++n) {
    w.plan->FailNth(n, kAllFaultOps, FaultEffect::kRequestLost);
    Status st = w.Open();
    w.plan->Heal();
    if (st.ok()) Verify(w, m, "open with call " + std::to_string(n) + " failing");
    w.Crash();
    ASSERT_OK(w.Open());
    Verify(w, m, "reopen after call " + std::to_string(n) + " failed");
    w.Crash();
  }
}

// SetMetric (what Milvus clients' CreateIndex does): persisted in the manifest, refused once an
// index spec is set, and to or from COSINE once rows are stored (they are kept normalized).
// A failing manifest PUT leaves the old metric in effect.
TEST(EngineMetric, SetBeforeTheIndexPersistsAndIsRefusedAfter) {
  World w;
  ASSERT_OK(w.Open());
  ASSERT_OK(w.engine->CreateCollection(Schema("c")));
  ASSERT_OK(w.engine->Insert("c", Rows(0, 40)).status());
  EXPECT_CODE(w.engine->SetMetric("c", vector::Metric::kCosine), Code::kInvalidArgument);
  w.plan->FailNth(0, static_cast<unsigned>(FaultOp::kPut), FaultEffect::kRequestLost);
  EXPECT_FALSE(w.engine->SetMetric("c", vector::Metric::kIP).ok());
  w.plan->Heal();
  ASSERT_OK_AND_ASSIGN(CollectionSchema s, w.engine->Schema("c"));
  EXPECT_EQ(s.metric, vector::Metric::kL2);
  ASSERT_OK(w.engine->SetMetric("c", vector::Metric::kIP));
  // Searches rank by the new metric: the largest inner product first.
  SearchRequest req;
  req.vectors = VectorOf(1);
  req.nq = 1;
  req.params.k = 3;
  ASSERT_OK_AND_ASSIGN(SearchResponse r, w.engine->Search("c", req));
  ASSERT_EQ(r.hits[0].size(), 3u);
  EXPECT_EQ(r.hits[0][0].id, 39);
  w.Crash();
  ASSERT_OK(w.Open());
  ASSERT_OK_AND_ASSIGN(s, w.engine->Schema("c"));
  EXPECT_EQ(s.metric, vector::Metric::kIP) << "the metric was not persisted";
  ASSERT_OK(w.engine->BuildIndex("c", "FLAT").status());
  EXPECT_CODE(w.engine->SetMetric("c", vector::Metric::kL2), Code::kInvalidArgument);
  // A fresh collection may become COSINE before its first insert.
  ASSERT_OK(w.engine->CreateCollection(Schema("e")));
  ASSERT_OK(w.engine->SetMetric("e", vector::Metric::kCosine));
  ASSERT_OK_AND_ASSIGN(s, w.engine->Schema("e"));
  EXPECT_EQ(s.metric, vector::Metric::kCosine);
}

}  // namespace
}  // namespace vlake::vectordb
