// Request-body ingestion: aws-chunked decoding, x-amz-content-sha256, Content-MD5 and
// x-amz-checksum-* verification while streaming into a blob with bounded memory.
#include <memory>
#include <vector>

#include "common/encoding.h"
#include "s3/aws_chunked.h"
#include "s3/service_internal.h"

namespace vlake::s3 {
namespace {

constexpr size_t kIngestBufferBytes = 1 << 20;

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
      return Error(Code::kInvalidRequest, "Value for " + std::string(ChecksumHeaderName(alg)) +
                                              " header is invalid.");
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
      return Error(Code::kInvalidRequest, "The value specified in the x-amz-trailer header is "
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
                                store::BlobWriter* sink, std::string* memory,
                                uint64_t max_bytes) {
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
    return Error(Code::kMissingContentLength, "");
  }

  std::optional<Sha256> sha256;
  if (auth.payload == PayloadMode::kHashed) sha256.emplace();
  std::optional<Checksummer> checksum;
  if (checks.algorithm) checksum.emplace(*checks.algorithm);
  Md5 md5;

  // One buffer per connection thread; requests on a thread run one at a time.
  thread_local std::unique_ptr<char[]> buffer(new char[kIngestBufferBytes]);
  IngestResult result;
  for (;;) {
    VLAKE_ASSIGN_OR_RETURN(size_t n, reader->Read(buffer.get(), kIngestBufferBytes));
    if (n == 0) break;
    result.size += n;
    ctx.bytes_in += n;
    if (result.size > max_bytes) {
      return Error(Code::kEntityTooLarge, "Your proposed upload exceeds the maximum allowed size");
    }
    md5.Update(buffer.get(), n);
    if (checksum) checksum->Update(buffer.get(), n);
    if (sha256) sha256->Update(buffer.get(), n);
    if (sink) {
      VLAKE_RETURN_IF_ERROR(sink->Append(buffer.get(), n));
    } else {
      memory->append(buffer.get(), n);
    }
  }
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
                     "The request lacks the trailer named in x-amz-trailer: " +
                         std::string(name));
      }
      auto raw = Base64Decode(TrimWhitespace(*value));
      if (!raw || raw->size() != ChecksumSize(*checks.algorithm)) {
        return Error(Code::kInvalidRequest,
                     "Value for " + std::string(name) + " trailing header is invalid.");
      }
      expected = std::move(*raw);
    }
    if (expected && *expected != actual) {
      return Error(Code::kBadDigest, "The " + std::string(ChecksumAlgorithmName(*checks.algorithm)) +
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
