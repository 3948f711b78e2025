#include "http/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstring>
#include <exception>
#include <optional>

#include "common/encoding.h"
#include "common/log.h"
#include "http/chunked.h"
#include "http/parser.h"
#include "http/tls.h"

namespace vlake::http {

struct HttpServer::Connection {
  Connection(int fd_in, std::string peer_in, std::string peer_host_in)
      : fd(fd_in), peer(std::move(peer_in)), peer_host(std::move(peer_host_in)) {}
  UniqueFd fd;
  std::string peer;       // "host:port"
  std::string peer_host;  // the address alone: the per-peer limit's key
  // Guards `busy` and `evicted`. Stop() and eviction shut down only connections that are not
  // busy, so a request whose head was accepted always gets its response (or the drain timeout).
  std::mutex mu;
  bool busy = false;
  bool evicted = false;  // closed to make room for a newer unauthenticated connection
  // Guarded by the server's mu_. Counted in the unauthenticated limits until a request of
  // this connection authenticated (or it was evicted); `seq` orders connections by age.
  bool counted_unauthenticated = false;
  uint64_t seq = 0;
};

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadBufferBytes = 64 * 1024;
// Reads at least this large go straight from the socket into the handler's buffer.
constexpr size_t kDirectReadBytes = 16 * 1024;
// An unread body remainder up to this size is read and dropped to keep the connection alive.
constexpr uint64_t kMaxDrainBytes = 1 << 20;
// Closing with unread input makes the kernel send RST, which can destroy the response before
// the client reads it; so such closes shut down writes first and discard input for a while.
constexpr int kLingerTotalMs = 2000;
constexpr int kLingerReadMs = 500;
constexpr size_t kLingerMaxBytes = 64 << 20;
// File bodies under TLS are read and encrypted in pieces of this size.
constexpr size_t kTlsFileChunkBytes = 256 * 1024;

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kTooManyConnections =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    "Content-Length: 20\r\nConnection: close\r\n\r\nToo many connections";

bool IsConnectionGone(int err) {
  return err == ECONNRESET || err == EPIPE || err == ENOTCONN || err == ESHUTDOWN;
}

Status RecvError(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK) return Error(Code::kRequestTimeout, "peer stalled");
  if (IsConnectionGone(err)) return Error(Code::kIncompleteBody, "connection reset by peer");
  return ErrnoStatus("recv", err);
}

Status SendError(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK) return Error(Code::kRequestTimeout, "send stalled");
  return ErrnoStatus("send", err);
}

std::string PeerName(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  bool v6 = false;
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    port = ntohs(a->sin6_port);
    v6 = true;
  }
  // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict on operator+ chains of
  // a char array and literals.
  std::string out;
  out.reserve(sizeof(host) + 8);
  if (v6) out.push_back('[');
  out.append(host);
  if (v6) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port));
  return out;
}

// "host:port" -> "host" (brackets of an IPv6 address kept).
std::string PeerHost(const std::string& peer) {
  size_t colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

void AppendUint(std::string* out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

// A connection's socket and read buffer. Bytes in [start_, end_) were received but not yet
// consumed; after a request head they belong to the body or to the next pipelined request.
class ConnIo {
 public:
  ConnIo(int fd, size_t max_head_bytes)
      : fd_(fd),
        buf_(std::make_unique_for_overwrite<char[]>(kReadBufferBytes)),
        cap_(kReadBufferBytes),
        max_cap_(std::max(kReadBufferBytes, max_head_bytes + 1)) {}

  int fd() const { return fd_; }
  // Routes all further I/O through a TLS session (not owned; outlives this ConnIo's use).
  void set_tls(TlsSession* tls) { tls_ = tls; }
  std::string_view Buffered() const { return {buf_.get() + start_, end_ - start_}; }
  size_t buffered_size() const { return end_ - start_; }
  void Consume(size_t n) {
    start_ += n;
    if (start_ == end_) start_ = end_ = scan_ = 0;
  }

  // Blocking receive timeouts via SO_RCVTIMEO cost one syscall per change rather than a
  // poll() per read; the value rarely changes within a keep-alive loop.
  // A timeout <= 0 waits forever (the kernel's meaning of a zero SO_RCVTIMEO).
  void SetRecvTimeout(int timeout_ms) {
    if (timeout_ms < 0) timeout_ms = 0;
    if (timeout_ms == rcv_timeout_ms_) return;
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    rcv_timeout_ms_ = timeout_ms;
  }

  // Receives more bytes after end_. Returns 0 on orderly EOF. The buffer grows only for a
  // request head (up to max_head_bytes + 1, enough for the parser to see the overflow).
  Result<size_t> Fill(int timeout_ms) {
    if (end_ == cap_ && start_ > 0) {
      std::memmove(buf_.get(), buf_.get() + start_, end_ - start_);
      scan_ -= std::min(scan_, start_);
      end_ -= start_;
      start_ = 0;
    }
    if (end_ == cap_) {
      if (cap_ >= max_cap_) return Error(Code::kInternal, "read buffer full");
      size_t new_cap = std::min(max_cap_, cap_ * 2);
      auto bigger = std::make_unique_for_overwrite<char[]>(new_cap);
      std::memcpy(bigger.get(), buf_.get(), end_);
      buf_ = std::move(bigger);
      cap_ = new_cap;
    }
    SetRecvTimeout(timeout_ms);
    while (true) {
      ssize_t n = RecvSome(buf_.get() + end_, cap_ - end_);
      if (n >= 0) {
        end_ += static_cast<size_t>(n);
        return static_cast<size_t>(n);
      }
      if (errno != EINTR) return RecvError(errno);
    }
  }

  // Receives straight into `dst` (the buffer must be empty, or bytes would be reordered).
  Result<size_t> RecvInto(char* dst, size_t n, int timeout_ms) {
    SetRecvTimeout(timeout_ms);
    while (true) {
      ssize_t r = RecvSome(dst, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) return RecvError(errno);
    }
  }

  // Whether the buffered bytes may hold a complete head: an LF followed by (CR) LF. The
  // full parser runs only then, so a head dribbled in byte by byte is scanned about once.
  bool HeadMayBeComplete() {
    const char* base = buf_.get();
    size_t p = std::max(scan_, start_);
    while (p < end_) {
      const void* nl = std::memchr(base + p, '\n', end_ - p);
      if (nl == nullptr) break;
      size_t at = static_cast<const char*>(nl) - base;
      size_t q = at + 1;
      if (q < end_ && base[q] == '\r') ++q;
      if (q < end_ && base[q] == '\n') return true;
      if (q >= end_) {
        scan_ = at;  // the terminator may complete with the next bytes
        return false;
      }
      p = at + 1;
    }
    scan_ = end_;
    return false;
  }
  // The parser found no head in the buffered bytes; only an LF near the end can start one.
  void NoHeadYet() { scan_ = std::max(start_, end_ >= 2 ? end_ - 2 : 0); }

  Status SendAll(iovec* iov, int iovcnt, int extra_flags) {
    if (tls_ != nullptr) {
      for (int i = 0; i < iovcnt; ++i) {
        if (iov[i].iov_len == 0) continue;
        if (tls_->Send(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len) < 0) {
          return SendError(errno);
        }
      }
      return Status::Ok();
    }
    while (iovcnt > 0) {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(iovcnt);
      ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL | extra_flags);
      if (n < 0) {
        if (errno == EINTR) continue;
        // SO_SNDTIMEO (io_timeout_ms) already waited when this is EAGAIN.
        return SendError(errno);
      }
      auto left = static_cast<size_t>(n);
      while (iovcnt > 0 && left >= iov->iov_len) {
        left -= iov->iov_len;
        ++iov;
        --iovcnt;
      }
      if (iovcnt > 0) {
        iov->iov_base = static_cast<char*>(iov->iov_base) + left;
        iov->iov_len -= left;
      }
    }
    return Status::Ok();
  }

  Status SendAll(std::string_view data) {
    iovec iov{const_cast<char*>(data.data()), data.size()};
    return SendAll(&iov, 1, 0);
  }

  Status SendFile(const FileSlice& slice, int io_timeout_ms) {
    if (!slice.fd || !slice.fd->valid()) return Error(Code::kInternal, "file slice without fd");
    if (tls_ != nullptr) return SendFileThroughTls(slice);
    auto off = static_cast<off_t>(slice.offset);
    uint64_t left = slice.length;
    while (left > 0) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(left, 1u << 30));
      ssize_t n = ::sendfile(fd_, slice.fd->get(), &off, want);
      if (n > 0) {
        left -= static_cast<uint64_t>(n);
        continue;
      }
      if (n == 0) return Error(Code::kIoError, "file shorter than its slice");
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // Blocking sockets only report this after SO_SNDTIMEO; check once more with poll in
        // case the fd was non-blocking or the timeout was a spurious wakeup.
        pollfd pfd{fd_, POLLOUT, 0};
        int r = ::poll(&pfd, 1, io_timeout_ms > 0 ? io_timeout_ms : -1);
        if (r > 0) continue;
        return Error(Code::kRequestTimeout, "sendfile stalled");
      }
      return ErrnoStatus("sendfile", errno);
    }
    return Status::Ok();
  }

  // The file bytes must be encrypted in user space, so sendfile(2) cannot run: read + write.
  Status SendFileThroughTls(const FileSlice& slice) {
    auto chunk = std::make_unique_for_overwrite<char[]>(kTlsFileChunkBytes);
    uint64_t done = 0;
    while (done < slice.length) {
      size_t want =
          static_cast<size_t>(std::min<uint64_t>(slice.length - done, kTlsFileChunkBytes));
      ssize_t n =
          ::pread(slice.fd->get(), chunk.get(), want, static_cast<off_t>(slice.offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus("read response file", errno);
      if (n == 0) return Error(Code::kIoError, "file shorter than its slice");
      if (tls_->Send(chunk.get(), static_cast<size_t>(n)) < 0) return SendError(errno);
      done += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  // Ends a TLS stream with close_notify (a no-op on plain connections or after an error).
  void CloseTls() {
    if (tls_ != nullptr) tls_->Shutdown();
  }

  // See kLingerTotalMs.
  void LingeringClose() {
    CloseTls();
    ::shutdown(fd_, SHUT_WR);
    Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(kLingerTotalMs);
    size_t discarded = 0;
    start_ = end_ = scan_ = 0;
    while (discarded < kLingerMaxBytes) {
      auto left_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left_ms <= 0) break;
      SetRecvTimeout(static_cast<int>(std::min<int64_t>(left_ms, kLingerReadMs)));
      ssize_t n = ::recv(fd_, buf_.get(), cap_, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      discarded += static_cast<size_t>(n);
    }
  }

 private:
  ssize_t RecvSome(char* dst, size_t n) {
    return tls_ != nullptr ? tls_->Recv(dst, n) : ::recv(fd_, dst, n, 0);
  }

  int fd_;
  TlsSession* tls_ = nullptr;
  std::unique_ptr<char[]> buf_;
  size_t cap_;
  size_t max_cap_;
  size_t start_ = 0;
  size_t end_ = 0;
  size_t scan_ = 0;  // HeadMayBeComplete looked at [start_, scan_) already
  int rcv_timeout_ms_ = -1;
};

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// The minimum body rate of ServerOptions, over time spent waiting on the socket only.
// Invariant: bytes_ counts what arrived since the current window began at waited_ms_ ==
// window_start_ms_; the first window begins after the grace period.
class BodyRateGuard {
 public:
  explicit BodyRateGuard(const ServerOptions& o)
      : rate_(o.min_body_rate_bytes_per_s),
        window_ms_(std::max(1, o.body_rate_window_ms)),
        window_start_ms_(std::max(0, o.body_rate_grace_ms)) {}

  bool enabled() const { return rate_ > 0; }
  // Wait time left before the current window is judged (>= 1).
  int64_t MsToCheck() const {
    return std::max<int64_t>(1, window_start_ms_ + window_ms_ - waited_ms_);
  }
  // Records one receive that waited `waited_ms` and brought `bytes`.
  Status Account(int64_t waited_ms, uint64_t bytes) {
    if (!enabled()) return Status::Ok();
    waited_ms_ += waited_ms;
    if (waited_ms_ <= window_start_ms_) return Status::Ok();  // still in the grace period
    bytes_ += bytes;
    if (waited_ms_ < window_start_ms_ + window_ms_) return Status::Ok();
    int64_t span_ms = waited_ms_ - window_start_ms_;
    if (bytes_ * 1000 < rate_ * static_cast<uint64_t>(span_ms)) {
      return Error(Code::kRequestTimeout,
                   "request body arrived slower than " + std::to_string(rate_) + " bytes/s");
    }
    window_start_ms_ = waited_ms_;
    bytes_ = 0;
    return Status::Ok();
  }

 private:
  uint64_t rate_;
  int64_t window_ms_;
  int64_t window_start_ms_;
  int64_t waited_ms_ = 0;
  uint64_t bytes_ = 0;
};

// The body of one request, read from the connection. Sends 100 Continue on the first Read.
class ConnBodyReader final : public BodyReader {
 public:
  ConnBodyReader(ConnIo* io, const HttpRequest& req, const ServerOptions& options)
      : io_(io), io_timeout_ms_(options.io_timeout_ms), rate_(options) {
    if (req.chunked) {
      mode_ = Mode::kChunked;
    } else if (req.content_length && *req.content_length > 0) {
      mode_ = Mode::kLength;
      remaining_ = *req.content_length;
    }
    length_ = req.chunked ? std::nullopt : std::optional<uint64_t>(req.content_length.value_or(0));
    continue_pending_ = req.expect_continue && !finished();
    expect_continue_ = req.expect_continue;
  }

  Result<size_t> Read(char* buf, size_t n) override {
    if (!error_.ok()) return error_;
    if (n == 0 || finished()) return size_t{0};
    if (continue_pending_) {
      continue_pending_ = false;
      Status s = io_->SendAll(kContinue);
      if (!s.ok()) return Fail(std::move(s));
    }
    Result<size_t> r = mode_ == Mode::kLength ? ReadLength(buf, n) : ReadChunked(buf, n);
    if (!r.ok()) return Fail(r.error());
    return r;
  }

  std::optional<uint64_t> Length() const override { return length_; }
  const std::vector<Header>& Trailers() const override { return decoder_.trailers(); }

  bool finished() const {
    switch (mode_) {
      case Mode::kEmpty:
        return true;
      case Mode::kLength:
        return remaining_ == 0;
      case Mode::kChunked:
        return decoder_.done();
    }
    return true;
  }
  bool failed() const { return !error_.ok(); }
  // The client asked for 100-continue and never got it: it has not sent the body.
  bool continue_withheld() const { return continue_pending_; }
  // Expect: 100-continue on a request with no content: no 100 was sent (none is needed).
  bool continue_skipped() const { return expect_continue_ && mode_ == Mode::kEmpty; }

  // Reads and drops what is left of the body, up to `limit_bytes` of payload.
  Status Drain(uint64_t limit_bytes) {
    if (mode_ == Mode::kLength && remaining_ > limit_bytes) {
      return Error(Code::kEntityTooLarge, "body remainder too large to drain");
    }
    char scratch[8192];
    uint64_t drained = 0;
    while (!finished()) {
      VLAKE_ASSIGN_OR_RETURN(size_t n, Read(scratch, sizeof(scratch)));
      if (n == 0) break;
      drained += n;
      if (drained > limit_bytes) return Error(Code::kEntityTooLarge, "body too large to drain");
    }
    return Status::Ok();
  }

 private:
  enum class Mode { kEmpty, kLength, kChunked };

  Status Fail(Status s) {
    error_ = s;
    return s;
  }

  // One receive of body bytes by `recv(timeout_ms)` (ConnIo::Fill or RecvInto). Each wait is
  // cut to the rate guard's next check, so a dribbling peer is judged on time; a stall still
  // fails only after io_timeout_ms in all.
  template <typename Recv>
  Result<size_t> Receive(const Recv& recv) {
    const Clock::time_point stall_start = Clock::now();
    while (true) {
      int64_t timeout_ms = io_timeout_ms_ > 0 ? io_timeout_ms_ - MsSince(stall_start) : 0;
      if (io_timeout_ms_ > 0 && timeout_ms <= 0)
        return Error(Code::kRequestTimeout, "peer stalled");
      if (rate_.enabled()) {
        timeout_ms = timeout_ms > 0 ? std::min(timeout_ms, rate_.MsToCheck()) : rate_.MsToCheck();
      }
      const Clock::time_point t0 = Clock::now();
      Result<size_t> r = recv(static_cast<int>(std::min<int64_t>(timeout_ms, INT32_MAX)));
      if (r.ok()) {
        VLAKE_RETURN_IF_ERROR(rate_.Account(MsSince(t0), *r));
        return r;
      }
      if (r.error().code() != Code::kRequestTimeout) return r;
      VLAKE_RETURN_IF_ERROR(rate_.Account(MsSince(t0), 0));
    }
  }

  Result<size_t> ReadLength(char* buf, size_t n) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
    if (io_->buffered_size() == 0) {
      if (want >= kDirectReadBytes) {
        VLAKE_ASSIGN_OR_RETURN(size_t got,
                               Receive([&](int t) { return io_->RecvInto(buf, want, t); }));
        if (got == 0) return Error(Code::kIncompleteBody, "peer closed before the body ended");
        remaining_ -= got;
        return got;
      }
      VLAKE_ASSIGN_OR_RETURN(size_t got, Receive([&](int t) { return io_->Fill(t); }));
      if (got == 0) return Error(Code::kIncompleteBody, "peer closed before the body ended");
    }
    size_t k = std::min(want, io_->buffered_size());
    std::memcpy(buf, io_->Buffered().data(), k);
    io_->Consume(k);
    remaining_ -= k;
    return k;
  }

  Result<size_t> ReadChunked(char* buf, size_t n) {
    while (true) {
      if (io_->buffered_size() == 0) {
        uint64_t in_chunk = decoder_.data_remaining();
        if (in_chunk >= kDirectReadBytes && n >= kDirectReadBytes) {
          size_t want = static_cast<size_t>(std::min<uint64_t>(n, in_chunk));
          VLAKE_ASSIGN_OR_RETURN(size_t got,
                                 Receive([&](int t) { return io_->RecvInto(buf, want, t); }));
          if (got == 0) return Error(Code::kIncompleteBody, "peer closed inside a chunk");
          decoder_.SkipData(got);
          return got;
        }
        VLAKE_ASSIGN_OR_RETURN(size_t got, Receive([&](int t) { return io_->Fill(t); }));
        if (got == 0) return Error(Code::kIncompleteBody, "peer closed inside a chunked body");
      }
      size_t produced = 0;
      VLAKE_ASSIGN_OR_RETURN(size_t used, decoder_.Decode(io_->Buffered(), buf, n, &produced));
      io_->Consume(used);
      if (produced > 0 || decoder_.done()) return produced;
    }
  }

  ConnIo* io_;
  int io_timeout_ms_;
  BodyRateGuard rate_;
  Mode mode_ = Mode::kEmpty;
  bool expect_continue_ = false;
  uint64_t remaining_ = 0;  // kLength: payload bytes not yet read
  std::optional<uint64_t> length_;
  ChunkedDecoder decoder_;
  bool continue_pending_ = false;
  Status error_;  // sticky: after a failed read the framing position is unknown
};

// Runs a callable when the scope ends, however it ends.
template <typename Fn>
class ScopeExit {
 public:
  explicit ScopeExit(Fn fn) : fn_(std::move(fn)) {}
  ~ScopeExit() { fn_(); }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  Fn fn_;
};

enum class HeadOutcome { kRequest, kClosed, kMalformed };

HeadOutcome ReadHead(ConnIo& io, const ServerOptions& opt, bool first_request, HttpRequest* req,
                     Status* error) {
  std::optional<Clock::time_point> deadline;
  // A new connection's first head must be complete within the header timeout of its start:
  // a peer that dribbles bytes cannot stretch it.
  if (first_request && opt.header_timeout_ms > 0) {
    deadline = Clock::now() + std::chrono::milliseconds(opt.header_timeout_ms);
  }
  while (true) {
    if (io.buffered_size() > 0) {
      if (io.HeadMayBeComplete() || io.buffered_size() > opt.max_header_bytes) {
        size_t consumed = 0;
        Result<ParseState> r =
            ParseRequestHead(io.Buffered(), opt.max_header_bytes, req, &consumed);
        if (!r.ok()) {
          *error = r.error();
          return HeadOutcome::kMalformed;
        }
        if (*r == ParseState::kDone) {
          io.Consume(consumed);
          return HeadOutcome::kRequest;
        }
        io.NoHeadYet();
      }
      if (!deadline && opt.header_timeout_ms > 0) {
        deadline = Clock::now() + std::chrono::milliseconds(opt.header_timeout_ms);
      }
    }
    int timeout_ms;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
      if (left.count() <= 0) return HeadOutcome::kClosed;
      timeout_ms = static_cast<int>(left.count());
    } else if (io.buffered_size() > 0) {
      timeout_ms = 0;  // header_timeout_ms <= 0: no deadline
    } else {
      timeout_ms = first_request ? opt.header_timeout_ms : opt.idle_timeout_ms;
    }
    Result<size_t> n = io.Fill(timeout_ms);
    // EOF, reset, timeout or Stop(): a connection without a request in progress just ends.
    if (!n.ok() || *n == 0) return HeadOutcome::kClosed;
  }
}

void SendErrorAndClose(ConnIo& io, const Status& error) {
  std::string_view response;
  switch (error.code()) {
    case Code::kEntityTooLarge:
      response =
          "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n"
          "Content-Length: 32\r\nConnection: close\r\n\r\nRequest Header Fields Too Large\n";
      break;
    case Code::kNotImplemented:
      response =
          "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\n"
          "Content-Length: 16\r\nConnection: close\r\n\r\nNot Implemented\n";
      break;
    default:
      response =
          "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
          "Content-Length: 12\r\nConnection: close\r\n\r\nBad Request\n";
      break;
  }
  io.SendAll(response).IgnoreError();
  io.LingeringClose();
}

bool IsHeader(std::string_view name, std::string_view lower) {
  return EqualsIgnoreCase(name, lower);
}

// Appends `value` with CR and LF replaced: a value must never be able to end the head early.
void AppendFieldValue(std::string* out, std::string_view value) {
  size_t start = out->size();
  out->append(value);
  if (value.find_first_of("\r\n") == std::string_view::npos) return;
  for (size_t i = start; i < out->size(); ++i) {
    if ((*out)[i] == '\r' || (*out)[i] == '\n') (*out)[i] = ' ';
  }
}

// File bodies up to this size are copied into the response head's buffer (see WriteResponse).
constexpr uint64_t kInlineFileBytes = 64 * 1024;

Status WriteResponse(ConnIo& io, const HttpRequest& req, const HttpResponse& resp, bool keep_alive,
                     int io_timeout_ms, std::string* head, bool interim_continue = false) {
  const int status = resp.status;
  // RFC 9110 §6.4.1: 1xx, 204 and 304 never carry content (nor, for 204, a Content-Length).
  const bool body_allowed = status >= 200 && status != 204 && status != 304;
  const bool has_length = !resp.omit_body && body_allowed;
  const bool send_body = has_length && req.method != "HEAD";
  const uint64_t body_size = has_length ? resp.BodySize() : 0;

  head->clear();
  if (interim_continue) head->append(kContinue);
  head->append("HTTP/1.1 ");
  AppendUint(head, static_cast<uint64_t>(status));
  head->push_back(' ');
  head->append(StatusReason(status));
  head->append("\r\n");
  for (const Header& h : resp.headers) {
    // The server owns framing: a handler's own values would contradict what is sent.
    if (IsHeader(h.name, "connection") || IsHeader(h.name, "transfer-encoding")) continue;
    if ((has_length || !body_allowed) && IsHeader(h.name, "content-length")) continue;
    head->append(h.name);
    head->append(": ");
    AppendFieldValue(head, h.value);
    head->append("\r\n");
  }
  if (has_length) {
    head->append("Content-Length: ");
    AppendUint(head, body_size);
    head->append("\r\n");
  }
  if (!keep_alive) {
    head->append("Connection: close\r\n");
  } else if (req.version_minor == 0) {
    head->append("Connection: keep-alive\r\n");
  }
  head->append("\r\n");

  uint64_t file_bytes = 0;
  if (send_body) {
    for (const FileSlice& s : resp.file_slices) file_bytes += s.length;
  }
  // Small file bodies are copied behind the head and leave in one send: for a 4 KiB object a
  // separate sendfile costs a second syscall and often a second wake-up of the peer, more than
  // the copy it saves. Large ones go zero-copy.
  if (file_bytes > 0 && file_bytes <= kInlineFileBytes && resp.body.empty()) {
    size_t head_size = head->size();
    head->resize(head_size + file_bytes);
    char* dst = head->data() + head_size;
    for (const FileSlice& s : resp.file_slices) {
      uint64_t done = 0;
      while (done < s.length) {
        ssize_t n = ::pread(s.fd->get(), dst, s.length - done, static_cast<off_t>(s.offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return ErrnoStatus("read response file", errno);
        if (n == 0) return Error(Code::kIoError, "response file shorter than announced");
        done += static_cast<uint64_t>(n);
        dst += n;
      }
    }
    file_bytes = 0;
  }
  iovec iov[2];
  int iovcnt = 0;
  iov[iovcnt++] = {head->data(), head->size()};
  if (send_body && !resp.body.empty()) {
    iov[iovcnt++] = {const_cast<char*>(resp.body.data()), resp.body.size()};
  }
  // MSG_MORE lets the head share a segment with the first file bytes.
  VLAKE_RETURN_IF_ERROR(io.SendAll(iov, iovcnt, file_bytes > 0 ? MSG_MORE : 0));
  if (file_bytes > 0) {
    for (const FileSlice& s : resp.file_slices) {
      if (s.length > 0) VLAKE_RETURN_IF_ERROR(io.SendFile(s, io_timeout_ms));
    }
  }
  return Status::Ok();
}

// The server side of a TLS handshake, within the header timeout. A peer that sends plain HTTP
// (its first byte a letter, where TLS starts with a handshake record, 0x16) gets a plain-text
// 400 saying so, as a hint for whoever typed http:// by mistake.
Result<std::unique_ptr<TlsSession>> StartTls(ConnIo& io, const ServerOptions& opt) {
  io.SetRecvTimeout(opt.header_timeout_ms);
  char first = 0;
  ssize_t n;
  do {
    n = ::recv(io.fd(), &first, 1, MSG_PEEK);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return Error(Code::kBadRequest, "closed or stalled before the TLS handshake");
  if (first >= 'A' && first <= 'Z') {
    static constexpr std::string_view kPlainToTls =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
        "Content-Length: 37\r\nConnection: close\r\n\r\nThis port speaks HTTPS; use https://\n";
    io.SendAll(kPlainToTls).IgnoreError();
    io.LingeringClose();
    return Error(Code::kBadRequest, "plain HTTP on a TLS port");
  }
  return TlsSession::Accept(*opt.tls, io.fd(), opt.header_timeout_ms);
}

// A complete "Connection: close" response the accept thread sends without blocking. An empty
// response (status 200 by default) stands for the plain-text 503.
std::string SerializeRefusal(const HttpResponse& resp) {
  if (resp.body.empty() && resp.headers.empty()) return std::string(kTooManyConnections);
  std::string out = "HTTP/1.1 ";
  AppendUint(&out, static_cast<uint64_t>(resp.status));
  out.push_back(' ');
  out.append(StatusReason(resp.status));
  out.append("\r\n");
  for (const Header& h : resp.headers) {
    if (IsHeader(h.name, "connection") || IsHeader(h.name, "content-length") ||
        IsHeader(h.name, "transfer-encoding")) {
      continue;
    }
    out.append(h.name);
    out.append(": ");
    AppendFieldValue(&out, h.value);
    out.append("\r\n");
  }
  out.append("Content-Length: ");
  AppendUint(&out, resp.body.size());
  out.append("\r\nConnection: close\r\n\r\n");
  out.append(resp.body);
  return out;
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

HttpServer::HttpServer(ServerOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  if (listen_fd_ >= 0 || accept_thread_.joinable()) {
    return Error(Code::kInvalidArgument, "server already started");
  }
  // sendfile(2) on a socket whose peer left raises SIGPIPE and has no MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
  reject_bytes_ = SerializeRefusal(
      options_.reject
          ? options_.reject(Error(Code::kUnavailable, "too many unauthenticated connections"))
          : HttpResponse{});

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(options_.port);
  int gai = getaddrinfo(options_.host.empty() ? nullptr : options_.host.c_str(), port_text.c_str(),
                        &hints, &res);
  if (gai != 0) {
    return Error(Code::kInvalidArgument,
                 "resolve " + options_.host + ": " + std::string(gai_strerror(gai)));
  }
  Status last = Error(Code::kInvalidArgument, "no address for " + options_.host);
  UniqueFd fd;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    UniqueFd s(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!s.valid()) {
      last = ErrnoStatus("socket", errno);
      continue;
    }
    int one = 1;
    setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(s.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last = ErrnoStatus("bind " + options_.host + ":" + port_text, errno);
      continue;
    }
    if (::listen(s.get(), SOMAXCONN) != 0) {
      last = ErrnoStatus("listen", errno);
      continue;
    }
    fd = std::move(s);
    break;
  }
  freeaddrinfo(res);
  if (!fd.valid()) return last;

  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return ErrnoStatus("getsockname", errno);
  }
  port_ = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  stopping_ = false;
  listen_fd_ = fd.release();
  try {
    accept_thread_ = std::thread(&HttpServer::AcceptLoop, this);
  } catch (const std::system_error& e) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return Error(Code::kInternal, std::string("start accept thread: ") + e.what());
  }
  Log(LogLevel::kInfo, "http server listening",
      {{"host", options_.host}, {"port", std::to_string(port_)}});
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!accept_thread_.joinable()) return;
  stopping_ = true;
  // shutdown() wakes a thread blocked in accept(); closing first could let the fd number be
  // reused under it.
  ::shutdown(listen_fd_, SHUT_RDWR);
  accept_thread_.join();
  ::close(listen_fd_);
  listen_fd_ = -1;

  std::unique_lock<std::mutex> lock(mu_);
  for (const std::shared_ptr<Connection>& c : connections_) {
    std::lock_guard<std::mutex> conn_lock(c->mu);
    if (!c->busy) ::shutdown(c->fd.get(), SHUT_RDWR);
  }
  cv_.wait_for(lock, std::chrono::milliseconds(options_.drain_timeout_ms),
               [this] { return live_threads_ == 0; });
  if (live_threads_ > 0) {
    Log(LogLevel::kWarn, "http stop: drain timeout, closing busy connections",
        {{"connections", std::to_string(live_threads_)}});
    // Connections leave the set (under mu_) before their fd closes, so these are all open.
    for (const std::shared_ptr<Connection>& c : connections_) ::shutdown(c->fd.get(), SHUT_RDWR);
  }
  // A handler still running must finish before Stop returns: the promise is that the handler
  // is never running after Stop.
  cv_.wait(lock, [this] { return live_threads_ == 0; });
}

void HttpServer::AcceptLoop() {
  while (!stopping_.load()) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (stopping_.load()) break;
      if (err == EINTR || err == ECONNABORTED) continue;
      Log(LogLevel::kWarn, "http accept failed", {{"error", std::strerror(err)}});
      if (err == EINVAL || err == EBADF) break;
      // EMFILE and friends: back off instead of spinning on a pending connection.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (stopping_.load()) {
      ::close(fd);
      break;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::string peer = PeerName(addr);
    auto conn = std::make_shared<Connection>(fd, peer, PeerHost(peer));
    std::string_view refusal;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (live_threads_ >= options_.max_connections) {
        refusal = kTooManyConnections;
      } else if (!AdmitUnauthenticated(conn->peer_host)) {
        refusal = reject_bytes_;
      } else {
        conn->seq = next_connection_seq_++;
        conn->counted_unauthenticated = true;
        ++unauthenticated_;
        ++unauthenticated_per_peer_[conn->peer_host];
        connections_.insert(conn);
        ++live_threads_;
      }
    }
    if (!refusal.empty()) {
      Log(LogLevel::kDebug, "http: connection refused", {{"peer", conn->peer}});
      // Best effort and non-blocking: the accept thread must never wait on a client. A TLS
      // client cannot read plain bytes and a handshake could block: it is just closed.
      if (!options_.tls) {
        ssize_t ignored = ::send(fd, refusal.data(), refusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)ignored;
      }
      ::shutdown(fd, SHUT_WR);
      continue;  // conn's destructor closes fd
    }
    try {
      std::thread([this, conn] { Serve(conn); }).detach();
    } catch (const std::system_error& e) {
      Log(LogLevel::kError, "http: cannot start connection thread", {{"error", e.what()}});
      std::lock_guard<std::mutex> lock(mu_);
      ForgetUnauthenticated(*conn);
      connections_.erase(conn);
      --live_threads_;
      cv_.notify_all();
    }
  }
}

bool HttpServer::AdmitUnauthenticated(const std::string& peer_host) {
  const int max_all = options_.max_unauthenticated_connections;
  const int max_peer = options_.max_unauthenticated_per_peer;
  for (int round = 0; round < 2; ++round) {
    auto it = unauthenticated_per_peer_.find(peer_host);
    int from_peer = it == unauthenticated_per_peer_.end() ? 0 : it->second;
    const bool peer_full = max_peer > 0 && from_peer >= max_peer;
    const bool all_full = max_all > 0 && unauthenticated_ >= max_all;
    if (!peer_full && !all_full) return true;
    // The oldest unauthenticated connection between requests (of this peer when the peer is
    // over its limit) makes room. Evicting a peer's own connection also lowers the total.
    std::shared_ptr<Connection> victim;
    for (const std::shared_ptr<Connection>& c : connections_) {
      if (!c->counted_unauthenticated) continue;
      if (peer_full && c->peer_host != peer_host) continue;
      if (victim && victim->seq < c->seq) continue;
      std::lock_guard<std::mutex> conn_lock(c->mu);
      if (!c->busy && !c->evicted) victim = c;
    }
    if (!victim) return false;
    {
      std::lock_guard<std::mutex> conn_lock(victim->mu);
      if (victim->busy) return false;  // took a request meanwhile; refuse rather than wait
      victim->evicted = true;
      ::shutdown(victim->fd.get(), SHUT_RDWR);
    }
    Log(LogLevel::kDebug, "http: closed an unauthenticated connection to make room",
        {{"peer", victim->peer}});
    ForgetUnauthenticated(*victim);
  }
  return false;
}

void HttpServer::ForgetUnauthenticated(Connection& conn) {
  if (!conn.counted_unauthenticated) return;
  conn.counted_unauthenticated = false;
  --unauthenticated_;
  auto it = unauthenticated_per_peer_.find(conn.peer_host);
  if (it != unauthenticated_per_peer_.end() && --it->second <= 0) {
    unauthenticated_per_peer_.erase(it);
  }
}

int HttpServer::unauthenticated_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unauthenticated_;
}

namespace {

// Whether the connection opens with the HTTP/2 client preface: its first bytes are peeked
// (left in the socket) until they either match "PRI * HTTP/2.0" or cannot, the peer closes, or
// `timeout_ms` passes (then: not HTTP/2; the HTTP/1.1 path times the head out itself).
bool StartsWithHttp2Preface(int fd, int timeout_ms) {
  static constexpr std::string_view kPreface = "PRI * HTTP/2.0";
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 15'000);
  char buf[kPreface.size()];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
      const size_t got = static_cast<size_t>(n);
      if (std::string_view(buf, got) != kPreface.substr(0, got)) return false;
      if (got == kPreface.size()) return true;
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      return false;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    // Wait for more bytes (a peer that sent a prefix of the preface): poll, then a short nap
    // so that a partial preface does not spin.
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000))) < 0 &&
        errno != EINTR) {
      return false;
    }
    if (n > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

void HttpServer::Serve(std::shared_ptr<Connection> conn) {
  try {
    if (options_.http2_handoff && !options_.tls &&
        StartsWithHttp2Preface(conn->fd.get(), options_.header_timeout_ms)) {
      int fd = -1;
      {
        std::lock_guard<std::mutex> lock(conn->mu);
        if (!stopping_.load() && !conn->evicted) fd = conn->fd.release();
      }
      if (fd >= 0) {
        timeval none{0, 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
        options_.http2_handoff(fd);
      }
    } else {
      ServeHttp1(conn);
    }
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "http connection failed", {{"peer", conn->peer}, {"what", e.what()}});
  } catch (...) {
    Log(LogLevel::kError, "http connection failed", {{"peer", conn->peer}});
  }
  // Last touch of `this`: once live_threads_ reaches zero, Stop() may return and the server
  // may be destroyed. conn (and its fd) dies after, which needs nothing from the server.
  std::lock_guard<std::mutex> lock(mu_);
  ForgetUnauthenticated(*conn);
  connections_.erase(conn);
  --live_threads_;
  cv_.notify_all();
}

void HttpServer::ServeHttp1(const std::shared_ptr<Connection>& conn) {
  {
    const int fd = conn->fd.get();
    if (options_.io_timeout_ms > 0) {
      timeval tv{options_.io_timeout_ms / 1000, (options_.io_timeout_ms % 1000) * 1000};
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    ConnIo io(fd, options_.max_header_bytes);
    std::unique_ptr<TlsSession> tls;
    bool ready = true;
    if (options_.tls) {
      Result<std::unique_ptr<TlsSession>> session = StartTls(io, options_);
      if (session.ok()) {
        tls = std::move(*session);
        io.set_tls(tls.get());
      } else {
        Log(LogLevel::kDebug, "http: TLS handshake failed",
            {{"peer", conn->peer}, {"error", session.error().ToString()}});
        ready = false;
      }
    }
    HttpRequest req;
    std::string head;
    head.reserve(1024);
    bool first_request = true;
    while (ready && !stopping_.load()) {
      Status parse_error;
      HeadOutcome outcome = ReadHead(io, options_, first_request, &req, &parse_error);
      first_request = false;
      if (outcome == HeadOutcome::kClosed) break;
      if (outcome == HeadOutcome::kMalformed) {
        Log(LogLevel::kDebug, "http: malformed request head",
            {{"peer", conn->peer}, {"error", parse_error.ToString()}});
        SendErrorAndClose(io, parse_error);
        break;
      }
      {
        std::lock_guard<std::mutex> lock(conn->mu);
        if (stopping_.load() || conn->evicted) break;
        conn->busy = true;
      }
      Status written;
      bool keep_alive = req.keep_alive;
      bool unread_input = false;
      {
        in_flight_.fetch_add(1);
        ScopeExit request_done([this, &conn] {
          in_flight_.fetch_sub(1);
          std::lock_guard<std::mutex> lock(conn->mu);
          conn->busy = false;
        });
        req.peer = conn->peer;
        req.received_unix_ms = NowUnixMs();
        req.connection_fd = conn->fd.get();
        req.authenticated = false;

        ConnBodyReader body(&io, req, options_);
        HttpResponse resp;
        try {
          resp = handler_(req, body);
        } catch (const std::exception& e) {
          Log(LogLevel::kError, "http handler threw",
              {{"method", req.method}, {"target", req.target}, {"what", e.what()}});
          resp = HttpResponse{};
          resp.status = 500;
          keep_alive = false;
        } catch (...) {
          Log(LogLevel::kError, "http handler threw a non-exception",
              {{"method", req.method}, {"target", req.target}});
          resp = HttpResponse{};
          resp.status = 500;
          keep_alive = false;
        }
        if (resp.close_connection) keep_alive = false;
        if (req.authenticated) {
          std::lock_guard<std::mutex> lock(mu_);
          ForgetUnauthenticated(*conn);
        }

        // An unfinished body is drained when cheap; otherwise the connection closes, because
        // the next request would start somewhere inside this body. A client still waiting for
        // 100 Continue has not sent the body, so it is neither drained nor waited for.
        unread_input = !body.finished();
        if (unread_input) {
          if (body.failed() || body.continue_withheld()) {
            keep_alive = false;
          } else if (keep_alive) {
            if (body.Drain(kMaxDrainBytes).ok()) {
              unread_input = false;
            } else {
              keep_alive = false;
            }
          }
        }
        if (stopping_.load()) keep_alive = false;

        // Expect: 100-continue without content: RFC 9110 lets a server skip the 100, but
        // botocore (boto3, AWS CLI) then takes the final response for an early one and misreads
        // the next response on the connection (boto/botocore#3755: a stall until its read
        // timeout, then a retry). S3 sends the 100 anyway, so vlake does too, ahead of the head.
        written = WriteResponse(io, req, resp, keep_alive, options_.io_timeout_ms, &head,
                                body.continue_skipped());
      }
      if (!written.ok()) {
        Log(LogLevel::kDebug, "http: response not delivered",
            {{"peer", conn->peer}, {"error", written.ToString()}});
        break;
      }
      if (!keep_alive) {
        if (unread_input || io.buffered_size() > 0) io.LingeringClose();
        break;
      }
    }
    io.CloseTls();
  }
}

}  // namespace vlake::http
