// Decoder (and encoder) for `Content-Encoding: aws-chunked` request bodies: the framing S3
// clients use for streaming uploads, with optional per-chunk signatures and trailing headers.
//
// Wire format (after any HTTP chunked transfer-encoding has been removed by the inner reader):
//
//   hex-size[;chunk-signature=<64 hex>]\r\n <size bytes> \r\n      (repeated)
//   0[;chunk-signature=<64 hex>]\r\n                               (final chunk)
//   name:value\r\n ...                                              (trailer modes only)
//   x-amz-trailer-signature:<64 hex>\r\n                            (signed trailer only)
//   \r\n
//
// Chunk signatures chain from the request's seed signature (sigv4.h ChunkSignature); the
// trailer signature chains from the final chunk's signature over the lines "name:value\n"
// (TrailerSignature). Leniency for real SDKs: the closing CRLF may be missing at the end of the
// stream, one stray CRLF after the end is ignored, unknown chunk extensions are ignored, an
// unsigned-trailer body may carry chunk-signature extensions (ignored), and trailer lines may
// end in a bare LF with one blank line before x-amz-trailer-signature (minio-go's framing:
// "name:value\n\r\nx-amz-trailer-signature:<sig>\r\n\r\n").
//
// Error codes:
//   kSignatureDoesNotMatch  a chunk or trailer signature differs from the computed one
//   kIncompleteBody         the stream ended early, or the final chunk came before
//                           x-amz-decoded-content-length bytes
//   kInvalidRequest         broken framing: bad hex, missing CRLF, size line over 4 KiB, size
//                           overflow, missing chunk-signature in a signed mode, more data than
//                           x-amz-decoded-content-length, bytes after the end
//   kMalformedTrailer       bad trailer line, trailers over 16 KiB, trailers in a mode without
//                           them, missing x-amz-trailer-signature when trailers are signed
// Errors are sticky: every later Read returns the same status.
//
// Verification granularity: a chunk's signature is checked when its last byte is decoded, in
// the same Read that would return that byte; if it fails, Read returns the error instead.
// Earlier bytes of a chunk larger than the caller's buffer are handed out before the chunk is
// verified (the alternative is buffering whole chunks); therefore callers must treat every
// error as "discard the whole upload", which the S3 layer does.
//
// Memory: one input buffer (`input_buffer_bytes`) plus the current line (<= 4 KiB) and the
// trailers (<= 16 KiB); bodies are never buffered.
//
// Thread-safety: one reader belongs to one request on one thread. Ownership: the reader
// borrows `inner`, which must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/hash.h"
#include "common/status.h"
#include "http/body.h"
#include "http/request.h"
#include "s3/sigv4.h"

namespace vlake::s3 {

inline constexpr size_t kMaxChunkLineBytes = 4096;
inline constexpr size_t kMaxTrailerBytes = 16384;

enum class AwsChunkedMode {
  kSigned,           // STREAMING-AWS4-HMAC-SHA256-PAYLOAD: every chunk signed, no trailers
  kSignedTrailer,    // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: chunks and trailers signed
  kUnsignedTrailer,  // STREAMING-UNSIGNED-PAYLOAD-TRAILER: no signatures, trailers allowed
};

struct AwsChunkedConfig {
  AwsChunkedMode mode = AwsChunkedMode::kSigned;
  // Signed modes only (AuthResult carries all four); ignored for kUnsignedTrailer.
  std::string signing_key;     // 32 raw bytes
  std::string amz_date;        // request time, "20130524T000000Z"
  SigningScope scope;          // credential scope of the request
  std::string seed_signature;  // hex signature of the request (first chunk chains from it)
  // x-amz-decoded-content-length when sent; the decoded body must have exactly this size.
  std::optional<uint64_t> decoded_length;
  // Size of the one input buffer; larger means fewer inner reads, more memory per upload.
  size_t input_buffer_bytes = 64 * 1024;
};

// The config for a request Authenticate() accepted with a streaming payload mode;
// kInvalidArgument for any other mode.
Result<AwsChunkedConfig> AwsChunkedConfigFor(const AuthResult& auth,
                                             std::optional<uint64_t> decoded_length);

class AwsChunkedReader final : public http::BodyReader {
 public:
  AwsChunkedReader(http::BodyReader& inner, AwsChunkedConfig config);
  AwsChunkedReader(const AwsChunkedReader&) = delete;
  AwsChunkedReader& operator=(const AwsChunkedReader&) = delete;

  // Decoded payload bytes; 0 once the final chunk, the trailers and the end of the inner
  // stream have been consumed and verified.
  Result<size_t> Read(char* buf, size_t n) override;
  // x-amz-decoded-content-length when configured.
  std::optional<uint64_t> Length() const override { return config_.decoded_length; }
  // Trailer fields (lowercase names, trimmed values, x-amz-trailer-signature excluded); valid
  // once Read returned 0.
  const std::vector<http::Header>& Trailers() const override { return trailers_; }

 private:
  enum class State { kSizeLine, kData, kDataCrlf, kTrailers, kFinalCrlf, kDone, kEof, kFailed };

  Status Fail(Status status);
  // Makes input available; false at the end of the inner stream.
  Result<bool> Fill();
  // Chunk-size lines must end in CRLF; trailer lines may end in a bare LF (minio-go).
  enum class LineEnd { kCrlf, kCrlfOrLf };
  // Next line (without its terminator) into line_; false when the inner stream ended before a
  // complete line (line_ then holds the partial bytes).
  Result<bool> NextLine(size_t max_bytes, Code too_long_code, LineEnd line_end);
  Status OnSizeLine();
  Status OnTrailerLine();
  Status FinishTrailers();
  Status FinishChunk();
  Status DrainEnd();

  http::BodyReader* inner_;
  AwsChunkedConfig config_;
  State state_ = State::kSizeLine;
  Status failure_;
  std::unique_ptr<char[]> input_;  // allocated on first use
  size_t input_pos_ = 0;
  size_t input_len_ = 0;
  std::string line_;
  int crlf_seen_ = 0;  // bytes of the CRLF after chunk data consumed so far
  uint64_t chunk_remaining_ = 0;
  uint64_t chunk_size_ = 0;
  uint64_t declared_total_ = 0;  // sum of the chunk sizes seen so far
  std::string chunk_signature_;  // expected signature (hex) of the current chunk
  std::string previous_signature_;
  Sha256 chunk_hash_;
  std::vector<http::Header> trailers_;
  std::string trailer_canonical_;  // "name:value\n" lines, the signed trailer block
  size_t trailer_bytes_ = 0;
  std::optional<std::string> trailer_signature_;
  bool skipped_blank_line_ = false;  // the one blank line tolerated before the signature
  size_t stray_bytes_ = 0;           // CR/LF bytes tolerated after the end
};

// Decodes a whole encoded body held in memory, reading it through AwsChunkedReader in pieces
// of `read_size` bytes (1 exercises every boundary). Fails with kEntityTooLarge past
// `max_output_bytes`. For tests and fuzzing.
Result<std::string> DecodeAwsChunked(std::string_view encoded, const AwsChunkedConfig& config,
                                     size_t read_size = 4096,
                                     std::vector<http::Header>* trailers = nullptr,
                                     size_t max_output_bytes = 64 << 20);

// Encodes `data` in chunks of `chunk_size` bytes (the last one shorter, then the final empty
// chunk), signing from config.seed_signature in the signed modes, followed by `trailers` in
// the trailer modes. What a client (or the load generator) sends.
std::string EncodeAwsChunked(std::string_view data, size_t chunk_size,
                             const AwsChunkedConfig& config,
                             std::span<const http::Header> trailers = {});

}  // namespace vlake::s3
