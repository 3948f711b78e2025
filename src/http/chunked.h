// Decoder for the chunked transfer-coding (RFC 9112 §7.1), as a pure push-style state machine.
//
// The server's body reader, the client's response reader and the fuzzer drive the same code:
// they feed whatever bytes they have, and the decoder copies payload out and keeps the few
// bytes of a partial size or trailer line itself. Framing is strict: every line must end in
// CRLF (a bare LF inside chunked framing is a known request-smuggling vector), chunk sizes are
// capped at 2^62, size lines at kMaxSizeLineBytes and the trailer section at a caller limit.
//
// Thread-safety: none; one decoder per body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "http/request.h"

namespace vlake::http {

class ChunkedDecoder {
 public:
  // A size line with extensions longer than this is rejected (aws-chunked signatures are ~90).
  static constexpr size_t kMaxSizeLineBytes = 4096;
  static constexpr size_t kDefaultMaxTrailerBytes = 16 * 1024;

  explicit ChunkedDecoder(size_t max_trailer_bytes = kDefaultMaxTrailerBytes)
      : max_trailer_bytes_(max_trailer_bytes) {}

  // Consumes framing and payload from `in`, copying at most `out_cap` payload bytes to `out`
  // (`*produced` of them). Returns how many bytes of `in` were consumed: all of them, unless
  // `out` filled up or the body ended (done()), in which case the rest belongs to the caller.
  // Error: kBadRequest on broken framing; the decoder must not be used afterwards.
  Result<size_t> Decode(std::string_view in, char* out, size_t out_cap, size_t* produced);

  // Payload bytes of the current chunk not yet delivered; 0 unless inside chunk data. A caller
  // may read up to this many bytes straight into its own buffer and report them with SkipData,
  // which avoids a copy for large chunks.
  uint64_t data_remaining() const { return state_ == State::kData ? chunk_left_ : 0; }
  void SkipData(uint64_t n);

  // The last chunk and the trailer section have been consumed.
  bool done() const { return state_ == State::kDone; }
  // Trailer fields (lowercase names), complete once done().
  const std::vector<Header>& trailers() const { return trailers_; }

 private:
  enum class State { kSizeLine, kData, kDataCr, kDataLf, kTrailerLine, kDone };
  Status FinishLine();

  State state_ = State::kSizeLine;
  uint64_t chunk_left_ = 0;   // in kData: payload bytes left in the current chunk
  std::string line_;          // partial size or trailer line, without its terminator
  size_t trailer_bytes_ = 0;  // trailer section bytes seen so far, terminators included
  size_t max_trailer_bytes_;
  std::vector<Header> trailers_;
};

}  // namespace vlake::http
