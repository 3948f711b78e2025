// Streaming request bodies.
//
// A BodyReader yields the decoded payload bytes of one request. Server-side it hides the
// framing (Content-Length or chunked transfer-encoding) and the 100-continue handshake: the
// first Read() sends "HTTP/1.1 100 Continue" when the client asked for it. Decoders (aws-chunked
// in src/s3) wrap another BodyReader. Memory stays bounded: readers never buffer a whole body.
//
// Thread-safety: one reader belongs to one request on one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "http/request.h"

namespace vlake::http {

class BodyReader {
 public:
  virtual ~BodyReader() = default;
  // Reads up to `n` bytes; returns 0 at the end of the body. Errors: kIncompleteBody when the
  // peer closed early, kRequestTimeout on a stalled peer, kBadRequest on broken framing.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
  // Total decoded length when known up front (Content-Length framing), else nullopt.
  virtual std::optional<uint64_t> Length() const = 0;
  // Trailer fields received after a chunked body (valid once Read returned 0).
  virtual const std::vector<Header>& Trailers() const;
};

// Reads the whole body into a string, failing with kEntityTooLarge above `limit_bytes`.
Result<std::string> ReadAll(BodyReader& body, size_t limit_bytes);

// A reader over an in-memory string (tests, small internal bodies).
class StringBodyReader : public BodyReader {
 public:
  explicit StringBodyReader(std::string data) : data_(std::move(data)) {}
  Result<size_t> Read(char* buf, size_t n) override;
  std::optional<uint64_t> Length() const override { return data_.size(); }

 private:
  std::string data_;
  size_t pos_ = 0;
};

}  // namespace vlake::http
