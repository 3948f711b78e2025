#include "http/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>

namespace vlake::http {
namespace {

// OpenSSL's error queue of this thread as one message (and the queue emptied): the one place
// its errors become text.
std::string TlsErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out.append("; ");
    out.append(buf);
  }
  return out.empty() ? "unknown TLS error" : out;
}

Status TlsStatus(Code code, const std::string& context) {
  return Error(code, context + ": " + TlsErrors());
}

// A socket BIO that sends with MSG_NOSIGNAL: OpenSSL's own uses write(2), which raises
// SIGPIPE when the peer left, and a client library must not change the process's signals.
int NoSigpipeWrite(BIO* b, const char* data, int len) {
  int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
  ssize_t n;
  do {
    n = ::send(fd, data, static_cast<size_t>(len), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  BIO_clear_retry_flags(b);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(b);
  return static_cast<int>(n);
}

int NoSigpipeRead(BIO* b, char* out, int len) {
  int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
  ssize_t n;
  do {
    n = ::recv(fd, out, static_cast<size_t>(len), 0);
  } while (n < 0 && errno == EINTR);
  BIO_clear_retry_flags(b);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_read(b);
  return static_cast<int>(n);
}

long NoSigpipeCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

int NoSigpipeCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* SocketMethod() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "vlake socket");
    BIO_meth_set_write(m, NoSigpipeWrite);
    BIO_meth_set_read(m, NoSigpipeRead);
    BIO_meth_set_ctrl(m, NoSigpipeCtrl);
    BIO_meth_set_create(m, NoSigpipeCreate);
    return m;
  }();
  return method;
}

Result<SSL*> NewSsl(const TlsContext& ctx, int fd) {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx.ctx());
  if (ssl == nullptr) return TlsStatus(Code::kInternal, "SSL_new");
  BIO* bio = BIO_new(SocketMethod());
  if (bio == nullptr) {
    SSL_free(ssl);
    return TlsStatus(Code::kInternal, "BIO_new");
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  SSL_set_bio(ssl, bio, bio);  // one reference, owned by ssl
  return ssl;
}

bool IsIpAddress(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

SSL_CTX* NewContext(const SSL_METHOD* method) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // A peer that closes the TCP connection without close_notify ends the stream like EOF does;
  // HTTP framing (Content-Length, chunked) already tells a truncated body apart.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
  return ctx;
}

int64_t MsLeft(std::chrono::steady_clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                               std::chrono::steady_clock::now())
      .count();
}

// Runs `step` (SSL_accept or SSL_connect) to completion with the socket non-blocking, so the
// whole handshake, not each read, is bounded by `timeout_ms` (<= 0: no limit). Returns step's
// last result; `*err` is SSL_get_error of a failure (WANT_* when time ran out).
int Handshake(SSL* ssl, int fd, int timeout_ms, int (*step)(SSL*), int* err) {
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int r;
  while (true) {
    ERR_clear_error();
    r = step(ssl);
    if (r == 1) break;
    *err = SSL_get_error(ssl, r);
    if (*err != SSL_ERROR_WANT_READ && *err != SSL_ERROR_WANT_WRITE) break;
    int64_t left = timeout_ms > 0 ? MsLeft(deadline) : -1;
    if (timeout_ms > 0 && left <= 0) break;
    pollfd p{fd, static_cast<short>(*err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, INT32_MAX)));
    if (n < 0 && errno != EINTR) break;
    if (n == 0 && timeout_ms > 0 && MsLeft(deadline) <= 0) break;
  }
  ::fcntl(fd, F_SETFL, flags);
  return r;
}

}  // namespace

Result<std::shared_ptr<const TlsContext>> TlsContext::ForServer(const std::string& cert_file,
                                                                const std::string& key_file) {
  ERR_clear_error();
  SSL_CTX* ctx = NewContext(TLS_server_method());
  if (ctx == nullptr) return TlsStatus(Code::kInternal, "SSL_CTX_new");
  std::shared_ptr<const TlsContext> out(new TlsContext(ctx, PeerVerification::kNone));
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return TlsStatus(Code::kInvalidArgument, "TLS certificate " + cert_file);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return TlsStatus(Code::kInvalidArgument, "TLS key " + key_file);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return TlsStatus(Code::kInvalidArgument,
                     "TLS key " + key_file + " does not match " + cert_file);
  }
  return out;
}

Result<std::shared_ptr<const TlsContext>> TlsContext::ForClient(const std::string& ca_file,
                                                                PeerVerification verify) {
  ERR_clear_error();
  SSL_CTX* ctx = NewContext(TLS_client_method());
  if (ctx == nullptr) return TlsStatus(Code::kInternal, "SSL_CTX_new");
  std::shared_ptr<const TlsContext> out(new TlsContext(ctx, verify));
  if (verify == PeerVerification::kNone) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return out;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
      return TlsStatus(Code::kInvalidArgument, "CA bundle " + ca_file);
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return TlsStatus(Code::kInternal, "system CA store");
  }
  X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
  return out;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

Result<std::unique_ptr<TlsSession>> TlsSession::Accept(const TlsContext& ctx, int fd,
                                                       int timeout_ms) {
  VLAKE_ASSIGN_OR_RETURN(SSL * ssl, NewSsl(ctx, fd));
  std::unique_ptr<TlsSession> s(new TlsSession(ssl));
  int err = 0;
  int r = Handshake(ssl, fd, timeout_ms, SSL_accept, &err);
  if (r == 1) return s;
  s->failed_ = true;
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    return Error(Code::kRequestTimeout, "TLS handshake stalled");
  }
  if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    return Error(Code::kBadRequest, "TLS handshake: connection closed");
  }
  return TlsStatus(Code::kBadRequest, "TLS handshake");
}

Result<std::unique_ptr<TlsSession>> TlsSession::Connect(const TlsContext& ctx, int fd,
                                                        const std::string& host, int timeout_ms) {
  VLAKE_ASSIGN_OR_RETURN(SSL * ssl, NewSsl(ctx, fd));
  std::unique_ptr<TlsSession> s(new TlsSession(ssl));
  const bool ip = IsIpAddress(host);
  if (!ip) SSL_set_tlsext_host_name(ssl, host.c_str());
  if (ctx.verifies_peer()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    if (ok != 1) return TlsStatus(Code::kInvalidArgument, "TLS peer name " + host);
  }
  int err = 0;
  int r = Handshake(ssl, fd, timeout_ms, SSL_connect, &err);
  if (r == 1) return s;
  s->failed_ = true;
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    ERR_clear_error();
    return Error(Code::kUnavailable,
                 "TLS handshake with " + host +
                     ": certificate verify failed: " + X509_verify_cert_error_string(verify));
  }
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    return Error(Code::kTimeout, "TLS handshake with " + host + ": timed out");
  }
  if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    return Error(Code::kUnavailable, "TLS handshake with " + host + ": connection closed");
  }
  return TlsStatus(Code::kUnavailable, "TLS handshake with " + host);
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

ssize_t TlsSession::Fail(int ret) {
  int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      // The socket's timeout expired (blocking sockets never ask otherwise).
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_SYSCALL:
      failed_ = true;
      ERR_clear_error();
      if (errno == 0) errno = ECONNRESET;
      return -1;
    default:
      failed_ = true;
      ERR_clear_error();
      errno = EPROTO;
      return -1;
  }
}

ssize_t TlsSession::Recv(char* buf, size_t n) {
  if (failed_) {
    errno = EPROTO;
    return -1;
  }
  ERR_clear_error();
  errno = 0;
  int r = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(n, INT_MAX)));
  return r > 0 ? r : Fail(r);
}

ssize_t TlsSession::Send(const char* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    if (failed_) {
      errno = EPROTO;
      return -1;
    }
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(ssl_, buf + done, static_cast<int>(std::min<size_t>(n - done, INT_MAX)));
    if (r <= 0) {
      ssize_t f = Fail(r);
      if (f == 0) errno = EPIPE;  // the peer closed: nothing more can be sent
      return -1;
    }
    done += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(n);
}

void TlsSession::Shutdown() {
  if (failed_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
  failed_ = true;  // no more writes after close_notify
}

}  // namespace vlake::http
