// TLS for the HTTP server and client, over OpenSSL 3.
//
// A TlsContext is an SSL_CTX configured once (certificate and key for a server; trust store and
// peer verification for a client) and then shared, read-only, by every connection: OpenSSL
// allows SSL_new on one SSL_CTX from many threads. A TlsSession is one connection's TLS state
// over a connected blocking socket; its Recv/Send have recv(2)/send(2) semantics (a byte count,
// or -1 with errno) so the HTTP code keeps one error path for plain and TLS sockets: a timeout
// of the socket's SO_RCVTIMEO/SO_SNDTIMEO reads as EAGAIN, a TLS protocol failure as EPROTO, an
// orderly close (close_notify or a bare EOF) as 0.
//
// Thread-safety: TlsContext is immutable after creation; a TlsSession belongs to one thread.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>

#include "common/status.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace vlake::http {

enum class PeerVerification {
  kVerify,  // the peer's chain must lead to a trusted certificate and name the host
  kNone,    // accept any certificate (tests and debugging only; no protection from a MITM)
};

class TlsContext {
 public:
  // A server context from a PEM certificate chain (leaf first) and its PEM private key.
  // kInvalidArgument when a file is unreadable or the key does not match the certificate.
  static Result<std::shared_ptr<const TlsContext>> ForServer(const std::string& cert_file,
                                                             const std::string& key_file);
  // A client context trusting the PEM certificates in `ca_file`, or the system's store when it
  // is empty. A certificate of the file is a trust anchor even when it is not a CA's own
  // (X509_V_FLAG_PARTIAL_CHAIN, as curl does), so a server's own certificate works as well.
  static Result<std::shared_ptr<const TlsContext>> ForClient(const std::string& ca_file,
                                                             PeerVerification verify);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  bool verifies_peer() const { return verify_ == PeerVerification::kVerify; }

 private:
  TlsContext(SSL_CTX* ctx, PeerVerification verify) : ctx_(ctx), verify_(verify) {}
  SSL_CTX* ctx_;
  PeerVerification verify_;
};

class TlsSession {
 public:
  // Server side of the handshake on `fd` (not owned), finished within `timeout_ms` in all (<= 0:
  // no limit), however slowly the peer dribbles it. kBadRequest when the peer does not speak
  // TLS or fails the handshake; kRequestTimeout when it runs out of time.
  static Result<std::unique_ptr<TlsSession>> Accept(const TlsContext& ctx, int fd, int timeout_ms);
  // Client side: sends SNI `host` (unless it is an IP address) and, when the context verifies,
  // checks the certificate names `host` (DNS name or IP address). kUnavailable on failure with
  // the verification result in the message; kTimeout after `timeout_ms`.
  static Result<std::unique_ptr<TlsSession>> Connect(const TlsContext& ctx, int fd,
                                                     const std::string& host, int timeout_ms);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  ssize_t Recv(char* buf, size_t n);
  ssize_t Send(const char* buf, size_t n);  // writes all n bytes or fails
  // Sends close_notify (best effort, bounded by SO_SNDTIMEO); further Send calls fail.
  void Shutdown();

 private:
  explicit TlsSession(SSL* ssl) : ssl_(ssl) {}
  ssize_t Fail(int ret);
  SSL* ssl_;
  bool failed_ = false;  // a fatal error or close_notify sent: no more I/O, no SSL_shutdown
};

}  // namespace vlake::http
