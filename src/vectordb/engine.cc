#include "vectordb/engine.h"

#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <thread>

#include "common/guard.h"
#include "common/log.h"
#include "common/memory.h"
#include "gpu/device.h"
#include "gpu/gpu_index.h"
#include "vectordb/collection.h"

namespace vlake::vectordb {
namespace {

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::string_view BuildDeviceName(BuildDevice device) {
  return device == BuildDevice::kGpu ? "gpu" : "cpu";
}

std::string_view JobStateName(Job::State state) {
  switch (state) {
    case Job::State::kQueued:
      return "queued";
    case Job::State::kRunning:
      return "running";
    case Job::State::kDone:
      return "done";
    case Job::State::kFailed:
      return "failed";
  }
  return "?";
}

struct VectorEngine::Impl {
  std::unique_ptr<ObjectStore> store;
  EngineOptions options;
  MetricsRegistry own_metrics;  // used when options.metrics is null
  MetricsRegistry* metrics = nullptr;
  Counter* flush_failures = nullptr;
  Counter* job_failures = nullptr;
  Counter* thread_exceptions = nullptr;

  void InitMetrics() {
    metrics = options.metrics ? options.metrics : &own_metrics;
    flush_failures = metrics->GetCounter("vlake_vectordb_background_flush_failures_total",
                                         "Background flushes that failed (retried with backoff)",
                                         "");
    job_failures =
        metrics->GetCounter("vlake_vectordb_index_job_failures_total",
                            "Index build jobs that failed (the job reports the error)", "");
    thread_exceptions = metrics->GetCounter(
        "vlake_vectordb_background_exceptions_total",
        "Exceptions caught at a background thread's entry (logged; the thread goes on)", "");
  }

  // Runs fn on a background thread's behalf: nothing escapes it (a thrown exception is
  // logged and counted, and the thread goes on), so the process stays up.
  template <typename Fn>
  void Guarded(const char* what, Fn&& fn) {
    if (!RunGuarded(what, std::forward<Fn>(fn))) thread_exceptions->Add();
  }

  std::mutex mu;  // guards collections, jobs, queue, stopping
  std::condition_variable cv;
  // A null value reserves a name while CreateCollection writes its manifest.
  std::map<std::string, std::shared_ptr<Collection>> collections;
  std::map<std::string, Job> jobs;
  std::deque<std::string> queue;  // job ids
  // The device of the last BuildIndex per collection: later flushes index on it too.
  std::map<std::string, BuildDevice> build_device;
  int64_t next_job = 1;
  bool stopping = false;
  std::vector<std::thread> threads;

  std::string Enqueue(const std::string& collection, const std::string& spec) {
    // mu held
    char id[32];
    std::snprintf(id, sizeof id, "job-%06" PRId64, next_job++);
    Job job;
    job.id = id;
    job.collection = collection;
    auto c = collections.find(collection);
    if (c != collections.end() && c->second) job.owner = c->second->owner();
    job.spec = spec;
    auto dev = build_device.find(collection);
    job.device = dev == build_device.end() ? BuildDevice::kCpu : dev->second;
    jobs[id] = job;
    queue.push_back(id);
    cv.notify_all();
    return id;
  }

  void RunJob(const std::string& id) {
    std::shared_ptr<Collection> c;
    {
      std::lock_guard<std::mutex> l(mu);
      Job& job = jobs[id];
      job.state = Job::State::kRunning;
      auto it = collections.find(job.collection);
      if (it != collections.end()) c = it->second;
    }
    auto t0 = std::chrono::steady_clock::now();
    ResetPeakRss();
    Status st = c ? Status::Ok() : Status(Code::kNotFound, "collection was dropped");
    std::vector<std::string> segments;
    if (st.ok()) segments = c->SegmentsToIndex();
    BuildDevice device;
    {
      std::lock_guard<std::mutex> l(mu);
      jobs[id].segments_total = static_cast<int64_t>(segments.size());
      device = jobs[id].device;
    }
    for (const std::string& seg : segments) {
      if (!st.ok()) break;
      SegmentBuildReport report;
      st = GuardedCall("index build", [&] { return c->BuildSegmentIndex(seg, device, &report); });
      std::lock_guard<std::mutex> l(mu);
      Job& job = jobs[id];
      if (st.ok()) {
        job.segments.push_back(report);
        ++job.segments_done;
      }
    }
    std::lock_guard<std::mutex> l(mu);
    Job& job = jobs[id];
    job.total_s = Since(t0);
    job.peak_rss_bytes = PeakRssBytes();
    job.state = st.ok() ? Job::State::kDone : Job::State::kFailed;
    job.error = st.ok() ? "" : st.ToString();
    if (!st.ok()) {
      job_failures->Add();
      Log(LogLevel::kWarn, "index build failed", {{"job", id}, {"error", st.ToString()}});
    }
    cv.notify_all();
  }

  void JobLoop() {
    for (;;) {
      std::string id;
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait(l, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
        id = queue.front();
        queue.pop_front();
      }
      Guarded("index job", [&] { RunJob(id); });
    }
  }

  // Seals full growing buffers in the background so inserts never wait for a segment upload.
  void FlushLoop() {
    for (;;) {
      std::vector<std::shared_ptr<Collection>> full;
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait_for(l, std::chrono::milliseconds(100));
        if (stopping) return;
        for (auto& [name, c] : collections) {
          if (c && c->NeedsFlush()) full.push_back(c);  // null: a create in progress
        }
      }
      for (auto& c : full) {
        Guarded("background flush", [&] {
          Status st = c->Flush();
          if (!st.ok()) {
            flush_failures->Add();
            Log(LogLevel::kWarn, "background flush failed (retried)",
                {{"collection", c->name()}, {"error", st.ToString()}});
            return;
          }
          if (!c->SegmentsToIndex().empty()) {
            std::lock_guard<std::mutex> l(mu);
            Enqueue(c->name(), c->index_spec());
          }
        });
      }
    }
  }
};

VectorEngine::VectorEngine(std::unique_ptr<Impl> impl, ObjectStore* store)
    : impl_(std::move(impl)), store_(store) {}

VectorEngine::~VectorEngine() {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->stopping = true;
    impl_->queue.clear();
  }
  impl_->cv.notify_all();
  for (std::thread& t : impl_->threads) t.join();
}

Result<std::unique_ptr<VectorEngine>> VectorEngine::Open(std::unique_ptr<ObjectStore> store,
                                                         EngineOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->InitMetrics();
  VLAKE_ASSIGN_OR_RETURN(std::vector<std::string> dirs, store->ListDirs(""));
  for (const std::string& dir : dirs) {
    std::string name = dir.substr(0, dir.size() - 1);
    if (!vector::IsValidName(name)) continue;
    Result<std::shared_ptr<Collection>> c = Collection::Open(store.get(), name);
    if (c.ok()) (*c)->set_group_commit(options.group_commit);
    if (!c.ok()) {
      if (c.status().code() == Code::kNoSuchKey) {
        // No manifest: what a drop (or a create) that failed half-way left. Best effort.
        Status st = store->DeleteAll(dir);
        if (!st.ok()) {
          Log(LogLevel::kWarn, "leftover objects of a dropped collection not removed",
              {{"prefix", dir}, {"error", st.ToString()}});
        }
        continue;
      }
      return Status(c.status().code(), "collection " + name + ": " + c.status().message());
    }
    impl->collections[name] = *c;
  }
  ObjectStore* raw = store.get();
  impl->store = std::move(store);
  std::unique_ptr<VectorEngine> engine(new VectorEngine(std::move(impl), raw));
  Impl* i = engine->impl_.get();
  for (auto& [name, c] : i->collections) {
    if (!c->SegmentsToIndex().empty()) i->Enqueue(name, c->index_spec());
  }
  if (options.background_flush) i->threads.emplace_back([i] { i->FlushLoop(); });
  for (int t = 0; t < std::max(1, options.job_threads); ++t) {
    i->threads.emplace_back([i] { i->JobLoop(); });
  }
  return engine;
}

MetricsRegistry& VectorEngine::metrics() { return *impl_->metrics; }

Result<std::shared_ptr<Collection>> VectorEngine::Find(const std::string& name) {
  std::lock_guard<std::mutex> l(impl_->mu);
  auto it = impl_->collections.find(name);
  if (it == impl_->collections.end()) {
    return Status(Code::kNotFound, "collection '" + name + "' does not exist");
  }
  return it->second;
}

Status VectorEngine::CreateCollection(const vector::CollectionSchema& schema,
                                      const CollectionOptions& options) {
  VLAKE_RETURN_IF_ERROR(schema.Validate());
  int64_t max_rows = options.segment_max_rows;
  if (max_rows <= 0) {
    max_rows = std::max<int64_t>(1, impl_->options.segment_max_bytes / (4 * schema.dim()));
  }
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    if (impl_->collections.count(schema.name)) {
      return Status(Code::kAlreadyExists, "collection '" + schema.name + "' already exists");
    }
    impl_->collections[schema.name] = nullptr;  // reserve the name while the manifest is written
  }
  Result<std::shared_ptr<Collection>> c =
      Collection::Create(store_, schema, max_rows, options.owner);
  std::lock_guard<std::mutex> l(impl_->mu);
  if (!c.ok()) {
    impl_->collections.erase(schema.name);
    return c.status();
  }
  (*c)->set_group_commit(impl_->options.group_commit);
  impl_->collections[schema.name] = *c;
  return Status::Ok();
}

Result<std::vector<std::string>> VectorEngine::ListCollections() {
  std::lock_guard<std::mutex> l(impl_->mu);
  std::vector<std::string> names;
  for (const auto& [name, c] : impl_->collections) {
    if (c) names.push_back(name);
  }
  return names;
}

Result<CollectionInfo> VectorEngine::Describe(const std::string& name) {
  VLAKE_ASSIGN_OR_RETURN(auto c, Find(name));
  if (!c) return Status(Code::kNotFound, "collection '" + name + "' is being created or dropped");
  return c->Describe();
}

Result<vector::CollectionSchema> VectorEngine::Schema(const std::string& name) {
  VLAKE_ASSIGN_OR_RETURN(auto c, Find(name));
  if (!c) return Status(Code::kNotFound, "collection '" + name + "' is being created or dropped");
  return c->schema();
}

Result<std::string> VectorEngine::Owner(const std::string& name) {
  VLAKE_ASSIGN_OR_RETURN(auto c, Find(name));
  if (!c) return Status(Code::kNotFound, "collection '" + name + "' is being created or dropped");
  return c->owner();
}

Status VectorEngine::DropCollection(const std::string& name) {
  VLAKE_ASSIGN_OR_RETURN(auto c, Find(name));
  if (!c) return Status(Code::kNotFound, "collection '" + name + "' is being created or dropped");
  {
    // Reserved (null) while its objects go, so a create of the same name waits its turn.
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->collections[name] = nullptr;
  }
  Status st = c->Drop();
  std::lock_guard<std::mutex> l(impl_->mu);
  if (st.ok()) {
    impl_->collections.erase(name);
  } else {
    impl_->collections[name] = c;  // the manifest is still there: so is the collection
  }
  return st;
}

#define VLAKE_FIND_COLLECTION(var, name)        \
  VLAKE_ASSIGN_OR_RETURN(auto var, Find(name)); \
  if (!var) return Status(Code::kNotFound, "collection '" + (name) + "' is being created or dropped")

Result<InsertResult> VectorEngine::Insert(const std::string& name, vector::RowBatch rows) {
  VLAKE_FIND_COLLECTION(c, name);
  return c->Insert(std::move(rows));
}

Result<InsertResult> VectorEngine::Upsert(const std::string& name, vector::RowBatch rows) {
  VLAKE_FIND_COLLECTION(c, name);
  return c->Upsert(std::move(rows));
}

Result<int64_t> VectorEngine::Delete(const std::string& name, const std::vector<int64_t>& ids,
                                     const std::string& filter) {
  VLAKE_FIND_COLLECTION(c, name);
  return c->Delete(ids, filter);
}

Status VectorEngine::Flush(const std::string& name) {
  VLAKE_FIND_COLLECTION(c, name);
  VLAKE_RETURN_IF_ERROR(c->Flush());
  if (!c->SegmentsToIndex().empty()) {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->Enqueue(name, c->index_spec());
  }
  return Status::Ok();
}

Result<int64_t> VectorEngine::Compact(const std::string& name, double min_deleted_fraction) {
  VLAKE_FIND_COLLECTION(c, name);
  VLAKE_ASSIGN_OR_RETURN(int64_t n, c->Compact(min_deleted_fraction));
  if (!c->SegmentsToIndex().empty()) {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->Enqueue(name, c->index_spec());
  }
  return n;
}

Result<std::string> VectorEngine::BuildIndex(const std::string& name, const std::string& factory,
                                             BuildDevice device) {
  VLAKE_FIND_COLLECTION(c, name);
  if (device == BuildDevice::kGpu) {
    // Refused before anything changes: no GPU here, or no GPU builder for this index type.
    VLAKE_ASSIGN_OR_RETURN(bool buildable, gpu::GpuBuildable(factory));
    if (!buildable) {
      return Status(Code::kNotImplemented,
                    factory + " has no GPU builder (GPU: IVF_FLAT, IVF_PQ, HNSW via CAGRA, FLAT)");
    }
    VLAKE_RETURN_IF_ERROR(gpu::ListDevices().status());
  }
  VLAKE_RETURN_IF_ERROR(c->SetIndexSpec(factory));
  VLAKE_RETURN_IF_ERROR(c->Flush());
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->build_device[name] = device;
  return impl_->Enqueue(name, c->index_spec());
}

Result<Job> VectorEngine::GetJob(const std::string& id) {
  std::lock_guard<std::mutex> l(impl_->mu);
  auto it = impl_->jobs.find(id);
  if (it == impl_->jobs.end()) return Status(Code::kNotFound, "no job '" + id + "'");
  return it->second;
}

Result<Job> VectorEngine::WaitJob(const std::string& id, int64_t timeout_ms) {
  std::unique_lock<std::mutex> l(impl_->mu);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto it = impl_->jobs.find(id);
    if (it == impl_->jobs.end()) return Status(Code::kNotFound, "no job '" + id + "'");
    if (it->second.state == Job::State::kDone || it->second.state == Job::State::kFailed) {
      return it->second;
    }
    if (impl_->cv.wait_until(l, deadline) == std::cv_status::timeout) {
      return Status(Code::kTimeout, "job " + id + " still running");
    }
  }
}

Status VectorEngine::SetMetric(const std::string& name, vector::Metric metric) {
  VLAKE_FIND_COLLECTION(c, name);
  return c->SetMetric(metric);
}

Status VectorEngine::DropIndex(const std::string& name) {
  VLAKE_FIND_COLLECTION(c, name);
  return c->DropIndex();
}

Status VectorEngine::SetProperty(const std::string& name, const std::string& key,
                                 const std::string& value) {
  VLAKE_FIND_COLLECTION(c, name);
  return c->SetProperty(key, value);
}

Result<std::map<std::string, std::string>> VectorEngine::Properties(const std::string& name) {
  VLAKE_FIND_COLLECTION(c, name);
  return c->properties();
}

Status VectorEngine::Load(const std::string& name) {
  VLAKE_FIND_COLLECTION(c, name);
  return c->Load();
}

Status VectorEngine::Release(const std::string& name) {
  VLAKE_FIND_COLLECTION(c, name);
  return c->Release();
}

Result<SearchResponse> VectorEngine::Search(const std::string& name, const SearchRequest& req) {
  VLAKE_FIND_COLLECTION(c, name);
  return c->Search(req);
}

Result<QueryResponse> VectorEngine::Query(const std::string& name, const QueryRequest& req) {
  VLAKE_FIND_COLLECTION(c, name);
  return c->Query(req);
}

}  // namespace vlake::vectordb
