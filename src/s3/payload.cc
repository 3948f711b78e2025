// Request-body ingestion: aws-chunked decoding, x-amz-content-sha256, Content-MD5 and
// x-amz-checksum-* verification while streaming into a blob with bounded memory.
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "s3/aws_chunked.h"
#include "s3/service_internal.h"

namespace vlake::s3 {
namespace {

constexpr size_t kIngestBufferBytes = 1 << 20;
constexpr uint64_t kPipelineMinBytes = 4 << 20;
constexpr int kPipelineSlots = 2;

// Hashes buffers on one worker thread, in submission order. kPipelineSlots buffer slots: the
// producer fills one while the worker hashes the others, which absorbs jitter on either side.
// Invariant: slot s is busy from Submit(s) until the worker has hashed it; WaitFor(s) blocks
// while it is busy.
class HashPipeline {
 public:
  explicit HashPipeline(std::function<void(const char*, size_t)> hash)
      : hash_(std::move(hash)), worker_([this] { Run(); }) {}
  ~HashPipeline() { Finish(); }

  void WaitFor(int slot) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !busy_[slot]; });
  }
  void Submit(int slot, const char* data, size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    busy_[slot] = true;
    queue_[tail_++ % kPipelineSlots] = {slot, data, n};
    cv_.notify_all();
  }
  // Waits until everything submitted is hashed and stops the worker.
  void Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (done_) return;
      done_ = true;
      cv_.notify_all();
    }
    worker_.join();
  }

 private:
  struct Item {
    int slot;
    const char* data;
    size_t n;
  };
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return head_ != tail_ || done_; });
      if (head_ == tail_) return;  // done_ and drained
      Item item = queue_[head_ % kPipelineSlots];
      lock.unlock();
      hash_(item.data, item.n);
      lock.lock();
      ++head_;
      busy_[item.slot] = false;
      cv_.notify_all();
    }
  }

  std::function<void(const char*, size_t)> hash_;
  std::mutex mu_;
  std::condition_variable cv_;
  Item queue_[kPipelineSlots] = {};
  uint64_t head_ = 0, tail_ = 0;    // guarded by mu_
  bool busy_[kPipelineSlots] = {};  // guarded by mu_
  bool done_ = false;               // guarded by mu_
  std::thread worker_;              // last: starts after the members it uses exist
};

constexpr ChecksumAlgorithm kAllAlgorithms[] = {
    ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
    ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256};

Status SetAlgorithm(PayloadChecks* checks, ChecksumAlgorithm alg) {
  if (checks->algorithm && *checks->algorithm != alg) {
    return Error(Code::kInvalidRequest,
                 "Expecting a single x-amz-checksum- header. Multiple checksum Types are not "
                 "allowed.");
  }
  checks->algorithm = alg;
  return Status::Ok();
}

const std::string* FindTrailer(const std::vector<http::Header>& trailers, std::string_view name) {
  for (const auto& t : trailers) {
    if (t.name == name) return &t.value;
  }
  return nullptr;
}

}  // namespace

Result<PayloadChecks> ParsePayloadChecks(RequestContext& ctx) {
  PayloadChecks checks;
  if (const std::string* md5 = ctx.Header("content-md5")) {
    auto raw = Base64Decode(TrimWhitespace(*md5));
    if (!raw || raw->size() != 16) {
      return Error(Code::kInvalidDigest, "The Content-MD5 you specified is not valid.");
    }
    checks.content_md5 = std::move(*raw);
  }
  for (ChecksumAlgorithm alg : kAllAlgorithms) {
    const std::string* value = ctx.Header(ChecksumHeaderName(alg));
    if (!value) continue;
    VLAKE_RETURN_IF_ERROR(SetAlgorithm(&checks, alg));
    auto raw = Base64Decode(TrimWhitespace(*value));
    if (!raw || raw->size() != ChecksumSize(alg)) {
      return Error(Code::kInvalidRequest,
                   "Value for " + std::string(ChecksumHeaderName(alg)) + " header is invalid.");
    }
    checks.checksum_expected = std::move(*raw);
  }
  if (const std::string* trailer = ctx.Header("x-amz-trailer")) {
    std::string name = AsciiLower(TrimWhitespace(*trailer));
    bool known = false;
    for (ChecksumAlgorithm alg : kAllAlgorithms) {
      if (name == ChecksumHeaderName(alg)) {
        if (checks.checksum_expected) {
          return Error(Code::kInvalidRequest,
                       "Expecting a single x-amz-checksum- header. Multiple checksum Types are "
                       "not allowed.");
        }
        VLAKE_RETURN_IF_ERROR(SetAlgorithm(&checks, alg));
        checks.checksum_in_trailer = true;
        known = true;
      }
    }
    if (!known) {
      return Error(Code::kInvalidRequest,
                   "The value specified in the x-amz-trailer header is "
                   "not supported");
    }
  }
  if (const std::string* sdk = ctx.Header("x-amz-sdk-checksum-algorithm")) {
    auto alg = ParseChecksumAlgorithm(TrimWhitespace(*sdk));
    if (!alg) {
      return Error(Code::kInvalidRequest,
                   "Value for x-amz-sdk-checksum-algorithm header is invalid.");
    }
    VLAKE_RETURN_IF_ERROR(SetAlgorithm(&checks, *alg));
  }
  if (const std::string* decoded = ctx.Header("x-amz-decoded-content-length")) {
    auto n = ParseUint64(TrimWhitespace(*decoded));
    if (!n) return Error(Code::kInvalidArgument, "x-amz-decoded-content-length is not a number");
    checks.decoded_length = *n;
  }
  return checks;
}

Result<IngestResult> IngestBody(RequestContext& ctx, const PayloadChecks& checks,
                                store::BlobWriter* sink, std::string* memory, uint64_t max_bytes) {
  const AuthResult& auth = ctx.auth;
  http::BodyReader* reader = ctx.body;
  std::unique_ptr<AwsChunkedReader> chunked;
  bool streaming = auth.payload == PayloadMode::kStreamingSigned ||
                   auth.payload == PayloadMode::kStreamingSignedTrailer ||
                   auth.payload == PayloadMode::kStreamingUnsignedTrailer;
  if (streaming) {
    AwsChunkedConfig config;
    config.mode = auth.payload == PayloadMode::kStreamingSigned ? AwsChunkedMode::kSigned
                  : auth.payload == PayloadMode::kStreamingSignedTrailer
                      ? AwsChunkedMode::kSignedTrailer
                      : AwsChunkedMode::kUnsignedTrailer;
    config.signing_key = auth.signing_key;
    config.seed_signature = auth.seed_signature;
    config.amz_date = auth.amz_date;
    config.scope = auth.scope;
    config.decoded_length = checks.decoded_length;
    chunked = std::make_unique<AwsChunkedReader>(*ctx.body, std::move(config));
    reader = chunked.get();
  } else if (!ctx.req->content_length && !ctx.req->chunked) {
    return Error(Code::kMissingContentLength, "");  // also for a direct PUT: S3 requires it
  }

  std::optional<Sha256> sha256;
  if (auth.payload == PayloadMode::kHashed) sha256.emplace();
  std::optional<Checksummer> checksum;
  if (checks.algorithm) checksum.emplace(*checks.algorithm);
  Md5 md5;
  auto hash = [&](const char* p, size_t n) {
    md5.Update(p, n);
    if (checksum) checksum->Update(p, n);
    if (sha256) sha256->Update(p, n);
  };

  // Large bodies hash on a second thread while this one receives and writes: MD5 alone runs at
  // about the speed of a network stream, so doing both in sequence would halve a PUT.
  // The body's length when known up front: Content-Length, or a direct PUT's token length.
  uint64_t announced_bytes = ctx.body->Length().value_or(0);
  std::optional<HashPipeline> pipeline;
  if (sink && announced_bytes >= kPipelineMinBytes) pipeline.emplace(hash);

  // Buffers are per connection thread; requests on a thread run one at a time.
  // Allocated on a thread's first upload; small bodies use only the first.
  thread_local std::unique_ptr<char[]> buffers[kPipelineSlots];
  IngestResult result;
  int turn = 0;
  for (bool eof = false; !eof;) {
    if (!buffers[turn]) buffers[turn].reset(new char[kIngestBufferBytes]);
    char* buffer = buffers[turn].get();
    if (pipeline) pipeline->WaitFor(turn);  // the hasher may still read this buffer
    // Fill the buffer completely so the blob sees large writes (no extra copy there).
    size_t filled = 0;
    while (filled < kIngestBufferBytes) {
      VLAKE_ASSIGN_OR_RETURN(size_t n, reader->Read(buffer + filled, kIngestBufferBytes - filled));
      if (n == 0) {
        eof = true;
        break;
      }
      filled += n;
    }
    if (filled == 0) break;
    result.size += filled;
    ctx.bytes_in += filled;
    if (result.size > max_bytes) {
      return Error(Code::kEntityTooLarge, "Your proposed upload exceeds the maximum allowed size");
    }
    if (sink) {
      VLAKE_RETURN_IF_ERROR(sink->Append(buffer, filled));
    } else {
      memory->append(buffer, filled);
    }
    if (pipeline) {
      pipeline->Submit(turn, buffer, filled);
      turn = (turn + 1) % kPipelineSlots;
    } else {
      hash(buffer, filled);
    }
  }
  if (pipeline) pipeline->Finish();
  if (checks.decoded_length && *checks.decoded_length != result.size) {
    return Error(Code::kIncompleteBody,
                 "The decoded body length does not match x-amz-decoded-content-length");
  }
  if (sha256 && HexEncode(sha256->Final()) != AsciiLower(auth.payload_sha256_hex)) {
    return Error(Code::kContentSha256Mismatch, "");
  }
  result.md5 = md5.Final();
  if (checks.content_md5 && *checks.content_md5 != result.md5) {
    return Error(Code::kBadDigest, "");
  }
  if (checksum) {
    std::string actual = checksum->Final();
    std::optional<std::string> expected = checks.checksum_expected;
    if (checks.checksum_in_trailer) {
      std::string_view name = ChecksumHeaderName(*checks.algorithm);
      const std::string* value = FindTrailer(reader->Trailers(), name);
      if (!value && reader != ctx.body) value = FindTrailer(ctx.body->Trailers(), name);
      if (!value) {
        return Error(Code::kMalformedTrailer,
                     "The request lacks the trailer named in x-amz-trailer: " + std::string(name));
      }
      auto raw = Base64Decode(TrimWhitespace(*value));
      if (!raw || raw->size() != ChecksumSize(*checks.algorithm)) {
        return Error(Code::kInvalidRequest,
                     "Value for " + std::string(name) + " trailing header is invalid.");
      }
      expected = std::move(*raw);
    }
    if (expected && *expected != actual) {
      return Error(Code::kBadDigest, "The " +
                                         std::string(ChecksumAlgorithmName(*checks.algorithm)) +
                                         " you specified did not match the calculated checksum.");
    }
    store::ChecksumValue value;
    value.algorithm = *checks.algorithm;
    value.type = store::ChecksumType::kFullObject;
    value.value = Base64Encode(actual);
    result.checksum = std::move(value);
  }
  return result;
}

Result<std::string> ReadSmallBody(RequestContext& ctx, size_t limit_bytes, bool require_digest) {
  VLAKE_ASSIGN_OR_RETURN(PayloadChecks checks, ParsePayloadChecks(ctx));
  if (require_digest && !checks.content_md5 && !checks.algorithm) {
    return Error(Code::kInvalidRequest,
                 "Missing required header for this request: Content-MD5 or x-amz-checksum-*");
  }
  std::string body;
  if (!ctx.req->content_length && !ctx.req->chunked) {
    return body;  // no body at all
  }
  auto ingested = IngestBody(ctx, checks, nullptr, &body, limit_bytes);
  if (!ingested.ok()) {
    if (ingested.error().code() == Code::kEntityTooLarge) {
      return Error(Code::kMalformedXml, "The XML you provided was too large");
    }
    return ingested.error();
  }
  return body;
}

}  // namespace vlake::s3
