// Concurrency of the engine's read and write paths: searches run on published snapshots and
// never hold up a write, inserts from many clients share WAL records (group commit), and every
// acknowledged row is found afterwards, also after a crash.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "common/testing.h"
#include "vectordb/engine.h"
#include "vectordb/object_store_testing.h"

namespace vlake::vectordb {
namespace {

using vector::CollectionSchema;
using vector::FieldSchema;
using vector::FieldType;
using vector::RowBatch;

// A store whose WAL PUTs wait at a gate while it is closed: a test holds the first insert
// inside its PUT while others queue behind it.
class GatedStore final : public ObjectStore {
 public:
  explicit GatedStore(std::shared_ptr<ObjectStore> base) : base_(std::move(base)) {}

  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> l(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Blocks until `n` WAL PUTs wait at the gate.
  void AwaitWaiting(int n) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return waiting_ >= n; });
  }
  int64_t wal_puts() const { return wal_puts_.load(); }

  Status Put(const std::string& key, std::string_view bytes) override {
    if (key.find("/wal/") != std::string::npos) {
      ++wal_puts_;
      std::unique_lock<std::mutex> l(mu_);
      ++waiting_;
      cv_.notify_all();
      cv_.wait(l, [&] { return open_; });
      --waiting_;
    }
    return base_->Put(key, bytes);
  }
  Result<Blob> Get(const std::string& key) override { return base_->Get(key); }
  Result<uint64_t> Size(const std::string& key) override { return base_->Size(key); }
  Result<std::string> GetRange(const std::string& key, uint64_t offset, uint64_t length) override {
    return base_->GetRange(key, offset, length);
  }
  Result<client::GetResult> GetIntoDevice(const std::string& key, void* device_ptr, uint64_t offset,
                                          uint64_t length) override {
    return base_->GetIntoDevice(key, device_ptr, offset, length);
  }
  Result<std::vector<std::string>> List(const std::string& prefix) override {
    return base_->List(prefix);
  }
  Result<std::vector<std::string>> ListDirs(const std::string& prefix) override {
    return base_->ListDirs(prefix);
  }
  Status Delete(const std::string& key) override { return base_->Delete(key); }

 private:
  std::shared_ptr<ObjectStore> base_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int waiting_ = 0;
  std::atomic<int64_t> wal_puts_{0};
};

constexpr int kDim = 16;

CollectionSchema Schema() {
  CollectionSchema s;
  s.name = "c";
  s.fields = {FieldSchema{"id", FieldType::kInt64, 0, true, true},
              FieldSchema{"v", FieldType::kFloatVector, kDim},
              FieldSchema{"writer", FieldType::kInt32}};
  return s;
}

RowBatch Rows(int64_t n, int writer, float base) {
  RowBatch b({FieldSchema{"v", FieldType::kFloatVector, kDim}, FieldSchema{"writer", FieldType::kInt32}});
  for (int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < kDim; ++j) b.Find("v")->floats.push_back(base + static_cast<float>(i * kDim + j));
    b.Find("writer")->int64s.push_back(writer);
  }
  EXPECT_OK(b.Seal());
  return b;
}

std::set<int64_t> LiveIds(VectorEngine& e) {
  QueryRequest q;
  q.filter = "true";
  q.limit = 1 << 24;
  Result<QueryResponse> r = e.Query("c", q);
  EXPECT_OK(r.status());
  return r.ok() ? std::set<int64_t>(r->ids.begin(), r->ids.end()) : std::set<int64_t>{};
}

std::unique_ptr<VectorEngine> OpenEngine(std::unique_ptr<ObjectStore> store) {
  EngineOptions options;
  options.background_flush = false;
  Result<std::unique_ptr<VectorEngine>> e = VectorEngine::Open(std::move(store), options);
  EXPECT_OK(e.status());
  return e.ok() ? std::move(*e) : nullptr;
}

TEST(EngineGroupCommit, InsertsQueuedBehindOneWalPutShareTheNext) {
  auto mem = std::make_shared<MemoryObjectStore>();
  auto gated = std::make_unique<GatedStore>(mem);
  GatedStore* gate = gated.get();
  std::unique_ptr<VectorEngine> e = OpenEngine(std::move(gated));
  ASSERT_OK(e->CreateCollection(Schema()));
  const int64_t before = gate->wal_puts();
  gate->Close();
  constexpr int kWriters = 12;
  std::vector<Result<InsertResult>> results(kWriters, Status(Code::kInternal, "not run"));
  std::thread first([&] { results[0] = e->Insert("c", Rows(3, 0, 0)); });
  gate->AwaitWaiting(1);  // the first insert is inside its WAL PUT
  std::vector<std::thread> others;
  for (int w = 1; w < kWriters; ++w) {
    others.emplace_back([&, w] { results[w] = e->Insert("c", Rows(3, w, 1000.0f * w)); });
  }
  // Give the others time to queue (they cannot commit: the first holds the commit).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  gate->Open();
  first.join();
  for (auto& t : others) t.join();
  std::set<int64_t> acked;
  for (int w = 0; w < kWriters; ++w) {
    ASSERT_OK(results[w].status()) << w;
    ASSERT_EQ(results[w]->ids.size(), 3u);
    acked.insert(results[w]->ids.begin(), results[w]->ids.end());
  }
  EXPECT_EQ(acked.size(), 3u * kWriters) << "every insert has ids of its own";
  // The first PUT, then the queued inserts together (the sleep lets them all queue; a slow
  // machine may split them, never into one PUT each).
  EXPECT_LT(gate->wal_puts() - before, kWriters);
  EXPECT_EQ(LiveIds(*e), acked);
  // Each writer's rows carry its own values (the group kept rows with their ids).
  for (int w = 0; w < kWriters; ++w) {
    QueryRequest q;
    q.filter = "writer == " + std::to_string(w);
    q.output_fields = {"v"};
    ASSERT_OK_AND_ASSIGN(QueryResponse r, e->Query("c", q));
    ASSERT_EQ(r.ids.size(), 3u);
    std::set<int64_t> mine(results[w]->ids.begin(), results[w]->ids.end());
    for (size_t i = 0; i < r.ids.size(); ++i) {
      EXPECT_TRUE(mine.count(r.ids[i])) << w;
      const auto& v = std::get<std::vector<float>>(r.rows[i][0]);
      EXPECT_GE(v[0], 1000.0f * w);
      EXPECT_LT(v[0], 1000.0f * w + 3 * kDim);
    }
  }
  // After a crash the same rows come back from the shared WAL records.
  e.reset();
  e = OpenEngine(std::make_unique<GatedStore>(mem));
  EXPECT_EQ(LiveIds(*e), acked);
}

TEST(EngineGroupCommit, AFailedSharedPutFailsEveryInsertInItAndWritesNone) {
  auto mem = std::make_shared<MemoryObjectStore>();
  auto plan = std::make_shared<FaultPlan>();
  std::unique_ptr<VectorEngine> e =
      OpenEngine(std::make_unique<FaultInjectingObjectStore>(mem, plan));
  ASSERT_OK(e->CreateCollection(Schema()));
  // Many concurrent writers with every 5th PUT lost: whatever is acknowledged is there, after
  // a crash too, and nothing unacknowledged is.
  std::mutex mu;
  std::set<int64_t> acked;
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  std::atomic<bool> stop{false};
  plan->FailNth(4, static_cast<unsigned>(FaultOp::kPut), FaultEffect::kRequestLost);
  std::thread faults([&] {  // and again now and then while the writers run
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (plan->injected() > 0) {
        plan->FailNth(4, static_cast<unsigned>(FaultOp::kPut), FaultEffect::kRequestLost);
      }
    }
  });
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 25; ++i) {
        Result<InsertResult> r = e->Insert("c", Rows(2, w, static_cast<float>(i)));
        std::lock_guard<std::mutex> l(mu);
        if (r.ok()) {
          acked.insert(r->ids.begin(), r->ids.end());
        } else {
          ++failures;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  faults.join();
  plan->Heal();
  EXPECT_GT(failures.load(), 0) << "no insert failed: the test tested nothing";
  EXPECT_FALSE(acked.empty());
  EXPECT_EQ(LiveIds(*e), acked);
  e.reset();
  e = OpenEngine(std::make_unique<FaultInjectingObjectStore>(mem, plan));
  EXPECT_EQ(LiveIds(*e), acked) << failures.load() << " inserts failed";
}

TEST(EngineSnapshots, InsertsDeletesAndFlushesCompleteWhileALongSearchRuns) {
  std::unique_ptr<VectorEngine> e = OpenEngine(std::make_unique<MemoryObjectStore>());
  ASSERT_OK(e->CreateCollection(Schema()));
  for (int i = 0; i < 10; ++i) ASSERT_OK(e->Insert("c", Rows(2000, 0, i * 1e5f)).status());
  const std::set<int64_t> initial = LiveIds(*e);
  // A search that takes a long time: many queries, exact, over every row.
  SearchRequest big;
  big.nq = 1000;
  big.vectors.assign(static_cast<size_t>(big.nq) * kDim, 0.5f);
  big.params.k = 50;
  big.filter = "writer >= 0";
  std::atomic<bool> searching{true};
  Status search_status;
  std::thread search([&] {
    Result<SearchResponse> r = e->Search("c", big);
    if (!r.ok()) search_status = r.status();
    searching = false;
  });
  int64_t writes_during_search = 0;
  std::set<int64_t> added;
  while (searching) {
    ASSERT_OK_AND_ASSIGN(InsertResult r, e->Insert("c", Rows(1, 1, -1)));
    added.insert(r.ids.begin(), r.ids.end());
    ASSERT_OK(e->Delete("c", {r.ids[0]}, "").status());
    added.erase(r.ids[0]);
    ASSERT_OK_AND_ASSIGN(r, e->Insert("c", Rows(1, 2, -2)));
    added.insert(r.ids.begin(), r.ids.end());
    if (searching) ++writes_during_search;
    if (writes_during_search % 50 == 1) {
      ASSERT_OK(e->Flush("c"));
    }
  }
  search.join();
  ASSERT_OK(search_status);
  EXPECT_GT(writes_during_search, 0) << "no write completed while the search ran";
  std::set<int64_t> want = initial;
  want.insert(added.begin(), added.end());
  EXPECT_EQ(LiveIds(*e), want);
}

TEST(EngineSnapshots, ASearchSeesAnUpsertWholeOrNotAtAll) {
  std::unique_ptr<VectorEngine> e = OpenEngine(std::make_unique<MemoryObjectStore>());
  CollectionSchema s;
  s.name = "c";
  s.fields = {FieldSchema{"id", FieldType::kInt64, 0, true, false},
              FieldSchema{"v", FieldType::kFloatVector, kDim}};
  ASSERT_OK(e->CreateCollection(s));
  auto row = [&](int64_t id) {
    RowBatch b(s.fields);
    b.Find("id")->int64s = {id};
    b.Find("v")->floats.assign(kDim, static_cast<float>(id));
    EXPECT_OK(b.Seal());
    return b;
  };
  for (int64_t id = 0; id < 50; ++id) ASSERT_OK(e->Insert("c", row(id)).status());
  std::atomic<bool> done{false};
  std::atomic<int64_t> bad{0}, seen{0};
  std::thread reader([&] {
    QueryRequest q;
    q.filter = "id == 7";
    while (!done) {
      Result<QueryResponse> r = e->Query("c", q);
      if (!r.ok() || r->ids.size() != 1) ++bad;  // never zero (deleted, not yet inserted) or two
      ++seen;
    }
  });
  for (int i = 0; i < 3000; ++i) {
    ASSERT_OK(e->Upsert("c", row(7)).status());
    if (i % 500 == 499) {
      ASSERT_OK(e->Flush("c"));
    }
  }
  done = true;
  reader.join();
  EXPECT_GT(seen.load(), 0);
  EXPECT_EQ(bad.load(), 0) << "a query saw an upsert half applied";
}

}  // namespace
}  // namespace vlake::vectordb
