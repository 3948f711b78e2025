#include "http/client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/encoding.h"
#include "http/chunked.h"
#include "http/parser.h"
#include "http/tls.h"

namespace vlake::http {
namespace {

constexpr size_t kBufferBytes = 256 * 1024;
constexpr size_t kMaxResponseHeadBytes = 64 * 1024;

Status IoError(std::string_view what, int err) {
  if (err == EAGAIN || err == EWOULDBLOCK) {
    return Error(Code::kTimeout, std::string(what) + ": timed out");
  }
  return ErrnoStatus(what, err);
}

Status Malformed(std::string why) { return Error(Code::kIoError, "malformed response: " + why); }

// Offset just past the empty line ending a head in `data`, or npos.
size_t FindHeadEnd(std::string_view data) {
  size_t p = 0;
  while (true) {
    size_t nl = data.find('\n', p);
    if (nl == std::string_view::npos) return nl;
    size_t q = nl + 1;
    if (q < data.size() && data[q] == '\r') ++q;
    if (q < data.size() && data[q] == '\n') return q + 1;
    p = nl + 1;
  }
}

bool HasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (EqualsIgnoreCase(TrimWhitespace(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

const std::string* ClientResponse::FindHeader(std::string_view lower_name) const {
  for (const Header& h : headers) {
    if (h.name == lower_name) return &h.value;
  }
  return nullptr;
}

HttpConnection::HttpConnection(std::string host, uint16_t port, int timeout_ms,
                               std::shared_ptr<const TlsContext> tls)
    : host_(std::move(host)), port_(port), timeout_ms_(timeout_ms), tls_(std::move(tls)) {}

HttpConnection::~HttpConnection() { Close(); }

void HttpConnection::Close() {
  if (session_) session_->Shutdown();
  session_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buf_start_ = buf_end_ = 0;
}

Status HttpConnection::Connect() {
  Close();
  if (!buf_) buf_ = std::make_unique_for_overwrite<char[]>(kBufferBytes);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port_);
  int gai = getaddrinfo(host_.c_str(), port_text.c_str(), &hints, &res);
  if (gai != 0) {
    return Error(Code::kUnavailable, "resolve " + host_ + ": " + std::string(gai_strerror(gai)));
  }
  Status last = Error(Code::kUnavailable, "no address for " + host_);
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last = ErrnoStatus("socket", errno);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (timeout_ms_ > 0) {
      timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      // On Linux SO_SNDTIMEO also bounds connect().
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      fd_ = fd;
      break;
    }
    last = IoError("connect " + host_ + ":" + port_text, errno);
    ::close(fd);
  }
  freeaddrinfo(res);
  if (fd_ < 0) return last;
  if (tls_) {
    // A bracketed IPv6 literal is named without its brackets in a certificate.
    std::string name = host_;
    if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
      name = name.substr(1, name.size() - 2);
    }
    Result<std::unique_ptr<TlsSession>> s = TlsSession::Connect(*tls_, fd_, name, timeout_ms_);
    if (!s.ok()) {
      Close();
      return s.error();
    }
    session_ = std::move(*s);
  }
  return Status::Ok();
}

ssize_t HttpConnection::RecvSome(char* dst, size_t n) {
  return session_ ? session_->Recv(dst, n) : ::recv(fd_, dst, n, 0);
}

Result<ClientResponse> HttpConnection::Send(std::string_view method, std::string_view target,
                                            const std::vector<Header>& headers,
                                            std::string_view body, const Sink& sink) {
  std::string& h = request_head_;
  h.clear();
  h.append(method);
  h.push_back(' ');
  h.append(target);
  h.append(" HTTP/1.1\r\n");
  bool has_host = false;
  for (const Header& f : headers) {
    if (EqualsIgnoreCase(f.name, "host")) has_host = true;
  }
  if (!has_host) {
    h.append("Host: ");
    h.append(host_);
    h.push_back(':');
    h.append(std::to_string(port_));
    h.append("\r\n");
  }
  for (const Header& f : headers) {
    h.append(f.name);
    h.append(": ");
    h.append(f.value);
    h.append("\r\n");
  }
  if (!body.empty() || method == "PUT" || method == "POST") {
    h.append("Content-Length: ");
    h.append(std::to_string(body.size()));
    h.append("\r\n");
  }
  h.append("\r\n");

  const bool head_request = method == "HEAD";
  for (int attempt = 0;; ++attempt) {
    bool fresh = false;
    if (fd_ < 0) {
      VLAKE_RETURN_IF_ERROR(Connect());
      fresh = true;
    }
    bool got_bytes = false;
    Status s = WriteRequest(h, body);
    if (s.ok()) {
      Result<ClientResponse> r = ReadResponse(head_request, sink, &got_bytes);
      if (r.ok()) return r;
      s = r.error();
    }
    Close();
    // Only a kept-alive connection the server closed meanwhile earns one retry; a response
    // that started arriving must not be requested twice.
    if (fresh || got_bytes || attempt > 0) return s;
  }
}

Status HttpConnection::WriteRequest(std::string_view head, std::string_view body) {
  iovec iov[2] = {{const_cast<char*>(head.data()), head.size()},
                  {const_cast<char*>(body.data()), body.size()}};
  iovec* v = iov;
  int count = body.empty() ? 1 : 2;
  if (session_) {
    for (int i = 0; i < count; ++i) {
      if (session_->Send(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len) < 0) {
        return IoError("send", errno);
      }
    }
    return Status::Ok();
  }
  while (count > 0) {
    msghdr msg{};
    msg.msg_iov = v;
    msg.msg_iovlen = static_cast<size_t>(count);
    ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("send", errno);
    }
    auto left = static_cast<size_t>(n);
    while (count > 0 && left >= v->iov_len) {
      left -= v->iov_len;
      ++v;
      --count;
    }
    if (count > 0) {
      v->iov_base = static_cast<char*>(v->iov_base) + left;
      v->iov_len -= left;
    }
  }
  return Status::Ok();
}

Result<size_t> HttpConnection::Fill() {
  if (buf_start_ == buf_end_) {
    buf_start_ = buf_end_ = 0;
  } else if (buf_end_ == kBufferBytes) {
    std::memmove(buf_.get(), buf_.get() + buf_start_, buf_end_ - buf_start_);
    buf_end_ -= buf_start_;
    buf_start_ = 0;
  }
  if (buf_end_ == kBufferBytes) return Malformed("head too large");
  while (true) {
    ssize_t n = RecvSome(buf_.get() + buf_end_, kBufferBytes - buf_end_);
    if (n >= 0) {
      buf_end_ += static_cast<size_t>(n);
      return static_cast<size_t>(n);
    }
    if (errno != EINTR) return IoError("recv", errno);
  }
}

Result<ClientResponse> HttpConnection::ReadResponse(bool head_request, const Sink& sink,
                                                    bool* got_bytes) {
  while (true) {  // one pass per response; 1xx interim responses are skipped
    size_t head_len;
    while (true) {
      std::string_view data(buf_.get() + buf_start_, buf_end_ - buf_start_);
      head_len = FindHeadEnd(data);
      if (head_len != std::string_view::npos) break;
      if (data.size() > kMaxResponseHeadBytes) return Malformed("head too large");
      VLAKE_ASSIGN_OR_RETURN(size_t n, Fill());
      if (n == 0) return Error(Code::kUnavailable, "connection closed before a response");
      *got_bytes = true;
    }
    std::string_view head(buf_.get() + buf_start_, head_len);
    ClientResponse resp;
    size_t eol = head.find('\n');
    std::string_view status_line = head.substr(0, eol);
    if (!status_line.empty() && status_line.back() == '\r') status_line.remove_suffix(1);
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ') {
      return Malformed("status line");
    }
    auto [ptr, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, resp.status);
    if (ec != std::errc() || ptr != status_line.data() + 12 || resp.status < 100 ||
        resp.status > 999) {
      return Malformed("status code");
    }
    size_t p = eol + 1;
    while (true) {
      size_t nl = head.find('\n', p);
      std::string_view line = head.substr(p, nl - p);
      p = nl + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) break;
      Header f;
      if (!ParseFieldLine(line, &f).ok()) return Malformed("header field");
      resp.headers.push_back(std::move(f));
    }
    buf_start_ += head_len;
    if (resp.status < 200) continue;

    // Only a successful body goes to the sink; an error document is kept in resp.body.
    const Sink no_sink;
    uint64_t dest_used = 0;
    bool dest_overflow = false;
    const Sink dest_sink = [&](const char* data, size_t n) {
      if (dest_used + n > dest_size_) {
        dest_overflow = true;
        return;
      }
      std::memcpy(dest_ + dest_used, data, n);
      dest_used += n;
    };
    const bool into_dest = dest_ && !sink && resp.status < 300;
    const Sink& body_sink = resp.status >= 300 ? no_sink : into_dest ? dest_sink : sink;
    const std::string* conn = resp.FindHeader("connection");
    const bool close_after = conn != nullptr && HasToken(*conn, "close");
    const std::string* te = resp.FindHeader("transfer-encoding");
    const std::string* cl = resp.FindHeader("content-length");
    if (head_request || resp.status == 204 || resp.status == 304) {
      // No body, whatever the framing headers say.
    } else if (te != nullptr && HasToken(*te, "chunked")) {
      VLAKE_RETURN_IF_ERROR(ReadChunkedBody(body_sink, &resp));
    } else if (cl != nullptr) {
      std::optional<uint64_t> len = ParseUint64(*cl);
      if (!len) return Malformed("Content-Length");
      // Content-Length framing into a destination is received in place (no sink).
      VLAKE_RETURN_IF_ERROR(ReadBody(*len, into_dest ? no_sink : body_sink, &resp));
    } else {
      VLAKE_RETURN_IF_ERROR(ReadUntilEof(body_sink, &resp));
    }
    if (dest_overflow) {
      Close();
      return Error(Code::kEntityTooLarge, "response body larger than the destination");
    }
    if (close_after) Close();
    return resp;
  }
}

Result<ClientResponse> HttpConnection::SendInto(std::string_view method, std::string_view target,
                                                const std::vector<Header>& headers,
                                                std::string_view body, char* dest,
                                                size_t dest_size) {
  dest_ = dest;
  dest_size_ = dest_size;
  auto r = Send(method, target, headers, body, nullptr);
  dest_ = nullptr;
  dest_size_ = 0;
  return r;
}

Status HttpConnection::ReadBody(uint64_t length, const Sink& sink, ClientResponse* resp) {
  uint64_t left = length;
  if (dest_ && !sink && resp->status < 300) {
    if (length > dest_size_) {
      Close();
      return Error(Code::kEntityTooLarge, "response body larger than the destination");
    }
    size_t buffered = static_cast<size_t>(std::min<uint64_t>(left, buf_end_ - buf_start_));
    std::memcpy(dest_, buf_.get() + buf_start_, buffered);
    buf_start_ += buffered;
    left -= buffered;
    while (left > 0) {
      ssize_t n = RecvSome(dest_ + (length - left), static_cast<size_t>(left));
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("recv body", errno);
      }
      if (n == 0) return Error(Code::kIncompleteBody, "connection closed inside the body");
      left -= static_cast<uint64_t>(n);
    }
    resp->body_bytes = length;
    return Status::Ok();
  }
  size_t buffered = static_cast<size_t>(std::min<uint64_t>(left, buf_end_ - buf_start_));
  if (!sink) resp->body.resize(length);
  if (buffered > 0) {
    if (sink) {
      sink(buf_.get() + buf_start_, buffered);
    } else {
      std::memcpy(resp->body.data(), buf_.get() + buf_start_, buffered);
    }
    buf_start_ += buffered;
    left -= buffered;
  }
  while (left > 0) {
    if (!sink) {
      // Straight into the result: one copy from the kernel, none here.
      size_t at = static_cast<size_t>(length - left);
      ssize_t n = RecvSome(resp->body.data() + at, static_cast<size_t>(left));
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("recv body", errno);
      }
      if (n == 0) return Error(Code::kIncompleteBody, "connection closed inside the body");
      left -= static_cast<uint64_t>(n);
      continue;
    }
    VLAKE_ASSIGN_OR_RETURN(size_t n, Fill());
    if (n == 0) return Error(Code::kIncompleteBody, "connection closed inside the body");
    size_t take = static_cast<size_t>(std::min<uint64_t>(left, buf_end_ - buf_start_));
    sink(buf_.get() + buf_start_, take);
    buf_start_ += take;
    left -= take;
  }
  resp->body_bytes = length;
  return Status::Ok();
}

Status HttpConnection::ReadChunkedBody(const Sink& sink, ClientResponse* resp) {
  ChunkedDecoder decoder;
  std::string scratch(64 * 1024, '\0');
  while (!decoder.done()) {
    if (buf_start_ == buf_end_) {
      VLAKE_ASSIGN_OR_RETURN(size_t n, Fill());
      if (n == 0) return Error(Code::kIncompleteBody, "connection closed inside the body");
    }
    size_t produced = 0;
    std::string_view in(buf_.get() + buf_start_, buf_end_ - buf_start_);
    VLAKE_ASSIGN_OR_RETURN(size_t used,
                           decoder.Decode(in, scratch.data(), scratch.size(), &produced));
    buf_start_ += used;
    if (produced > 0) {
      if (sink) {
        sink(scratch.data(), produced);
      } else {
        resp->body.append(scratch.data(), produced);
      }
      resp->body_bytes += produced;
    }
  }
  return Status::Ok();
}

Status HttpConnection::ReadUntilEof(const Sink& sink, ClientResponse* resp) {
  while (true) {
    size_t n = buf_end_ - buf_start_;
    if (n > 0) {
      if (sink) {
        sink(buf_.get() + buf_start_, n);
      } else {
        resp->body.append(buf_.get() + buf_start_, n);
      }
      resp->body_bytes += n;
      buf_start_ = buf_end_;
    }
    VLAKE_ASSIGN_OR_RETURN(size_t got, Fill());
    if (got == 0) break;
  }
  Close();
  return Status::Ok();
}

}  // namespace vlake::http
