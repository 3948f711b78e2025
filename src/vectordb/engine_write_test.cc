// The engine's write surface beyond insert/delete: upsert by key (int64 primary key or a
// varchar key field), the value rules of the narrow and json types, DropIndex and collection
// properties, each through a crash (the engine dropped without a flush) and a failed object
// store call, over the fault-injecting store of object_store_testing.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/testing.h"
#include "vectordb/engine.h"
#include "vectordb/object_store_testing.h"

namespace vlake::vectordb {
namespace {

using vector::CollectionSchema;
using vector::ColumnData;
using vector::FieldSchema;
using vector::FieldType;
using vector::RowBatch;

constexpr int kDim = 4;

struct Engine {
  std::shared_ptr<MemoryObjectStore> mem = std::make_shared<MemoryObjectStore>();
  std::shared_ptr<FaultPlan> plan = std::make_shared<FaultPlan>();
  std::unique_ptr<VectorEngine> engine;

  Status Open() {
    engine.reset();
    EngineOptions options;
    options.background_flush = false;
    VLAKE_ASSIGN_OR_RETURN(engine, VectorEngine::Open(
                                       std::make_unique<FaultInjectingObjectStore>(mem, plan), options));
    return Status::Ok();
  }
  void Crash() { engine.reset(); }
};

// A collection keyed by a varchar `doc` over an auto_id int64 row id, as the Milvus API makes
// one for a VarChar primary key; or keyed by its int64 primary key.
CollectionSchema Keyed(const std::string& name, bool varchar_key) {
  CollectionSchema s;
  s.name = name;
  s.fields = {FieldSchema{"rid", FieldType::kInt64, 0, true, varchar_key},
              FieldSchema{"v", FieldType::kFloatVector, kDim},
              FieldSchema{"version", FieldType::kInt32}};
  if (varchar_key) {
    s.fields.push_back(FieldSchema{"doc", FieldType::kVarchar, 0, false, false, 8});
    s.key_field = "doc";
  }
  return s;
}

// Rows with keys `keys` (as "k<key>" for the varchar key) at `version`.
RowBatch Rows(const CollectionSchema& s, const std::vector<int64_t>& keys, int64_t version) {
  std::vector<FieldSchema> fields;
  for (const FieldSchema& f : s.fields) {
    if (!f.auto_id) fields.push_back(f);
  }
  RowBatch b(fields);
  for (int64_t k : keys) {
    if (ColumnData* rid = b.Find("rid")) rid->int64s.push_back(k);
    for (int j = 0; j < kDim; ++j) b.Find("v")->floats.push_back(static_cast<float>(k * 10 + j));
    b.Find("version")->int64s.push_back(version);
    if (ColumnData* doc = b.Find("doc")) {
      doc->bytes += "k" + std::to_string(k);
      doc->offsets.push_back(doc->bytes.size());
    }
  }
  EXPECT_OK(b.Seal());
  return b;
}

// key -> versions of the live rows with that key.
std::map<std::string, std::multiset<int64_t>> Live(VectorEngine& e, const CollectionSchema& s) {
  QueryRequest q;
  q.filter = "true";
  q.limit = 1 << 20;
  const std::string key = s.key_field.empty() ? "rid" : s.key_field;
  q.output_fields = {key, "version"};
  Result<QueryResponse> r = e.Query(s.name, q);
  EXPECT_OK(r.status());
  std::map<std::string, std::multiset<int64_t>> out;
  if (!r.ok()) return out;
  for (const auto& row : r->rows) {
    const std::string k = std::holds_alternative<std::string>(row[0])
                              ? std::get<std::string>(row[0])
                              : "k" + std::to_string(std::get<int64_t>(row[0]));
    out[k].insert(std::get<int64_t>(row[1]));
  }
  return out;
}

class EngineUpsert : public ::testing::TestWithParam<bool> {};

TEST_P(EngineUpsert, ReplacesByKeyInEveryTierAndThroughACrash) {
  const bool varchar_key = GetParam();
  Engine w;
  ASSERT_OK(w.Open());
  const CollectionSchema s = Keyed("c", varchar_key);
  ASSERT_OK(w.engine->CreateCollection(s));
  ASSERT_OK(w.engine->Insert("c", Rows(s, {1, 2, 3}, 1)).status());
  ASSERT_OK(w.engine->Flush("c"));  // 1..3 sealed
  ASSERT_OK(w.engine->Insert("c", Rows(s, {4, 5}, 1)).status());  // growing
  ASSERT_OK(w.engine->Upsert("c", Rows(s, {2, 5, 6}, 2)).status());
  auto live = Live(*w.engine, s);
  EXPECT_EQ(live.size(), 6u);
  for (const char* k : {"k2", "k5", "k6"}) EXPECT_EQ(live[k], std::multiset<int64_t>{2}) << k;
  for (const char* k : {"k1", "k3", "k4"}) EXPECT_EQ(live[k], std::multiset<int64_t>{1}) << k;

  // An upsert whose WAL PUT fails changes nothing; one that was acknowledged survives a crash.
  w.plan->FailNth(0, static_cast<unsigned>(FaultOp::kPut), FaultEffect::kRequestLost);
  EXPECT_FALSE(w.engine->Upsert("c", Rows(s, {1}, 9)).ok());
  w.plan->Heal();
  EXPECT_EQ(Live(*w.engine, s)["k1"], std::multiset<int64_t>{1});
  ASSERT_OK(w.engine->Upsert("c", Rows(s, {3}, 3)).status());
  w.Crash();
  ASSERT_OK(w.Open());
  live = Live(*w.engine, s);
  EXPECT_EQ(live.size(), 6u);
  EXPECT_EQ(live["k3"], std::multiset<int64_t>{3});
  EXPECT_EQ(live["k2"], std::multiset<int64_t>{2});
  // And after a flush folds the WAL into segments and tombstones.
  ASSERT_OK(w.engine->Flush("c"));
  w.Crash();
  ASSERT_OK(w.Open());
  EXPECT_EQ(Live(*w.engine, s), live);
}

INSTANTIATE_TEST_SUITE_P(Keys, EngineUpsert, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "VarcharKey" : "Int64Key"; });

TEST(EngineUpsert, AnAutoIdPrimaryKeyCannotBeTheKey) {
  Engine w;
  ASSERT_OK(w.Open());
  CollectionSchema s = Keyed("c", true);
  s.key_field.clear();  // the key is then the auto_id primary key
  ASSERT_OK(w.engine->CreateCollection(s));
  EXPECT_CODE(w.engine->Upsert("c", Rows(s, {1}, 1)).status(), Code::kInvalidArgument);
  s.key_field = "rid";
  EXPECT_CODE(s.Validate(), Code::kInvalidArgument);
  s.key_field = "v";
  EXPECT_CODE(s.Validate(), Code::kInvalidArgument);
}

TEST(EngineTypes, ValuesOutsideTheirTypeAreRefusedAndNothingIsWritten) {
  Engine w;
  ASSERT_OK(w.Open());
  CollectionSchema s;
  s.name = "t";
  s.fields = {FieldSchema{"id", FieldType::kInt64, 0, true, false},
              FieldSchema{"v", FieldType::kFloatVector, kDim},
              FieldSchema{"i8", FieldType::kInt8},
              FieldSchema{"i16", FieldType::kInt16},
              FieldSchema{"i32", FieldType::kInt32},
              FieldSchema{"f", FieldType::kFloat},
              FieldSchema{"name", FieldType::kVarchar, 0, false, false, 3},
              FieldSchema{"doc", FieldType::kJson},
              FieldSchema{"$meta", FieldType::kJson, 0, false, false, 0, true}};
  ASSERT_OK(w.engine->CreateCollection(s));
  struct Row {
    int64_t i8 = 0, i16 = 0, i32 = 0;
    double f = 0;
    std::string name = "abc", doc = "[1, {\"a\": null}]", meta = "{}";
  };
  auto batch = [&](const Row& r) {
    RowBatch b(s.fields);
    b.Find("id")->int64s = {1};
    b.Find("v")->floats = std::vector<float>(kDim, 1.0f);
    b.Find("i8")->int64s = {r.i8};
    b.Find("i16")->int64s = {r.i16};
    b.Find("i32")->int64s = {r.i32};
    b.Find("f")->doubles = {r.f};
    for (auto [field, text] : {std::pair{"name", &r.name}, {"doc", &r.doc}, {"$meta", &r.meta}}) {
      b.Find(field)->bytes = *text;
      b.Find(field)->offsets = {0, text->size()};
    }
    EXPECT_OK(b.Seal());
    return b;
  };
  ASSERT_OK(w.engine->Insert("t", batch(Row{-128, 32767, -2147483648LL, 0.1})).status());
  std::vector<Row> bad(8);
  bad[0].i8 = 128;
  bad[1].i8 = -129;
  bad[2].i16 = -32769;
  bad[3].i32 = 2147483648LL;
  bad[4].f = 1e39;  // beyond float32
  bad[5].name = "abcd";
  bad[6].doc = "{\"a\": ";  // not JSON
  bad[7].meta = "[1]";      // the dynamic field holds objects
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_CODE(w.engine->Insert("t", batch(bad[i])).status(), Code::kInvalidArgument) << i;
  }
  QueryRequest q;
  q.filter = "true";
  q.output_fields = {"i8", "i16", "i32", "f", "doc"};
  ASSERT_OK_AND_ASSIGN(QueryResponse r, w.engine->Query("t", q));
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(std::get<int64_t>(r.rows[0][0]), -128);
  EXPECT_EQ(std::get<int64_t>(r.rows[0][1]), 32767);
  EXPECT_EQ(std::get<int64_t>(r.rows[0][2]), -2147483648LL);
  EXPECT_EQ(std::get<double>(r.rows[0][3]), static_cast<double>(0.1f)) << "float32 is kept as float32";
  EXPECT_EQ(std::get<std::string>(r.rows[0][4]), "[1, {\"a\": null}]");
  // The schema, its types and limits survive a restart.
  w.Crash();
  ASSERT_OK(w.Open());
  ASSERT_OK_AND_ASSIGN(CollectionSchema back, w.engine->Schema("t"));
  EXPECT_EQ(back.Find("i16")->type, FieldType::kInt16);
  EXPECT_EQ(back.Find("name")->max_length, 3);
  ASSERT_NE(back.dynamic_field(), nullptr);
  EXPECT_EQ(back.dynamic_field()->name, "$meta");
  EXPECT_CODE(w.engine->Insert("t", batch(bad[5])).status(), Code::kInvalidArgument);
}

TEST(EngineDropIndex, SearchesGoExactAndTheIndexObjectsAreDeleted) {
  Engine w;
  ASSERT_OK(w.Open());
  const CollectionSchema s = Keyed("c", false);
  ASSERT_OK(w.engine->CreateCollection(s));
  std::vector<int64_t> keys(300);
  for (int64_t i = 0; i < 300; ++i) keys[i] = i;
  ASSERT_OK(w.engine->Insert("c", Rows(s, keys, 1)).status());
  ASSERT_OK_AND_ASSIGN(std::string job, w.engine->BuildIndex("c", "HNSW:M=8,efConstruction=40"));
  ASSERT_OK_AND_ASSIGN(Job done, w.engine->WaitJob(job, 60000));
  ASSERT_EQ(done.state, Job::State::kDone) << done.error;
  auto index_objects = [&] {
    Result<std::vector<std::string>> keys_now = w.mem->List("c/indexes/");
    EXPECT_OK(keys_now.status());
    return keys_now.ok() ? keys_now->size() : 0;
  };
  EXPECT_GT(index_objects(), 0u);
  // A failed manifest PUT: an error, and the index is still there after a restart.
  w.plan->FailNth(0, static_cast<unsigned>(FaultOp::kPut), FaultEffect::kRequestLost);
  EXPECT_FALSE(w.engine->DropIndex("c").ok());
  w.plan->Heal();
  w.Crash();
  ASSERT_OK(w.Open());
  ASSERT_OK_AND_ASSIGN(CollectionInfo info, w.engine->Describe("c"));
  EXPECT_FALSE(info.index_spec.empty());
  ASSERT_OK(w.engine->DropIndex("c"));
  EXPECT_EQ(index_objects(), 0u);
  EXPECT_CODE(w.engine->DropIndex("c"), Code::kNotFound);
  w.Crash();
  ASSERT_OK(w.Open());
  ASSERT_OK_AND_ASSIGN(info, w.engine->Describe("c"));
  EXPECT_TRUE(info.index_spec.empty());
  for (const SegmentInfo& seg : info.segments) EXPECT_TRUE(seg.index.empty()) << seg.id;
  SearchRequest req;
  req.vectors = std::vector<float>{1230, 1231, 1232, 1233};
  req.nq = 1;
  req.params.k = 1;
  ASSERT_OK_AND_ASSIGN(SearchResponse r, w.engine->Search("c", req));
  ASSERT_EQ(r.hits[0].size(), 1u);
  EXPECT_EQ(r.hits[0][0].id, 123);
  // The metric may change again once there is no index.
  EXPECT_OK(w.engine->SetMetric("c", vector::Metric::kIP));
}

TEST(EngineProperty, PersistedAndUnchangedByAFailedWrite) {
  Engine w;
  ASSERT_OK(w.Open());
  ASSERT_OK(w.engine->CreateCollection(Keyed("c", false)));
  ASSERT_OK(w.engine->SetProperty("c", "a", "1"));
  w.plan->FailNth(0, static_cast<unsigned>(FaultOp::kPut), FaultEffect::kRequestLost);
  EXPECT_FALSE(w.engine->SetProperty("c", "a", "2").ok());
  w.plan->Heal();
  ASSERT_OK_AND_ASSIGN(auto props, w.engine->Properties("c"));
  EXPECT_EQ(props, (std::map<std::string, std::string>{{"a", "1"}}));
  ASSERT_OK(w.engine->SetProperty("c", "b", "x"));
  ASSERT_OK(w.engine->SetProperty("c", "a", ""));  // erases
  w.Crash();
  ASSERT_OK(w.Open());
  ASSERT_OK_AND_ASSIGN(props, w.engine->Properties("c"));
  EXPECT_EQ(props, (std::map<std::string, std::string>{{"b", "x"}}));
}

}  // namespace
}  // namespace vlake::vectordb
