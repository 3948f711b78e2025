#include "rdma/ucx_engine.h"

#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/guard.h"
#include "common/log.h"
#include "rdma/ucx_worker.h"

namespace vlake::rdma {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPollInterval = std::chrono::milliseconds(50);

struct Mapping {
  uintptr_t start = 0;
  uintptr_t end = 0;
};

// The writable shared-memory mappings of this process (/dev/shm and System V segments: in
// this process only UCX creates them, when it attaches a client's region).
Result<std::vector<Mapping>> SharedMappings() {
  FILE* f = std::fopen("/proc/self/maps", "re");
  if (!f) return ErrnoStatus("open /proc/self/maps", errno);
  std::vector<Mapping> out;
  char line[512];
  while (std::fgets(line, sizeof(line), f)) {
    unsigned long start = 0, end = 0;
    char perms[8] = {};
    int path_at = 0;
    if (std::sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &path_at) < 3) {
      continue;
    }
    std::string_view path(line + path_at);
    bool shm = path.starts_with("/dev/shm/") || path.starts_with("/SYSV");
    if (shm && perms[1] == 'w' && perms[3] == 's') out.push_back({start, end});
  }
  std::fclose(f);
  return out;
}

// memcpy through the kernel: a page that vanished (a client that shrank its segment) gives
// EFAULT here instead of SIGBUS in the server.
Status CheckedCopy(char* dst, const char* src, size_t n) {
  while (n > 0) {
    iovec local{dst, n};
    iovec remote{const_cast<char*>(src), n};
    ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return Error(Code::kRdmaTransferFailed,
                   std::string("client region is no longer readable: ") + std::strerror(errno));
    }
    if (got == 0) return Error(Code::kRdmaTransferFailed, "client region copy made no progress");
    dst += got;
    src += got;
    n -= static_cast<size_t>(got);
  }
  return Status::Ok();
}

// Runs the chunks of large mapped copies on a few threads. One core's kernel copy out of the
// page cache reaches about half of memcpy bandwidth (no non-temporal stores), and on the
// mapped path the client is passive, so the server's spare cores fill a region faster.
// Jobs are served in arrival order; the submitting thread works on its own job too, so a
// job always progresses even when the pool is busy with others.
class CopyPool {
 public:
  explicit CopyPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~CopyPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // Calls fn(i) for every i in [0, n); returns the first error.
  Status ParallelFor(int n, const std::function<Status(int)>& fn) {
    auto job = std::make_shared<Job>();
    job->n = n;
    job->fn = &fn;
    if (!threads_.empty() && n > 1) {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(job);
      cv_.notify_all();
    }
    Work(*job);
    std::unique_lock<std::mutex> lock(job->mu);
    job->cv.wait(lock, [&] { return job->done == job->n; });
    return job->error;
  }

 private:
  struct Job {
    int n = 0;
    const std::function<Status(int)>* fn = nullptr;
    std::atomic<int> next{0};
    std::mutex mu;
    std::condition_variable cv;
    int done = 0;  // guarded by mu
    Status error;  // guarded by mu
  };

  static void Work(Job& job) {
    for (int i; (i = job.next.fetch_add(1)) < job.n;) {
      Status st = GuardedCall("copy pool task", [&] { return (*job.fn)(i); });
      std::lock_guard<std::mutex> lock(job.mu);
      if (!st.ok() && job.error.ok()) job.error = st;
      if (++job.done == job.n) job.cv.notify_all();
    }
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      std::shared_ptr<Job> job = jobs_.front();
      if (job->next.load() >= job->n) {
        jobs_.pop_front();
        continue;
      }
      lock.unlock();
      Work(*job);
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> jobs_;  // guarded by mu_
  bool stop_ = false;                      // guarded by mu_
  std::vector<std::thread> threads_;
};

struct WorkerState;

// A client endpoint. Fields are touched only on its worker thread.
struct EpEntry {
  WorkerState* ws = nullptr;
  ucp_ep_h ep = nullptr;  // null once closed
  bool failed = false;    // set by the error callback (peer failure mode only)
  std::string address;    // the client's worker address
  std::string key;        // cache key: address + mode
  // Unpacked rkeys, most recent first, keyed by their packed bytes.
  std::list<std::pair<std::string, std::shared_ptr<struct RkeyEntry>>> rkeys;
};

// Owned by its endpoint's cache and by transfers; a transfer also holds the endpoint, so `ep`
// outlives every RkeyEntry that points to it (no ownership cycle).
struct RkeyEntry {
  EpEntry* ep = nullptr;
  ucp_rkey_h rkey = nullptr;
  Mapping mapping;  // valid when the transport maps the region here (rkey_ptr)
  bool mapped = false;
};

struct WorkerState {
  std::unique_ptr<WorkerThread> thread;
  // Endpoints by client worker address, most recent first. Worker thread only.
  std::list<std::shared_ptr<EpEntry>> lru;
  std::unordered_map<std::string, std::list<std::shared_ptr<EpEntry>>::iterator> by_address;
};

// Destruction runs on the worker thread (UCX objects are single-threaded there).
void RunOnWorker(WorkerState* ws, std::function<void()> fn) {
  if (ws->thread->OnThread()) {
    fn();
  } else {
    ws->thread->Post(std::move(fn));
  }
}

void CloseEp(WorkerState* ws, ucp_ep_h ep) {
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  param.flags = UCP_EP_CLOSE_FLAG_FORCE;
  ucs_status_ptr_t req = ucp_ep_close_nbx(ep, &param);
  if (req == nullptr || UCS_PTR_IS_ERR(req)) return;
  while (ucp_request_check_status(req) == UCS_INPROGRESS) {
    ucp_worker_progress(ws->thread->worker());
  }
  ucp_request_free(req);
}

std::shared_ptr<EpEntry> NewEpEntry(WorkerState* ws) {
  return std::shared_ptr<EpEntry>(new EpEntry{.ws = ws}, [ws](EpEntry* e) {
    RunOnWorker(ws, [ws, e] {
      if (e->ep) CloseEp(ws, e->ep);
      delete e;
    });
  });
}

std::shared_ptr<RkeyEntry> NewRkeyEntry(WorkerState* ws) {
  return std::shared_ptr<RkeyEntry>(new RkeyEntry(), [ws](RkeyEntry* e) {
    RunOnWorker(ws, [e] {
      if (e->rkey) ucp_rkey_destroy(e->rkey);
      delete e;
    });
  });
}

void OnEpError(void* arg, ucp_ep_h, ucs_status_t status) {
  auto* entry = static_cast<EpEntry*>(arg);
  entry->failed = true;
  Log(LogLevel::kWarn, "rdma client endpoint failed", {{"status", ucs_status_string(status)}});
}

Result<ucp_ep_h> CreateEp(WorkerState* ws, EpEntry* entry, ucp_err_handling_mode_t mode) {
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
  params.address = reinterpret_cast<const ucp_address_t*>(entry->address.data());
  params.err_mode = mode;
  if (mode == UCP_ERR_HANDLING_MODE_PEER) {
    params.field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLER;
    params.err_handler.cb = OnEpError;
    params.err_handler.arg = entry;
  }
  ucp_ep_h ep = nullptr;
  VLAKE_RETURN_IF_ERROR(
      UcsStatus("connect to client worker", ucp_ep_create(ws->thread->worker(), &params, &ep)));
  return ep;
}

// Shared completion state of one transfer's posted operations.
class Completion {
 public:
  explicit Completion(int slots) : busy_(static_cast<size_t>(slots), false) {}

  struct Tag {
    Completion* self;
    int slot;  // -1: not tied to a bounce buffer
  };

  void Started(int slot) {
    std::lock_guard<std::mutex> lock(mu_);
    ++pending_;
    if (slot >= 0) busy_[slot] = true;
  }
  void Finished(int slot, ucs_status_t status) {
    std::lock_guard<std::mutex> lock(mu_);
    --pending_;
    ++completed_;
    if (slot >= 0) busy_[slot] = false;
    if (status != UCS_OK && error_.ok()) error_ = UcsStatus("rdma operation", status);
    cv_.notify_all();
  }
  // Waits until `ready` holds (evaluated under the lock), an operation failed, `cancel` says
  // stop, or nothing completed for `stall_ms`.
  Status Wait(const std::function<bool()>& ready, const CancelCheck& cancel, int64_t stall_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    uint64_t seen = completed_;
    auto last_progress = Clock::now();
    while (!ready()) {
      if (!error_.ok()) return error_;
      cv_.wait_for(lock, kPollInterval);
      if (ready()) break;
      if (cancel) {
        lock.unlock();
        Status c = cancel();
        lock.lock();
        if (!c.ok()) return c;
      }
      if (completed_ != seen) {
        seen = completed_;
        last_progress = Clock::now();
      } else if (Clock::now() - last_progress > std::chrono::milliseconds(stall_ms)) {
        return Error(Code::kRdmaTransferFailed,
                     "no progress for " + std::to_string(stall_ms) + " ms");
      }
    }
    return error_;
  }
  // Waits for every operation after the endpoint was force-closed, which should complete them
  // all. UCX 1.13 does not always do so for emulated operations (tcp) whose peer died; false
  // when some are still outstanding after `timeout`.
  bool Drain(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pending_ == 0; });
  }
  int pending() {
    std::lock_guard<std::mutex> lock(mu_);
    return pending_;
  }
  int FreeSlot() const {  // under mu_ (called from a Wait predicate)
    for (size_t i = 0; i < busy_.size(); ++i) {
      if (!busy_[i]) return static_cast<int>(i);
    }
    return -1;
  }
  int pending_locked() const { return pending_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int pending_ = 0;
  uint64_t completed_ = 0;
  std::vector<bool> busy_;
  Status error_;
};

void OnSendDone(void* request, ucs_status_t status, void* user_data) {
  auto* tag = static_cast<Completion::Tag*>(user_data);
  tag->self->Finished(tag->slot, status);
  ucp_request_free(request);
}

// Handles the value a ucp_*_nbx call returned.
void Settle(ucs_status_ptr_t req, Completion::Tag* tag) {
  if (req == nullptr) {
    tag->self->Finished(tag->slot, UCS_OK);
  } else if (UCS_PTR_IS_ERR(req)) {
    tag->self->Finished(tag->slot, UCS_PTR_STATUS(req));
  }
}

class UcxTransfer final : public Transfer {
 public:
  UcxTransfer(const UcxEngineOptions& options, CopyPool* copy_pool, std::shared_ptr<EpEntry> ep,
              std::shared_ptr<RkeyEntry> rkey, char* mapped_base, const UcxToken& token,
              CancelCheck cancel)
      : options_(options),
        copy_pool_(copy_pool),
        ep_(std::move(ep)),
        rkey_(std::move(rkey)),
        ws_(ep_->ws),
        mapped_base_(mapped_base),
        remote_addr_(token.remote_addr),
        length_(token.length),
        cancel_(std::move(cancel)),
        ops_(std::make_shared<OpState>(options.chunks_in_flight)),
        completion_(ops_->completion),
        tags_(ops_->tags),
        buffers_(ops_->buffers) {
    for (int i = 0; i < options.chunks_in_flight; ++i) tags_.push_back({&completion_, i});
    tags_.push_back({&completion_, -1});
  }

  ~UcxTransfer() override {
    if (completion_.pending() > 0) Abort();
  }

  uint64_t region_bytes() const override { return length_; }

  Status WriteFromFile(int fd, uint64_t file_offset, uint64_t region_offset,
                       uint64_t length) override {
    VLAKE_RETURN_IF_ERROR(CheckRange(region_offset, length));
    if (length == 0) return Status::Ok();
    Status st = mapped_base_ ? MappedWrite(fd, file_offset, region_offset, length)
                             : PostedWrite(fd, file_offset, region_offset, length);
    if (!st.ok()) Abort();
    return st;
  }

  Status ReadInto(uint64_t region_offset, char* buf, uint64_t length) override {
    VLAKE_RETURN_IF_ERROR(CheckRange(region_offset, length));
    if (length == 0) return Status::Ok();
    Status st = mapped_base_ ? MappedRead(region_offset, buf, length)
                             : PostedRead(region_offset, buf, length);
    if (!st.ok()) Abort();
    return st;
  }

  Status Flush() override {
    if (mapped_base_) {
      std::atomic_thread_fence(std::memory_order_seq_cst);
      return Status::Ok();
    }
    Status st = FlushEp(options_.stall_timeout_ms);
    if (!st.ok()) Abort();
    return st;
  }

  // Waits for the endpoint's wire-up with the client (a flush completes once it is done), so
  // an unreachable client fails here, at the start.
  Status Connect() {
    Status st = FlushEp(options_.connect_timeout_ms);
    if (!st.ok()) {
      Abort();
      return Error(Code::kRdmaTransferFailed, "cannot reach the client's worker: " + st.message());
    }
    return st;
  }

 private:
  Status FlushEp(int64_t timeout_ms) {
    Status st =
        completion_.Wait([&] { return completion_.pending_locked() == 0; }, cancel_, timeout_ms);
    if (!st.ok()) return st;
    Post(Op::kFlush, nullptr, 0, 0, -1);
    return completion_.Wait([&] { return completion_.pending_locked() == 0; }, cancel_, timeout_ms);
  }

  Status CheckRange(uint64_t offset, uint64_t length) const {
    if (offset > length_ || length > length_ - offset) {
      return Error(Code::kInvalidRdmaToken, "transfer outside the registered region");
    }
    return Status::Ok();
  }

  Status Cancelled() { return cancel_ ? cancel_() : Status::Ok(); }

  Status MappedWrite(int fd, uint64_t file_offset, uint64_t region_offset, uint64_t length) {
    char* dst = mapped_base_ + region_offset;
#ifdef MADV_POPULATE_WRITE
    // One call maps the pages instead of one fault per page inside the copy.
    uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    uintptr_t first = reinterpret_cast<uintptr_t>(dst) & ~(page - 1);
    uintptr_t last = reinterpret_cast<uintptr_t>(dst) + length;
    madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_WRITE);
#endif
    uint64_t chunk = options_.chunk_bytes;
    int chunks = static_cast<int>((length + chunk - 1) / chunk);
    auto copy_chunk = [&](int i) -> Status {
      VLAKE_RETURN_IF_ERROR(Cancelled());
      uint64_t done = static_cast<uint64_t>(i) * chunk;
      uint64_t end = std::min(length, done + chunk);
      while (done < end) {
        ssize_t n = pread(fd, dst + done, end - done, static_cast<off_t>(file_offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EFAULT) {
          return Error(Code::kRdmaTransferFailed, "client region is no longer mapped");
        }
        if (n < 0) return ErrnoStatus("read object", errno);
        if (n == 0) return Error(Code::kInternal, "object file shorter than its size");
        done += static_cast<uint64_t>(n);
      }
      return Status::Ok();
    };
    if (copy_pool_ && chunks > 1) return copy_pool_->ParallelFor(chunks, copy_chunk);
    for (int i = 0; i < chunks; ++i) VLAKE_RETURN_IF_ERROR(copy_chunk(i));
    return Status::Ok();
  }

  Status MappedRead(uint64_t region_offset, char* buf, uint64_t length) {
    const char* src = mapped_base_ + region_offset;
    for (uint64_t done = 0; done < length;) {
      VLAKE_RETURN_IF_ERROR(Cancelled());
      uint64_t n = std::min<uint64_t>(length - done, options_.chunk_bytes);
      VLAKE_RETURN_IF_ERROR(CheckedCopy(buf + done, src + done, n));
      done += n;
    }
    return Status::Ok();
  }

  Status PostedWrite(int fd, uint64_t file_offset, uint64_t region_offset, uint64_t length) {
    EnsureBuffers();
    for (uint64_t done = 0; done < length;) {
      int slot = -1;
      VLAKE_RETURN_IF_ERROR(completion_.Wait([&] { return (slot = completion_.FreeSlot()) >= 0; },
                                             cancel_, options_.stall_timeout_ms));
      VLAKE_RETURN_IF_ERROR(Cancelled());
      uint64_t n = std::min<uint64_t>(length - done, options_.chunk_bytes);
      char* buf = buffers_[slot].get();
      for (uint64_t got = 0; got < n;) {
        ssize_t r = pread(fd, buf + got, n - got, static_cast<off_t>(file_offset + done + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return ErrnoStatus("read object", errno);
        if (r == 0) return Error(Code::kInternal, "object file shorter than its size");
        got += static_cast<uint64_t>(r);
      }
      Post(Op::kPut, buf, n, remote_addr_ + region_offset + done, slot);
      done += n;
    }
    return Status::Ok();
  }

  void EnsureBuffers() {
    if (buffers_.empty()) {
      for (int i = 0; i < options_.chunks_in_flight; ++i) {
        buffers_.emplace_back(new char[options_.chunk_bytes]);
      }
    }
  }

  // Batches of up to chunks_in_flight pieces land in the transfer's own buffers and are copied
  // out once complete, so an operation that completes late can never write into the caller's
  // memory.
  Status PostedRead(uint64_t region_offset, char* buf, uint64_t length) {
    EnsureBuffers();
    uint64_t chunk = options_.chunk_bytes;
    for (uint64_t done = 0; done < length;) {
      uint64_t batch_start = done;
      int pieces = 0;
      for (; pieces < options_.chunks_in_flight && done < length; ++pieces) {
        uint64_t n = std::min<uint64_t>(length - done, chunk);
        Post(Op::kGet, buffers_[pieces].get(), n, remote_addr_ + region_offset + done, pieces);
        done += n;
      }
      VLAKE_RETURN_IF_ERROR(completion_.Wait([&] { return completion_.pending_locked() == 0; },
                                             cancel_, options_.stall_timeout_ms));
      for (int i = 0; i < pieces; ++i) {
        uint64_t at = batch_start + static_cast<uint64_t>(i) * chunk;
        std::memcpy(buf + at, buffers_[i].get(), std::min<uint64_t>(length - at, chunk));
      }
    }
    return Status::Ok();
  }

  enum class Op { kPut, kGet, kFlush };

  // Issues one operation on the worker thread; its completion is counted in completion_ (and
  // frees `slot`, when one is given).
  void Post(Op op, char* buf, uint64_t n, uint64_t raddr, int slot) {
    Completion::Tag* tag = slot >= 0 ? &tags_[slot] : &tags_.back();
    completion_.Started(slot);
    auto rkey = rkey_;
    auto ep_entry = ep_;
    ws_->thread->Post([rkey, ep_entry, op, buf, n, raddr, tag] {
      ucp_ep_h ep = ep_entry->ep;
      if (!ep || ep_entry->failed) return tag->self->Finished(tag->slot, UCS_ERR_CONNECTION_RESET);
      ucp_request_param_t param{};
      param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
      param.cb.send = OnSendDone;
      param.user_data = tag;
      switch (op) {
        case Op::kPut:
          return Settle(ucp_put_nbx(ep, buf, n, raddr, rkey->rkey, &param), tag);
        case Op::kGet:
          return Settle(ucp_get_nbx(ep, buf, n, raddr, rkey->rkey, &param), tag);
        case Op::kFlush:
          return Settle(ucp_ep_flush_nbx(ep, &param), tag);
      }
    });
  }

  // Stops everything in flight: force-closing the endpoint completes every outstanding
  // operation (with an error), after which nothing of this transfer can touch the region.
  void Abort() {
    if (completion_.pending() == 0) return;
    auto entry = ep_;
    ws_->thread->Call([entry] {
      if (entry->ep) {
        CloseEp(entry->ws, entry->ep);
        entry->ep = nullptr;
      }
      entry->failed = true;
      return 0;
    });
    if (!completion_.Drain(std::chrono::seconds(5))) {
      // Keep the buffers and completion state alive for operations UCX never completed: a late
      // completion then lands in memory nobody else uses.
      Log(LogLevel::kError, "rdma operations outstanding after the endpoint was closed",
          {{"pending", std::to_string(completion_.pending())}});
      static std::mutex orphans_mu;
      static std::vector<std::shared_ptr<OpState>>* orphans =
          new std::vector<std::shared_ptr<OpState>>();
      std::lock_guard<std::mutex> lock(orphans_mu);
      orphans->push_back(ops_);
    }
  }

  const UcxEngineOptions& options_;
  CopyPool* copy_pool_;  // may be null: copy on the calling thread
  std::shared_ptr<EpEntry> ep_;
  std::shared_ptr<RkeyEntry> rkey_;
  WorkerState* ws_;
  char* mapped_base_;  // the region in this process (mapped path), else null
  uint64_t remote_addr_;
  uint64_t length_;
  CancelCheck cancel_;
  // Completion state and bounce buffers, shared so that they can outlive the transfer when UCX
  // leaves operations outstanding (see Abort).
  struct OpState {
    explicit OpState(int slots) : completion(slots) {}
    Completion completion;
    std::vector<Completion::Tag> tags;  // one per slot, then one for unslotted operations
    std::vector<std::unique_ptr<char[]>> buffers;
  };
  std::shared_ptr<OpState> ops_;
  Completion& completion_;
  std::vector<Completion::Tag>& tags_;
  std::vector<std::unique_ptr<char[]>>& buffers_;
};

class UcxEngine final : public Engine {
 public:
  explicit UcxEngine(UcxEngineOptions options) : options_(std::move(options)) {}
  ~UcxEngine() override {
    {
      // Its entries release UCX objects through their workers, which must still run.
      std::unique_lock<std::shared_mutex> lock(fast_mu_);
      fast_.clear();
    }
    for (auto& ws : workers_) {
      WorkerState* raw = ws.get();
      raw->thread->SetOnStop([raw] {
        raw->by_address.clear();
        raw->lru.clear();
      });
      raw->thread->Stop();
    }
  }

  Status Init() {
    int copy_threads = options_.copy_threads > 0
                           ? options_.copy_threads
                           : static_cast<int>(std::thread::hardware_concurrency()) - 1;
    if (copy_threads > 0) copy_pool_ = std::make_unique<CopyPool>(std::min(copy_threads, 15));
    VLAKE_ASSIGN_OR_RETURN(context_, UcxContext::Create(options_.transports));
    for (int i = 0; i < std::max(1, options_.workers); ++i) {
      auto ws = std::make_unique<WorkerState>();
      VLAKE_ASSIGN_OR_RETURN(ws->thread,
                             WorkerThread::Start(context_, "rdma-" + std::to_string(i)));
      workers_.push_back(std::move(ws));
    }
    return Status::Ok();
  }

  std::string_view name() const override { return "ucx"; }

  bool Serves(const Token& token) const override {
    const auto* ucx = std::get_if<UcxToken>(&token);
    return ucx && ucx->memory == MemoryKind::kHost;
  }

  Result<std::unique_ptr<Transfer>> Open(const Token& token, CancelCheck cancel) override {
    const auto* t = std::get_if<UcxToken>(&token);
    if (!t || !Serves(token)) return Error(Code::kRdmaNotSupported, "token variant not served");
    // Fast path: a mapped region seen before is resolved on this thread with arithmetic and a
    // bounds check, without a round trip to the data-plane thread (it dominated small GETs).
    std::string fast_key = FastKey(*t, t->rkey);
    {
      std::shared_lock<std::shared_mutex> lock(fast_mu_);
      auto it = fast_.find(fast_key);
      if (it != fast_.end()) {
        const FastEntry& f = it->second;
        uintptr_t p = static_cast<uintptr_t>(t->remote_addr + f.delta);
        const Mapping& m = f.rkey->mapping;
        if (p < m.start || p >= m.end || t->length > m.end - p) {
          return Error(Code::kInvalidRdmaToken,
                       "x-amz-rdma-token: address and length run outside the registered region");
        }
        return std::unique_ptr<Transfer>(new UcxTransfer(options_, copy_pool_.get(), f.ep, f.rkey,
                                                         reinterpret_cast<char*>(p), *t,
                                                         std::move(cancel)));
      }
    }
    WorkerState* ws = workers_[std::hash<std::string>()(t->worker_address) % workers_.size()].get();
    struct Opened {
      std::shared_ptr<EpEntry> ep;
      std::shared_ptr<RkeyEntry> rkey;
      char* base = nullptr;
      bool fresh = false;  // a new endpoint: wait for its wire-up
    };
    VLAKE_ASSIGN_OR_RETURN(Opened opened, ws->thread->Call([&]() -> Result<Opened> {
      std::shared_ptr<EpEntry> ep;
      bool fresh = false;
      VLAKE_ASSIGN_OR_RETURN(std::shared_ptr<RkeyEntry> rkey, FindRkey(ws, *t, &ep, &fresh));
      Opened o{ep, rkey, nullptr, fresh};
      if (rkey->mapped) {
        void* ptr = nullptr;
        VLAKE_RETURN_IF_ERROR(UcsStatus("map client region",
                                        ucp_rkey_ptr(rkey->rkey, t->remote_addr, &ptr),
                                        Code::kInvalidRdmaToken));
        VLAKE_ASSIGN_OR_RETURN(o.base,
                               MappedRegion(*rkey, reinterpret_cast<uintptr_t>(ptr), t->length));
      }
      return o;
    }));
    auto transfer = std::make_unique<UcxTransfer>(options_, copy_pool_.get(), opened.ep,
                                                  opened.rkey, opened.base, *t, std::move(cancel));
    if (opened.fresh) VLAKE_RETURN_IF_ERROR(transfer->Connect());
    if (opened.base) {
      std::unique_lock<std::shared_mutex> lock(fast_mu_);
      if (fast_.size() < kMaxFastEntries) {
        fast_[fast_key] = FastEntry{
            opened.ep, opened.rkey,
            reinterpret_cast<uintptr_t>(opened.base) - static_cast<uintptr_t>(t->remote_addr)};
      }
    }
    return std::unique_ptr<Transfer>(std::move(transfer));
  }

 private:
  // A mapped region's resolution: UCX's shared-memory rkey_ptr is base + (address - remote
  // base), so the pointer for any address of the region is address + delta. Safety does not
  // rest on that: every use is checked against the mapping this rkey created.
  struct FastEntry {
    std::shared_ptr<EpEntry> ep;
    std::shared_ptr<RkeyEntry> rkey;
    uintptr_t delta = 0;
  };
  static constexpr size_t kMaxFastEntries = 4096;

  static std::string FastKey(const UcxToken& t, std::string_view rkey) {
    std::string key = t.worker_address;
    key.push_back(t.ucx_allocated ? 'm' : 'p');
    key += rkey;
    return key;
  }

  // The region's pointer in this process, when all of [p, p + length) lies in the mapping
  // the rkey created.
  static Result<char*> MappedRegion(const RkeyEntry& rkey, uintptr_t p, uint64_t length) {
    const Mapping& m = rkey.mapping;
    if (p < m.start || p >= m.end || length > m.end - p) {
      return Error(Code::kInvalidRdmaToken,
                   "x-amz-rdma-token: address and length run outside the registered region");
    }
    return reinterpret_cast<char*>(p);
  }

  // Drops fast-path entries of an endpoint (evicted or failed); any thread.
  void ForgetFast(const EpEntry* ep) {
    std::unique_lock<std::shared_mutex> lock(fast_mu_);
    for (auto it = fast_.begin(); it != fast_.end();) {
      it = it->second.ep.get() == ep ? fast_.erase(it) : std::next(it);
    }
  }

  // Worker thread: the cached endpoint for the client worker (created on first contact).
  // Regions UCX allocated are reached over shared memory, whose transports have no
  // peer-failure support (and the mapped path needs none); other regions get an endpoint that
  // notices a vanished client. A client may hold both kinds, hence the mode in the key.
  Result<std::shared_ptr<EpEntry>> FindEp(WorkerState* ws, const UcxToken& t, bool* fresh) {
    *fresh = false;
    std::string key = t.worker_address + (t.ucx_allocated ? 'm' : 'p');
    auto it = ws->by_address.find(key);
    if (it != ws->by_address.end()) {
      std::shared_ptr<EpEntry> entry = *it->second;
      if (entry->ep && !entry->failed) {
        ws->lru.splice(ws->lru.begin(), ws->lru, it->second);
        return entry;
      }
      ForgetFast(entry.get());
      ws->lru.erase(it->second);
      ws->by_address.erase(it);
    }
    auto entry = NewEpEntry(ws);
    entry->address = t.worker_address;
    entry->key = key;
    auto created = CreateEp(
        ws, entry.get(), t.ucx_allocated ? UCP_ERR_HANDLING_MODE_NONE : UCP_ERR_HANDLING_MODE_PEER);
    if (!created.ok() && !t.ucx_allocated) {
      // Only shared-memory transports in common: no failure detection available.
      created = CreateEp(ws, entry.get(), UCP_ERR_HANDLING_MODE_NONE);
    }
    VLAKE_RETURN_IF_ERROR(created.status());
    entry->ep = *created;
    *fresh = true;
    ws->lru.push_front(entry);
    ws->by_address[key] = ws->lru.begin();
    while (ws->lru.size() > options_.max_endpoints_per_worker) {
      ForgetFast(ws->lru.back().get());
      ws->by_address.erase(ws->lru.back()->key);
      ws->lru.pop_back();
    }
    return entry;
  }

  // UCX computes rkey_ptr() as segment base + (address - remote base) without a bounds check,
  // and its shared-memory put is the same arithmetic. So a mappable region is accepted only
  // when the pointer for the token's address lies in the mapping that unpacking *this* rkey
  // created (found by diffing the process's shared mappings around the unpack; unpacks are
  // serialised across workers so the diff is exact). A forged address can then neither reach
  // the server's own memory nor another client's segment.
  Result<std::shared_ptr<RkeyEntry>> Unpack(WorkerState* ws, const std::shared_ptr<EpEntry>& ep,
                                            const UcxToken& t) {
    auto entry = NewRkeyEntry(ws);
    entry->ep = ep.get();
    std::lock_guard<std::mutex> lock(unpack_mu_);
    VLAKE_ASSIGN_OR_RETURN(std::vector<Mapping> before, SharedMappings());
    VLAKE_RETURN_IF_ERROR(UcsStatus("unpack rkey",
                                    ucp_ep_rkey_unpack(ep->ep, t.rkey.data(), &entry->rkey),
                                    Code::kInvalidRdmaToken));
    void* ptr = nullptr;
    if (ucp_rkey_ptr(entry->rkey, t.remote_addr, &ptr) != UCS_OK) return entry;
    VLAKE_ASSIGN_OR_RETURN(std::vector<Mapping> after, SharedMappings());
    uintptr_t p = reinterpret_cast<uintptr_t>(ptr);
    for (const Mapping& m : after) {
      if (p < m.start || p >= m.end) continue;
      bool is_new = true;
      for (const Mapping& b : before) is_new = is_new && !(b.start == m.start && b.end == m.end);
      if (!is_new) break;
      entry->mapping = m;
      entry->mapped = true;
      return entry;
    }
    return Error(Code::kInvalidRdmaToken,
                 "x-amz-rdma-token: address is outside the segment its rkey names");
  }

  Result<std::shared_ptr<RkeyEntry>> FindRkey(WorkerState* ws, const UcxToken& t,
                                              std::shared_ptr<EpEntry>* ep_out, bool* fresh) {
    VLAKE_ASSIGN_OR_RETURN(std::shared_ptr<EpEntry> ep, FindEp(ws, t, fresh));
    *ep_out = ep;
    for (auto it = ep->rkeys.begin(); it != ep->rkeys.end(); ++it) {
      if (it->first == t.rkey) {
        ep->rkeys.splice(ep->rkeys.begin(), ep->rkeys, it);
        return it->second;
      }
    }
    VLAKE_ASSIGN_OR_RETURN(std::shared_ptr<RkeyEntry> rkey, Unpack(ws, ep, t));
    ep->rkeys.emplace_front(t.rkey, rkey);
    auto mapped_bytes = [&] {
      uint64_t total = 0;
      for (const auto& [key, entry] : ep->rkeys) {
        if (entry->mapped) total += entry->mapping.end - entry->mapping.start;
      }
      return total;
    };
    while (ep->rkeys.size() > options_.max_rkeys_per_endpoint ||
           (ep->rkeys.size() > 1 && mapped_bytes() > options_.max_mapped_bytes_per_endpoint)) {
      {
        std::unique_lock<std::shared_mutex> lock(fast_mu_);
        fast_.erase(FastKey(t, ep->rkeys.back().first));
      }
      ep->rkeys.pop_back();
    }
    return rkey;
  }

  UcxEngineOptions options_;
  std::shared_ptr<UcxContext> context_;
  std::vector<std::unique_ptr<WorkerState>> workers_;
  std::mutex unpack_mu_;  // serialises rkey unpacking so the mapping diff is exact
  std::unique_ptr<CopyPool> copy_pool_;
  std::shared_mutex fast_mu_;
  std::unordered_map<std::string, FastEntry> fast_;  // guarded by fast_mu_
};

}  // namespace

Result<std::unique_ptr<Engine>> CreateUcxEngine(const UcxEngineOptions& options) {
  auto engine = std::make_unique<UcxEngine>(options);
  VLAKE_RETURN_IF_ERROR(engine->Init());
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace vlake::rdma
