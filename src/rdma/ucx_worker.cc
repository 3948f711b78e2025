#include "rdma/ucx_worker.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>

#include "common/guard.h"
#include "common/log.h"

namespace vlake::rdma {

Result<std::unique_ptr<WorkerThread>> WorkerThread::Start(std::shared_ptr<UcxContext> context,
                                                          std::string name) {
  std::unique_ptr<WorkerThread> w(new WorkerThread());
  w->context_ = std::move(context);
  w->name_ = std::move(name);
  VLAKE_ASSIGN_OR_RETURN(w->worker_, CreateWorker(w->context_->get()));
  ucp_address_t* addr = nullptr;
  size_t addr_len = 0;
  ucs_status_t st = ucp_worker_get_address(w->worker_, &addr, &addr_len);
  if (st != UCS_OK) {
    ucp_worker_destroy(w->worker_);
    return UcsStatus("ucp_worker_get_address", st, Code::kUnavailable);
  }
  w->address_.assign(reinterpret_cast<const char*>(addr), addr_len);
  ucp_worker_release_address(w->worker_, addr);
  st = ucp_worker_get_efd(w->worker_, &w->worker_fd_);
  if (st != UCS_OK) {
    ucp_worker_destroy(w->worker_);
    return UcsStatus("ucp_worker_get_efd", st, Code::kUnavailable);
  }
  w->wake_fd_ = UniqueFd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!w->wake_fd_.valid()) {
    ucp_worker_destroy(w->worker_);
    return ErrnoStatus("eventfd", errno);
  }
  w->thread_ = std::thread([raw = w.get()] { raw->Run(); });
  return w;
}

WorkerThread::~WorkerThread() {
  Stop();
  if (worker_) ucp_worker_destroy(worker_);
}

void WorkerThread::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  Wake();
  thread_.join();
}

void WorkerThread::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  Wake();
}

void WorkerThread::Wake() {
  uint64_t one = 1;
  ssize_t n = write(wake_fd_.get(), &one, sizeof(one));
  (void)n;  // EAGAIN means a wake-up is already pending
}

void WorkerThread::Run() {
  auto run_tasks = [&] {
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(tasks_);
    }
    for (auto& task : batch) RunGuarded("data-plane worker task", task);
    return !batch.empty();
  };
  while (!stop_.load(std::memory_order_relaxed)) {
    bool worked = run_tasks();
    while (ucp_worker_progress(worker_) != 0) worked = true;
    if (worked) continue;
    ucs_status_t st = ucp_worker_arm(worker_);
    if (st == UCS_ERR_BUSY) continue;  // events arrived meanwhile
    pollfd fds[2] = {{worker_fd_, POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    // The timeout only bounds the damage of a missed wake-up; progress is event driven.
    poll(fds, 2, st == UCS_OK ? 100 : 1);
    if (fds[1].revents & POLLIN) {
      uint64_t count;
      ssize_t n = read(wake_fd_.get(), &count, sizeof(count));
      (void)n;
    }
  }
  run_tasks();
  if (on_stop_) on_stop_();
  // Let wire-up messages and closes still queued go out before the worker is destroyed: UCX
  // 1.13 asserts when ucp_worker_destroy purges a pending wire-up reply. Bounded, because a
  // vanished peer never acknowledges.
  ucp_request_param_t param{};
  ucs_status_ptr_t flush = ucp_worker_flush_nbx(worker_, &param);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  if (flush != nullptr && !UCS_PTR_IS_ERR(flush)) {
    while (ucp_request_check_status(flush) == UCS_INPROGRESS &&
           std::chrono::steady_clock::now() < deadline) {
      ucp_worker_progress(worker_);
    }
    if (ucp_request_check_status(flush) != UCS_INPROGRESS) ucp_request_free(flush);
  }
  while (ucp_worker_progress(worker_) != 0 && std::chrono::steady_clock::now() < deadline) {
  }
}

}  // namespace vlake::rdma
