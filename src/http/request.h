// HTTP/1.1 request and response values shared by the server, the client and the S3 layer.
//
// Header names are stored lowercased (HTTP names are case-insensitive); values keep their
// bytes with surrounding whitespace trimmed. Order is preserved; repeated names stay separate
// entries (FindHeader returns the first; HeaderValues joins them with "," as RFC 9110 allows).
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"

namespace vlake::http {

struct Header {
  std::string name;  // lowercase
  std::string value;
};

struct HttpRequest {
  std::string method;     // as sent ("GET", "PUT", ...)
  std::string target;     // raw origin-form target ("/bucket/key?x=y"); absolute-form is cut to it
  std::string path;       // raw (still percent-encoded) part of target before '?'
  std::string query;      // raw part after '?', without the '?'; empty when absent
  int version_minor = 1;  // HTTP/1.<minor>
  std::vector<Header> headers;

  // Body framing, derived from the headers by the parser.
  bool chunked = false;                    // Transfer-Encoding: chunked
  std::optional<uint64_t> content_length;  // Content-Length when present (never with chunked)
  bool expect_continue = false;            // Expect: 100-continue
  bool keep_alive = true;                  // after this exchange the connection may be reused

  // Filled by the server.
  std::string peer;  // "127.0.0.1:54321"
  int64_t received_unix_ms = 0;
  // The connection's socket, so that a long handler (a direct transfer) can notice that the
  // peer hung up (poll POLLRDHUP). Handlers never read from or write to it.
  int connection_fd = -1;

  // Set by the handler once the request passed authentication (a valid signature of a known
  // user; anonymous-but-allowed requests do not count). From then on the server counts the
  // connection as authenticated: it leaves the unauthenticated limits (ServerOptions).
  bool authenticated = false;

  const std::string* FindHeader(std::string_view lower_name) const;
  std::string_view HeaderOr(std::string_view lower_name, std::string_view fallback) const;
  // All values of a repeated field joined with ","; empty when absent.
  std::string HeaderValues(std::string_view lower_name) const;
};

// A byte range of an open file, sent with sendfile(2) (zero-copy).
struct FileSlice {
  std::shared_ptr<const UniqueFd> fd;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct HttpResponse {
  int status = 200;
  std::vector<Header> headers;  // names as they should appear on the wire
  // Body: `body` bytes, followed by `file_slices` in order. Content-Length is computed by the
  // server from both unless `omit_body` (HEAD, 304): then the headers must carry it.
  std::string body;
  std::vector<FileSlice> file_slices;
  bool omit_body = false;
  bool close_connection = false;

  void AddHeader(std::string name, std::string value) {
    headers.push_back({std::move(name), std::move(value)});
  }
  uint64_t BodySize() const;
};

std::string_view StatusReason(int status);

}  // namespace vlake::http
