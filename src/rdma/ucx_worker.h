// A UCX worker owned by one thread that progresses it, with a task queue so other threads can
// run code "on" the worker. Every UCX call on the worker (endpoint creation, rkey unpacking,
// posting operations, completion callbacks) happens on that thread, so the worker runs in
// UCS_THREAD_MODE_SINGLE without locks inside UCX.
//
// The loop is event driven: when UCX has nothing to progress it arms the worker and sleeps in
// poll() on the worker's event fd and the task eventfd, so an idle worker costs no CPU.
//
// Thread-safety: Post/Call from any thread; worker() only inside tasks.
#pragma once

#include <ucp/api/ucp.h>

#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/fd.h"
#include "common/status.h"
#include "rdma/ucx_common.h"

namespace vlake::rdma {

class WorkerThread {
 public:
  static Result<std::unique_ptr<WorkerThread>> Start(std::shared_ptr<UcxContext> context,
                                                     std::string name);
  // Stop() then destroys the worker.
  ~WorkerThread();
  // Runs the queued tasks, then `on_stop` (release endpoints there), and joins the thread.
  // The object stays valid (tasks posted later run inline on the caller's next Call).
  void Stop();
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  ucp_worker_h worker() const { return worker_; }
  // ucp_worker_get_address() bytes; fixed for the worker's life.
  const std::string& address() const { return address_; }
  bool OnThread() const { return std::this_thread::get_id() == thread_.get_id(); }

  // Queues `task` to run on the worker thread.
  void Post(std::function<void()> task);
  // Runs `fn` on the worker thread and waits for its result (directly when already there).
  template <typename F>
  auto Call(F fn) -> decltype(fn()) {
    if (OnThread()) return fn();
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto future = task.get_future();
    auto shared = std::make_shared<decltype(task)>(std::move(task));
    Post([shared] { (*shared)(); });
    return future.get();
  }
  // Set before the destructor runs: the last task, for releasing endpoints and rkeys.
  void SetOnStop(std::function<void()> on_stop) { on_stop_ = std::move(on_stop); }

 private:
  WorkerThread() = default;
  void Run();
  void Wake();

  std::shared_ptr<UcxContext> context_;
  ucp_worker_h worker_ = nullptr;
  std::string address_;
  std::string name_;
  int worker_fd_ = -1;  // owned by UCX
  UniqueFd wake_fd_;    // eventfd
  std::mutex mu_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  std::atomic<bool> stop_{false};
  std::function<void()> on_stop_;
  std::thread thread_;
};

}  // namespace vlake::rdma
