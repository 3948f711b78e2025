#include "common/status.h"

#include <cstdio>
#include <cstring>

namespace vlake {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kNotFound:
      return "NotFound";
    case Code::kAlreadyExists:
      return "AlreadyExists";
    case Code::kIoError:
      return "IoError";
    case Code::kCorruption:
      return "Corruption";
    case Code::kInternal:
      return "Internal";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kTimeout:
      return "Timeout";
    case Code::kCancelled:
      return "Cancelled";
    case Code::kNotImplemented:
      return "NotImplemented";
    case Code::kNoSuchBucket:
      return "NoSuchBucket";
    case Code::kNoSuchKey:
      return "NoSuchKey";
    case Code::kNoSuchUpload:
      return "NoSuchUpload";
    case Code::kBucketAlreadyExists:
      return "BucketAlreadyExists";
    case Code::kBucketAlreadyOwnedByYou:
      return "BucketAlreadyOwnedByYou";
    case Code::kBucketNotEmpty:
      return "BucketNotEmpty";
    case Code::kInvalidBucketName:
      return "InvalidBucketName";
    case Code::kKeyTooLong:
      return "KeyTooLongError";
    case Code::kEntityTooSmall:
      return "EntityTooSmall";
    case Code::kEntityTooLarge:
      return "EntityTooLarge";
    case Code::kInvalidPart:
      return "InvalidPart";
    case Code::kInvalidPartOrder:
      return "InvalidPartOrder";
    case Code::kBadDigest:
      return "BadDigest";
    case Code::kInvalidDigest:
      return "InvalidDigest";
    case Code::kInvalidRange:
      return "InvalidRange";
    case Code::kPreconditionFailed:
      return "PreconditionFailed";
    case Code::kNotModified:
      return "NotModified";
    case Code::kAccessDenied:
      return "AccessDenied";
    case Code::kSignatureDoesNotMatch:
      return "SignatureDoesNotMatch";
    case Code::kInvalidAccessKeyId:
      return "InvalidAccessKeyId";
    case Code::kRequestTimeTooSkewed:
      return "RequestTimeTooSkewed";
    case Code::kMalformedXml:
      return "MalformedXML";
    case Code::kInvalidRequest:
      return "InvalidRequest";
    case Code::kContentSha256Mismatch:
      return "XAmzContentSHA256Mismatch";
    case Code::kIncompleteBody:
      return "IncompleteBody";
    case Code::kMissingContentLength:
      return "MissingContentLength";
    case Code::kMethodNotAllowed:
      return "MethodNotAllowed";
    case Code::kInvalidTag:
      return "InvalidTag";
    case Code::kAuthorizationHeaderMalformed:
      return "AuthorizationHeaderMalformed";
    case Code::kMissingSecurityHeader:
      return "MissingSecurityHeader";
    case Code::kExpiredToken:
      return "ExpiredToken";
    case Code::kRequestTimeout:
      return "RequestTimeout";
    case Code::kInvalidEncryptionAlgorithm:
      return "InvalidEncryptionAlgorithmError";
    case Code::kMalformedTrailer:
      return "MalformedTrailerError";
    case Code::kInvalidChecksum:
      return "InvalidChecksum";
    case Code::kConditionalRequestConflict:
      return "ConditionalRequestConflict";
    case Code::kBadRequest:
      return "BadRequest";
    case Code::kInvalidPartNumber:
      return "InvalidPartNumber";
    case Code::kInvalidRdmaToken:
      return "InvalidRDMAToken";
    case Code::kRdmaNotSupported:
      return "RDMANotSupported";
    case Code::kRdmaTransferFailed:
      return "RDMATransferFailed";
    case Code::kNoSuchBucketPolicy:
      return "NoSuchBucketPolicy";
    case Code::kNoSuchCorsConfiguration:
      return "NoSuchCORSConfiguration";
    case Code::kNoSuchLifecycleConfiguration:
      return "NoSuchLifecycleConfiguration";
    case Code::kNoSuchWebsiteConfiguration:
      return "NoSuchWebsiteConfiguration";
    case Code::kNoSuchEncryptionConfiguration:
      return "ServerSideEncryptionConfigurationNotFoundError";
    case Code::kNoSuchPublicAccessBlockConfiguration:
      return "NoSuchPublicAccessBlockConfiguration";
    case Code::kNoSuchOwnershipControls:
      return "OwnershipControlsNotFoundError";
    case Code::kNoSuchObjectLockConfiguration:
      return "ObjectLockConfigurationNotFoundError";
    case Code::kNoSuchReplicationConfiguration:
      return "ReplicationConfigurationNotFoundError";
    case Code::kNoSuchTagSet:
      return "NoSuchTagSet";
    case Code::kEntityTooLargeHeader:
      return "RequestHeaderSectionTooLarge";
    case Code::kUnauthenticated:
      return "Unauthenticated";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(CodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

Status ErrnoStatus(std::string_view context, int err) {
  char buf[256];
  const char* text = strerror_r(err, buf, sizeof(buf));
  std::string msg(context);
  msg += ": ";
  msg += text;
  switch (err) {
    case ENOENT:
      return Status(Code::kNotFound, std::move(msg));
    case EEXIST:
      return Status(Code::kAlreadyExists, std::move(msg));
    case EINVAL:
      return Status(Code::kInvalidArgument, std::move(msg));
    case ETIMEDOUT:
    case EAGAIN:
      return Status(Code::kTimeout, std::move(msg));
    case ECANCELED:
      return Status(Code::kCancelled, std::move(msg));
    default:
      return Status(Code::kIoError, std::move(msg));
  }
}

namespace internal {
void CheckFailed(const char* file, int line, const char* expr) {
  std::fprintf(stderr, "VLAKE_CHECK failed at %s:%d: %s\n", file, line, expr);
  std::fflush(stderr);
  std::abort();
}
}  // namespace internal

}  // namespace vlake
